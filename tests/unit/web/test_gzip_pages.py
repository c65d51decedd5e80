"""
Pages kept gzip-compressed in memory, and sent so to clients that accept it.
"""

import gzip

import pytest
import pytest_twisted

from tests.distributions import wheel_bytes, write
from twistedpypi.index.model import GZIP_FROM, Page
from twistedpypi.web.respond import accepts_gzip


@pytest.fixture
def many_versions(packages):
    for minor in range(12):
        write(packages, wheel_bytes("demo", f"1.{minor}"))
    return packages


@pytest_twisted.ensureDeferred
async def test_a_client_accepting_gzip_gets_the_page_compressed(many_versions, loopback):
    server = loopback(many_versions)
    plain, plain_body = await server.get("/simple/demo/")
    packed, packed_body = await server.get("/simple/demo/", {"Accept-Encoding": "gzip, deflate"})
    assert plain.headers.getRawHeaders("content-encoding") is None
    assert packed.headers.getRawHeaders("content-encoding") == ["gzip"]
    assert gzip.decompress(packed_body) == plain_body
    assert len(packed_body) * 2 < len(plain_body)
    for response in (plain, packed):
        assert "Accept-Encoding" in response.headers.getRawHeaders("vary")[0]
    # One ETag per representation, each answered with 304 in its own coding.
    [plain_tag], [packed_tag] = plain.headers.getRawHeaders("etag"), packed.headers.getRawHeaders("etag")
    assert plain_tag != packed_tag
    again, body = await server.get("/simple/demo/", {"Accept-Encoding": "gzip", "If-None-Match": packed_tag})
    assert (again.code, body) == (304, b"")
    # The same page in the other coding is the same page.
    plain_again, body = await server.get("/simple/demo/", {"If-None-Match": packed_tag})
    assert (plain_again.code, body) == (304, b"")
    packed_again, body = await server.get("/simple/demo/", {"Accept-Encoding": "gzip", "If-None-Match": plain_tag})
    assert (packed_again.code, body) == (304, b"")
    other, _ = await server.get("/simple/demo/", {"Accept-Encoding": "gzip", "If-None-Match": '"other"'})
    assert other.code == 200


@pytest_twisted.ensureDeferred
async def test_a_client_refusing_gzip_gets_it_plain(many_versions, loopback):
    server = loopback(many_versions)
    response, body = await server.get("/simple/demo/", {"Accept-Encoding": "gzip;q=0, identity"})
    assert response.headers.getRawHeaders("content-encoding") is None
    assert b"demo-1.11-py3-none-any.whl" in body


def test_small_pages_are_kept_as_they_are():
    small = Page.of(b"x" * (GZIP_FROM - 1), b"text/plain")
    large = Page.of(b"x" * GZIP_FROM, b"text/plain")
    assert small.gzipped is None and small.body == b"x" * (GZIP_FROM - 1)
    assert gzip.decompress(large.gzipped) == large.body == b"x" * GZIP_FROM
    assert large.etag == Page.of(b"x" * GZIP_FROM, b"text/plain").etag != large.gzip_etag


@pytest.mark.parametrize(
    "header, accepted",
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"gzip, deflate", True),
        (b"deflate, GZIP;q=0.5", True),
        (b"x-gzip", True),
        (b"*", True),
        (b"gzip;q=0", False),
        (b"gzip; q=0.000", False),
        (b"gzip;q=nonsense", False),
        (b"identity, br", False),
    ],
)
def test_accept_encoding(header, accepted):
    assert accepts_gzip(header) is accepted
    # Again, as remembered from the first time.
    assert accepts_gzip(header) is accepted
