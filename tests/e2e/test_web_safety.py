"""
Web safety against the real server, with raw requests (clients normalise
paths): only indexed files can be downloaded whatever the encoding, hostile
text is escaped on every page, nothing from a request reaches a header
unescaped, links outside the package directories are not followed unless
allowed.
"""

import http.client
import json
import socket

import pytest

from tests.distributions import wheel_bytes, write

HOSTILE_TEXT = '"><script>alert(1)</script>'


def raw_get(server, path: bytes, headers: bytes = b"Host: x\r\n") -> tuple[bytes, bytes]:
    """Send a request line exactly as given; the response head and body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\n" + headers + b"Connection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return head, body


def get(server, path: str, headers: dict | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), response
    finally:
        connection.close()


@pytest.fixture
def site(packages, tmp_path, start_server):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret-1.0.tar.gz").write_bytes(b"SECRET-OUTSIDE")
    (packages / "notes.txt").write_bytes(b"SECRET-NOTES")
    (packages / "sub").mkdir()
    (packages / "sub" / "hidden.txt").write_bytes(b"SECRET-SUB")
    (packages / "linked-1.0.tar.gz").symlink_to(outside / "secret-1.0.tar.gz")
    write(packages, wheel_bytes("demo", "1.0", requires_python=HOSTILE_TEXT, summary=HOSTILE_TEXT))
    (packages / f"{HOSTILE_TEXT}-1.0.tar.gz".replace("/", "")).write_bytes(b"SECRET-HOSTILE-NAME")
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


TRAVERSALS = [
    b"/packages/../notes.txt",
    b"/packages/notes.txt",
    b"/packages/sub/hidden.txt",
    b"/packages/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/packages/..%2f..%2f..%2fetc%2fpasswd",
    b"/packages/%2fetc%2fpasswd",
    b"/packages/..%5c..%5cetc%5cpasswd",
    b"/packages/..\\..\\etc\\passwd",
    b"/packages/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    b"/packages/%c0%af..%c0%afetc%c0%afpasswd",
    b"/packages/..%252f..%252fetc%252fpasswd",
    b"/packages/demo-1.0-py3-none-any.whl%00.txt",
    b"/packages/notes.txt%00demo-1.0-py3-none-any.whl",
    b"/packages/%00",
    b"/packages//etc/passwd",
    b"/packages/./../../../../etc/passwd",
    b"/../../../../etc/passwd",
    b"/simple/../../../etc/passwd",
    b"/packages/linked-1.0.tar.gz",
    b"/packages/secret-1.0.tar.gz",
    b"/packages/demo-1.0-py3-none-any.whl/../../notes.txt",
]


def test_no_path_reaches_a_file_the_index_does_not_list(site):
    # One server for every path: starting one per path costs a second each.
    for path in TRAVERSALS:
        head, body = raw_get(site, path)
        status = int(head.split(b" ")[1])
        assert status != 200, path
        assert b"SECRET" not in body, path
        assert b"root:" not in body, path


def test_indexed_files_are_still_served(site):
    status, body, _ = get(site, "/packages/demo-1.0-py3-none-any.whl")
    assert status == 200 and body.startswith(b"PK")


def test_hostile_metadata_and_host_are_escaped_on_every_page(site):
    for path in ("/simple/demo/", "/simple/", "/packages/", "/"):
        status, body, _ = get(site, path, headers={"Host": HOSTILE_TEXT, "Accept": "text/html"})
        assert status == 200, path
        assert b"<script>" not in body, path
    _, page, _ = get(site, "/simple/demo/")
    assert b'data-requires-python="&quot;&gt;&lt;script&gt;' in page
    # The file with a hostile name is not a distribution: not listed.
    _, listing, _ = get(site, "/packages/")
    assert b"alert" not in listing


def test_json_pages_stay_valid_json_with_hostile_metadata(site):
    for path, accept in [
        ("/simple/demo/", "application/vnd.pypi.simple.v1+json"),
        ("/simple/", "application/vnd.pypi.simple.v1+json"),
        ("/pypi/demo/json", "application/json"),
        ("/pypi/demo/1.0/json", "application/json"),
    ]:
        status, body, _ = get(site, path, headers={"Accept": accept, "X-Forwarded-Host": HOSTILE_TEXT})
        assert status == 200, path
        json.loads(body)
    document = json.loads(get(site, "/pypi/demo/json")[1])
    assert document["info"]["summary"] == HOSTILE_TEXT


INJECTIONS = [
    b"/simple/a%0d%0aSet-Cookie:%20x=1/",
    b"/simple/A%0d%0aSet-Cookie:%20x=1/",
    b"/a%0d%0aSet-Cookie:%20x=1/",
    b"/pypi/a%0d%0aSet-Cookie:x/json",
    b"/packages/a%0d%0aSet-Cookie:%20x=1",
    b"/simple/a%20b%22%3c/",
]


def test_nothing_in_a_url_becomes_a_header(site):
    for path in INJECTIONS:
        head, _ = raw_get(site, path)
        lines = head.split(b"\r\n")
        assert not any(line.lower().startswith(b"set-cookie") for line in lines), head
        # Not a project name: no redirect carrying it in a Location.
        assert not any(line.lower().startswith(b"location") for line in lines), head
        assert int(lines[0].split(b" ")[1]) == 404, head


def test_links_outside_the_package_directories_are_followed_only_when_allowed(packages, tmp_path, start_server):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = wheel_bytes("linked", "1.0")[1]
    (outside / "real.whl").write_bytes(data)
    (packages / "linked-1.0-py3-none-any.whl").symlink_to(outside / "real.whl")
    strict = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    assert get(strict, "/packages/linked-1.0-py3-none-any.whl")[0] == 404
    assert get(strict, "/simple/linked/")[0] == 404
    allowing = start_server("-P", ".", "-a", ".", "--disable-fallback", "--follow-symlinks", str(packages))
    status, body, _ = get(allowing, "/packages/linked-1.0-py3-none-any.whl")
    assert status == 200 and body == data


def test_links_inside_the_package_directories_are_followed(packages, start_server):
    (packages / "store").mkdir()
    path = write(packages / "store", wheel_bytes("inner", "1.0"))
    (packages / "alias-1.0-py3-none-any.whl").symlink_to(path)
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    assert get(server, "/packages/alias-1.0-py3-none-any.whl")[0] == 200
