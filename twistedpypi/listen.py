"""
The listening socket, and the worker processes that share it.

With C{--workers N} the first process listens, then starts N-1 copies of
itself that adopt the same socket, each with its own index fed by its own
watcher: the kernel spreads connections over all of them, so a many-core
machine serves with every core.
"""

from __future__ import annotations

import signal
import socket
import sys

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.web.server import Site

log = Logger()

INHERITED_FD = 3
"""The descriptor number a worker finds the shared socket under."""

_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


class WorkerProtocol(ProcessProtocol):
    """
    One worker process: its output, unless it shares the parent's, is
    logged by the parent; its end is awaited on stop.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self.ended: Deferred[None] = Deferred()
        self._partial = b""

    def outReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            log.info("[worker {number}] {line}", number=self.number, line=line.decode("utf-8", "replace"))

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        log.info("worker {number} ended: {reason}", number=self.number, reason=reason.getErrorMessage())
        self.ended.callback(None)


class ListeningService(Service):
    """
    Listens on an endpoint (or adopts an inherited socket), and starts the
    worker processes that share it.

    @param endpoint: a server endpoint description, e.g. C{tcp:8080}.
    @param inherited_fd: the socket to adopt instead, in a worker.
    @param workers: how many processes serve in all, this one included
        (a worker is told the same, so that it knows its share of the
        cores).
    @param worker_arguments: the C{pypi} plugin's arguments for a worker.
    @param share_output: let workers write their log to this process's
        standard output and error, as they are (when the log goes there):
        relaying every access line through this process would cost it
        about as much as logging one of its own requests.
    """

    def __init__(
        self,
        endpoint: str,
        site: Site,
        inherited_fd: int | None = None,
        workers: int = 1,
        worker_arguments: list[str] | None = None,
        share_output: bool = False,
        reactor=None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.endpoint = endpoint
        self.site = site
        self.inherited_fd = inherited_fd
        self.workers = workers
        self.worker_arguments = worker_arguments or []
        self.share_output = share_output
        self.port: Deferred[IListeningPort] | None = None
        self._children: list[tuple[object, WorkerProtocol]] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.inherited_fd is not None:
            family = _socket_family(self.inherited_fd)
            self.port = succeed(self._reactor.adoptStreamPort(self.inherited_fd, family, self.site))
        else:
            self.port = endpoints.serverFromString(self._reactor, self.endpoint).listen(self.site)
        self.port.addErrback(self._failed)

    def _failed(self, failure):
        log.failure("cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        self._reactor.callWhenRunning(self._reactor.stop)
        return failure

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()
        # A worker (given the socket) starts none of its own.
        if self.workers > 1 and self.inherited_fd is None:
            self.port.addCallback(self._start_workers)

    def _start_workers(self, port: IListeningPort) -> IListeningPort:
        descriptor = port.fileno()
        for number in range(2, self.workers + 1):
            protocol = WorkerProtocol(number)
            arguments = [
                sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "pypi",
                f"--inherit-fd={INHERITED_FD}", *self.worker_arguments,
            ]
            process = self._reactor.spawnProcess(
                protocol,
                sys.executable,
                arguments,
                env=None,
                childFDs={0: "w", **({1: 1, 2: 2} if self.share_output else {1: "r", 2: "r"}), INHERITED_FD: descriptor},
            )
            self._children.append((process, protocol))
        log.info("serving with {workers} processes", workers=self.workers)
        return port

    def stopService(self) -> Deferred:
        super().stopService()
        waits = []
        for process, protocol in self._children:
            try:
                process.signalProcess(signal.SIGTERM)
            except Exception:  # already gone
                pass
            waits.append(protocol.ended)

        def stop_listening(port: IListeningPort):
            return port.stopListening()

        stopped = self.port.addCallback(stop_listening) if self.port is not None else succeed(None)
        stopped.addErrback(lambda _: None)
        return DeferredList([stopped, *waits])


def _socket_family(descriptor: int) -> int:
    probe = socket.socket(fileno=descriptor)
    try:
        return probe.family
    finally:
        probe.detach()
