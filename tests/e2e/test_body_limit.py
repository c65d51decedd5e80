"""
One body-size policy: how much a request may send depends on what it is
(an upload, another form, anything else), with one margin between
C{--max-upload-size} and the largest upload body.
"""

import http.client

import pytest

from tests.distributions import wheel_bytes
from tests.rawhttp import exchange
from twistedpypi.uploads.form import UPLOAD_FORM_ALLOWANCE
from twistedpypi.uploads.multipart import MAX_FIELD_SIZE, MAX_FIELDS_SIZE
from twistedpypi.web.site import (
    MAX_BODY_WITHOUT_UPLOAD,
    MAX_FORM_BODY,
    request_body_limit,
    upload_boundary,
)

MULTIPART = b"multipart/form-data; boundary=xyz"
MAX = 100 * 1024


@pytest.mark.parametrize(
    "method, target, content_type, limit",
    [
        (b"POST", b"/", MULTIPART, MAX + UPLOAD_FORM_ALLOWANCE),
        (b"POST", b"/?x=1", MULTIPART, MAX + UPLOAD_FORM_ALLOWANCE),
        (b"POST", b"http://example.test/", MULTIPART, MAX + UPLOAD_FORM_ALLOWANCE),
        (b"PUT", b"/", MULTIPART, MAX + UPLOAD_FORM_ALLOWANCE),
        (b"POST", b"/", b"application/x-www-form-urlencoded", MAX_FORM_BODY),
        (b"POST", b"/", b"text/xml", MAX_FORM_BODY),
        (b"POST", b"/", None, MAX_FORM_BODY),
        (b"POST", b"/RPC2", b"text/xml", MAX_FORM_BODY),
        (b"POST", b"/simple/", MULTIPART, MAX_FORM_BODY),
        (b"GET", b"/", MULTIPART, MAX_BODY_WITHOUT_UPLOAD),
        (b"DELETE", b"/", None, MAX_BODY_WITHOUT_UPLOAD),
    ],
)
def test_a_request_may_send_as_much_as_what_it_is_needs(method, target, content_type, limit):
    assert request_body_limit(method, target, content_type, MAX) == limit


def test_only_a_multipart_post_to_the_root_is_an_upload():
    assert upload_boundary(b"POST", b"/", MULTIPART) == b"xyz"
    assert upload_boundary(b"POST", b"http://h/?a", MULTIPART) == b"xyz"
    assert upload_boundary(b"PUT", b"/", MULTIPART) is None
    assert upload_boundary(b"POST", b"/simple/", MULTIPART) is None
    assert upload_boundary(b"POST", b"/", b"text/plain") is None


def test_the_margin_holds_every_field_the_form_parser_accepts():
    # A form whose fields the parser takes must never be cut off by the
    # body limit before the parser can say what is wrong.
    assert UPLOAD_FORM_ALLOWANCE > MAX_FIELDS_SIZE


def _form(fields, filename, data, boundary="xyz"):
    body = b""
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("content_type", [b"application/x-www-form-urlencoded", b"text/xml"])
def test_a_form_declaring_more_than_any_form_needs_is_refused_before_its_body(start_server, packages, content_type):
    # With the default --max-upload-size (1G), a body that is not an upload
    # used to be awaited, read and dropped up to a gigabyte.
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    answer = exchange(
        server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (content_type, 50 * 1024 * 1024),
    )
    assert answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"a POST request may carry at most %d bytes of body" % MAX_FORM_BODY in answer


def test_an_upload_with_long_fields_within_the_parsers_bounds_is_stored(start_server, packages):
    # A file of the largest size accepted, and more than 4 MiB of other
    # fields (each within the parser's bound): the body passes the limit.
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "100K", str(packages))
    filename, data = wheel_bytes("demo", "1.0")
    assert len(data) <= 100 * 1024
    long_text = b"x" * (MAX_FIELD_SIZE - 1024)
    fields = [
        (":action", b"file_upload"),
        ("name", b"demo"),
        ("version", b"1.0"),
        ("description", long_text),
        ("summary", long_text),
        ("keywords", long_text),
    ]
    body = _form(fields, filename, data)
    assert len(body) > 4 * 1024 * 1024 + 100 * 1024
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/", body=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    response = connection.getresponse()
    text = response.read()
    connection.close()
    assert response.status == 200, text
    assert (packages / filename).read_bytes() == data


def test_a_file_beyond_the_limit_is_still_refused_as_it_streams(start_server, packages):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "100K", str(packages))
    body = _form([(":action", b"file_upload"), ("name", b"demo"), ("version", b"1.0")], "demo-1.0.tar.gz", b"y" * (200 * 1024))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/", body=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    response = connection.getresponse()
    text = response.read()
    connection.close()
    assert response.status == 413
    assert b"--max-upload-size" in text
    assert not (packages / "demo-1.0.tar.gz").exists()


def test_a_chunked_file_beyond_the_limit_is_refused_as_it_streams_and_logged_and_counted(start_server, packages):
    from tests.metrics_text import parse_metrics
    from tests.waiting import until

    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "100K", str(packages))
    body = _form([(":action", b"file_upload"), ("name", b"demo"), ("version", b"1.0")], "demo-1.0.tar.gz", b"y" * (200 * 1024))
    chunks = (body[start:start + 16384] for start in range(0, len(body), 16384))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST", "/", body=chunks, encode_chunked=True, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
        )
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while sending: the answer is read below
    response = connection.getresponse()
    text = response.read()
    connection.close()
    assert response.status == 413, text
    assert not (packages / "demo-1.0.tar.gz").exists()
    # Refused before Twisted had the whole request, still in the access log
    # and the metrics as any answer is.
    assert until(lambda: '"POST / HTTP/1.1" 413 ' in server.log(), 5), server.log()[-2000:]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", "/metrics")
    values = parse_metrics(connection.getresponse().read().decode())
    connection.close()
    assert values['twistedpypi_http_requests_total{route="upload",status="413"}'] == 1


def test_a_request_refused_as_its_body_streams_is_counted_once_whatever_follows(start_server, packages):
    import socket
    import time

    from tests.metrics_text import parse_metrics
    from tests.waiting import until

    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--max-upload-size", "1K", str(packages))
    part = _form([(":action", b"file_upload")], "demo-1.0.tar.gz", b"y" * 5000)[:-20]
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    client.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n" + b"%x\r\n%s\r\n" % (len(part), part)
    )
    assert client.recv(4096).startswith(b"HTTP/1.1 413 ")
    # Still sending (the body is read and dropped for a while): a broken
    # chunk now is not a second request to answer, log or count.
    client.sendall(b"zz-not-hex\r\n")
    time.sleep(0.3)
    client.close()
    assert until(lambda: '"POST / HTTP/1.1" 413 ' in server.log(), 5)
    time.sleep(0.3)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", "/metrics")
    values = parse_metrics(connection.getresponse().read().decode())
    connection.close()
    answered = {
        key: value
        for key, value in values.items()
        if key.startswith("twistedpypi_http_requests_total{") and 'route="health"' not in key
    }
    assert answered == {'twistedpypi_http_requests_total{route="upload",status="413"}': 1}, answered
    assert '"-" 400' not in server.log()
