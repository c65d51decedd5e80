"""
Large downloads sent with sendfile(2): whole files and single ranges over a
real loopback connection, clients that stop reading or go away, files
shorter than announced, and the cases left to Twisted's static producers.
"""

import errno
import os

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, threads
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, ResponseFailed, ResponseNeverReceived, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.test.requesthelper import DummyChannel

from tests.rawhttp import exchange
from tests.waiting import wait_for
from twistedpypi.web import sendfile
from twistedpypi.web.sendfile import sendfile_producer

SIZE = 2 * sendfile.TURN_BYTES + 12345  # three turns, the last a partial one
NAME = "big-1.0.tar.gz"


@pytest.fixture
def big(packages):
    (packages / NAME).write_bytes(os.urandom(SIZE))
    return packages


@pytest.fixture
def sends(monkeypatch):
    """The byte counts of the sendfile calls made, each made for real."""
    calls = []
    real = os.sendfile

    def counting(out, source, offset, count):
        sent = real(out, source, offset, count)
        calls.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", counting)
    return calls


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest_twisted.ensureDeferred
async def test_a_large_file_is_sent_whole_mostly_with_sendfile(big, loopback, sends):
    site = loopback(big)
    response, body = await site.get("/packages/" + NAME)
    assert response.code == 200
    assert response.length == SIZE
    assert body == (big / NAME).read_bytes()
    assert sum(sends) == SIZE - 65536  # all but the first block, which carried the headers
    assert all(sent <= sendfile.TURN_BYTES for sent in sends)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "byte_range, first, last",
    [
        ("bytes=100-200000", 100, 200000),
        (f"bytes={sendfile.TURN_BYTES - 10}-", sendfile.TURN_BYTES - 10, SIZE - 1),
        ("bytes=-100000", SIZE - 100000, SIZE - 1),
    ],
)
async def test_a_single_range_is_sent_with_sendfile(big, loopback, sends, byte_range, first, last):
    site = loopback(big)
    response, body = await site.get("/packages/" + NAME, headers={"Range": byte_range})
    assert response.code == 206
    assert response.headers.getRawHeaders("content-range") == [f"bytes {first}-{last}/{SIZE}"]
    assert body == (big / NAME).read_bytes()[first : last + 1]
    assert sum(sends) == last + 1 - first - 65536


@pytest_twisted.ensureDeferred
async def test_small_files_small_ranges_and_several_ranges_are_left_to_twisted(big, loopback, sends):
    site = loopback(big)
    data = (big / NAME).read_bytes()
    response, body = await site.get("/packages/" + NAME, headers={"Range": "bytes=0-65535"})
    assert (response.code, body) == (206, data[:65536])
    response, body = await site.get("/packages/" + NAME, headers={"Range": "bytes=0-99999,200000-299999"})
    assert response.code == 206
    assert data[:100000] in body and data[200000:300000] in body
    assert sends == []


@pytest_twisted.ensureDeferred
async def test_pipelined_requests_are_answered_in_order_after_a_sendfile_body(big, loopback):
    site = loopback(big)
    data = (big / NAME).read_bytes()
    get = b"GET /packages/" + NAME.encode() + b" HTTP/1.1\r\nHost: test\r\n"
    requests = get + b"\r\n" + get + b"Range: bytes=100-199\r\n\r\n" + get + b"Connection: close\r\n\r\n"
    received = await threads.deferToThread(exchange, site.port.getHost().port, requests)
    bodies = []
    for _ in range(3):
        head, received = received.split(b"\r\n\r\n", 1)
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1])
        bodies.append((head.split(b"\r\n")[0], received[:length]))
        received = received[length:]
    assert bodies == [
        (b"HTTP/1.1 200 OK", data),
        (b"HTTP/1.1 206 Partial Content", data[100:200]),
        (b"HTTP/1.1 200 OK", data),
    ]
    assert received == b""


class StalledClient(protocol.Protocol):
    """Asks for a file and reads nothing until told to go."""

    def __init__(self, path: bytes) -> None:
        self.path = path
        self.closed = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"GET " + self.path + b" HTTP/1.1\r\nHost: test\r\n\r\n")
        self.transport.pauseProducing()

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_then_goes_away_leaves_nothing_open(big, loopback, sends):
    site = loopback(big)
    before = open_descriptors()
    creator = protocol.ClientCreator(reactor, StalledClient, b"/packages/" + NAME.encode())
    client = await creator.connectTCP("127.0.0.1", site.port.getHost().port)
    # The socket buffers fill, and the server waits for them to drain.
    await wait_for(lambda: sum(sends) > 0 and open_descriptors() == before + 4, timeout=10)  # client, server, file, duplicate
    sent = sum(sends)
    client.transport.abortConnection()
    await client.closed
    await wait_for(lambda: open_descriptors() == before, timeout=10)
    assert sum(sends) == sent < SIZE


@pytest_twisted.ensureDeferred
async def test_a_download_with_no_descriptor_left_fails_alone(big, loopback, monkeypatch):
    site = loopback(big)
    before = open_descriptors()

    def exhausted(fd):
        raise OSError(errno.EMFILE, "Too many open files")

    failures = []

    def observe(event):
        if "log_failure" in event or event.get("isError"):  # twisted.logger's, or twisted.python.log's
            failures.append(event)

    monkeypatch.setattr(os, "dup", exhausted)
    globalLogPublisher.addObserver(observe)
    try:
        with pytest.raises(ResponseFailed):
            await site.get("/packages/" + NAME)
    finally:
        globalLogPublisher.removeObserver(observe)
        monkeypatch.undo()
    assert failures == []  # nothing left for the reactor to log as unhandled
    await wait_for(lambda: open_descriptors() == before, timeout=10)
    response, body = await site.get("/packages/" + NAME)
    assert (response.code, len(body)) == (200, SIZE)


class ShortFile(Resource):
    """Announces more bytes than its file has, as a file truncated under a download would."""

    isLeaf = True

    def __init__(self, path, missing: int) -> None:
        super().__init__()
        self.path = path
        self.missing = missing

    def render_GET(self, request):
        length = os.path.getsize(self.path) + self.missing
        request.setHeader(b"content-length", b"%d" % length)
        sendfile_producer(request, open(self.path, "rb"), 0, length).start()
        return NOT_DONE_YET


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("size", [SIZE, 70000, 30000])  # past the first block, within it, short of it
async def test_a_file_shorter_than_announced_breaks_the_download_rather_than_hang(tmp_path, size):
    path = tmp_path / NAME
    path.write_bytes(os.urandom(size))
    port = reactor.listenTCP(0, Site(ShortFile(str(path), 100000)), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/".encode()

    async def download():
        response = await Agent(reactor).request(b"GET", url, Headers())
        return await readBody(response)

    try:
        # A hang fails with TimeoutError; a file short of its first block
        # breaks the connection before the headers are out.
        with pytest.raises((ResponseFailed, ResponseNeverReceived)):
            await defer.Deferred.fromCoroutine(download()).addTimeout(10, reactor)
    finally:
        await port.stopListening()


def test_a_request_not_on_a_tcp_socket_is_left_to_twisted(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(os.urandom(200000))
    with open(path, "rb") as opened:
        assert sendfile_producer(Request(DummyChannel()), opened, 0, 200000) is None
