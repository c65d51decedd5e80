"""
End to end: uploads and removals against the real C{twistd -n pypi}, with
the real twine, uv and distutils clients, a password file of every scheme
Apache's htpasswd writes, and raw bad requests that must leave nothing on
disk.  Loopback only.
"""

import hashlib
import http.client
import os
import shutil
import socket
import sys
import threading
import time

import pytest

from tests.clients import run
from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.forms import (
    BOUNDARY,
    auth_header,
    fetch,
    form_body,
    post,
    twine,
    upload_form,
)
from tests.passwords import HTPASSWD, PASSWORD, USER, make_htpasswd
from tests.waiting import until

pytestmark = pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) is not installed")

SCHEMES = {"apr1-md5": "-m", "bcrypt": "-B", "sha1": "-s", "crypt": "-d", "plain": "-p"}


def uv() -> str:
    return shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")


def listing(directory):
    """Every name in the directory, hidden ones included."""
    return sorted(os.listdir(directory))


@pytest.fixture
def protected_server(start_server, packages, tmp_path):
    """A server whose uploads need alice's bcrypt password."""
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-B")
    return start_server("-P", str(htpasswd), "--disable-fallback", str(packages))


@pytest.fixture
def wheel(tmp_path):
    filename, data = wheel_bytes("demo", "1.0")
    path = tmp_path / "dist" / filename
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


# The real clients


@pytest.mark.parametrize("scheme", SCHEMES)
def test_twine_uploads_with_each_htpasswd_scheme_and_is_refused_with_a_wrong_password(
    scheme, start_server, packages, tmp_path, wheel
):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", SCHEMES[scheme])
    server = start_server("-P", str(htpasswd), "--disable-fallback", str(packages))
    refused = twine("--repository-url", server.url + "/", "-u", USER, "-p", "wrong", str(wheel), check=False)
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr
    assert listing(packages) == []
    twine("--repository-url", server.url + "/", "-u", USER, "-p", PASSWORD, str(wheel))
    assert (packages / wheel.name).read_bytes() == wheel.read_bytes()
    # In the index at once, not when the watcher notices.
    status, page = fetch(server.url + "/simple/demo/")
    assert status == 200 and wheel.name.encode() in page


def test_twine_reads_its_credentials_from_a_pypirc(protected_server, packages, tmp_path, wheel):
    pypirc = tmp_path / "pypirc"
    pypirc.write_text(
        "[distutils]\nindex-servers = private\n\n"
        f"[private]\nrepository = {protected_server.url}/\nusername = {USER}\npassword = {PASSWORD}\n"
    )
    twine("--config-file", str(pypirc), "-r", "private", str(wheel))
    assert listing(packages) == [wheel.name]


def test_twine_skip_existing_passes_over_a_different_file_of_the_same_name(protected_server, packages, tmp_path, wheel):
    server = protected_server
    credentials = ["--repository-url", server.url + "/", "-u", USER, "-p", PASSWORD]
    twine(*credentials, str(wheel))
    original = wheel.read_bytes()
    other = tmp_path / "other" / wheel.name
    other.parent.mkdir()
    _, data = wheel_bytes("demo", "1.0", summary="rebuilt, different bytes")
    other.write_bytes(data)
    assert data != original
    conflict = twine(*credentials, str(other), check=False)
    assert conflict.returncode != 0
    assert "409" in conflict.stdout + conflict.stderr
    assert "File already exists" in conflict.stdout + conflict.stderr
    skipped = twine(*credentials, "--skip-existing", str(other), check=False)
    output = skipped.stdout + skipped.stderr
    if "UnsupportedConfiguration" not in output:
        assert skipped.returncode == 0 and "Skipping" in output, output
    else:
        # twine 6.2 and later refuse --skip-existing on their own side for
        # every repository but PyPI's; older ones ask the server, and skip
        # on what twine's skip_upload() accepts: check it on the real answer.
        import requests
        from twine.commands.upload import skip_upload

        response = requests.post(
            server.url + "/",
            data={":action": "file_upload", "name": "demo", "version": "1.0"},
            files={"content": (wheel.name, data)},
            auth=(USER, PASSWORD),
        )
        assert response.status_code == 409
        assert skip_upload(response, True, None)
    assert (packages / wheel.name).read_bytes() == original
    # The identical bytes again are a success, as on PyPI.
    twine(*credentials, str(wheel))
    assert listing(packages) == [wheel.name]


def test_twine_stores_the_gpg_signature_beside_the_file(protected_server, packages, wheel):
    signature = wheel.with_name(wheel.name + ".asc")
    signature.write_text("-----BEGIN PGP SIGNATURE-----\nnot checked\n-----END PGP SIGNATURE-----\n")
    twine("--repository-url", protected_server.url + "/", "-u", USER, "-p", PASSWORD, str(wheel), str(signature))
    assert (packages / signature.name).read_bytes() == signature.read_bytes()
    status, page = fetch(protected_server.url + "/simple/demo/")
    assert b"data-gpg-sig" in page


def test_uv_publish_uploads_and_is_refused_with_a_wrong_password(protected_server, packages, tmp_path, wheel):
    sdist = wheel.parent / sdist_bytes("demo", "1.0")[0]
    sdist.write_bytes(sdist_bytes("demo", "1.0")[1])
    env = dict(os.environ, UV_NO_CACHE="1")
    command = [uv(), "publish", "--publish-url", protected_server.url + "/", "-u", USER]
    refused = run([*command, "-p", "wrong", str(wheel)], check=False, env=env)
    assert refused.returncode != 0
    assert listing(packages) == []
    run([*command, "-p", PASSWORD, str(wheel), str(sdist)], env=env)
    assert listing(packages) == sorted([wheel.name, sdist.name])


def test_setup_py_upload_with_the_stdlib_distutils(protected_server, packages, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "setup.py").write_text(
        "from distutils.core import setup\nsetup(name='du-demo', version='0.3', py_modules=['du_demo'])\n"
    )
    (project / "du_demo.py").write_text("X = 1\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".pypirc").write_text(
        "[distutils]\nindex-servers = local\n\n"
        f"[local]\nrepository: {protected_server.url}/\nusername: {USER}\npassword: {PASSWORD}\n"
    )
    env = dict(os.environ, HOME=str(home), SETUPTOOLS_USE_DISTUTILS="stdlib", PYTHONWARNINGS="ignore")
    result = run([sys.executable, "setup.py", "sdist", "upload", "-r", "local"], cwd=project, env=env)
    assert "Server response (200)" in result.stdout + result.stderr
    assert listing(packages) == ["du-demo-0.3.tar.gz"]
    # The wrong password: distutils says so and nothing more is written.
    (home / ".pypirc").write_text((home / ".pypirc").read_text().replace(PASSWORD, "wrong"))
    (project / "setup.py").write_text((project / "setup.py").read_text().replace("0.3", "0.4"))
    result = run([sys.executable, "setup.py", "sdist", "upload", "-r", "local"], cwd=project, env=env, check=False)
    assert result.returncode != 0 and "401" in result.stdout + result.stderr
    assert listing(packages) == ["du-demo-0.3.tar.gz"]


def test_pip_installs_with_credentials_in_the_index_url_when_downloads_are_protected(start_server, packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-m")
    server = start_server("-P", str(htpasswd), "-a", "update,download,list", "--disable-fallback", str(packages))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "install", "--no-cache-dir"]
    authenticated = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/simple/"
    run([*pip, "--index-url", authenticated, "--target", str(tmp_path / "t"), "demo"])
    assert (tmp_path / "t" / "demo-1.0.dist-info").is_dir()
    refused = run([*pip, "--index-url", server.url + "/simple/", "--target", str(tmp_path / "u"), "demo"], check=False)
    assert refused.returncode != 0
    assert fetch(server.url + "/packages/demo-1.0-py3-none-any.whl")[0] == 401
    assert fetch(server.url + "/packages/demo-1.0-py3-none-any.whl", {"Authorization": auth_header()})[0] == 200


# Raw requests: status, reason, and nothing left on disk


def _data():
    return wheel_bytes("demo", "1.0")


BAD_UPLOADS = {
    "traversal": (upload_form("../demo-1.0-py3-none-any.whl", _data()[1]), 400, "path"),
    "subdirectory": (upload_form("sub/demo-1.0-py3-none-any.whl", _data()[1]), 400, "path"),
    "backslash": (upload_form("..\\demo-1.0-py3-none-any.whl", _data()[1]), 400, "path"),
    "nul": (upload_form("demo-1.0-py3-none-any.whl\x00.txt", _data()[1]), 400, "control"),
    "leading-dot": (upload_form(".demo-1.0-py3-none-any.whl", _data()[1]), 400, "hidden"),
    "empty-name": (upload_form("", _data()[1]), 400, "empty"),
    "not-a-distribution": (upload_form("notes.txt", b"hello"), 400, "not a wheel or sdist"),
    "other-project": (upload_form(*_data(), name="other"), 400, ("project is not the one", "not of project 'other'")),
    "other-version": (upload_form(*_data(), version="2.0"), 400, ("version is not the one", "not version '2.0'")),
    "bad-sha256": (upload_form(*_data(), sha256_digest="0" * 64), 400, "sha256_digest does not match"),
    "bad-md5": (upload_form(*_data(), md5_digest="0" * 32), 400, "md5_digest does not match"),
    "bad-blake2": (upload_form(*_data(), blake2_256_digest="0" * 64), 400, "blake2_256_digest does not match"),
    "no-file": (form_body([(":action", "file_upload"), ("name", "demo"), ("version", "1.0")]), 400, "no 'content'"),
    "garbage-multipart": (b"this is not multipart at all", 400, "not valid multipart"),
    "truncated-multipart": (upload_form(*_data())[:-40], 400, "closing boundary"),
    "unknown-action": (form_body([(":action", "frobnicate"), ("name", "demo")]), 400, "not supported"),
    "no-action": (form_body([("name", "demo")]), 400, ":action"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_refused_with_a_reason_and_leaves_nothing_on_disk(case, protected_server, packages):
    write(packages, wheel_bytes("keep", "1.0"))
    time.sleep(0.1)
    before = listing(packages)
    body, code, reason = BAD_UPLOADS[case]
    # The status line says what was wrong in fixed words; the body may
    # quote the form.
    in_phrase, in_body = (reason, reason) if isinstance(reason, str) else reason
    status, phrase, text, _ = post(protected_server, body)
    assert status == code, text
    assert in_phrase in phrase and in_body in text.decode()
    time.sleep(0.2)
    assert listing(packages) == before


def test_without_credentials_an_upload_is_401_with_a_challenge(protected_server, packages):
    status, _, _, headers = post(protected_server, upload_form(*_data()), auth=False)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
    status, _, text, headers = post(protected_server, upload_form(*_data()), headers={"Authorization": auth_header(password="nope")})
    assert status == 401 and b"wrong user name or password" in text
    assert headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
    assert listing(packages) == []


def test_with_pypiservers_defaults_uploads_are_403_saying_how_to_enable_them(start_server, packages):
    server = start_server("--disable-fallback", str(packages))
    status, _, text, _ = post(server, upload_form(*_data()))
    assert status == 403
    assert b"-P htpasswd" in text and b"-P . -a ." in text
    assert listing(packages) == []


def test_an_open_server_takes_uploads_without_a_password(start_server, packages):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    status, _, _, _ = post(server, upload_form(*_data()), auth=False)
    assert status == 200
    assert listing(packages) == [_data()[0]]


def test_an_upload_larger_than_the_limit_is_refused_before_its_body(start_server, packages, tmp_path):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-s")
    server = start_server("-P", str(htpasswd), "--max-upload-size", "100K", "--disable-fallback", str(packages))
    # Declared too large: answered without sending a byte of the body.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Authorization", auth_header())
    connection.putheader("Content-Length", str(10**9))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert b"--max-upload-size" in response.read()
    connection.close()
    # A file that crosses the limit as it streams in: refused there.
    big = os.urandom(300 * 1024)
    status, _, text, _ = post(server, upload_form("demo-1.0.tar.gz", big))
    assert status == 413
    # The same without a length (chunked): refused as it crosses the limit.
    body = upload_form("demo-1.0.tar.gz", big)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST", "/", body=iter([body[i : i + 8192] for i in range(0, len(body), 8192)]), encode_chunked=True,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Authorization": auth_header()},
    )
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    time.sleep(0.2)
    assert listing(packages) == []


def test_post_to_simple_is_405_and_xmlrpc_posted_to_the_root_is_answered_not_stored(protected_server, packages):
    status, _, _, _ = post(protected_server, upload_form(*_data()), path="/simple/")
    assert status == 405
    xml = b"<?xml version='1.0'?><methodCall><methodName>list_packages</methodName><params></params></methodCall>"
    status, _, body, _ = post(protected_server, xml, content_type="text/xml")
    assert status == 200 and b"<methodResponse>" in body
    assert listing(packages) == []


def test_uploads_are_never_redirected(protected_server):
    status, _, _, _ = post(protected_server, upload_form(*_data()), path="")
    assert status == 200


def test_remove_pkg_deletes_the_release_and_its_signature(protected_server, packages):
    for built in (wheel_bytes("demo", "1.0"), sdist_bytes("demo", "1.0"), wheel_bytes("demo", "2.0")):
        assert post(protected_server, upload_form(*built, version=built[0].split("-")[1].removesuffix(".tar.gz")))[0] == 200
    (packages / "demo-1.0.tar.gz.asc").write_text("sig")
    body = "%3Aaction=remove_pkg&name=Demo&version=1.0".encode()
    status, _, text, _ = post(protected_server, body, content_type="application/x-www-form-urlencoded")
    assert status == 200, text
    assert listing(packages) == ["demo-2.0-py3-none-any.whl"]
    status, page = fetch(protected_server.url + "/simple/demo/")
    assert b"demo-1.0" not in page and b"demo-2.0" in page
    status, _, _, _ = post(protected_server, form_body([(":action", "remove_pkg"), ("name", "demo"), ("version", "1.0")]))
    assert status == 404
    status, _, _, _ = post(protected_server, body, content_type="application/x-www-form-urlencoded", auth=False)
    assert status == 401


def test_concurrent_uploads_of_one_file_name_have_exactly_one_winner(protected_server, packages):
    filename = "demo-1.0.tar.gz"
    datas = [os.urandom(200_000) for _ in range(10)]
    bodies = [upload_form(filename, data) for data in datas]
    results = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def send(i):
        barrier.wait()
        results[i] = post(protected_server, bodies[i])[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [200] + [409] * 9
    winner = results.index(200)
    assert (packages / filename).read_bytes() == datas[winner]
    assert listing(packages) == [filename]


def test_a_client_that_disconnects_mid_upload_leaves_no_file(protected_server, packages):
    body = upload_form("demo-1.0.tar.gz", os.urandom(4 * 1024 * 1024))
    with socket.create_connection(("127.0.0.1", protected_server.port)) as connection:
        head = (
            "POST / HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Authorization: {auth_header()}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        connection.sendall(head + body[: len(body) // 2])
        assert until(lambda: any(name.startswith(".upload-") for name in listing(packages)))
    assert until(lambda: listing(packages) == [], 5)
    assert fetch(protected_server.url + "/simple/demo/")[0] == 404


def test_a_server_killed_mid_upload_leaves_no_partial_file_after_restart(start_server, packages, tmp_path):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-s")
    server = start_server("-P", str(htpasswd), "--disable-fallback", str(packages))
    # Earlier uploads, and a file put there by hand: all must survive.
    earlier = {}
    for built in (wheel_bytes("demo", "0.9"), sdist_bytes("demo", "0.9"), wheel_bytes("other", "2.0")):
        version = built[0].split("-")[1].removesuffix(".tar.gz")
        assert post(server, upload_form(*built, name=built[0].split("-")[0], version=version))[0] == 200
        earlier[built[0]] = built[1]
    earlier[write(packages, wheel_bytes("manual", "1.0")).rsplit("/", 1)[1]] = wheel_bytes("manual", "1.0")[1]
    data = os.urandom(16 * 1024 * 1024)
    body = upload_form("demo-1.0.tar.gz", data)
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            (
                "POST / HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Authorization: {auth_header()}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        # Stream the body, and kill the server once a good part of it is on
        # disk, while the rest is still arriving.
        sent = 0
        while sent < len(body) // 2:
            connection.sendall(body[sent : sent + 256 * 1024])
            sent += 256 * 1024

        def temporary_size():
            temporary = [name for name in listing(packages) if name.startswith(".upload-")]
            return os.path.getsize(packages / temporary[0]) if temporary else 0

        assert until(lambda: temporary_size() >= 2 * 1024 * 1024)
        server.process.kill()
        server.process.wait()
    leftovers = set(listing(packages)) - set(earlier)
    assert leftovers and all(name.startswith(".upload-") for name in leftovers)
    again = start_server("-P", str(htpasswd), "--disable-fallback", str(packages))
    assert listing(packages) == sorted(earlier)
    assert "deleted an unfinished upload" in again.log()
    page = fetch(again.url + "/simple/demo/")[1].decode()
    assert "demo-1.0" not in page
    for filename, content in earlier.items():
        if filename.startswith("demo-"):
            assert f"{filename}#sha256={hashlib.sha256(content).hexdigest()}" in page
        assert (packages / filename).read_bytes() == content
        assert fetch(again.url + "/packages/" + filename) == (200, content)
    # The killed upload, sent again, is taken whole.
    assert post(again, body)[0] == 200
    assert (packages / "demo-1.0.tar.gz").read_bytes() == data


def test_a_server_stopped_mid_upload_deletes_the_partial_file(start_server, packages, tmp_path):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-s")
    server = start_server("-P", str(htpasswd), "--disable-fallback", str(packages))
    body = upload_form("demo-1.0.tar.gz", os.urandom(4 * 1024 * 1024))
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            (
                "POST / HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Authorization: {auth_header()}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        assert until(lambda: listing(packages))
        server.stop()  # SIGTERM
    assert listing(packages) == []


def test_an_upload_with_attestations_is_accepted_and_they_are_ignored(protected_server, packages):
    filename, data = _data()
    body = upload_form(filename, data, attestations='[{"version": 1, "envelope": {}}]')
    status, _, text, _ = post(protected_server, body)
    assert status == 200, text
    assert listing(packages) == [filename]
