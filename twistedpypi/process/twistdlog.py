"""
twistd's own log, written at a cost that does not show next to a request.

Under twistd every event, an access line per request included, goes through
twisted.logger's text file observer.  It formats each event's timestamp from
scratch (three C{datetime} conversions and a C{strftime}, about 17 us) and each
message through PEP 3101 formatting: about 50 us a line, more than a quarter of
what answering a small page costs.

L{give_twistd_this_log} hands twistd the same observer writing the same lines
to the same place (standard output under C{-n}, else C{--logfile} or
C{twistd.log}, rotated on C{SIGUSR1}), but with each second's timestamp
formatted once and the access log's pre-formatted lines written as they are.
C{--logger} and C{--syslog} keep twistd's own choice.
"""

from __future__ import annotations

import signal
import sys
from typing import IO, Any, Callable

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.python.logfile import LogFile

LINE_FORMAT = "{log_line}"
"""
The C{log_format} of an event whose text comes formatted already, in its
C{log_line} field (the access log's lines): written as it is, at no cost.
"""

DEFAULT_LOG_FILE = "twistd.log"
"""Where a daemon logs without C{--logfile}, as twistd names it."""


class SecondStamp:
    """
    twistd's timestamp (RFC 3339, local time) for a C{log_time}, formatted
    once per second: the text depends on nothing finer.
    """

    def __init__(self, time_format: str = timeFormatRFC3339) -> None:
        self._format = time_format
        self._second: int | None = None
        self._text = "-"

    def __call__(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when // 1)
        if second != self._second:
            self._text = formatTime(second, self._format)
            self._second = second
        return self._text


def classic_formatter(stamp: Callable[[float | None], str]) -> Callable[[LogEvent], str | None]:
    """
    L{formatEventAsClassicLogText} with C{stamp} for timestamps, and a
    shortcut, giving the same text, for events in L{LINE_FORMAT} (access lines): they arrive formatted,
    one line each, without failure or system.
    """

    def format_event(event: LogEvent) -> str | None:
        if event.get("log_format") == LINE_FORMAT and "log_failure" not in event and "log_system" not in event:
            level = event.get("log_level")
            return (
                f"{stamp(event.get('log_time'))} [{event.get('log_namespace', '-')}#"
                f"{level.name if level is not None else '-'}] {event['log_line']}\n"
            )
        return formatEventAsClassicLogText(event, formatTime=stamp)

    return format_event


def classic_text_observer(out: IO[Any]) -> FileLogObserver:
    """A text observer writing to C{out} what twistd's would, faster."""
    return FileLogObserver(out, classic_formatter(SecondStamp()))


def logs_to_stdout(server_options) -> bool:
    """Whether twistd, with C{server_options}, writes its log to standard output."""
    if server_options.get("logger") or server_options.get("syslog"):
        return False
    return bool(server_options.get("nodaemon", False)) and (server_options.get("logfile") or "-") == "-"


def twistd_log_file(server_options) -> IO[Any] | None:
    """
    The file twistd would log to with C{server_options}, opened as twistd
    opens it (a L{LogFile} rotated on C{SIGUSR1} unless that signal is taken);
    or None when twistd is to choose itself: a C{--logger} or C{--syslog}, or
    a daemon asked to log to standard output (which twistd refuses).
    """
    if server_options.get("logger") or server_options.get("syslog"):
        return None
    if logs_to_stdout(server_options):
        return sys.stdout
    name = server_options.get("logfile") or ""
    if name == "-":
        return None
    log_file = LogFile.fromFullPath(name or DEFAULT_LOG_FILE)
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(number, frame) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(log_file.rotate)

        signal.signal(signal.SIGUSR1, rotate)
    return log_file


def give_twistd_this_log(application, server_options) -> None:
    """
    Make twistd log through L{classic_text_observer}, unless its options or
    the application already name another observer: twistd consults an
    application's L{ILogObserver} component before opening its own.

    @param application: twistd's application, holding the server's service.
    @param server_options: twistd's options (a C{ServerOptions}).
    """
    if application.getComponent(ILogObserver, None) is not None:
        return
    out = twistd_log_file(server_options)
    if out is not None:
        application.setComponent(ILogObserver, classic_text_observer(out))
