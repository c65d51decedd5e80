"""
End to end against the real C{twistd -n pypi}: with C{-a update,download,list}
no route reveals a project name or a byte of a file without a password, and a
password file removed and restored under a running server refuses, then
serves again, never opening up.
"""

import os

import pytest

from tests.distributions import wheel_bytes, write
from tests.forms import BOUNDARY, upload_form
from tests.passwords import PASSWORD, USER, request, sha1_entry

WHEEL = "demo-1.0-py3-none-any.whl"
XML_CALL = (
    b"<?xml version='1.0'?><methodCall><methodName>search</methodName><params><param><value>"
    b"<struct><member><name>name</name><value><string>demo</string></value></member></struct>"
    b"</value></param></params></methodCall>"
)

# (method, path, extra headers, body): every route that can name a project
# or send a file's bytes.
ROUTES = [
    ("GET", "/simple/", {}, None),
    ("GET", "/simple/", {"Accept": "application/vnd.pypi.simple.v1+json"}, None),
    ("GET", "/simple/demo/", {}, None),
    ("GET", "/simple/demo", {}, None),
    ("GET", "/simple/demo/", {"Accept": "application/vnd.pypi.simple.v1+json"}, None),
    ("HEAD", "/simple/demo/", {}, None),
    ("GET", "/packages/", {}, None),
    ("GET", f"/packages/{WHEEL}", {}, None),
    ("HEAD", f"/packages/{WHEEL}", {}, None),
    ("GET", f"/packages/{WHEEL}", {"Range": "bytes=0-9"}, None),
    ("GET", f"/packages/{WHEEL}.metadata", {}, None),
    ("GET", f"/packages/{WHEEL}.asc", {}, None),
    ("GET", "/pypi/demo/json", {}, None),
    ("GET", "/pypi/demo/1.0/json", {}, None),
    ("GET", "/demo/json", {}, None),
    ("GET", "/Demo/json", {}, None),
    ("GET", "/project/", {}, None),
    ("GET", "/project/?q=demo", {}, None),
    ("GET", "/project/demo/", {}, None),
    ("POST", "/RPC2", {"Content-Type": "text/xml"}, XML_CALL),
    ("POST", "/", {"Content-Type": "text/xml"}, XML_CALL),
    ("GET", "/metrics", {}, None),
]


@pytest.fixture
def locked(start_server, packages, tmp_path):
    """A server with every action protected, serving demo 1.0 and its signature."""
    wheel = write(packages, wheel_bytes("demo", "1.0"))
    with open(wheel + ".asc", "w") as signature:
        signature.write("-----BEGIN PGP SIGNATURE-----\n")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(sha1_entry(USER, PASSWORD))
    server = start_server("-P", str(htpasswd), "-a", "update,download,list", "--disable-fallback", str(packages))
    server.htpasswd = htpasswd
    server.packages = packages
    server.wheel = open(wheel, "rb").read()
    return server


def test_no_route_reveals_names_or_bytes_without_a_password(locked):
    for method, path, headers, body in ROUTES:
        for auth in (None, (USER, "wrong"), ("nobody", PASSWORD)):
            status, response_headers, text = request(locked, method, path, headers, body, auth)
            assert status == 401, (method, path, headers, auth, status)
            assert ("WWW-Authenticate", 'Basic realm="twistedpypi"') in response_headers
            assert b"demo" not in text and locked.wheel[:64] not in text
        status, _, text = request(locked, method, path, headers, body, (USER, PASSWORD))
        assert status not in (401, 403) and status < 500, (method, path, status, text)
    # With the password, the bytes are really there.
    status, _, text = request(locked, "GET", f"/packages/{WHEEL}", auth=(USER, PASSWORD))
    assert status == 200 and text == locked.wheel


def test_the_project_shortcut_reveals_nothing_and_welcome_and_health_stay_open(locked):
    # /<project>/ redirects by the name's spelling alone: the same for a
    # project that is not there, and the target is protected.
    known = request(locked, "GET", "/demo/")
    unknown = request(locked, "GET", "/no-such-project/")
    assert known[0] == unknown[0]
    if known[0] != 401:
        assert 300 <= known[0] < 400
        assert dict(known[1])["Location"].endswith("simple/demo/")
        assert known[2].replace(b"demo", b"no-such-project") == unknown[2]
    for path in ("/", "/health"):
        status, _, _ = request(locked, "GET", path)
        assert status == 200, path
    assert b"demo" not in request(locked, "GET", "/")[2]


def test_a_removed_password_file_refuses_until_restored_and_is_logged(locked):
    alice = (USER, PASSWORD)
    assert request(locked, "GET", "/simple/demo/", auth=alice)[0] == 200
    saved = locked.htpasswd.read_text()
    locked.htpasswd.unlink()
    for method, path, headers, body in ROUTES:
        status, _, text = request(locked, method, path, headers, body, alice)
        assert status == 503, (method, path, status)
        assert b"demo" not in text
        assert method == "HEAD" or b"password file" in text
    # Nor is an upload taken.
    before = sorted(os.listdir(locked.packages))
    body = upload_form(*wheel_bytes("demo", "2.0"), version="2.0")
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    assert request(locked, "POST", "/", headers, body, alice)[0] == 503
    assert sorted(os.listdir(locked.packages)) == before
    assert request(locked, "GET", "/health")[0] == 200
    assert "cannot read the password file" in locked.log()
    assert PASSWORD not in locked.log()
    # Restored atomically, with another user.
    replacement = locked.htpasswd.with_name("htpasswd.new")
    replacement.write_text(saved + sha1_entry("bob", "b0b-pass"))
    os.replace(replacement, locked.htpasswd)
    assert request(locked, "GET", "/simple/demo/", auth=alice)[0] == 200
    assert request(locked, "GET", "/simple/demo/", auth=("bob", "b0b-pass"))[0] == 200
    assert request(locked, "GET", "/simple/demo/", auth=("bob", "wrong"))[0] == 401
    refusal = [line for line in locked.log().splitlines() if "refused" in line and "'bob'" in line]
    assert refusal and "127.0.0.1" in refusal[-1] and "wrong" not in refusal[-1].split("for 'bob'")[-1]
