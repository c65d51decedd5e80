"""
Byte ranges: the policy of L{twistedpypi.web.ranges} (merged, capped, never
more bytes than the file), and the real server answering hostile C{Range}
headers with a bounded answer and staying up for everyone else.
"""

from __future__ import annotations

import io
import itertools
import os
import socket
import time
import urllib.request
import zipfile

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.distributions import wheel_bytes, write
from tests.upstream import publish
from twistedpypi.web import ranges
from twistedpypi.web.files import MultipartRangesProducer
from twistedpypi.web.ranges import (
    MAX_RANGES,
    RangePlan,
    Span,
    merge,
    parse_range_header,
    plan_ranges,
    resolve,
)

BOUNDARY = "3d6b6a416f9b5f1c"
CONTENT_TYPE = b"application/octet-stream"


# The policy, without a server.


def plan(header: bytes, size: int) -> RangePlan:
    return plan_ranges(header, size, CONTENT_TYPE, BOUNDARY)


def test_a_malformed_header_or_another_unit_is_ignored():
    for header in [b"bytes=nonsense", b"bytes=5-1", b"bytes=-", b"items=0-1", b"bytes 0-1", b"bytes=+1-2", b"bytes=1_0-20"]:
        assert parse_range_header(header) is None, header
        assert plan(header, 100) == RangePlan(200, ())


def test_ranges_are_parsed_as_the_rfc_writes_them():
    assert parse_range_header(b"bytes=0-9") == [(0, 9)]
    assert parse_range_header(b"Bytes = 0-9 , ,-5,7-") == [(0, 9), (None, 5), (7, None)]


def test_more_ranges_than_the_cap_send_the_whole_file():
    header = b"bytes=" + b",".join(b"%d-%d" % (n * 10, n * 10) for n in range(MAX_RANGES + 1))
    assert parse_range_header(header) is None
    assert plan(header, 10_000) == RangePlan(200, ())


def test_ranges_are_resolved_against_the_size():
    assert resolve([(0, 9), (95, 200), (None, 10), (100, None), (None, 0)], 100) == [
        Span(0, 10),
        Span(95, 5),
        Span(90, 10),
    ]
    # A suffix longer than the file is the whole file (RFC 9110 14.1.2).
    assert resolve([(None, 1000)], 774) == [Span(0, 774)]


def test_overlapping_and_adjacent_ranges_are_merged_in_order():
    assert merge([Span(10, 5), Span(0, 10), Span(12, 10), Span(40, 1)]) == [Span(0, 22), Span(40, 1)]


def test_ranges_that_merge_into_one_are_one_partial_answer():
    assert plan(b"bytes=0-0,1-1,2-2,3-3", 774) == RangePlan(206, (Span(0, 4),))
    assert plan(b"bytes=0-,0-,0-", 262_144) == RangePlan(206, (Span(0, 262_144),))


def test_ranges_that_would_cost_more_than_the_file_send_the_whole_file():
    assert plan(b"bytes=0-0,2-2,4-4", 100) == RangePlan(200, ())


def test_ranges_worth_sending_apart_are_a_multipart_answer():
    assert plan(b"bytes=0-99999,200000-299999", 1_000_000) == RangePlan(
        206, (Span(0, 100_000), Span(200_000, 100_000))
    )


def test_no_satisfiable_range_is_416():
    assert plan(b"bytes=1000-,2000-2001", 774) == RangePlan(416, ())
    assert plan(b"bytes=-0", 774) == RangePlan(416, ())
    assert plan(b"bytes=0-", 0) == RangePlan(416, ())


def test_the_multipart_body_is_as_long_as_announced():
    spans = [Span(0, 3), Span(10, 2)]
    parts, closing = ranges.multipart_parts(spans, 20, CONTENT_TYPE, BOUNDARY)
    data = bytes(range(20))
    body = b"".join(separator + data[span.offset : span.end] for separator, span in parts) + closing
    assert len(body) == ranges.multipart_length(spans, 20, CONTENT_TYPE, BOUNDARY)
    assert body.startswith(b"\r\n--" + BOUNDARY.encode() + b"\r\nContent-Type: application/octet-stream\r\n")
    assert b"Content-Range: bytes 10-11/20\r\n\r\n\n\x0b" in body
    assert body.endswith(b"\r\n--" + BOUNDARY.encode() + b"--\r\n")


class StrictMemoryFile(io.BytesIO):
    """A file in memory that refuses the reads a bounded loop never makes."""

    def read(self, size=-1):
        assert size > 0, f"read({size})"
        return super().read(size)


class CollectingRequest:
    """What a L{MultipartRangesProducer} writes to, pulled by hand."""

    def __init__(self):
        self.written = []
        self.producer = None
        self.finished = False
        self.aborted = False
        self.transport = self

    def registerProducer(self, producer, streaming):
        assert not streaming
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def write(self, data):
        self.written.append(data)

    def finish(self):
        self.finished = True

    def abortConnection(self):
        self.aborted = True
        self.producer = None


def pull(request, turns=10_000):
    for _ in range(turns):
        if request.producer is None:
            return
        request.producer.resumeProducing()
    raise AssertionError(f"still producing after {turns} turns")


def test_the_multipart_producer_ends_even_with_separators_larger_than_a_block():
    # More parts than the policy allows, as if one slipped through: the
    # separators alone are larger than a block (where Twisted's producer
    # reads a negative length, and an in-memory file answers it for ever).
    data = bytes(range(256)) * 4
    spans = [Span(offset, 1) for offset in range(1000)]
    parts, closing = ranges.multipart_parts(spans, len(data), CONTENT_TYPE, BOUNDARY)
    assert sum(len(separator) for separator, _ in parts) > MultipartRangesProducer.BLOCK_SIZE
    request = CollectingRequest()
    MultipartRangesProducer(request, StrictMemoryFile(data), parts, closing).start()
    pull(request)
    assert request.finished and not request.aborted
    body = b"".join(request.written)
    assert body == b"".join(separator + data[span.offset : span.end] for separator, span in parts) + closing
    assert all(len(block) <= MultipartRangesProducer.BLOCK_SIZE + len(parts[0][0]) + len(closing) for block in request.written)


def test_the_multipart_producer_aborts_a_file_shorter_than_its_parts():
    parts, closing = ranges.multipart_parts([Span(0, 10), Span(90, 20)], 110, CONTENT_TYPE, BOUNDARY)
    request = CollectingRequest()
    MultipartRangesProducer(request, StrictMemoryFile(bytes(100)), parts, closing).start()
    pull(request)
    assert request.aborted and not request.finished


range_spec = st.one_of(
    st.tuples(st.integers(0, 2000), st.none()),
    st.tuples(st.none(), st.integers(0, 2000)),
    st.tuples(st.integers(0, 2000), st.integers(0, 2000)).map(sorted).map(tuple),
)


def header_of(specs) -> bytes:
    return b"bytes=" + b",".join(
        (b"" if first is None else b"%d" % first) + b"-" + (b"" if last is None else b"%d" % last)
        for first, last in specs
    )


@settings(max_examples=500, deadline=None)
@given(specs=st.lists(range_spec, min_size=1, max_size=3 * MAX_RANGES), size=st.integers(0, 1500))
def test_an_answer_never_overlaps_never_has_more_parts_than_the_cap_nor_more_bytes_than_the_file(specs, size):
    header = header_of(specs)
    answer = plan(header, size)
    assert answer.status in (200, 206, 416)
    spans = answer.spans
    assert len(spans) <= MAX_RANGES
    for before, after in itertools.pairwise(spans):
        assert before.end < after.offset  # neither overlapping nor adjacent
    for span in spans:
        assert 0 <= span.offset < span.end <= size
    if answer.status == 206:
        assert spans
        length = spans[0].length if len(spans) == 1 else ranges.multipart_length(spans, size, CONTENT_TYPE, BOUNDARY)
        assert length <= size
    else:
        assert spans == ()
    if len(specs) > MAX_RANGES:
        assert answer.status == 200
    # Every byte asked for (of those in the file) is sent, and nothing else.
    if answer.status == 206:
        wanted = set()
        for span in resolve(parse_range_header(header), size):
            wanted.update(range(span.offset, span.end))
        sent = set()
        for span in spans:
            sent.update(range(span.offset, span.end))
        assert sent == wanted


# The real server.

SMALL_WHEEL = "small-1.0-py3-none-any.whl"
LARGE_WHEEL = "large-1.0-py3-none-any.whl"
LARGE_SIZE = 1024 * 1024
ANSWER_TIMEOUT = 10.0


def padded_wheel(name: str, version: str, size: int) -> tuple[str, bytes]:
    """A valid wheel of about C{size} bytes, mostly an incompressible blob."""
    filename, data = wheel_bytes(name, version)
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(f"{name}/blob.bin", (2020, 1, 1, 0, 0, 0)), os.urandom(size - len(data) - 200))
    return filename, buffer.getvalue()


@pytest.fixture
def server(packages, start_server):
    small = write(packages, wheel_bytes("small", "1.0"))
    with open(small + ".asc", "wb") as signature:
        signature.write(b"-----BEGIN PGP SIGNATURE-----\n<html><script>alert(1)</script>\n")
    write(packages, padded_wheel("large", "1.0", LARGE_SIZE))
    served = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    deadline = time.monotonic() + 20
    while not all(name in fetch(served, "/packages/")[2] for name in (SMALL_WHEEL.encode(), LARGE_WHEEL.encode())):
        assert time.monotonic() < deadline, "the files never appeared in the listing"
        time.sleep(0.1)
    served.files = {name: (packages / name).read_bytes() for name in (SMALL_WHEEL, LARGE_WHEEL)}
    served.sizes = {name: len(data) for name, data in served.files.items()}
    return served


def fetch(server, path: str, headers: dict[str, str] | None = None, read_limit: int = 64 * 1024 * 1024):
    """
    GET C{path} on a connection of its own, with a short timeout; the
    status line, the headers (lower-cased names), at most C{read_limit}
    bytes of body, and whether the body ended as announced.
    """
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    received = bytearray()
    deadline = time.monotonic() + ANSWER_TIMEOUT
    with socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_TIMEOUT) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while len(received) < read_limit and time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answered = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answered[name.strip().lower()] = value.strip()
    complete = "content-length" in answered and len(body) == int(answered["content-length"])
    return status_line, answered, body, complete


def assert_health_answers_within_a_second(server):
    started = time.monotonic()
    with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
        assert response.status == 200
    assert time.monotonic() - started < 1.0


def assert_bounded_answer(server, name: str, header: str):
    size = server.sizes[name]
    status_line, answered, body, complete = fetch(server, "/packages/" + name, {"Range": header}, read_limit=4 * size)
    assert complete, (status_line, answered, len(body))
    assert int(answered["content-length"]) <= size
    assert len(body) <= size
    assert_health_answers_within_a_second(server)
    return status_line, answered, body


@pytest.mark.parametrize("name", [SMALL_WHEEL, LARGE_WHEEL])
def test_a_thousand_one_byte_ranges_get_the_whole_file_and_the_server_stays_up(server, name):
    header = "bytes=" + ",".join(f"{n}-{n}" for n in range(1000))
    status_line, answered, body = assert_bounded_answer(server, name, header)
    assert status_line == "HTTP/1.1 200 OK"
    assert "content-range" not in answered
    assert body == server.files[name]


@pytest.mark.parametrize("name", [SMALL_WHEEL, LARGE_WHEEL])
def test_a_thousand_overlapping_ranges_send_the_file_once(server, name):
    status_line, _, body = assert_bounded_answer(server, name, "bytes=" + ",".join(["0-"] * 1000))
    assert status_line == "HTTP/1.1 200 OK"
    assert body == server.files[name]


@pytest.mark.parametrize("name", [SMALL_WHEEL, LARGE_WHEEL])
def test_a_few_overlapping_ranges_are_merged_into_one(server, name):
    size = server.sizes[name]
    status_line, answered, body = assert_bounded_answer(server, name, "bytes=0-,0-,10-20,0-")
    assert status_line == "HTTP/1.1 206 Partial Content"
    assert answered["content-range"] == f"bytes 0-{size - 1}/{size}"
    assert body == server.files[name]


@pytest.mark.parametrize("name", [SMALL_WHEEL, LARGE_WHEEL])
def test_a_few_ranges_far_apart_are_still_a_multipart_answer(server, name):
    data = server.files[name]
    size, middle = len(data), len(data) // 2
    header = f"bytes=-10,{middle}-{middle + 9},0-9"
    status_line, answered, body = assert_bounded_answer(server, name, header)
    assert status_line == "HTTP/1.1 206 Partial Content"
    media_type, _, boundary = answered["content-type"].partition("; boundary=")
    assert media_type == "multipart/byteranges"
    delimiter = b"\r\n--" + boundary.strip('"').encode()
    *parts, closing = body.split(delimiter)[1:]
    assert closing == b"--\r\n"
    assert [part.partition(b"\r\n\r\n")[2] for part in parts] == [data[:10], data[middle : middle + 10], data[-10:]]
    assert [part.lower().partition(b"content-range: ")[2].partition(b"\r\n")[0] for part in parts] == [
        f"bytes 0-9/{size}".encode(),
        f"bytes {middle}-{middle + 9}/{size}".encode(),
        f"bytes {size - 10}-{size - 1}/{size}".encode(),
    ]


@pytest.mark.parametrize("name", [SMALL_WHEEL, LARGE_WHEEL])
def test_ranges_past_the_end_are_416(server, name):
    size = server.sizes[name]
    status_line, answered, _, complete = fetch(server, "/packages/" + name, {"Range": f"bytes={size}-,{size + 5}-"})
    assert status_line.startswith("HTTP/1.1 416 ")
    assert answered["content-range"] == f"bytes */{size}"
    assert complete
    assert_health_answers_within_a_second(server)


@pytest.mark.parametrize("suffix", [".metadata", ".asc", ""])
def test_files_from_uploaders_are_never_sniffed(server, suffix):
    status_line, answered, _, complete = fetch(server, "/packages/" + SMALL_WHEEL + suffix)
    assert status_line == "HTTP/1.1 200 OK"
    assert complete
    assert answered["x-content-type-options"] == "nosniff"


# Files of the upstream index, from the proxy's cache.


@pytest_twisted.ensureDeferred
async def test_a_cached_upstream_file_answers_hostile_ranges_with_the_file_once(
    servers, packages, upstream_project  # noqa: F811 (fixtures)
):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename, data, _ = upstream_project["wheel"]
    proxy = servers.proxy(packages, url)
    response, body = await proxy.get(f"/upstream/remote/{filename}")  # streamed while it downloads
    assert (response.code, body) == (200, data)
    assert response.headers.getRawHeaders("x-content-type-options") == ["nosniff"]
    for header in ["bytes=" + ",".join(f"{n}-{n}" for n in range(1000)), "bytes=" + ",".join(["0-"] * 1000)]:
        answered = Deferred.fromCoroutine(proxy.get(f"/upstream/remote/{filename}", {"Range": header}))
        response, body = await answered.addTimeout(ANSWER_TIMEOUT, reactor)
        assert (response.code, body) == (200, data)
        assert response.headers.getRawHeaders("x-content-type-options") == ["nosniff"]
    response, body = await proxy.get(f"/upstream/remote/{filename}", {"Range": "bytes=0-1,1-3,2-2"})
    assert response.code == 206
    assert response.headers.getRawHeaders("content-range") == [f"bytes 0-3/{len(data)}"]
    assert body == data[:4]
