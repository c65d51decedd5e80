"""
twistd's log through L{twistedpypi.process.twistdlog}: the very text twisted.logger's
own file observer would write, to the file twistd would choose, and a
C{--logfile} that still rotates on C{SIGUSR1}.
"""

import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    LogPublisher,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
    timeFormatRFC3339,
)
from twisted.python.components import Componentized
from twisted.python.logfile import LogFile
from twisted.web.test.requesthelper import DummyRequest

from tests.distributions import wheel_bytes, write
from tests.server import REPO, free_port, twistd, wait_until_serving
from twistedpypi.process.twistdlog import (
    SecondStamp,
    classic_formatter,
    give_twistd_this_log,
    logs_to_stdout,
    twistd_log_file,
)
from twistedpypi.web import accesslog


def logged_events(emit):
    """The events C{emit(logger)} logs."""
    events = []
    publisher = LogPublisher(events.append)
    emit(Logger(namespace="here", observer=publisher))
    return events


def access_event(monkeypatch, agent=b"pip/24.0"):
    """The event the access log makes for one request."""
    events = []
    monkeypatch.setattr(accesslog.log, "observer", events.append)
    request = DummyRequest([b"simple", b"demo", b""])
    request.uri = b"/simple/demo/"
    request.clientproto = b"HTTP/1.1"
    request.sentLength = 1234
    request.requestHeaders.addRawHeader(b"user-agent", agent)
    accesslog.log_access(request, 200, 0.0125)
    return events[0]


def some_events(monkeypatch):
    def failing(log):
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("dividing {what}", what="by zero")

    events = [access_event(monkeypatch), access_event(monkeypatch, agent=b'evil"\nagent\\')]
    events += logged_events(lambda log: log.info("indexed {count} files", count=3))
    events += logged_events(lambda log: log.warn("two\nlines {x!r}", x="a"))
    events += logged_events(failing)
    events += logged_events(lambda log: log.error("{missing} key"))
    events += [
        {"log_format": "system given", "log_system": "-", "log_time": 1.5},
        {"log_format": "no time", "log_level": LogLevel.debug},
        {"log_format": "", "log_time": 2.0},
        {"message": ("legacy",), "log_time": 3.0},
    ]
    return events


def test_lines_are_those_of_twisted_logger_text_observer(monkeypatch):
    format_event = classic_formatter(SecondStamp())
    for event in some_events(monkeypatch):
        assert format_event(event) == formatEventAsClassicLogText(event), event


def test_an_access_line_is_written_as_formatted_under_its_namespace_and_level(monkeypatch):
    event = access_event(monkeypatch)
    line = classic_formatter(SecondStamp())(event)
    assert line == f"{formatTime(event['log_time'])} [twistedpypi.access#info] {event['log_line']}\n"


def test_the_stamp_of_each_second_is_twisted_logger_own():
    stamp = SecondStamp()
    for when in [0.0, 0.999, 1.0, 1700000000.25, 1700000000.75, 1700000001.0, 1699999999.5, 1785000000.0]:
        assert stamp(when) == formatTime(when, timeFormatRFC3339), when
    assert stamp(None) == "-"


@pytest.fixture
def sigusr1():
    """SIGUSR1 left as it was found."""
    before = signal.getsignal(signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGUSR1, before)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"nodaemon": True, "logfile": None}, sys.stdout),
        ({"nodaemon": True, "logfile": "-"}, sys.stdout),
        ({"nodaemon": False, "logfile": "-"}, None),
        ({"nodaemon": True, "logfile": None, "logger": jsonFileLogObserver}, None),
        ({"nodaemon": True, "logfile": None, "syslog": True}, None),
    ],
)
def test_the_log_goes_where_twistd_would_send_it(options, expected, sigusr1):
    assert twistd_log_file(options) is expected


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"nodaemon": True, "logfile": None}, True),
        ({"nodaemon": True, "logfile": "-"}, True),
        ({"nodaemon": True, "logfile": "pypi.log"}, False),
        ({"nodaemon": False, "logfile": None}, False),
        ({"nodaemon": True, "logfile": None, "syslog": True}, False),
        ({"nodaemon": True, "logfile": None, "logger": jsonFileLogObserver}, False),
    ],
)
def test_workers_share_the_output_only_when_the_log_goes_there(options, expected):
    assert logs_to_stdout(options) is expected


def test_a_logfile_is_a_rotating_log_file_named_as_given(tmp_path, sigusr1):
    out = twistd_log_file({"nodaemon": True, "logfile": str(tmp_path / "pypi.log")})
    assert isinstance(out, LogFile) and out.path == str(tmp_path / "pypi.log")
    assert callable(signal.getsignal(signal.SIGUSR1))
    out.close()


def test_a_daemon_without_logfile_logs_to_twistd_log(tmp_path, monkeypatch, sigusr1):
    monkeypatch.chdir(tmp_path)
    out = twistd_log_file({"nodaemon": False, "logfile": None})
    assert out.path == str(tmp_path / "twistd.log")
    out.close()


def test_an_observer_the_application_names_already_is_kept():
    application = Componentized()
    mine = jsonFileLogObserver(sys.stdout)
    application.setComponent(ILogObserver, mine)
    give_twistd_this_log(application, {"nodaemon": True, "logfile": None})
    assert application.getComponent(ILogObserver) is mine
    other = Componentized()
    give_twistd_this_log(other, {"nodaemon": True, "logfile": None})
    assert ILogObserver.providedBy(other.getComponent(ILogObserver))


def test_twistd_logfile_rotates_on_sigusr1_and_keeps_logging(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    port = free_port()
    logfile = tmp_path / "pypi.log"
    process = subprocess.Popen(
        [twistd(), "-n", "--pidfile=", "-l", str(logfile), "pypi", "-p", str(port), "-i", "127.0.0.1",
         "--disable-fallback", str(packages)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url)
        urllib.request.urlopen(url + "/simple/demo/?before").read()
        process.send_signal(signal.SIGUSR1)
        rotated = tmp_path / "pypi.log.1"
        for _ in range(100):
            if rotated.exists():
                break
            urllib.request.urlopen(url + "/health").read()
        urllib.request.urlopen(url + "/simple/demo/?after").read()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert '"GET /simple/demo/?before HTTP/1.1" 200' in rotated.read_text()
    assert '"GET /simple/demo/?after HTTP/1.1" 200' in logfile.read_text()
    assert "?before" not in logfile.read_text()
