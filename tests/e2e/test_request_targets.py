"""
Every request target and every method gets a proper answer from the real
C{twistd pypi}: targets that are not a path (C{*}, C{x}, an absolute URL)
go through the access log and the metrics like any other, and every route
answers every method with a 2xx, 3xx or 4xx (405 with C{Allow}), never a
5xx or a traceback.
"""

from __future__ import annotations

import http.client
import re
import signal
import time

import pytest

from tests.distributions import wheel_bytes, write
from tests.rawhttp import exchange

WHEEL = "demo-1.0-py3-none-any.whl"


def raw(server, method: str, target: str) -> bytes:
    return exchange(server.port, f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("ascii"))


def in_flight(server) -> int:
    metrics = raw(server, "GET", "/metrics").decode()
    return int(float(re.search(r"^twistedpypi_http_requests_in_flight (\S+)$", metrics, re.M).group(1)))


@pytest.fixture
def open_server(packages, start_server):
    write(packages, wheel_bytes("demo", "1.0"))
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


ODD_TARGETS = [
    ("OPTIONS", "*", b"HTTP/1.1 200 "),
    ("GET", "*", b"HTTP/1.1 405 "),
    ("GET", "x", b"HTTP/1.1 400 "),
    ("HEAD", "simple", b"HTTP/1.1 400 "),
    ("GET", "simple/", b"HTTP/1.1 400 "),
    ("POST", "x", b"HTTP/1.1 400 "),
    ("DELETE", "health", b"HTTP/1.1 400 "),
    ("GET", "?x=1", b"HTTP/1.1 400 "),
    ("OPTIONS", "x", b"HTTP/1.1 400 "),
    ("PUT", "*", b"HTTP/1.1 405 "),
    ("GET", "%2F", b"HTTP/1.1 400 "),
    ("GET", "metrics", b"HTTP/1.1 400 "),
]


def test_targets_that_are_not_paths_are_answered_logged_counted_and_do_not_hold_up_a_stop(open_server):
    for method, target, status in ODD_TARGETS:
        response = raw(open_server, method, target)
        assert response.startswith(status), (method, target, response)
    # Each is finished: only the /metrics request itself is in flight.
    assert in_flight(open_server) == 1
    log = open_server.log()
    for method, target, status in ODD_TARGETS:
        line = f'"{method} {target} HTTP/1.1" {status.split()[1].decode()} '
        assert line in log, line
    assert "Traceback" not in log
    # Nothing left to wait for: SIGTERM exits at once, not after the
    # drain's 25 seconds.
    started = time.monotonic()
    open_server.process.send_signal(signal.SIGTERM)
    open_server.process.wait(timeout=20)
    assert time.monotonic() - started < 10
    assert open_server.process.returncode == 0
    assert "still in flight" not in open_server.log()


def test_an_absolute_url_target_is_served_as_its_path(open_server):
    response = raw(open_server, "GET", f"http://127.0.0.1:{open_server.port}/simple/demo/")
    assert response.startswith(b"HTTP/1.1 200 ")
    assert WHEEL.encode() in response
    assert raw(open_server, "GET", "HTTP://example.org/health").startswith(b"HTTP/1.1 200 ")


# Every route of the root (twistedpypi.web.root), in its ordinary and odd
# forms.
ROUTES = [
    "/",
    "/health",
    "/simple",
    "/simple/",
    "/simple/demo/",
    "/simple/Demo",
    "/simple/nothing-here/",
    "/simple/demo/extra/",
    "/packages",
    "/packages/",
    f"/packages/{WHEEL}",
    f"/packages/{WHEEL}.metadata",
    "/packages/nothing-1.0.tar.gz",
    "/pypi/demo/json",
    "/pypi/demo/1.0/json",
    "/pypi/Demo/json",
    "/pypi/nothing/json",
    "/demo/json",
    "/Demo/json",
    "/nothing/json",
    "/pypi/",
    "/project",
    "/project/",
    "/project/demo/",
    "/project/nothing/",
    "/RPC2",
    "/metrics",
    "/demo/",
    "/demo",
    "/not/a/route",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW"]


def test_every_route_answers_every_method_without_a_server_error(open_server):
    connection = http.client.HTTPConnection("127.0.0.1", open_server.port, timeout=15)
    failures = []
    try:
        for route in ROUTES:
            for method in METHODS:
                body = b"" if method in ("POST", "PUT", "PATCH") else None
                connection.request(method, route, body=body)
                response = connection.getresponse()
                content = response.read()
                status, allow = response.status, response.getheader("Allow")
                allowed = [item.strip() for item in (allow or "").split(",") if item.strip()]
                wrong = None
                if not 200 <= status < 500:
                    wrong = "a server error"
                elif status == 405 and (not allowed or method in allowed):
                    wrong = f"405 with Allow {allow!r}"
                elif method == "OPTIONS" and status < 300 and "OPTIONS" not in allowed:
                    wrong = f"OPTIONS without Allow ({allow!r})"
                elif method == "HEAD" and content:
                    wrong = "a body to HEAD"
                if wrong is not None:
                    failures.append(f"{method} {route}: {status} {response.reason}: {wrong}")
                if response.will_close:
                    connection.close()
    finally:
        connection.close()
    assert not failures, "\n".join(failures)
    assert "Traceback" not in open_server.log()


def test_put_on_the_root_is_405_naming_post(open_server):
    connection = http.client.HTTPConnection("127.0.0.1", open_server.port, timeout=15)
    connection.request("PUT", "/", body=b"")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD, POST, OPTIONS"
