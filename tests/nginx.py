"""
nginx in front of a running server, or of several nodes, as the shipped
configurations set it up.
"""

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

from tests.server import REPO, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

REPLICAS_TEMPLATE = "nginx-replicas-test.conf.template"
"""The locations of init/nginx-replicas.conf, in front of several nodes."""


class Nginx:
    """nginx running the test template in its own directory."""

    def __init__(
        self,
        directory,
        upstream_port: int | list[int],
        packages,
        template: str = "nginx-test.conf.template",
        protected_downloads: bool = False,
        buffered_log: bool = False,
    ) -> None:
        """
        Start nginx with C{init/<template>} in C{directory}.

        @param upstream_port: the port of the one server, or the ports of the
            nodes (L{REPLICAS_TEMPLATE} balances between them).
        @param protected_downloads: whether nginx asks a node to check the
            credentials before it serves a file from disk (the C{auth_request}
            line of the replicas configuration).
        @param buffered_log: whether the access log is written 64 KiB at a
            time, as the benchmark's static nginx writes it, rather than line
            by line for the tests to read at once.
        """
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ports = upstream_port if isinstance(upstream_port, list) else [upstream_port]
        template = (REPO / "init" / template).read_text()
        if buffered_log:
            line = "access_log @TMP_DIR@/access.log;"
            assert line in template
            template = template.replace(line, "access_log @TMP_DIR@/access.log combined buffer=64k;")
        for placeholder, value in {
            "@LISTEN_PORT@": str(self.port),
            "@UPSTREAM_PORT@": str(ports[0]),
            "@UPSTREAM_SERVERS@": " ".join(
                f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" for port in ports
            ),
            "@DOWNLOAD_AUTH@": (
                "auth_request /twistedpypi-download-check;" if protected_downloads else "# downloads are public"
            ),
            "@PACKAGES_DIR@": str(packages),
            "@TMP_DIR@": str(directory),
        }.items():
            template = template.replace(placeholder, value)
        assert not re.search(r"@[A-Z_]+@", template), "a placeholder was left unfilled"
        self.config = directory / "nginx.conf"
        self.config.write_text(template)
        self.process = subprocess.Popen(
            [NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read().decode()}\n{self.error_log()}")
            try:
                urllib.request.urlopen(self.url + "/pypi/health", timeout=2).read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def access_log(self) -> str:
        path = self.directory / "access.log"
        return path.read_text() if path.exists() else ""

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""
