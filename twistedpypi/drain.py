"""
Graceful stop: on SIGTERM the listening port closes at once, and the
requests already in flight (an upload half sent, a download under way) are
given a bounded time to finish before the process exits.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.logger import Logger

log = Logger()

DRAIN_TIMEOUT = 25.0
"""
Seconds a stop waits for requests in flight.  Under the 30 seconds systemd
(C{TimeoutStopSec}), the init script and the compose file allow before
they kill, so the process still exits cleanly on its own.
"""


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
    Holds the process's stop until the requests in flight are done, or
    C{timeout} seconds have passed.  Stopping services all start stopping
    at once, so the listening port is already closed while this waits.
    """

    def __init__(self, in_flight: InFlight, timeout: float = DRAIN_TIMEOUT, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.in_flight = in_flight
        self.timeout = timeout
        self._reactor = reactor

    def stopService(self) -> Deferred[None]:
        super().stopService()
        pending = self.in_flight.count
        if not pending:
            return self.in_flight.drained()
        log.info(
            "stopping: waiting up to {timeout:.0f}s for {count} requests in flight",
            timeout=self.timeout,
            count=pending,
        )
        waiting = self.in_flight.drained()
        waiting.addTimeout(self.timeout, self._reactor)

        def done(result: None | Failure) -> None:
            # The only failure here is the timeout; it must not make the
            # stop fail, which would keep twistd from exiting cleanly.
            if isinstance(result, Failure):
                log.warn(
                    "stopping with {count} requests still in flight after {timeout:.0f}s",
                    count=self.in_flight.count,
                    timeout=self.timeout,
                )
            else:
                log.info("all requests in flight are finished")

        return waiting.addBoth(done)
