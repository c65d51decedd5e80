"""
The listening socket, and the worker processes that share it.

With C{--workers N} the first process listens, then starts N-1 copies of
itself, each with its own index fed by its own watcher: the kernel spreads
connections over all of them, so a many-core machine serves with every
core.

On a port given by number, each process gets a socket of its own, all
bound to the port with C{SO_REUSEPORT}, and the kernel hands each new
connection to one of them by a hash of its addresses: evenly, however the
connections come.  One socket shared by every process (the way for other
endpoints, or without C{SO_REUSEPORT}) wakes them all for each burst of
connections, and whichever accepts first takes the whole burst: 32
connections opened at once all went to one of two processes in one run
of three.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.error import CannotListenError, ReactorNotRunning
from twisted.internet.interfaces import IListeningPort, IReadDescriptor
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site
from zope.interface import implementer

from twistedpypi.config import LISTEN_BACKLOG

log = Logger()

INHERITED_FD = 3
"""The descriptor number a worker finds the shared socket under."""

class ListenRefused(Exception):
    """
    The port could not be listened on when the server started (in use,
    or not allowed): its message is the one line saying so.
    """


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


@implementer(IReadDescriptor)
class FirstProcessWatch:
    """
    Stops a worker once the first process is gone, even killed with
    SIGKILL: the worker's standard input is a pipe from it, which ends
    when it does.  Left running, a worker would go on holding the port
    (and answering from an index nobody restarts).
    """

    STDIN = 0

    def __init__(self, reactor) -> None:
        self._reactor = reactor
        os.set_blocking(self.STDIN, False)

    def fileno(self) -> int:
        return self.STDIN

    def logPrefix(self) -> str:
        return "FirstProcessWatch"

    def doRead(self) -> None:
        try:
            if os.read(self.STDIN, 4096):
                return None  # nothing is sent; read and ignored
        except BlockingIOError:
            return None
        except OSError:
            pass
        self.connectionLost(None)
        return None

    def connectionLost(self, reason: object) -> None:
        self._reactor.removeReader(self)
        log.info("the first process is gone: stopping this worker")
        try:
            self._reactor.stop()
        except ReactorNotRunning:
            pass


class ListeningService(Service):
    """
    Listens on an endpoint (or adopts an inherited socket), and starts the
    worker processes that share it.

    @param endpoint: a server endpoint description, e.g. C{tcp:8080}.
    @param address: the interface and port C{endpoint} listens on, when it
        is a plain TCP one, for the workers' own sockets.
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
        address: tuple[str, int] | None = None,
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
        self.address = address
        self.site = site
        self.inherited_fd = inherited_fd
        self.workers = workers
        self.worker_arguments = worker_arguments or []
        self.share_output = share_output
        self.port: Deferred[IListeningPort] | None = None
        self._children: list[tuple[object, WorkerProtocol]] = []
        self._worker_sockets: list[socket.socket] = []
        self._starting = False
        self._refused: Failure | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.inherited_fd is not None:
            family = _socket_family(self.inherited_fd)
            self.port = succeed(self._reactor.adoptStreamPort(self.inherited_fd, family, self.site))
        elif self.workers > 1 and self.address is not None and hasattr(socket, "SO_REUSEPORT"):
            self.port = self._listen_reusing_port(*self.address)
        else:
            self.port = endpoints.serverFromString(self._reactor, self.endpoint).listen(self.site)
        self._starting = True
        try:
            self.port.addErrback(self._failed)
        finally:
            self._starting = False
        if self._refused is not None:
            # Before the reactor runs: raised, so that twistd exits non-zero.
            raise ListenRefused(self._refusal(self._refused))

    def _listen_reusing_port(self, interface: str, port: int) -> Deferred[IListeningPort]:
        """
        Listen on a socket of this process's own, and make one for each
        worker, all on the same port.
        """
        try:
            port = _free_port(interface, port)
            own = _reuse_port_socket(interface, port)
            with own:
                self._worker_sockets = [_reuse_port_socket(interface, port) for _ in range(self.workers - 1)]
                return succeed(self._reactor.adoptStreamPort(own.fileno(), own.family, self.site))
        except OSError:
            for extra in self._worker_sockets:
                extra.close()
            self._worker_sockets = []
            return fail(Failure())

    def _failed(self, failure: Failure):
        if self._starting:
            self._refused = failure
            return None
        log.failure("cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        self._reactor.callWhenRunning(self._reactor.stop)
        return failure

    def _refusal(self, failure: Failure) -> str:
        """One line naming the port that could not be listened on, and why."""
        error = failure.value
        reason = error.socketError if isinstance(error, CannotListenError) else error
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        if isinstance(error, CannotListenError) and isinstance(error.port, int):
            where = f"port {error.port} of {error.interface or '0.0.0.0'}"
        elif self.address is not None:
            where = f"port {self.address[1]} of {self.address[0]}"
        else:
            where = self.endpoint
        return f"cannot listen on {where}: {reason}"

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()
        if self.inherited_fd is not None:
            # A worker starts none of its own, and ends with the first
            # process however that ends.
            self._reactor.addReader(FirstProcessWatch(self._reactor))
        elif self.workers > 1:
            self.port.addCallback(self._start_workers)

    def _start_workers(self, port: IListeningPort) -> IListeningPort:
        for number in range(2, self.workers + 1):
            own = self._worker_sockets.pop(0) if self._worker_sockets else None
            descriptor = own.fileno() if own is not None else port.fileno()
            protocol = WorkerProtocol(number)
            arguments = [
                sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "pypi",
                f"--inherit-fd={INHERITED_FD}", *self.worker_arguments,
            ]
            try:
                process = self._reactor.spawnProcess(
                    protocol,
                    sys.executable,
                    arguments,
                    env=None,
                    childFDs={0: "w", **({1: 1, 2: 2} if self.share_output else {1: "r", 2: "r"}), INHERITED_FD: descriptor},
                )
            finally:
                if own is not None:
                    # The worker's alone: kept open here too, connections
                    # the kernel gave it would wait there if it died.
                    own.close()
            self._children.append((process, protocol))
        log.info("serving with {workers} processes", workers=self.workers)
        return port

    def stopService(self) -> Deferred:
        super().stopService()
        for unused in self._worker_sockets:  # stopped before its workers started
            unused.close()
        self._worker_sockets = []
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


def _family(interface: str) -> socket.AddressFamily:
    """The address family tcp.Port would listen on C{interface} with."""
    return socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET


def _free_port(interface: str, port: int) -> int:
    """
    C{port}, or a free one for 0, once a bind without C{SO_REUSEPORT} shows
    nothing listens there: another server of this user's with
    C{SO_REUSEPORT} would otherwise quietly share the port (and take a
    share of the connections) where it should find it in use.

    @raise OSError: the port is in use.
    """
    with socket.socket(_family(interface), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((interface, port))
        return probe.getsockname()[1]


def _reuse_port_socket(interface: str, port: int) -> socket.socket:
    """
    A non-blocking TCP socket listening on C{interface} and C{port}, in the
    C{SO_REUSEPORT} group of every other such socket of this user there.
    """
    listening = socket.socket(_family(interface), socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.bind((interface, port))
        listening.listen(LISTEN_BACKLOG)
        listening.setblocking(False)
    except BaseException:
        listening.close()
        raise
    return listening
