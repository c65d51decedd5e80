"""
End to end against the real C{twistd -n pypi}: release scripts written for
pypiserver keep working.  The real C{twine register} (C{:action=submit}) and
a C{doc_upload} form post get pypiserver's success, checked against the same
C{update} permission as uploads, and write nothing to the package
directory; an upload that replaces a file under C{--overwrite} is logged as
"replaced".
"""

import io
import os
import sys
import zipfile

import pytest

from tests.clients import run
from tests.distributions import sdist_bytes, write
from tests.forms import form_body, post, twine
from tests.passwords import PASSWORD, USER, make_htpasswd
from tests.waiting import until


def everything_in(directory):
    """Every name under the directory, hidden ones included."""
    return sorted(
        os.path.relpath(os.path.join(root, name), directory)
        for root, dirs, files in os.walk(directory)
        for name in dirs + files
    )


@pytest.fixture
def sdist(tmp_path):
    """dist/demo-1.0.tar.gz, as a release script has it."""
    (tmp_path / "dist").mkdir()
    return write(tmp_path / "dist", sdist_bytes("demo", "1.0"))


def twine_register(server, sdist, *credentials):
    return run(
        [sys.executable, "-m", "twine", "register", "--non-interactive", str(sdist),
         "--repository-url", server.url + "/", *credentials],
        check=False,
    )


def documentation(names=("index.html",)):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, "<h1>demo</h1>")
    return buffer.getvalue()


def doc_upload(content):
    """The form setuptools' upload_docs posts."""
    return form_body([(":action", "doc_upload"), ("name", "demo")], [("content", "demo.zip", content)])


@pytest.fixture
def open_server(start_server, packages):
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


@pytest.fixture
def protected_server(start_server, packages, tmp_path):
    """Uploads need alice's password (-P htpasswd -a update)."""
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-B")
    return start_server("-P", str(htpasswd), "-a", "update", "--disable-fallback", str(packages))


def test_twine_register_succeeds_on_an_open_server_and_stores_nothing(open_server, packages, sdist):
    registered = twine_register(open_server, sdist, "-u", "anyone", "-p", "anything")
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert everything_in(packages) == []
    assert until(lambda: "ignored :action submit" in open_server.log())


def test_twine_register_with_the_password_succeeds_and_stores_nothing(protected_server, packages, sdist):
    registered = twine_register(protected_server, sdist, "-u", USER, "-p", PASSWORD)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert everything_in(packages) == []


@pytest.mark.parametrize(
    "credentials",
    [("-u", USER, "-p", "wrong"), ("-u", "mallory", "-p", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_twine_register_with_a_wrong_password_fails_with_401(protected_server, packages, sdist, credentials):
    registered = twine_register(protected_server, sdist, *credentials)
    assert registered.returncode != 0
    assert "401" in registered.stdout + registered.stderr
    assert everything_in(packages) == []


def test_register_without_a_password_is_401_with_a_challenge_as_an_upload_is(protected_server, packages):
    # twine always sends the credentials it has; without any, the form alone.
    status, _, text, headers = post(protected_server, form_body([(":action", "submit"), ("name", "demo")]), auth=False)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
    assert everything_in(packages) == []


def test_twine_register_where_uploads_are_disabled_gets_the_uploads_403(start_server, packages, sdist):
    server = start_server("--disable-fallback", str(packages))
    registered = twine_register(server, sdist, "-u", USER, "-p", PASSWORD)
    assert registered.returncode != 0
    assert "403" in registered.stdout + registered.stderr
    status, _, text, _ = post(server, doc_upload(documentation()))
    assert status == 403 and b"-P htpasswd" in text
    assert everything_in(packages) == []


def test_doc_upload_of_a_zip_holding_index_html_succeeds_and_stores_nothing(protected_server, packages):
    status, _, text, _ = post(protected_server, doc_upload(documentation(["index.html", "_static/a.css"])))
    assert status == 200
    assert b"documentation is not hosted" in text
    assert everything_in(packages) == []


def test_doc_upload_of_something_else_is_400_and_stores_nothing(protected_server, packages):
    status, reason, text, _ = post(protected_server, doc_upload(b"this is no zip archive\n" * 1000))
    assert status == 400
    assert reason == "the documentation is not a zip archive holding index.html"
    assert b"it is not a zip archive" in text
    assert everything_in(packages) == []


def test_doc_upload_without_a_password_is_401(protected_server, packages):
    status, _, _, headers = post(protected_server, doc_upload(documentation()), auth=False)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
    assert everything_in(packages) == []


def test_twine_upload_twice_with_overwrite_logs_replaced(start_server, packages, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--overwrite", "--disable-fallback", str(packages))
    filename, data = sdist_bytes("demo", "1.0")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = write(tmp_path / "first", (filename, data))
    second = write(tmp_path / "second", (filename, data + b"\0" * 512))
    credentials = ("--repository-url", server.url + "/", "-u", "anyone", "-p", "anything")
    twine(*credentials, str(first))
    assert until(lambda: f"stored {filename}" in server.log())
    assert f"replaced {filename}" not in server.log()
    twine(*credentials, str(second))
    assert until(lambda: f"replaced {filename}" in server.log())
    assert (packages / filename).read_bytes() == data + b"\0" * 512
