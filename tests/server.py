"""
Runs the real server, C{twistd -n pypi}, as a subprocess on a free loopback
port, for end-to-end tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def twistd() -> str:
    """The twistd of the Python running the tests."""
    beside = Path(sys.executable).with_name("twistd")
    return str(beside) if beside.exists() else shutil.which("twistd")


class ServerProcess:
    """
    One C{twistd -n pypi} process.

    @ivar url: its base URL, C{http://127.0.0.1:PORT}.
    """

    def __init__(self, arguments: list[str], workdir: Path, env: dict | None = None, health: str = "/health") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health = health
        self.arguments = arguments
        self.log_path = workdir / f"server-{self.port}.log"
        # Caches go to the test's folder, never the user's home.
        self.env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(workdir / "cache"), **(env or {}))
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The command line that starts it."""
        return [twistd(), "-n", "--pidfile=", "pypi", "-p", str(self.port), "-i", "127.0.0.1", *self.arguments]

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until it answers."""
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def log(self) -> str:
        """What the server logged so far."""
        return self.log_path.read_text(errors="replace")


def wait_until_serving(url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not start")


def listening_sockets(port: int) -> set[str]:
    """The inodes of the sockets listening on C{port}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


WITH_TWO_WORKERS = ("-P", ".", "-a", ".", "--disable-fallback", "--workers", "2")
