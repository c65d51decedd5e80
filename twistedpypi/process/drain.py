"""
Graceful stop: on SIGTERM the listening port closes at once, the requests
already in flight (an upload half sent, a download under way) are given a
bounded time to finish, their answers are flushed to the clients, and the
process exits 0.
"""

from __future__ import annotations

import signal
from typing import Callable, Iterable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import ITransport
from twisted.internet.task import deferLater
from twisted.logger import Logger

log = Logger()

DRAIN_TIMEOUT = 25.0
"""
Seconds a stop waits for requests in flight.  Under the 30 seconds systemd
(C{TimeoutStopSec}), the init script and the compose file allow before
they kill, so the process still exits cleanly on its own.
"""

_FLUSH_POLL = 0.05
"""Seconds between looks at whether the last answers have left."""


class InFlight:
    """
    Counts the requests received and not yet answered or abandoned, and
    tells whoever waits when there are none left.
    """

    def __init__(self) -> None:
        self.count = 0
        self._waiting: list[Deferred[None]] = []

    def started(self) -> None:
        """A request arrived."""
        self.count += 1

    def finished(self) -> None:
        """A request was answered, or its client went away."""
        self.count -= 1
        if not self.count and self._waiting:
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.callback(None)

    def drained(self) -> Deferred[None]:
        """
        A L{Deferred} that fires once no request is in flight.
        """
        if not self.count:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter


class DrainService(Service):
    """
    Holds the process's stop until the requests in flight are answered and
    the answers have left, or C{timeout} seconds have passed.  Stopping
    services all start stopping at once, so the listening port is already
    closed while this waits.

    @param connections: the open connections' transports; closed gracefully
        once nothing is in flight, so answers still in a send buffer are
        not cut off when the reactor stops.
    """

    def __init__(
        self,
        in_flight: InFlight,
        connections: Callable[[], Iterable[ITransport]] = tuple,
        timeout: float = DRAIN_TIMEOUT,
        reactor=None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.in_flight = in_flight
        self.connections = connections
        self.timeout = timeout
        self._reactor = reactor

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self._drain())

    async def _drain(self) -> None:
        deadline = self._reactor.seconds() + self.timeout
        pending = self.in_flight.count
        if pending:
            log.info(
                "stopping: waiting up to {timeout:.0f}s for {count} request(s) in flight",
                timeout=self.timeout,
                count=pending,
            )
            waiting = self.in_flight.drained()
            waiting.addTimeout(self.timeout, self._reactor)
            try:
                await waiting
            except Exception:
                log.warn(
                    "stopping with {count} request(s) still in flight after {timeout:.0f}s",
                    count=self.in_flight.count,
                    timeout=self.timeout,
                )
                return
            log.info("all requests in flight are finished")
        # Closing a connection gracefully sends what is buffered first; the
        # reactor's own shutdown would drop it.
        transports = [t for t in self.connections() if getattr(t, "connected", False)]
        for transport in transports:
            transport.loseConnection()
        while any(t.connected for t in transports) and self._reactor.seconds() < deadline:
            await deferLater(self._reactor, _FLUSH_POLL, lambda: None)


def exit_cleanly_on_sigterm(reactor=None) -> None:
    """
    Make SIGTERM stop the reactor (and so the services, gracefully) and let
    twistd exit 0.  twistd's own handler does the same stop, but then kills
    the process with the signal once it is done, so a clean stop would show
    as exit status 143 to Docker and to scripts.
    """
    if reactor is None:
        from twisted.internet import reactor

    def stop(signum: int, frame: object) -> None:
        log.info("received SIGTERM, stopping")
        reactor.callFromThread(_stop, reactor)

    # After reactor.run() has installed twistd's handlers, replacing them.
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, stop)


def _stop(reactor) -> None:
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass  # a second SIGTERM while stopping
