"""
Requests that arrive before the first scan wait for it, each on its own: a
client that hangs up while waiting does not keep the others waiting.
"""

import socket

import pytest_twisted
from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for, index_directory
from twistedpypi.metrics import Metrics
from twistedpypi.web.root import Root
from twistedpypi.web.site import IndexSite


class ScanningWatcher:
    """A watcher whose first scan finishes when the test says so."""

    is_ready = False

    def __init__(self) -> None:
        self.ready = defer.Deferred()

    def finish(self) -> None:
        self.is_ready = True
        self.ready.callback(None)


def ask(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return client


def answer(client: socket.socket) -> bytes:
    client.settimeout(5)
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except socket.timeout:
        pass
    client.close()
    return data


@pytest_twisted.ensureDeferred
async def test_a_client_gone_while_waiting_for_the_first_scan_does_not_stall_the_others(packages):
    write(packages, wheel_bytes("lib", "1.0"))
    metrics = Metrics()
    watcher = ScanningWatcher()
    site = IndexSite(Root(config_for(packages), index_directory(packages), metrics=metrics), watcher, metrics=metrics)
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    port = listening.getHost().port
    try:
        impatient = ask(port)
        patient = ask(port)
        for _ in range(200):
            if site.in_flight.count == 2:
                break
            await deferLater(reactor, 0.01)
        assert site.in_flight.count == 2
        impatient.close()
        for _ in range(200):
            if site.in_flight.count == 1:
                break
            await deferLater(reactor, 0.01)
        later = ask(port)
        for _ in range(200):
            if site.in_flight.count == 2:
                break
            await deferLater(reactor, 0.01)
        watcher.finish()
        for client in (patient, later):
            response = await threads.deferToThread(answer, client)
            assert response.startswith(b"HTTP/1.1 200 ")
            assert b"lib" in response
    finally:
        await listening.stopListening()
