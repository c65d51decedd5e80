"""
Small files kept in memory (--file-cache): answered exactly as from disk,
and never once the file on disk or its description in the index changed.
"""

import hashlib
import os
import time

import pytest
import pytest_twisted
from twisted.web.http_headers import Headers
from twisted.web.test.requesthelper import DummyRequest

from twistedpypi.web import files
from twistedpypi.web.files import SmallFileCache

SDIST = "/packages/dep-1.5.tar.gz"


def packages_of(site):
    return site.port.factory.resource.children[b"packages"]


def settled_clock():
    """A clock that finds every file written by the test long settled."""
    return lambda: time.time() + 60


@pytest.fixture
def cached(demo, loopback):  # noqa: F811 (fixture)
    """A site whose cache takes the demo files although they were just written."""
    site = loopback(demo)
    packages_of(site).small_files = SmallFileCache(clock=settled_clock(), min_uses=1)
    return site


async def answer(site, method, url, headers):
    response = await site.agent.request(
        method, (site.base + url).encode(), Headers({k: [v] for k, v in headers.items()})
    )
    from twisted.web.client import readBody

    body = await readBody(response) if method == b"GET" else b""
    seen = {
        name.lower(): values
        for name, values in response.headers.getAllRawHeaders()
        if name.lower() != b"date"
    }
    return response.code, seen, body


def conditional_requests(demo):  # noqa: F811 (fixture name)
    data = (demo / "dep-1.5.tar.gz").read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(os.path.getmtime(demo / "dep-1.5.tar.gz") + 1))
    return [
        (b"GET", {}),
        (b"HEAD", {}),
        (b"GET", {"Range": "bytes=10-19"}),
        (b"GET", {"Range": "bytes=0-1,5-6"}),
        (b"GET", {"Range": "bytes=nonsense"}),
        (b"GET", {"Range": "bytes=0-9", "If-Range": '"stale"'}),
        (b"GET", {"Range": "bytes=0-9", "If-Range": etag}),
        (b"GET", {"If-None-Match": etag}),
        (b"HEAD", {"If-None-Match": etag}),
        (b"GET", {"If-Modified-Since": modified}),
    ]


@pytest_twisted.ensureDeferred
async def test_a_file_in_memory_is_answered_exactly_as_from_disk(demo, loopback, cached, monkeypatch):  # noqa: F811
    from_disk = loopback(demo, file_cache_size=0)
    assert packages_of(from_disk).small_files is None
    with monkeypatch.context() as no_small_files:
        # static.File reading the file as it does any other.
        no_small_files.setattr(files, "SMALL_FILE_SIZE", -1)
        expected = [await answer(from_disk, method, SDIST, headers) for method, headers in conditional_requests(demo)]
    await answer(cached, b"GET", SDIST, {})
    assert len(packages_of(cached).small_files) == 1

    def no_disk(*args):
        raise AssertionError("opened a file kept in memory")

    monkeypatch.setattr(files, "open_regular_file", no_disk)
    monkeypatch.setattr(files, "open_regular_descriptor", no_disk)
    got = [await answer(cached, method, SDIST, headers) for method, headers in conditional_requests(demo)]
    for request, want, have in zip(conditional_requests(demo), expected, got):
        if b"multipart/byteranges" in b"".join(want[1].get(b"content-type", [])):
            # Each multipart answer has its own random boundary.
            want, have = want[:2], have[:2]
            want[1].pop(b"content-type"), have[1].pop(b"content-type")
        assert (request, have) == (request, want)


@pytest_twisted.ensureDeferred
async def test_a_file_replaced_with_the_same_size_and_time_is_sent_anew(demo, cached):  # noqa: F811
    path = demo / "dep-1.5.tar.gz"
    old = path.read_bytes()
    _, _, body = await answer(cached, b"GET", SDIST, {})
    assert body == old
    new = bytes(255 - byte for byte in old)
    replacement = demo / ".replacement"
    replacement.write_bytes(new)
    mtime = os.stat(path).st_mtime_ns
    os.utime(replacement, ns=(mtime, mtime))
    os.replace(replacement, path)
    code, _, body = await answer(cached, b"GET", SDIST, {})
    assert (code, body) == (200, new)


@pytest_twisted.ensureDeferred
async def test_a_file_rewritten_in_place_with_the_same_size_and_time_is_sent_anew(demo, cached):  # noqa: F811
    path = demo / "dep-1.5.tar.gz"
    old = path.read_bytes()
    await answer(cached, b"GET", SDIST, {})
    mtime = os.stat(path).st_mtime_ns
    # The settled clock says the file was read long after it was written:
    # make it so for the file's change time, which has a clock tick's grain.
    time.sleep(0.05)
    new = bytes(255 - byte for byte in old)
    path.write_bytes(new)
    os.utime(path, ns=(mtime, mtime))
    code, _, body = await answer(cached, b"GET", SDIST, {})
    assert (code, body) == (200, new)


@pytest_twisted.ensureDeferred
async def test_a_removed_file_is_not_found_rather_than_sent_from_memory(demo, cached):  # noqa: F811
    await answer(cached, b"GET", SDIST, {})
    os.unlink(demo / "dep-1.5.tar.gz")
    code, _, _ = await answer(cached, b"GET", SDIST, {})
    assert code == 404
    assert len(packages_of(cached).small_files) == 0


@pytest_twisted.ensureDeferred
async def test_a_file_being_overwritten_is_503_even_after_it_was_kept(demo, cached):  # noqa: F811
    path = demo / "dep-1.5.tar.gz"
    await answer(cached, b"GET", SDIST, {})
    path.write_bytes(path.read_bytes()[:100])
    code, headers, _ = await answer(cached, b"GET", SDIST, {})
    assert code == 503
    assert headers[b"retry-after"] == [b"2"]


@pytest_twisted.ensureDeferred
async def test_a_file_just_written_is_sent_but_not_kept(demo, loopback):  # noqa: F811
    site = loopback(demo)
    code, _, body = await answer(site, b"GET", SDIST, {})
    assert (code, body) == (200, (demo / "dep-1.5.tar.gz").read_bytes())
    assert len(packages_of(site).small_files) == 0


@pytest_twisted.ensureDeferred
async def test_signatures_are_kept_too(demo, cached):  # noqa: F811
    _, _, body = await answer(cached, b"GET", SDIST + ".asc", {})
    assert body == (demo / "dep-1.5.tar.gz.asc").read_bytes()
    assert len(packages_of(cached).small_files) == 1


def test_a_small_file_is_sent_from_one_read_without_a_cache_too(tmp_path):
    (path,) = write_files(tmp_path, [1000])
    resource = files.DistributionFileResource(path, b'"t"', None, small_files=None)
    request = DummyRequest([b""])
    # The body itself, rather than NOT_DONE_YET and a producer.
    assert resource.render_GET(request) == b"\0" * 1000


def test_a_large_file_is_opened_once(tmp_path, monkeypatch):
    (path,) = write_files(tmp_path, [files.SMALL_FILE_SIZE + 1])
    resource = files.DistributionFileResource(path, b'"t"', None, small_files=SmallFileCache())
    opened = []
    real_open = os.open

    def counting_open(name, *args, **kwargs):
        if name == path:
            opened.append(name)
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    stream, status = resource.open_for_request()
    monkeypatch.undo()
    with stream:
        assert stream.read() == b"\0" * (files.SMALL_FILE_SIZE + 1)
    assert status.st_size == files.SMALL_FILE_SIZE + 1
    assert opened == [path]


def write_files(directory, sizes):
    paths = []
    for number, size in enumerate(sizes):
        path = directory / f"f{number}"
        path.write_bytes(bytes([number]) * size)
        paths.append(str(path))
    return paths


def keep(cache, path, tag=b'"t"'):
    with open(path, "rb") as stream:
        status = os.fstat(stream.fileno())
        if cache.wants(path, status):
            cache.put(path, tag, stream.read(), status)


def test_the_cache_stays_within_its_bound_dropping_the_least_recently_served(tmp_path):
    one = 1000 + SmallFileCache.ENTRY_OVERHEAD
    cache = SmallFileCache(2 * one, clock=settled_clock(), min_uses=1)
    first, second, third = write_files(tmp_path, [1000, 1000, 1000])
    keep(cache, first)
    keep(cache, second)
    assert cache.get(first, b'"t"')[0] == b"\0" * 1000
    keep(cache, third)
    assert cache.size <= 2 * one
    assert cache.get(second, b'"t"') is None
    assert cache.get(first, b'"t"') is not None and cache.get(third, b'"t"') is not None


def test_the_cache_keeps_neither_large_files_nor_files_larger_than_itself(tmp_path):
    large, medium = write_files(tmp_path, [files.SMALL_FILE_SIZE + 1, 3000])
    cache = SmallFileCache(2000, clock=settled_clock(), min_uses=1)
    keep(cache, large)
    keep(cache, medium)
    assert len(cache) == 0 and cache.size == 0


def test_a_file_the_index_describes_anew_is_not_served_from_memory(tmp_path):
    (path,) = write_files(tmp_path, [10])
    cache = SmallFileCache(clock=settled_clock(), min_uses=1)
    keep(cache, path, b'"old"')
    assert cache.get(path, b'"new"') is None
    assert len(cache) == 0


def test_a_file_is_kept_from_its_second_read(tmp_path):
    (path,) = write_files(tmp_path, [1000])
    cache = SmallFileCache(clock=settled_clock())
    keep(cache, path)
    assert cache.get(path, b'"t"') is None
    keep(cache, path)
    assert cache.get(path, b'"t"')[0] == b"\0" * 1000


def test_files_read_once_each_in_turn_push_nothing_out(tmp_path):
    """A mirror reading every file once: the popular file stays."""
    one = 1000 + SmallFileCache.ENTRY_OVERHEAD
    cache = SmallFileCache(4 * one, clock=settled_clock())
    popular, *others = write_files(tmp_path, [1000] * 40)
    keep(cache, popular)
    keep(cache, popular)
    for path in others:
        keep(cache, path)
    assert len(cache) == 1 and cache.get(popular, b'"t"') is not None
    # Too long ago to count: a second pass over them keeps none either.
    for path in others:
        keep(cache, path)
    assert len(cache) == 1


@pytest_twisted.ensureDeferred
async def test_the_second_download_of_a_file_is_kept(demo, loopback):  # noqa: F811
    site = loopback(demo)
    packages_of(site).small_files = SmallFileCache(clock=settled_clock())
    for kept in (0, 1, 1):
        code, _, body = await answer(site, b"GET", SDIST, {})
        assert (code, body) == (200, (demo / "dep-1.5.tar.gz").read_bytes())
        assert len(packages_of(site).small_files) == kept
