"""
End to end with the real C{twistd pypi}: pip search, the access log in
C{twistd --logfile}, /metrics, and a SIGTERM that lets a request in flight
finish before the process exits 0.
"""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import xmlrpc.client

import pytest

from tests.distributions import wheel_bytes, write
from tests.pipsearch import pip_search
from tests.server import REPO, free_port, twistd, wait_until_serving


@pytest.fixture
def catalogue(packages):
    write(packages, wheel_bytes("Demo_Pkg", "1.0", summary="Shows how it works"))
    write(packages, wheel_bytes("Demo_Pkg", "1.1", summary="Shows how it works"))
    write(packages, wheel_bytes("lib", "2.0", summary="A library of things"))
    return packages


def test_pip_search_finds_projects_by_name_and_summary(catalogue, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(catalogue))
    output = pip_search(server.url + "/RPC2", "demo")
    assert re.search(r"^Demo_Pkg \(1\.1\)\s+- Shows how it works$", output, re.M), output
    assert "lib" not in output
    output = pip_search(server.url + "/RPC2", "library")
    assert re.search(r"^lib \(2\.0\)\s+- A library of things$", output, re.M), output


def test_pip_search_with_the_bare_server_url_as_pypiserver_documents(catalogue, start_server):
    # xmlrpc.client, and so pip, posts to /RPC2 when the URL has no path.
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(catalogue))
    assert "Demo_Pkg (1.1)" in pip_search(server.url, "demo")


def test_pip_search_with_the_root_url_and_its_slash(catalogue, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(catalogue))
    assert "Demo_Pkg (1.1)" in pip_search(server.url + "/", "demo")


def test_metrics_are_served_in_prometheus_text(catalogue, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(catalogue))
    urllib.request.urlopen(server.url + "/simple/lib/").read()
    with urllib.request.urlopen(server.url + "/metrics") as response:
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    assert 'twistedpypi_http_requests_total{route="simple",status="200"} 1.0\n' in text
    assert "\ntwistedpypi_projects 2.0\n" in text and "\ntwistedpypi_files 3.0\n" in text


def test_twistd_logfile_gets_one_access_line_per_request(catalogue, tmp_path):
    port = free_port()
    logfile = tmp_path / "pypi.log"
    process = subprocess.Popen(
        [twistd(), "-n", "--pidfile=", "-l", str(logfile), "pypi", "-p", str(port), "-i", "127.0.0.1",
         "-P", ".", "-a", ".", "--disable-fallback", str(catalogue)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/simple/lib/", headers={"User-Agent": "test-agent/1"})
        urllib.request.urlopen(request).read()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    lines = [line for line in logfile.read_text().splitlines() if '"GET /simple/lib/ ' in line]
    assert len(lines) == 1, logfile.read_text()
    assert re.search(
        r'\[twistedpypi\.access#info\] 127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
        r'"GET /simple/lib/ HTTP/1\.1" 200 \d+ "-" "test-agent/1" \d+\.\d{3}$',
        lines[0],
    ), lines[0]


def connection_refused(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_stops_listening_lets_a_request_in_flight_finish_and_exits_0(catalogue, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(catalogue))
    body = xmlrpc.client.dumps((), "list_packages").encode()
    half = len(body) // 2
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(
        b"POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:half]
    )
    with urllib.request.urlopen(server.url + "/metrics") as response:
        assert "twistedpypi_http_requests_in_flight 2" in response.read().decode()

    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not connection_refused(server.port):
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.05)
    assert server.process.poll() is None, "exited with a request in flight"

    client.sendall(body[half:])
    answer = b""
    while b"</methodResponse>" not in answer:
        chunk = client.recv(65536)
        assert chunk, answer
        answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"<string>Demo_Pkg</string>" in answer
    assert server.process.wait(10) == 0
    log = server.log()
    assert "waiting up to 25s for 1 request(s) in flight" in log
    assert "all requests in flight are finished" in log
