"""
Status lines are fixed phrases: whatever a client sends, it never reaches a
reason phrase or a header value, where a CR LF would let it write headers
and a body of its own (response splitting).  What it sent may be quoted in
the body, which is plain text the browser must not sniff.

End to end against the real C{twistd pypi}, over raw sockets so that what is
checked is the bytes on the wire.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from twisted.web.test.requesthelper import DummyChannel, DummyRequest

from tests.distributions import wheel_bytes, write
from tests.rawhttp import exchange
from twistedpypi.web.respond import error_page
from twistedpypi.web.site import IndexRequest

MARKER = "X-Injected"
INJECTION = f"zz\r\n{MARKER}: yes\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>"


def get(server, target: str) -> bytes:
    return exchange(server.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("ascii"))


def split(response: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """The status line, the headers (lower-cased names) and the body."""
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_not_split(response: bytes) -> None:
    """
    The client's text made no status line or header of its own, and is in
    no header value unescaped.
    """
    status, headers, _ = split(response)
    assert MARKER.encode().lower() not in status.lower()
    assert MARKER.encode().lower() not in headers
    for value in headers.values():
        assert b"<script>" not in value and MARKER.encode() + b": yes" not in value


@pytest.fixture
def open_server(packages, start_server):
    write(packages, wheel_bytes("demo", "1.0"))
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


def test_a_removal_of_an_unknown_release_cannot_split_the_response(open_server):
    form = "&".join(
        f"{name}={quote(value, safe='')}"
        for name, value in ((":action", "remove_pkg"), ("name", INJECTION), ("version", "1"))
    ).encode("ascii")
    response = exchange(
        open_server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" % (len(form), form),
    )
    status, headers, body = split(response)
    # The phrase twine shows is written by the server, not taken from the form.
    assert status == b"HTTP/1.1 404 No such release on this index"
    assert_not_split(response)
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"x-content-type-options"] == b"nosniff"
    # The detail is in the body, where it harms nobody.
    assert INJECTION.encode() + b" 1 is not on this index" in body
    assert int(headers[b"content-length"]) == len(body)


@pytest.mark.parametrize(
    "target",
    [
        # Missing things whose answers name what was asked for.
        f"/pypi/demo/{quote(INJECTION, safe='')}/json",
        f"/packages/{quote(INJECTION, safe='')}.whl",
        f"/project/{quote(INJECTION, safe='')}/",
        # Redirects whose Location is built from the request.
        f"/pypi/Demo/{quote(INJECTION, safe='')}/json",
        f"/simple/Demo/?{quote(INJECTION, safe='')}",
        f"/Demo/?x={quote(INJECTION, safe='')}",
        f"/simple?x={quote(INJECTION, safe='')}",
    ],
)
def test_what_a_client_sends_in_a_target_reaches_no_status_line_or_header(open_server, target):
    response = get(open_server, target)
    status, headers, _ = split(response)
    assert status.startswith((b"HTTP/1.1 3", b"HTTP/1.1 4")), status
    assert_not_split(response)
    location = headers.get(b"location")
    if location is not None:
        # Escaped, so a browser or pip following it gets the same bytes back.
        assert all(0x21 <= byte <= 0x7E for byte in location), location
        assert b"%0D%0A" + MARKER.encode() in location


def test_a_redirect_keeps_a_clients_query_as_it_was_escaped(open_server):
    _, headers, _ = split(get(open_server, "/simple/Demo/?a=%41%20b&c=d"))
    assert headers[b"location"] == b"../../simple/demo/?a=%41%20b&c=d"


def test_a_phrase_with_a_line_break_is_still_one_status_line():
    # The last defence: a phrase a caller got wrong is made safe anyway.
    request = DummyRequest([b""])
    body = error_page(request, 404, "bad\r\nX-Injected: yes\u2028é", "the detail")
    assert request.responseCode == 404
    assert request.responseMessage == b"bad  X-Injected: yes??"
    assert body == b"the detail\n"


def test_the_sites_requests_never_put_a_line_break_in_a_status_line():
    # Even a caller that sets a phrase of its own, not through error_page.
    request = IndexRequest(DummyChannel())
    request.setResponseCode(400, b"bad\r\nX-Injected: yes\xe9")
    assert request.code_message == b"bad  X-Injected: yes"
