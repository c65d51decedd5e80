"""
Conditional and partial requests, and files changing under the server:
what caches, download managers and pip's range requests rely on.
"""

import hashlib
import os

import pytest
import pytest_twisted
from twisted.web.http_headers import Headers

from tests.test_web import client, demo, get, loopback  # noqa: F401 (fixtures)

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
