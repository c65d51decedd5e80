"""
Spooling an upload's file to disk as it streams in: the writes and the
hashing run in the reactor's thread pool, one at a time and in order, and
the client is paused while too much waits to be written.  Reactor code
(its blocking work goes to threads).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedpypi.uploads.store import TemporaryUpload

log = Logger()

WRITE_SIZE = 1024 * 1024
"""Bytes gathered before one write to the temporary file."""

HIGH_WATER = 8 * 1024 * 1024
"""Bytes waiting to be written at which the client is asked to pause."""

LOW_WATER = 2 * 1024 * 1024
"""Bytes waiting to be written at which it may send again."""


class SpoolWriter:
    """
    Writes an upload to a L{TemporaryUpload} in the reactor's thread pool,
    one operation at a time and in order, so neither the writes nor the
    hashing (seconds of CPU for a large file) run on the reactor thread.

    Memory stays bounded: past L{HIGH_WATER} bytes waiting, C{pause} is
    called (stop reading from the client), and C{resume} once the writes
    have caught up.
    """

    def __init__(self, directory: str, algorithms: tuple[str, ...], pause, resume) -> None:
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._in_flight = 0
        self._error: Failure | None = None
        self._closed = False
        self.file: TemporaryUpload | None = None
        self._tail: Deferred[None] = Deferred()
        self._tail.callback(None)
        self._then(self._create, directory, algorithms).addErrback(lambda _: None)

    def _create(self, directory: str, algorithms: tuple[str, ...]) -> None:
        self.file = TemporaryUpload(directory, algorithms)

    def _then(self, function, *args) -> Deferred:
        """Run C{function} in a thread after every operation before it."""
        result: Deferred = Deferred()

        def run(_: object) -> Deferred | None:
            if self._error is not None:
                result.errback(self._error)
                return None

            def done(value: object) -> None:
                if isinstance(value, Failure):
                    self._error = value
                    result.errback(value)
                else:
                    result.callback(value)

            return deferToThread(function, *args).addBoth(done)

        self._tail.addCallback(run)
        return result

    def write(self, data: bytes) -> None:
        """Queue some bytes of the file."""
        if self._closed or self._error is not None:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_SIZE:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._in_flight += len(data)
        if self._in_flight >= HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()

        def written(_: object) -> None:
            self._in_flight -= len(data)
            if self._paused and (self._in_flight <= LOW_WATER or self._error is not None):
                self._paused = False
                self._resume()

        self._then(lambda: self.file.write(data)).addBoth(written)

    def finish(self, wanted: tuple[str, ...] = ()) -> Deferred[dict[str, str]]:
        """
        Write what is left and fsync: fires with the file's digests
        (C{sha256} and C{wanted}).
        """
        self._flush()
        self._closed = True
        return self._then(lambda: self.file.finish(wanted))

    def discard(self) -> Deferred[None]:
        """
        Stop writing and delete the temporary file (once the operations
        under way are done).
        """
        self._closed = True
        self._pending = []
        result: Deferred[None] = Deferred()

        def remove(_: object) -> Deferred:
            file = self.file
            if file is None:
                return None
            return deferToThread(file.discard).addErrback(
                lambda failure: log.failure("cannot delete {path}", failure, path=file.path)
            )

        self._tail.addCallback(remove).addBoth(lambda _: result.callback(None))
        return result
