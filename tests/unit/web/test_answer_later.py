"""
An answer known only later (L{twistedpypi.web.respond.render_later}): sent
as a synchronous one would be, a failure answered 500, and the work
cancelled when the client goes away.  Driven over a loopback port.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import deferLater
from twisted.web.client import Agent, readBody
from twisted.web.resource import Resource
from twisted.web.server import Site

from twistedpypi.web.respond import render_later


class Later(Resource):
    """
    Answers each request with what C{self.waiting}'s next Deferred gives,
    and remembers whether the Deferred was cancelled.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Deferred] = []
        self.cancelled: list[Deferred] = []

    def render_GET(self, request):
        return render_later(request, self._answer(request))

    async def _answer(self, request) -> bytes:
        work: Deferred = Deferred(self.cancelled.append)
        self.waiting.append(work)
        body = await work
        request.setHeader(b"content-type", b"text/plain")
        return body


@pytest.fixture
def later():
    resource = Later()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    resource.url = f"http://127.0.0.1:{port.getHost().port}/"
    yield resource
    pytest_twisted.blockon(port.stopListening())


async def until(condition, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("timed out")


@pytest_twisted.ensureDeferred
async def test_the_body_given_later_is_sent_with_its_length(later):
    response = Agent(reactor).request(b"GET", later.url.encode())
    await until(lambda: later.waiting)
    later.waiting[0].callback(b"given later\n")
    response = await response
    assert response.code == 200
    # Twisted's client takes Content-Length out of the headers.
    assert response.length == 12
    assert await readBody(response) == b"given later\n"


@pytest_twisted.ensureDeferred
async def test_a_head_request_gets_the_length_and_no_body(later):
    response = Agent(reactor).request(b"HEAD", later.url.encode())
    await until(lambda: later.waiting)
    later.waiting[0].callback(b"given later\n")
    response = await response
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-length") == [b"12"]
    assert await readBody(response) == b""


@pytest_twisted.ensureDeferred
async def test_work_that_fails_is_answered_500_with_a_fixed_phrase(later):
    response = Agent(reactor).request(b"GET", later.url.encode())
    await until(lambda: later.waiting)
    later.waiting[0].errback(RuntimeError("a bug, with\r\nclient text"))
    response = await response
    assert (response.code, response.phrase) == (500, b"Internal Server Error")
    body = await readBody(response)
    assert b"client text" not in body


class SendAndHangUp(Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


@pytest_twisted.ensureDeferred
async def test_a_client_going_away_cancels_the_work_and_nothing_is_written(later):
    factory = ClientFactory.forProtocol(SendAndHangUp)
    connector = reactor.connectTCP("127.0.0.1", int(later.url.rsplit(":", 1)[1].strip("/")), factory)
    await until(lambda: later.waiting)
    connector.disconnect()
    await until(lambda: later.cancelled)
    assert later.cancelled == later.waiting
