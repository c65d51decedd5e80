"""
The first hour with C{twistd pypi}, as a daemon manager and a user switching
from pypiserver see it: the real twistd in a subprocess.

A busy port and a usage error end the process with a non-zero status and
one line saying why; every flag of pypiserver 2.x's C{pypi-server run} is
accepted; a second server in the same directory is not stopped by the
first one's pid file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.server import REPO, free_port, twistd


def run_twistd(tmp_path, *arguments: str, twistd_options=("-n",), timeout: float = 60) -> subprocess.CompletedProcess:
    """Run C{twistd [twistd_options] pypi ARGUMENTS} to its end."""
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run(
        [twistd(), *twistd_options, "pypi", *arguments],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )


def start_twistd(tmp_path, *arguments: str, twistd_options=("-n",), name="server") -> tuple[subprocess.Popen, str]:
    """Start C{twistd [twistd_options] pypi ARGUMENTS -p PORT -i 127.0.0.1}; its process and URL once it answers."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = open(tmp_path / f"{name}.out", "wb")
    err = open(tmp_path / f"{name}.err", "wb")
    process = subprocess.Popen(
        [twistd(), *twistd_options, "pypi", *arguments, "-p", str(port), "-i", "127.0.0.1"],
        stdout=out, stderr=err, env=env, cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {(tmp_path / f'{name}.err').read_text()}"
                                 f"{(tmp_path / f'{name}.out').read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return process, url
        except urllib.error.HTTPError:
            return process, url  # answering (the health endpoint is elsewhere)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not answer within 60 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def busy_port():
    """A loopback port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    "port_arguments",
    [
        lambda port: ["-p", str(port), "-i", "127.0.0.1"],
        lambda port: ["-p", f"tcp:{port}:interface=127.0.0.1"],
        lambda port: ["-p", str(port), "-i", "127.0.0.1", "--workers", "2"],
    ],
    ids=["number", "strport", "workers"],
)
def test_a_busy_port_exits_non_zero_with_one_line_naming_it(tmp_path, busy_port, port_arguments):
    result = run_twistd(tmp_path, *port_arguments(busy_port), "-P", ".", "-a", ".", str(tmp_path / "packages"))
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"twistd pypi: cannot listen on port {busy_port} of 127.0.0.1: Address already in use"]
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize(
    "arguments, reason",
    [
        (["-a", "upload"], "twistd pypi: -a/--authenticate: unknown action 'upload'"),
        (["--no-such-flag"], "twistd pypi: option --no-such-flag not recognized"),
        (["--fallback-url", "pypi.org/simple"], "twistd pypi: --fallback-url 'pypi.org/simple' is not an http:// or https:// URL"),
        (["--log-stream", "syslog"], "twistd pypi: --log-stream 'syslog': choose stdout, stderr or none"),
        (["--log-frmt", "%(funcName)s"], "twistd pypi: --log-frmt names %(funcName)s"),
    ],
)
def test_a_usage_error_is_its_reason_then_where_help_is(tmp_path, arguments, reason):
    result = run_twistd(tmp_path, *arguments, str(tmp_path / "packages"))
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(reason)
    assert lines[1] == "See 'twistd pypi --help' for every option."
    assert result.stdout == ""


def test_help_is_still_complete(tmp_path):
    result = run_twistd(tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: twistd [options] pypi [options] [PACKAGE_DIR ...]")
    for flag in ("--port=", "--fallback-url=", "--log-stream=", "--server-base-url=", "--workers="):
        assert flag in result.stdout


def test_a_file_given_as_the_package_directory_is_named_as_a_file(tmp_path):
    (tmp_path / "packages").write_text("not a directory")
    result = run_twistd(tmp_path, str(tmp_path / "packages"))
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == f"twistd pypi: package directory {tmp_path / 'packages'} is a file, not a directory"


def test_a_fifo_as_password_file_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "htpasswd")
    result = run_twistd(tmp_path, "-P", str(tmp_path / "htpasswd"), str(tmp_path / "packages"), timeout=30)
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == f"twistd pypi: cannot read the password file {tmp_path / 'htpasswd'}: not a regular file"


PYPISERVER_RUN_FLAGS = [
    # pypiserver 2.4's `pypi-server run`, every flag (its config.py).
    "-v", "--verbose", "--log-file", "--log-stream", "--log-frmt", "--hash-algo", "--backend", "--version",
    "-p", "--port", "-i", "-H", "--interface", "--host", "-a", "--authenticate", "-P", "--passwords",
    "--disable-fallback", "--fallback-url", "--health-endpoint", "--server", "-o", "--overwrite", "--welcome",
    "--cache-control", "--log-req-frmt", "--log-res-frmt", "--log-err-frmt", "--server-base-url",
]


def test_every_pypiserver_run_flag_is_accepted_and_does_what_it_says(tmp_path):
    welcome = tmp_path / "welcome.html"
    welcome.write_bytes(b"<p>our index</p>")
    log_file = tmp_path / "pypiserver.log"
    arguments = [
        "run", "-v", "--verbose", "--log-file", str(log_file), "--log-stream", "stderr",
        "--log-frmt", "%(asctime)s|%(name)s|%(levelname)s|%(thread)d|%(message)s", "--hash-algo", "md5",
        "--backend", "cached-dir", "-H", "127.0.0.2", "--host", "127.0.0.3", "--interface", "127.0.0.1",
        "-a", ".", "--authenticate", ".", "-P", ".", "--passwords", ".", "--disable-fallback",
        "--fallback-url", "https://mirror.example/simple", "--health-endpoint", "/health", "--server", "gunicorn",
        "-o", "--overwrite", "--welcome", str(welcome), "--cache-control", "60", "--log-req-frmt", "%(bottle.request)s",
        "--log-res-frmt", "%(status)s", "--log-err-frmt", "%(body)s", "--server-base-url", "/pypi", "--mirror",
        str(tmp_path / "packages"),
    ]
    given = {argument for argument in arguments if argument.startswith("-")} | {"-p", "-i", "--port", "--version"}
    assert set(PYPISERVER_RUN_FLAGS) <= given
    process, url = start_twistd(tmp_path, *arguments)
    try:
        # --server-base-url /pypi: every route under it.
        with urllib.request.urlopen(url + "/pypi/") as response:
            assert response.read() == b"<p>our index</p>"
        with urllib.request.urlopen(url + "/pypi/simple/") as response:
            assert response.headers["Cache-Control"] == "public, max-age=60"
    finally:
        stop(process)
    err = (tmp_path / "server.err").read_text()
    out = (tmp_path / "server.out").read_text()
    assert out == ""  # --log-stream stderr
    lines = err.splitlines()
    # --log-frmt: pypiserver's default format, level names as logging's.
    access = next(line for line in lines if '"GET /pypi/simple/ HTTP/1.1" 200' in line)
    assert access.split("|")[1:3] == ["twistedpypi.access", "INFO"]
    # -v: the settings, a debug event, are logged.
    assert any("|DEBUG|" in line and "serving [" in line for line in lines)
    for flag in ("--log-req-frmt", "--log-res-frmt", "--log-err-frmt", "--server", "--backend", "--mirror"):
        warnings = [line for line in lines if "|WARNING|" in line and f"|{flag} has no effect: " in line]
        assert len(warnings) == 1, (flag, err)
    # --log-file: the same lines in the file.
    assert log_file.read_text().splitlines() == lines
    result = run_twistd(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.startswith("twistedpypi ")


def test_without_v_debug_events_are_left_out_and_log_stream_none_writes_nothing(tmp_path):
    process, url = start_twistd(tmp_path, "--log-stream", "none", "-P", ".", "-a", ".", str(tmp_path / "packages"))
    stop(process)
    assert (tmp_path / "server.out").read_text() == ""
    process, url = start_twistd(tmp_path, "-P", ".", "-a", ".", str(tmp_path / "packages"), name="quiet")
    stop(process)
    out = (tmp_path / "quiet.out").read_text()
    assert "Site starting" in out or "starting on" in out
    assert "#debug]" not in out and "serving [" not in out


def test_log_file_with_workers_gets_every_process_lines(tmp_path):
    log_file = tmp_path / "pypi.log"
    process, url = start_twistd(tmp_path, "--workers", "2", "--log-file", str(log_file), "-P", ".", "-a", ".", str(tmp_path / "packages"))
    try:
        deadline = time.monotonic() + 60
        while "serving with 2 processes" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        while "[worker 2]" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(process)
    assert "[worker 2]" in log_file.read_text()


def test_a_second_foreground_server_in_the_same_directory_starts(tmp_path):
    first, first_url = start_twistd(tmp_path, "-P", ".", "-a", ".", str(tmp_path / "a"), name="first")
    try:
        assert not (tmp_path / "twistd.pid").exists()
        second, second_url = start_twistd(tmp_path, "-P", ".", "-a", ".", str(tmp_path / "b"), name="second")
        stop(second)
    finally:
        stop(first)


def test_a_pid_file_asked_for_is_still_written(tmp_path):
    process, url = start_twistd(tmp_path, "-P", ".", "-a", ".", str(tmp_path / "a"), twistd_options=("-n", "--pidfile=twistd.pid"))
    try:
        assert (tmp_path / "twistd.pid").read_text() == str(process.pid)
    finally:
        stop(process)
    assert not (tmp_path / "twistd.pid").exists()
