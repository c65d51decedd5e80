"""
The resources, in memory, through real HTTP semantics (treq's StubTreq).
"""

import hashlib
import json
import os

import pytest
import pytest_twisted

from tests.inmemory import PEP691_JSON, client, get


@pytest_twisted.ensureDeferred
async def test_project_page_links_files_with_hashes_and_metadata(demo):
    response, body = await get(client(demo), "/simple/demo-pkg/")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    assert response.headers.getRawHeaders("vary") == ["Accept, Accept-Encoding"]
    page = body.decode()
    wheel = (demo / "Demo_Pkg-1.0-py3-none-any.whl").read_bytes()
    assert f'href="../../packages/Demo_Pkg-1.0-py3-none-any.whl#sha256={hashlib.sha256(wheel).hexdigest()}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page
    assert 'data-core-metadata="sha256=' in page
    assert 'data-dist-info-metadata="sha256=' in page
    assert '<meta name="pypi:repository-version" content="1.4">' in page


@pytest_twisted.ensureDeferred
async def test_metadata_is_advertised_only_where_it_is_served(demo):
    treq = client(demo)
    _, body = await get(treq, "/simple/demo-pkg/")
    sdist_line = next(line for line in body.decode().splitlines() if "demo_pkg-1.0.tar.gz" in line)
    assert "data-core-metadata" not in sdist_line  # Metadata 2.1 sdist
    response, _ = await get(treq, "/packages/demo_pkg-1.0.tar.gz.metadata")
    assert response.code == 404
    _, dep = await get(treq, "/simple/dep/")
    assert 'data-core-metadata="sha256=' in dep.decode()
    assert 'data-gpg-sig="true"' in dep.decode()


@pytest_twisted.ensureDeferred
async def test_metadata_file_matches_its_advertised_hash(demo):
    treq = client(demo)
    response, body = await get(treq, "/simple/demo-pkg/", headers={"Accept": PEP691_JSON})
    document = json.loads(body)
    wheel = next(f for f in document["files"] if f["filename"] == "Demo_Pkg-1.0-py3-none-any.whl")
    response, metadata = await get(treq, "/packages/Demo_Pkg-1.0-py3-none-any.whl.metadata")
    assert response.code == 200
    assert hashlib.sha256(metadata).hexdigest() == wheel["core-metadata"]["sha256"]
    assert b"Requires-Dist: dep>=1" in metadata


@pytest_twisted.ensureDeferred
async def test_json_is_negotiated_and_carries_pep_700_fields(demo):
    response, body = await get(
        client(demo),
        "/simple/demo-pkg/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.01"},
    )
    assert response.headers.getRawHeaders("content-type") == [PEP691_JSON]
    document = json.loads(body)
    assert document["meta"]["api-version"] == "1.4"
    assert document["name"] == "demo-pkg"
    assert document["versions"] == ["1.0", "2.0b1"]
    for entry in document["files"]:
        assert entry["size"] == os.path.getsize(demo / entry["filename"])
        assert entry["upload-time"].endswith("Z")
        assert entry["url"] == "../../packages/" + entry["filename"]
        assert set(entry["hashes"]) == {"sha256"}


@pytest_twisted.ensureDeferred
async def test_format_parameter_and_406(demo):
    treq = client(demo)
    response, body = await get(treq, "/simple/?format=application/vnd.pypi.simple.v1+json")
    assert [p["name"] for p in json.loads(body)["projects"]] == ["Demo_Pkg", "dep"]
    response, _ = await get(treq, "/simple/", headers={"Accept": "image/png"})
    assert response.code == 406


@pytest_twisted.ensureDeferred
async def test_etag_gives_304(demo):
    treq = client(demo)
    response, _ = await get(treq, "/simple/demo-pkg/")
    etag = response.headers.getRawHeaders("etag")[0]
    again, body = await get(treq, "/simple/demo-pkg/", headers={"If-None-Match": etag})
    assert again.code == 304
    assert body == b""


@pytest_twisted.ensureDeferred
async def test_names_are_redirected_to_their_normalized_url(demo):
    treq = client(demo)
    response, _ = await get(treq, "/simple/Demo.Pkg/")
    assert response.code == 301
    assert response.headers.getRawHeaders("location") == ["../../simple/demo-pkg/"]
    response, _ = await get(treq, "/simple/demo-pkg")
    assert response.code == 301
    response, _ = await get(treq, "/demo-pkg/")
    assert response.code == 301
    assert response.headers.getRawHeaders("location") == ["../simple/demo-pkg/"]


@pytest_twisted.ensureDeferred
async def test_unknown_projects_redirect_to_the_fallback_or_404(demo):
    response, _ = await get(client(demo), "/simple/unknown/")
    assert response.code == 303
    assert response.headers.getRawHeaders("location") == ["https://pypi.org/simple/unknown/"]
    response, _ = await get(client(demo, fallback_url=None), "/simple/unknown/")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_sdists_are_sent_as_they_are_with_range_and_etag(demo, loopback):
    site = loopback(demo, cache_control=3600)
    data = (demo / "dep-1.5.tar.gz").read_bytes()
    response, body = await site.get("/packages/dep-1.5.tar.gz")
    assert body == data
    assert response.headers.getRawHeaders("content-encoding") is None
    assert response.headers.getRawHeaders("cache-control") == ["public, max-age=3600"]
    assert response.headers.getRawHeaders("etag") == [f'"{hashlib.sha256(data).hexdigest()}"']
    response, body = await site.get("/packages/dep-1.5.tar.gz", headers={"Range": "bytes=10-19"})
    assert response.code == 206
    assert body == data[10:20]
    response, body = await site.get("/packages/dep-1.5.tar.gz", headers={"If-None-Match": response.headers.getRawHeaders("etag")[0]})
    assert response.code == 304
    response = await site.head("/packages/dep-1.5.tar.gz")
    assert response.headers.getRawHeaders("content-length") == [str(len(data))]


@pytest_twisted.ensureDeferred
async def test_signature_is_served_beside_its_file(demo, loopback):
    response, body = await loopback(demo).get("/packages/dep-1.5.tar.gz.asc")
    assert body.startswith(b"-----BEGIN PGP SIGNATURE")


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "path",
    ["/packages/../setup.cfg", "/packages/%2e%2e/%2e%2e/etc/passwd", "/packages/..%2fsetup.cfg", "/packages/notes.txt", "/packages/x%00.whl"],
)
async def test_only_indexed_files_can_be_downloaded(demo, loopback, path):
    (demo / "notes.txt").write_text("secret")
    response, body = await loopback(demo).get(path)
    assert response.code in (404, 400)
    assert b"secret" not in body


@pytest_twisted.ensureDeferred
async def test_packages_listing_and_welcome_page(demo):
    treq = client(demo)
    _, body = await get(treq, "/packages/")
    assert b'href="dep-1.5.tar.gz"' in body
    response, body = await get(treq, "/")
    assert b"2 projects in 4 files" in body
    assert b"http://example.test/simple/" in body


@pytest_twisted.ensureDeferred
async def test_custom_welcome_page(demo):
    _, body = await get(client(demo, welcome_html=b"<h1>Ours</h1>"), "/")
    assert body == b"<h1>Ours</h1>"


@pytest_twisted.ensureDeferred
async def test_json_api_has_absolute_urls_honouring_forwarded_headers(demo):
    treq = client(demo)
    response, body = await get(
        treq,
        "/pypi/demo-pkg/json",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.example.com", "X-Forwarded-Prefix": "/pypi"},
    )
    document = json.loads(body)
    assert document["info"]["version"] == "1.0"  # the newest final release
    assert document["info"]["requires_dist"] == ["dep>=1"]
    assert sorted(document["releases"]) == ["1.0", "2.0b1"]
    urls = {f["url"] for f in document["urls"]}
    assert "https://pypi.example.com/pypi/packages/Demo_Pkg-1.0-py3-none-any.whl" in urls
    response, body = await get(treq, "/pypi/demo-pkg/2.0b1/json")
    document = json.loads(body)
    assert document["info"]["version"] == "2.0b1"
    assert [f["filename"] for f in document["urls"]] == ["Demo_Pkg-2.0b1-py3-none-any.whl"]
    response, _ = await get(treq, "/pypi/demo-pkg/9.9/json")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_health_endpoint(demo):
    response, body = await get(client(demo, health_endpoint="/-/ready"), "/-/ready")
    assert response.code == 200
