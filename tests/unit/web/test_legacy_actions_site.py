"""
PyPI's legacy C{:action}s other than uploads and removals, sent over HTTP to
the real site in this process: C{submit} (twine register) and C{verify} are
answered 200 without storing anything, C{doc_upload}'s zip is checked as
pypiserver checks it and not stored, and anything else is a 400 whose
status line is a fixed phrase.  Also: an upload that replaces a file under
C{--overwrite} says "replaced".
"""

import io
import os
import zipfile
from urllib.parse import urlencode

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from tests.distributions import sdist_bytes, write
from tests.indexing import config_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import Metrics
from twistedpypi.scan.watcher import PackageWatcher
from twistedpypi.web.site import make_site

BOUNDARY = "legacyboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM = "application/x-www-form-urlencoded"

# What twine register sends: the metadata, :action=submit, no file.
REGISTER_FIELDS = [
    (":action", "submit"),
    ("protocol_version", "1"),
    ("metadata_version", "2.1"),
    ("name", "demo"),
    ("version", "1.0"),
    ("filetype", "sdist"),
    ("summary", "A demo"),
    ("description", "Long text\n" * 1000),
    ("classifiers", "Programming Language :: Python"),
    ("classifiers", "License :: OSI Approved :: MIT License"),
]


def multipart(fields, files=()):
    body = b""
    for name, value in fields:
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def documentation(names=("index.html",)):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<h1>demo</h1>")
    return buffer.getvalue()


def serve(packages, **settings):
    config = config_for(packages, authenticate=frozenset(), fallback_url=None, **settings)
    index = PackageIndex()
    watcher = PackageWatcher(index, config.directories, use_inotify=False)
    watcher.startService()
    pytest_twisted.blockon(watcher.ready)
    port = reactor.listenTCP(0, make_site(config, index, watcher, metrics=Metrics()), interface="127.0.0.1")
    return f"http://127.0.0.1:{port.getHost().port}", port, watcher


def stop(port, watcher):
    pytest_twisted.blockon(port.stopListening())
    stopped = watcher.stopService()
    if stopped is not None:
        pytest_twisted.blockon(stopped)


@pytest.fixture
def site(packages):
    """The real site, open to uploads, on a loopback port."""
    base, port, watcher = serve(packages)
    yield base
    stop(port, watcher)


@pytest.fixture
def overwriting_site(packages):
    """The same, started with --overwrite."""
    base, port, watcher = serve(packages, overwrite=True)
    yield base
    stop(port, watcher)


async def post(base, body, content_type=MULTIPART):
    response = await treq.post(base + "/", data=body, headers={b"content-type": content_type.encode()}, persistent=False)
    return response.code, response.phrase.decode("latin-1"), (await response.content()).decode()


def everything_in(directory):
    """Every name under the directory, hidden ones included."""
    return sorted(os.path.relpath(os.path.join(root, name), directory)
                  for root, dirs, files in os.walk(directory) for name in dirs + files)


@pytest_twisted.ensureDeferred
async def test_twine_registers_form_is_answered_200_and_stores_nothing(site, packages, logged):
    code, phrase, text = await post(site, multipart(REGISTER_FIELDS))
    assert (code, phrase) == (200, "OK")
    assert text == "nothing to register: a project is registered on this index by its first upload\n"
    assert any("ignored :action submit" in line for line in logged)
    assert everything_in(packages) == []


@pytest_twisted.ensureDeferred
async def test_verify_and_submit_as_url_encoded_forms_are_answered_200(site, packages):
    code, _, text = await post(site, urlencode({":action": "verify", "name": "demo"}).encode(), FORM)
    assert code == 200 and text.startswith("nothing to verify")
    code, _, text = await post(site, urlencode({":action": "submit", "name": "demo"}).encode(), FORM)
    assert code == 200 and text.startswith("nothing to register")
    assert everything_in(packages) == []


@pytest_twisted.ensureDeferred
async def test_doc_upload_of_a_zip_with_index_html_is_checked_and_not_stored(site, packages, logged):
    body = multipart([(":action", "doc_upload"), ("name", "demo")], [("content", "demo.zip", documentation())])
    code, _, text = await post(site, body)
    assert code == 200
    assert text == "documentation is not hosted on this index: the zip was checked, and not stored\n"
    assert any("ignored :action doc_upload" in line for line in logged)
    assert everything_in(packages) == []


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"not a zip\n" * 100, "it is not a zip archive"),
        (documentation(["docs/index.html"]), "the zip archive has no index.html at its top"),
    ],
    ids=["not-a-zip", "no-index-html"],
)
@pytest_twisted.ensureDeferred
async def test_doc_upload_of_anything_else_is_400_with_the_reason_in_the_body(site, packages, content, detail):
    body = multipart([(":action", "doc_upload"), ("name", "demo")], [("content", "demo.zip", content)])
    code, phrase, text = await post(site, body)
    assert (code, phrase) == (400, "the documentation is not a zip archive holding index.html")
    assert detail in text
    assert everything_in(packages) == []


@pytest_twisted.ensureDeferred
async def test_doc_upload_without_a_content_file_is_400(site, packages):
    for body, content_type in [
        (multipart([(":action", "doc_upload"), ("name", "demo")]), MULTIPART),
        (urlencode({":action": "doc_upload", "name": "demo"}).encode(), FORM),
    ]:
        code, phrase, _ = await post(site, body, content_type)
        assert code == 400
        assert phrase.startswith("doc_upload needs the documentation as a 'content' file")
    assert everything_in(packages) == []


@pytest_twisted.ensureDeferred
async def test_an_action_no_client_sends_is_400_with_a_fixed_phrase_and_the_name_escaped_in_the_body(site, packages):
    action = "frob\r\nX-Injected: yes" + "x" * 5000
    code, phrase, text = await post(site, multipart([(":action", action)]))
    assert code == 400
    assert phrase == "the form's ':action' is not supported here: use file_upload, remove_pkg, yank, unyank, set_status, submit, verify or doc_upload"
    assert "'frob\\r\\nX-Injected: yes" in text and "\r" not in text
    assert len(text) < 400
    code, phrase, _ = await post(site, multipart([("name", "demo")]))
    assert code == 400 and phrase.startswith("the form has no ':action'")


@pytest_twisted.ensureDeferred
async def test_an_upload_over_an_existing_file_with_overwrite_says_replaced(overwriting_site, packages, logged):
    filename, first = sdist_bytes("demo", "1.0")
    upload = [(":action", "file_upload"), ("name", "demo"), ("version", "1.0")]
    code, _, text = await post(overwriting_site, multipart(upload, [("content", filename, first)]))
    assert (code, text) == (200, f"stored {filename}\n")
    second = first + b"\0" * 512
    code, _, text = await post(overwriting_site, multipart(upload, [("content", filename, second)]))
    assert (code, text) == (200, f"replaced {filename}\n")
    assert any(line.startswith(f"replaced {filename}") for line in logged)
    assert (packages / filename).read_bytes() == second


@pytest_twisted.ensureDeferred
async def test_an_upload_over_a_file_the_index_has_not_seen_yet_says_replaced(overwriting_site, packages):
    # Copied in a moment ago: on disk, perhaps not in the index yet.
    filename, data = sdist_bytes("demo", "1.0")
    write(packages, (filename, data + b"\0" * 512))
    upload = [(":action", "file_upload"), ("name", "demo"), ("version", "1.0")]
    code, _, text = await post(overwriting_site, multipart(upload, [("content", filename, data)]))
    assert (code, text) == (200, f"replaced {filename}\n")
