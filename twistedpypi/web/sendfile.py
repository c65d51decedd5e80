"""
Downloads sent with sendfile(2): the file's bytes go from the page cache
to the client's socket without passing through Python.

Twisted's static producers read each 64 KiB block into a bytes object,
copy it into the transport's buffer and from there into the socket, and
go once round the reactor per block: on loopback that tops out below
1 GB/s on one core, where sendfile moves more than twice that.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer, IReactorFDSet, IWriteDescriptor
from twisted.web.server import Request
from zope.interface import implementer

TURN_BYTES = 4 * 1024 * 1024
"""The most sent to one client before the reactor serves the others: a
fast reader on loopback would otherwise keep one sendfile loop going for
a whole large file."""


def sendfile_producer(
    request: Request, file: BinaryIO, offset: int, length: int, reactor: IReactorFDSet | None = None
) -> SendfileProducer | None:
    """
    A producer sending C{length} bytes of C{file} from C{offset} as the body
    of C{request} with sendfile, if that is how it is best sent: the
    connection is this process's own plain TCP socket (not TLS, nothing
    wrapping the transport), and there is more to send than the first
    block, which goes as a normal write.  L{None} otherwise, for Twisted's
    static producers to send.
    """
    transport = getattr(request.channel, "transport", None)  # the channel is None once the client has gone
    if (
        not hasattr(os, "sendfile")
        or not isinstance(transport, tcp.Server)
        or request.isSecure()
        or length <= transport.bufferSize
    ):
        return None
    try:
        file.fileno()
    except (AttributeError, OSError, ValueError):  # in memory, not a file on disk
        return None
    if reactor is None:
        from twisted.internet import reactor
    return SendfileProducer(request, file, offset, length, reactor)


@implementer(IPushProducer, IWriteDescriptor)
class SendfileProducer:
    """
    Sends part of an open file as a request's body, mostly with sendfile.

    The first block is written through the request like any other body:
    it carries the status line and headers out and, being as large as the
    transport's buffer, makes the transport pause its producer.  A push
    producer is resumed only once the transport's buffer is empty
    (L{twisted.internet.interfaces.IConsumer.registerProducer}), so from
    then on Twisted has nothing left to send before the file's bytes, and
    nothing else writes to the connection until the request finishes.

    The rest goes with sendfile to a duplicate of the connection's socket
    descriptor, which the reactor watches for writing on its own: watching
    the transport's own number would replace the transport's registration.
    The file stays open, and the duplicate exists, only while sending.

    A client that goes away is seen by the transport, which stops this
    producer; a send that fails, or a file found shorter than its
    C{Content-Length}, aborts the connection, so the client sees a broken
    download and not a short one.
    """

    def __init__(self, request: Request, file: BinaryIO, offset: int, length: int, reactor: IReactorFDSet) -> None:
        self._request = request
        self._file: BinaryIO | None = file
        self._offset = offset
        self._end = offset + length
        self._reactor = reactor
        self._socket: int | None = None
        self._watching = False

    def start(self) -> None:
        """Send the headers and the first block, then the rest once they are out."""
        request = self._request
        if request.channel is None:  # gone before its answer began
            self._close()
            return
        request.registerProducer(self, True)
        block = request.transport.bufferSize
        first = os.pread(self._file.fileno(), block, self._offset)
        if len(first) < block:  # the file is shorter than announced
            self._abort()
            return
        self._offset += len(first)
        request.write(first)

    def pauseProducing(self) -> None:
        self._stop_watching()

    def resumeProducing(self) -> None:
        if self._file is None:
            return
        if self._socket is None:
            try:
                self._socket = os.dup(self._request.transport.fileno())
            except OSError:  # out of descriptors: this download fails, not the server
                self._abort()
                return
        self.doWrite()

    def stopProducing(self) -> None:
        self._close()

    def fileno(self) -> int:
        return -1 if self._socket is None else self._socket

    def logPrefix(self) -> str:
        return "SendfileProducer"

    def doWrite(self) -> None:
        """Send until the socket is full, the turn is over, or all is sent."""
        if self._file is None:
            return None
        source = self._file.fileno()
        turn_end = min(self._end, self._offset + TURN_BYTES)
        try:
            while self._offset < turn_end:
                sent = os.sendfile(self._socket, source, self._offset, turn_end - self._offset)
                if sent == 0:  # the file is shorter than announced
                    self._abort()
                    return None
                self._offset += sent
                self._request.sentLength += sent
        except BlockingIOError:
            self._watch()
            return None
        except OSError:
            self._abort()
            return None
        if self._offset < self._end:
            self._watch()
            return None
        request = self._request
        self._close()
        request.unregisterProducer()
        request.finish()
        return None

    def connectionLost(self, reason: object) -> None:
        """The reactor's word that the duplicate descriptor failed."""
        self._watching = False
        self._abort()

    def _watch(self) -> None:
        if not self._watching:
            self._watching = True
            self._reactor.addWriter(self)

    def _stop_watching(self) -> None:
        if self._watching:
            self._watching = False
            self._reactor.removeWriter(self)

    def _abort(self) -> None:
        transport = self._request.transport
        self._close()
        if transport is not None:
            transport.abortConnection()

    def _close(self) -> None:
        self._stop_watching()
        if self._socket is not None:
            os.close(self._socket)
            self._socket = None
        if self._file is not None:
            self._file.close()
            self._file = None
