"""
Hostile connections against the real server: slow and half-open connections
do not stop other clients, headers have a deadline, bodies a size limit.
"""

import http.client
import socket
import time

import pytest

from tests.distributions import wheel_bytes, write

SLOWLORIS_CONNECTIONS = 300


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def timed_get(server, path: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


@pytest.fixture
def served(packages):
    write(packages, wheel_bytes("demo", "1.0"))
    return packages


def test_hundreds_of_slow_connections_do_not_stop_other_clients(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(served))
    sockets = []
    try:
        for number in range(SLOWLORIS_CONNECTIONS):
            sock = connect(server)
            # Half of them stop mid request line, half mid headers.
            if number % 2:
                sock.sendall(b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                sock.sendall(b"GET /sim")
            sockets.append(sock)
        for _ in range(3):
            for sock in sockets:
                sock.sendall(b"a")
            status, body, seconds = timed_get(server, "/simple/demo/")
            assert status == 200
            assert b"demo-1.0-py3-none-any.whl" in body
            assert seconds < 1.0
    finally:
        for sock in sockets:
            sock.close()


def test_a_client_that_trickles_its_headers_is_cut_off_at_the_deadline(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--header-timeout", "1.5", str(served))
    sock = connect(server)
    started = time.monotonic()
    sock.sendall(b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    sock.settimeout(0.2)
    # One byte every 0.2s keeps the idle timeout (60s) from ever firing.
    while time.monotonic() - started < 5:
        try:
            sock.sendall(b"X-Slow: a\r\n")
        except OSError:
            closed_after = time.monotonic() - started
            break
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed_after = time.monotonic() - started
            break
        if data.startswith(b"HTTP/1.1 408") or not data:
            closed_after = time.monotonic() - started
            break
    sock.close()
    assert closed_after is not None, "the connection outlived its header deadline"
    assert 1.4 <= closed_after < 3.0
    # Other clients are served as before.
    assert timed_get(server, "/simple/demo/")[0] == 200


def test_a_kept_alive_connection_serves_requests_past_the_header_deadline(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--header-timeout", "1", str(served))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        connection.request("GET", "/simple/demo/")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        time.sleep(0.6)
    connection.close()


def test_a_later_request_on_a_kept_alive_connection_that_trickles_its_headers_is_cut_off(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--header-timeout", "1", str(served))
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # The first request's deadline passes while the second one trickles.
    time.sleep(0.5)
    sock.sendall(b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n")
    sock.settimeout(0.2)
    answer = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"X-Slow: a\r\n")
            answer += sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if answer.startswith(b"HTTP/1.1 408"):
            break
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")


def test_pipelined_requests_are_all_answered(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(served))
    sock = connect(server)
    request = b"GET /simple/demo/ HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(request * 3 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = read_response(sock)
    sock.close()
    assert response.count(b"HTTP/1.1 200 ") == 4


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_upload_larger_than_the_limit_is_refused_before_its_body_is_sent(served, start_server, method):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "1M", str(served))
    sock = connect(server)
    sock.sendall(
        f"{method} / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    response = read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"--max-upload-size" in response
    assert b"100 Continue" not in response


def test_a_get_with_a_body_is_refused(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(served))
    sock = connect(server)
    sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1000)
    response = read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 413 ")


def test_an_endless_chunked_body_is_cut_off(served, start_server):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "1M", str(served))
    sock = connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    sent = 0
    refused = False
    try:
        while sent < 100 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        refused = True
    response = read_response(sock) if not refused else b""
    sock.close()
    # The server stopped reading long before 100 MiB: the write failed, or
    # the 413 came while the body was still being sent.
    assert refused or response.startswith(b"HTTP/1.1 413 ")
    assert sent < 20 * 1024 * 1024
    assert timed_get(server, "/simple/demo/")[0] == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(200)) + b"\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 15000 + b"\r\nX-Big2: " + b"v" * 15000 + b"\r\n\r\n", b"400"),
    ],
    ids=["long-request-line", "too-many-headers", "headers-too-large"],
)
def test_oversized_request_heads_are_refused(served, start_server, request_bytes, status):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(served))
    sock = connect(server)
    try:
        sock.sendall(request_bytes)
    except OSError:
        pass
    response = read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 " + status + b" ")
