"""
Conditional and partial requests, and files changing under the server:
what caches, download managers and pip's range requests rely on.
"""

import hashlib
import os
import threading

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.web.http_headers import Headers

from tests.indexing import ReadyWatcher, config_for, index_directory
from tests.inmemory import client, get
from tests.rawhttp import exchange
from twistedpypi.web.root import Root
from twistedpypi.web.site import IndexSite

WHEEL = "/packages/Demo_Pkg-1.0-py3-none-any.whl"
SDIST = "/packages/dep-1.5.tar.gz"


def sha256_etag(path) -> str:
    return f'"{hashlib.sha256(path.read_bytes()).hexdigest()}"'


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("form", ['{etag}, "other"', '"other", {etag}', "W/{etag}", "*", '"x,y", W/{etag}'])
async def test_if_none_match_lists_and_weak_tags_give_304_for_pages(demo, form):
    treq = client(demo)
    response, _ = await get(treq, "/simple/demo-pkg/")
    etag = response.headers.getRawHeaders("etag")[0]
    again, body = await get(treq, "/simple/demo-pkg/", headers={"If-None-Match": form.format(etag=etag)})
    assert again.code == 304
    assert body == b""
    assert again.headers.getRawHeaders("etag") == [etag]


@pytest_twisted.ensureDeferred
async def test_if_none_match_naming_other_tags_gets_the_page(demo):
    response, body = await get(client(demo), "/simple/demo-pkg/", headers={"If-None-Match": '"other", W/"more"'})
    assert response.code == 200
    assert b"Demo_Pkg-1.0" in body


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("form", ['{etag}, "other"', "W/{etag}", "*"])
async def test_if_none_match_lists_and_weak_tags_give_304_for_files(demo, loopback, form):
    site = loopback(demo)
    etag = sha256_etag(demo / "dep-1.5.tar.gz")
    response, body = await site.get(SDIST, headers={"If-None-Match": form.format(etag=etag)})
    assert response.code == 304
    assert body == b""


@pytest.fixture
def index_site(demo):  # noqa: F811 (fixture)
    """The server's own site (its requests, not Twisted's) on a loopback port."""
    site = IndexSite(Root(config_for(demo), index_directory(demo)), ReadyWatcher())
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    yield port.getHost().port
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("url", ["/simple/demo-pkg/", SDIST])
async def test_a_304_gives_neither_a_length_nor_a_type(index_site, url):
    """
    RFC 9110 8.6: a 304 may only repeat the 200's Content-Length; a cache
    freshening its copy could take a 0 for the page's new length.
    """
    get = b"GET " + url.encode() + b" HTTP/1.1\r\nHost: test\r\n"
    received = await threads.deferToThread(exchange, index_site, get + b"Connection: close\r\n\r\n")
    etag = next(line for line in received.split(b"\r\n") if line.lower().startswith(b"etag:"))[5:].strip()
    requests = get + b"If-None-Match: " + etag + b"\r\n\r\n" + get + b"Connection: close\r\n\r\n"
    received = await threads.deferToThread(exchange, index_site, requests)
    not_modified, rest = received.split(b"\r\n\r\n", 1)
    status, *lines = not_modified.lower().split(b"\r\n")
    names = {line.split(b":")[0] for line in lines}
    assert status == b"http/1.1 304 not modified"
    assert b"etag: " + etag.lower() in lines
    assert not names & {b"content-length", b"content-type", b"transfer-encoding"}
    # Nothing follows but the next answer, on the same connection.
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


async def head(site, url, headers=None):
    return await site.agent.request(
        b"HEAD", (site.base + url).encode(), Headers({k: [v] for k, v in (headers or {}).items()})
    )


@pytest_twisted.ensureDeferred
async def test_head_of_a_file_carries_etag_and_cache_control_and_honours_if_none_match(demo, loopback):
    site = loopback(demo, cache_control=3600)
    etag = sha256_etag(demo / "dep-1.5.tar.gz")
    response = await head(site, SDIST)
    assert response.code == 200
    assert response.headers.getRawHeaders("etag") == [etag]
    assert response.headers.getRawHeaders("cache-control") == ["public, max-age=3600"]
    assert response.headers.getRawHeaders("content-length") == [str(os.path.getsize(demo / "dep-1.5.tar.gz"))]
    response = await head(site, SDIST, {"If-None-Match": etag})
    assert response.code == 304


@pytest_twisted.ensureDeferred
async def test_a_file_being_overwritten_is_503_until_the_watcher_has_seen_it(demo, loopback):
    site = loopback(demo)
    path = demo / "dep-1.5.tar.gz"
    data = path.read_bytes()
    # cp over an indexed file: truncated, then written again.
    path.write_bytes(data[:100])
    response, body = await site.get(SDIST)
    assert response.code == 503
    assert response.headers.getRawHeaders("retry-after") == ["2"]
    assert response.headers.getRawHeaders("etag") is None
    assert b"changing on disk" in body
    # Same size, another modification time: still not the file the index describes.
    path.write_bytes(data)
    os.utime(path, ns=(0, 0))
    response, _ = await site.get(SDIST)
    assert response.code == 503


@pytest_twisted.ensureDeferred
async def test_a_fifo_in_place_of_a_file_does_not_freeze_the_server(demo, loopback):
    blobs = demo / "blobs"
    blobs.mkdir()
    target = blobs / "blob"
    os.rename(demo / "dep-1.5.tar.gz", target)
    os.symlink(target, demo / "dep-1.5.tar.gz")
    site = loopback(demo)
    target.unlink()
    os.mkfifo(target)
    # Should the server block opening the FIFO, a writer opening it releases
    # it, so that the test fails instead of hanging.
    rescued = []

    def rescue():
        rescued.append(True)
        os.close(os.open(target, os.O_WRONLY))

    rescuer = threading.Timer(5, rescue)
    rescuer.start()
    try:
        response, body = await site.get(SDIST)
    finally:
        rescuer.cancel()
    assert not rescued
    assert response.code in (404, 503)
    response, _ = await site.get("/simple/")
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_if_range_sends_the_whole_file_unless_it_names_the_current_file(demo, loopback):
    site = loopback(demo)
    path = demo / "dep-1.5.tar.gz"
    data = path.read_bytes()
    etag = sha256_etag(path)
    first, _ = await site.get(SDIST)
    last_modified = first.headers.getRawHeaders("last-modified")[0]
    for stale in ['"stale"', f"W/{etag}", "Thu, 01 Jan 1970 00:00:00 GMT", "not a date"]:
        response, body = await site.get(SDIST, headers={"Range": "bytes=0-9", "If-Range": stale})
        assert (stale, response.code, body) == (stale, 200, data)
    for current in [etag, last_modified]:
        response, body = await site.get(SDIST, headers={"Range": "bytes=0-9", "If-Range": current})
        assert (current, response.code, body) == (current, 206, data[:10])


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("url", ["/simple/", "/simple/demo-pkg/"])
async def test_each_representation_of_a_page_has_its_own_etag(demo, url):
    treq = client(demo)
    html, html_body = await get(treq, url, headers={"Accept": "text/html"})
    simple, simple_body = await get(treq, url, headers={"Accept": "application/vnd.pypi.simple.v1+html"})
    assert html_body == simple_body
    assert html.headers.getRawHeaders("content-type") != simple.headers.getRawHeaders("content-type")
    assert html.headers.getRawHeaders("etag") != simple.headers.getRawHeaders("etag")
    # A cache holding the text/html copy is not told it may serve it as the other type.
    again, _ = await get(
        treq, url,
        headers={"Accept": "application/vnd.pypi.simple.v1+html", "If-None-Match": html.headers.getRawHeaders("etag")[0]},
    )
    assert again.code == 200


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("url", ["/simple/", "/simple/demo-pkg/", "/pypi/demo-pkg/json"])
async def test_a_micro_cache_that_asks_is_told_to_keep_a_page_until_the_next_second(demo, url):
    import time

    treq = client(demo)
    plain, _ = await get(treq, url)
    assert plain.headers.getRawHeaders("x-accel-expires") is None
    before = int(time.time())
    asked, _ = await get(treq, url, headers={"X-Micro-Cache": "second"})
    after = int(time.time())
    (expires,) = asked.headers.getRawHeaders("x-accel-expires")
    assert expires.startswith("@") and before <= int(expires[1:]) <= after
    # The 304 of a revalidation says so too: nginx takes the new time from it.
    etag = asked.headers.getRawHeaders("etag")[0]
    again, _ = await get(treq, url, headers={"X-Micro-Cache": "second", "If-None-Match": etag})
    assert again.code == 304
    assert again.headers.getRawHeaders("x-accel-expires")[0].startswith("@")


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("url", ["/simple/demo-pkg/", "/simple/Demo_Pkg/", "/simple/nothing-here/", "/pypi/demo-pkg/json", "/", SDIST])
async def test_head_answers_as_get_without_a_body_or_a_warning_in_the_log(index_site, url, logged):
    def answer(method):
        request = method + b" " + url.encode() + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        return threads.deferToThread(exchange, index_site, request)

    got = await answer(b"GET")
    headed = await answer(b"HEAD")
    got_head, body = got.split(b"\r\n\r\n", 1)
    head_head, nothing = headed.split(b"\r\n\r\n", 1)

    def status_and_length(head):
        lines = head.split(b"\r\n")
        return lines[0], [line for line in lines if line.lower().startswith(b"content-length:")]

    assert status_and_length(head_head) == status_and_length(got_head)
    assert nothing == b""
    # Twisted would log "Warning: HEAD request ... I think I'll eat it." for
    # each page, which gives its body whatever the method.
    assert not [line for line in logged if "HEAD request" in line], logged
