"""
A request body's framing is never guessed: a C{Transfer-Encoding} other
than C{chunked} alone (RFC 9112 6.1 and 6.3) is answered 400 and the
connection closed, so a request hidden in the body (request smuggling
through a proxy that reads the framing otherwise) is never answered.

End to end against the real C{twistd pypi} over raw sockets.
"""

from __future__ import annotations

import socket

import pytest

from tests.distributions import wheel_bytes, write

PIPELINED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(server, request: bytes) -> bytes:
    """Send C{request}, then read until the server closes (or stays quiet)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(request)
        # The server must close by itself; a few seconds of silence with the
        # connection open would mean it waits for more.
        sock.settimeout(5)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except socket.timeout:
            chunks.append(b"<still open>")
    return b"".join(chunks)


@pytest.fixture
def server(packages, start_server):
    write(packages, wheel_bytes("demo", "1.0"))
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


@pytest.mark.parametrize(
    "transfer_encoding",
    [
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        b"Transfer-Encoding: chunked, identity\r\n",
        b"Transfer-Encoding: identity\r\n",
        b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked, chunked\r\n",
        b"Transfer-Encoding: x-made-up\r\n",
    ],
    ids=["chunked-then-identity", "chunked-identity", "identity", "identity-then-chunked", "gzip",
         "gzip-chunked", "chunked-twice", "unknown"],
)
@pytest.mark.parametrize("method", [b"POST /", b"POST /simple/", b"GET /health"])
def test_a_transfer_encoding_other_than_chunked_alone_is_400_and_nothing_after_it_is_answered(
    server, method, transfer_encoding
):
    response = exchange(
        server,
        method + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n" + transfer_encoding + b"\r\n"
        b"0\r\n\r\n" + PIPELINED,
    )
    assert response.startswith(b"HTTP/1.1 400 "), response
    # One answer, then the connection is closed: the request after the body
    # is not read.
    assert response.count(b"HTTP/1.1 ") == 1, response
    assert b"Connection: close" in response
    assert not response.endswith(b"<still open>")


def test_chunked_in_http_1_0_is_400(server):
    response = exchange(
        server, b"POST /simple/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + PIPELINED
    )
    assert response.startswith(b"HTTP/1.1 400 ")
    assert response.count(b"HTTP/1.1 ") == 1


def test_a_chunked_body_is_read_and_the_next_request_answered(server):
    # The framing that is allowed keeps working, pipelining included.
    response = exchange(
        server,
        b"POST /simple/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 405 ")
    assert response.count(b"HTTP/1.1 ") == 2
    assert response.endswith(b"ok\n")
