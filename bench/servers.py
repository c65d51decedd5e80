"""
The servers under comparison: how to start each on a package directory, how to tell
it is ready, how much memory it holds, and how to stop it whatever happens.
"""

import compileall
import html
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from corpus import PackageDir, normalise, project_of
from machine import cpu_seconds, process_tree, rss_kib

BENCH = Path(__file__).resolve().parent

OURS_COMMAND = (
    '{python} -c "from twisted.scripts.twistd import run; run()" -n --pidfile= '
    "pypi -p {port} -i 127.0.0.1 -P . -a . --disable-fallback {dir}"
)


class ServerFailed(Exception):
    """A server exited, or never answered, before it was ready."""


@dataclass
class ServerSpec:
    """
    One column of the comparison.

    @ivar argv: builds the command line from the port, the package directory and a
        private scratch directory.
    @ivar indexes: whether C{/simple/} lists the directory's projects (the bare page
        does not), so readiness means "lists them all".
    @ivar uploads: whether the server takes C{:action=file_upload} POSTs.
    @ivar watches: whether a file dropped into the directory is listed while it runs.
    """

    name: str
    argv: Callable[[int, PackageDir, Path], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    indexes: bool = True
    uploads: bool = False
    watches: bool = False


@dataclass
class RunningServer:
    """A started server and how to reach it."""

    spec: ServerSpec
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's process and its descendants (nginx's worker)."""
        return process_tree(self.process.pid)

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class PeakRss:
    """
    Samples a server's resident memory every 20 ms while the block runs.

    @ivar before: KiB when the block started.
    @ivar peak: the most KiB seen.
    """

    def __init__(self, server: RunningServer) -> None:
        self.pids = server.pids()
        self.before = self.peak = rss_kib(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pids))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pids))


def wait_idle(server: RunningServer, timeout: float = 180) -> float:
    """
    Wait until the server uses under 5% of a core, so that requests a load run left
    queued (a closed connection does not cancel a WSGI request) are not billed to the
    next run.

    @return: the seconds waited.
    """
    pids = server.pids()
    started = time.monotonic()
    used = cpu_seconds(pids)
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pids)
        if now - used < 0.025:
            break
        used = now
    return time.monotonic() - started


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lists_everything(body: bytes, projects: int) -> bool:
    return len(re.findall(rb"<a\s", body, re.I)) >= projects


def _wait_ready(server: RunningServer, projects: int, timeout: float) -> None:
    """Poll C{/simple/} until it answers (and, for an index, lists every project)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.spec.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.url + "/simple/", timeout=30) as response:
                body = response.read()
            if not server.spec.indexes or _lists_everything(body, projects):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise ServerFailed(
        f"{server.spec.name} did not list {projects} projects within {timeout:.0f} s:\n"
        f"{server.log_tail()}"
    )


def stop(server: RunningServer) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serving(
    spec: ServerSpec, packages: PackageDir, scratch: Path, timeout: float = 300
) -> Iterator[tuple[RunningServer, float]]:
    """
    Start C{spec} on C{packages}, wait until it is ready, and stop it on the way out.

    @return: the server and the seconds from launch to ready.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = scratch / f"{spec.name}-{port}.log"
    argv = spec.argv(port, packages, scratch)
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=scratch,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
    server = RunningServer(spec, process, port, log)
    try:
        _wait_ready(server, len(packages.projects()), timeout)
        yield server, time.monotonic() - started
    finally:
        stop(server)


def pypiserver(bin_dir: Path) -> ServerSpec:
    """pypiserver 2.4.2 on waitress, with its watchdog-invalidated cache."""

    def argv(port: int, packages: PackageDir, scratch: Path) -> list[str]:
        return [
            str(bin_dir / "pypi-server"), "run",
            "-p", str(port), "-i", "127.0.0.1", "-a", ".", "-P", ".",
            # "auto" is how 2.4.2 picks waitress: it has no "waitress" choice.
            "--disable-fallback", "--server", "auto",
            "--backend", "cached-dir", "--hash-algo", "sha256",
            str(packages.path),
        ]

    return ServerSpec("pypiserver", argv, uploads=True, watches=True)


def twistedpypi(command: str, source: Path | None, snapshot: Path) -> ServerSpec:
    """
    Our server, started by C{command} (a template with C{{python}}, C{{port}} and
    C{{dir}}).

    When C{source} is a checkout, its C{twistedpypi} package and plugin are copied
    to C{snapshot} and put on PYTHONPATH: the run measures one fixed version of code
    that may be changing under it, and writes no caches into the checkout. The
    description cache goes beside the snapshot (XDG_CACHE_HOME), so it is kept
    between the starts of one run and deleted with its scratch directory.
    """
    env = {"XDG_CACHE_HOME": str(snapshot.parent / "xdg-cache")}
    if source is not None:
        shutil.rmtree(snapshot, ignore_errors=True)
        skip = shutil.ignore_patterns("__pycache__", "dropin.cache")
        shutil.copytree(source / "twistedpypi", snapshot / "twistedpypi", ignore=skip)
        shutil.copytree(source / "twisted" / "plugins", snapshot / "twisted" / "plugins", ignore=skip)
        # Byte-compiled, as `pip install` leaves it (this environment may
        # set PYTHONDONTWRITEBYTECODE, which would have every start compile
        # the sources again: a fifth of a second).
        compileall.compile_dir(str(snapshot), quiet=1)
        env["PYTHONPATH"] = str(snapshot)

    def argv(port: int, packages: PackageDir, scratch: Path) -> list[str]:
        return shlex.split(
            command.format(python=shlex.quote(sys.executable), port=port, dir=shlex.quote(str(packages.path)))
        )

    return ServerSpec("twistedpypi", argv, env=env, uploads=True, watches=True)


def with_arguments(spec: ServerSpec, *extra: str) -> ServerSpec:
    """C{spec}, started with C{extra} arguments appended to its command line."""
    return replace(spec, argv=lambda port, packages, scratch: [*spec.argv(port, packages, scratch), *extra])


def bare_twisted(access_log: bool = True) -> ServerSpec:
    """
    The constant-page Twisted C{Site} of C{bare_site.py}, with Twisted's own
    access log or (C{access_log=False}) none.
    """

    def argv(port: int, packages: PackageDir, scratch: Path) -> list[str]:
        return [sys.executable, str(BENCH / "bare_site.py"), str(port), *([] if access_log else ["--no-log"])]

    return ServerSpec("bare Twisted" if access_log else "bare Twisted, no log", argv, indexes=False)


def render_static(packages: PackageDir, root: Path) -> None:
    """Write PEP 503 pages for C{packages} under C{root/simple/}, for nginx to serve."""
    by_project: dict[str, list[str]] = {}
    for name in packages.filenames():
        by_project.setdefault(normalise(project_of(name)), []).append(name)
    simple = root / "simple"
    simple.mkdir(parents=True)
    head = '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{}</title></head>\n<body>\n'
    tail = "</body>\n</html>\n"
    links = [f'<a href="{p}/">{p}</a><br>\n' for p in by_project]
    (simple / "index.html").write_text(head.format("Simple Index") + "".join(links) + tail)
    for project, names in by_project.items():
        links = [
            f'<a href="/packages/{html.escape(n)}#sha256={packages.digest(n)}">{html.escape(n)}</a><br>\n'
            for n in names
        ]
        (simple / project).mkdir()
        (simple / project / "index.html").write_text(
            head.format(f"Links for {project}") + "".join(links) + tail
        )


NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {scratch}/nginx.pid;
error_log {scratch}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log {scratch}/nginx-access.log combined buffer=64k;
    client_body_temp_path {scratch}/body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {static};
        location /packages/ {{ alias {packages}/; }}
    }}
}}
"""


def nginx(binary: str) -> ServerSpec:
    """nginx with one worker, serving pages pre-rendered by L{render_static}."""

    def argv(port: int, packages: PackageDir, scratch: Path) -> list[str]:
        static = scratch / f"static-{port}"
        render_static(packages, static)
        conf = scratch / f"nginx-{port}.conf"
        conf.write_text(
            NGINX_CONF.format(scratch=scratch, port=port, static=static, packages=packages.path)
        )
        return [binary, "-p", str(scratch), "-c", str(conf)]

    return ServerSpec("nginx", argv)
