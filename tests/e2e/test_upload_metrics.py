"""
C{/metrics} counts the uploads stored and the files removed where they
happen: real uploads and removals, sent over HTTP, read back from
C{/metrics}.
"""

import http.client
import os
from urllib.parse import urlencode

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for
from tests.metrics_text import parse_metrics
from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import Metrics
from twistedpypi.scan.watcher import PackageWatcher
from twistedpypi.web.site import make_site

BOUNDARY = "metricsboundary"


def upload_body(filename, data, name, version):
    body = b""
    for field, value in ((":action", "file_upload"), ("name", name), ("version", version)):
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode()
    body += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def removal_body(name, version):
    return urlencode({":action": "remove_pkg", "name": name, "version": version}).encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def site(packages):
    """The real site, open to uploads, on a loopback port, with counters of its own."""
    write(packages, wheel_bytes("old", "1.0"))
    config = config_for(packages, authenticate=frozenset(), fallback_url=None)
    index = PackageIndex()
    watcher = PackageWatcher(index, config.directories, use_inotify=False)
    watcher.startService()
    pytest_twisted.blockon(watcher.ready)
    port = reactor.listenTCP(0, make_site(config, index, watcher, metrics=Metrics()), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    pytest_twisted.blockon(port.stopListening())
    stopped = watcher.stopService()
    if stopped is not None:
        pytest_twisted.blockon(stopped)


async def post(base, body, content_type):
    response = await treq.post(base + "/", data=body, headers={b"content-type": content_type.encode()}, persistent=False)
    return response.code, (await response.content()).decode()


async def scrape(base):
    response = await treq.get(base + "/metrics", persistent=False)
    assert response.code == 200
    return parse_metrics((await response.content()).decode())


@pytest_twisted.ensureDeferred
async def test_metrics_count_the_uploads_stored_and_the_files_removed(site, packages):
    before = await scrape(site)
    assert before["twistedpypi_uploads_total"] == 0
    assert before["twistedpypi_removals_total"] == 0
    wheel_name, wheel = wheel_bytes("demo", "1.0")
    sdist_name, sdist = "demo-1.0.tar.gz", os.urandom(2048)
    assert await post(site, upload_body(wheel_name, wheel, "demo", "1.0"), MULTIPART) == (200, f"stored {wheel_name}\n")
    assert await post(site, upload_body(sdist_name, sdist, "demo", "1.0"), MULTIPART) == (200, f"stored {sdist_name}\n")
    # The same bytes again store nothing; a refused upload stores nothing.
    assert (await post(site, upload_body(wheel_name, wheel, "demo", "1.0"), MULTIPART))[0] == 200
    assert (await post(site, upload_body("demo-2.0.tar.gz", sdist, "demo", "1.0"), MULTIPART))[0] == 400
    after_uploads = await scrape(site)
    assert after_uploads["twistedpypi_uploads_total"] == 2
    assert after_uploads["twistedpypi_removals_total"] == 0
    assert after_uploads["twistedpypi_files"] == 3

    assert (await post(site, removal_body("demo", "1.0"), FORM))[0] == 200
    assert (await post(site, removal_body("old", "1.0"), FORM))[0] == 200
    assert (await post(site, removal_body("old", "1.0"), FORM))[0] == 404
    after_removals = await scrape(site)
    assert after_removals["twistedpypi_removals_total"] == 3
    assert after_removals["twistedpypi_uploads_total"] == 2
    assert after_removals["twistedpypi_files"] == 0
    assert sorted(os.listdir(packages)) == []


def test_the_real_server_counts_an_upload_and_a_removal(start_server, packages):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))

    def request(method, path, body=None, content_type=None):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": content_type} if content_type else {})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    filename, data = wheel_bytes("demo", "1.0")
    assert request("POST", "/", upload_body(filename, data, "demo", "1.0"), MULTIPART)[0] == 200
    values = parse_metrics(request("GET", "/metrics")[1])
    assert values["twistedpypi_uploads_total"] == 1
    assert values["twistedpypi_removals_total"] == 0
    assert request("POST", "/", removal_body("demo", "1.0"), FORM)[0] == 200
    values = parse_metrics(request("GET", "/metrics")[1])
    assert values["twistedpypi_uploads_total"] == 1
    assert values["twistedpypi_removals_total"] == 1
