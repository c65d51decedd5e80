"""
A small file the server reads again when it changes (the tokens file, the
permissions file), read in a daemon thread with a deadline, never on the
reactor: a read on a dead network mount can hang for good.

Reactor code, but for L{WatchedFile.load}, which blocks (start-up only).
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from typing import Callable, Generic, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

Parsed = TypeVar("Parsed")

READ_TIMEOUT = 5.0
"""Seconds a request waits for the file to be read before it is refused."""

MAX_HUNG_READS = 4
"""Reads of the file that may be hung at once; past that, refuse at once."""

MAX_WATCHED_FILE_SIZE = 16 * 1024 * 1024
"""Bytes of the file read at most."""

LOOKER_IDLE = 30.0
"""Seconds a looking thread waits for work before it ends."""


class FileUnavailable(Exception):
    """
    The file cannot be read (missing, broken, not a regular file, or not
    answering in time): what it grants is refused until it is back.
    """


def _stamp_of(status: os.stat_result) -> tuple[int, int, int]:
    """What tells a changed file: its modification time, size and inode."""
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def read_watched_file(path: str) -> tuple[tuple[int, int, int], bytes]:
    """
    The file's stamp and bytes; anything but a regular file is refused at
    once.  Blocking, and can hang on a dead mount.

    @raise OSError: missing, not a regular file, unreadable or too large.
    """
    from twistedpypi.fs import open_regular_descriptor

    descriptor, _ = open_regular_descriptor(path)
    try:
        chunks, size = [], 0
        while chunk := os.read(descriptor, 1024 * 1024):
            size += len(chunk)
            if size > MAX_WATCHED_FILE_SIZE:
                raise OSError(errno.EFBIG, f"larger than {MAX_WATCHED_FILE_SIZE} bytes", path)
            chunks.append(chunk)
        status = os.fstat(descriptor)
    finally:
        os.close(descriptor)
    return _stamp_of(status), b"".join(chunks)


class _Looker:
    """
    A daemon thread that runs looks at a file one after another, so that a
    request hands its look to a waiting thread instead of starting one (a
    thread costs about as much as the rest of the request).  It ends after
    C{idle} seconds without work, or after its look under way when
    abandoned (L{retire}).  Its lock guards only the queue, never a look.
    """

    def __init__(self, name: str, idle: float) -> None:
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._alive = True
        self._idle = idle
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, look: Callable[[], None]) -> bool:
        """Queue a look; C{False} when this thread has ended or was retired."""
        with self._lock:
            if not self._alive:
                return False
            self._work.put(look)
            return True

    def retire(self) -> None:
        """End the thread once its look under way (hung, perhaps) returns."""
        with self._lock:
            self._alive = False
            self._work.put(None)

    def _run(self) -> None:
        while True:
            try:
                look = self._work.get(timeout=self._idle)
            except queue.Empty:
                with self._lock:
                    if self._work.empty():
                        self._alive = False
                        return
                continue
            if look is None:
                return
            look()


class _Read:
    """One read under way, and the requests waiting for it."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.waiters: list[Deferred] = []
        self.deadline: IDelayedCall | None = None


class WatchedFile(Generic[Parsed]):
    """
    A file parsed by C{parse} (blocking, in the reading thread), read again
    whenever its modification time, size or inode changes.  If it cannot be
    read or parsed, L{fresh} fails with C{unavailable} until it can: what
    the file grants is refused meanwhile, never opened up.

    For a request, the file is looked at (and read if it changed) in a
    daemon thread of its own (a L{_Looker}, kept while there is work), not
    the reactor's thread pool: a read that hangs on a dead mount would hold
    a pool thread for good, and the reactor joins its pool's threads when
    it stops, so the process would never exit.  A hung read is abandoned at
    its deadline with its thread (the requests waiting for it are refused),
    no lock is held while it hangs, and requests arriving meanwhile start
    another read in a new thread, up to L{MAX_HUNG_READS}.

    @param what: what the file is, for the log ("tokens file").
    @param parse: bytes to the parsed contents; raises L{ValueError} on a
        broken file.
    @param read: instead of C{parse}, the path to the file's stamp and
        parsed contents (blocking).
    @param reactor: what times reads and takes their results; the global
        reactor when not given (looked up on first use, so that making one
        while parsing options installs none).
    @param looker_idle: seconds the looking thread waits for another look
        before it ends.
    """

    def __init__(
        self,
        path: str,
        what: str,
        parse: Callable[[bytes], Parsed] | None = None,
        reactor=None,
        read_timeout: float = READ_TIMEOUT,
        read: Callable[[str], tuple[tuple[int, int, int], Parsed]] | None = None,
        unavailable: type[FileUnavailable] = FileUnavailable,
        looker_idle: float = LOOKER_IDLE,
    ) -> None:
        self.path = path
        self.what = what
        self.parse = parse
        self.read = read
        self.unavailable = unavailable
        self.read_timeout = read_timeout
        self._reactor = reactor
        self._parsed: Parsed | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._unavailable: str | None = None
        self._reads_started = 0
        self._newest_outcome = 0
        self._current: _Read | None = None
        self._hung = 0
        self._looker: _Looker | None = None
        self._looker_idle = looker_idle

    def _read_if_changed(self, known: tuple[int, int, int] | None) -> tuple | None:
        """The stamp and parsed contents, or L{None} if unchanged.  Blocking."""
        if known is not None and _stamp_of(os.stat(self.path)) == known:
            return None
        if self.read is not None:
            return self.read(self.path)
        stamp, data = read_watched_file(self.path)
        return stamp, self.parse(data)

    def _known_stamp(self) -> tuple[int, int, int] | None:
        return None if self._unavailable is not None else self._stamp

    def _took(self, outcome: tuple | None) -> None:
        if outcome is not None:
            if self._stamp is not None:
                log.info("read the {what} {path} again", what=self.what, path=self.path)
            self._stamp, self._parsed = outcome
        self._unavailable = None

    def _lost(self, reason: str) -> None:
        if self._unavailable is None:
            log.error(
                "cannot read the {what} {path}: {error}; refusing what it grants until it is back",
                what=self.what,
                path=self.path,
                error=reason,
            )
        self._unavailable = reason

    def load(self) -> Parsed:
        """
        The file's contents, read now in this thread if it changed since
        last read.  Blocking: for start-up, and for checks outside the
        reactor.

        @raise OSError: it cannot be read, and never could be.
        @raise ValueError: it cannot be parsed, and never could be.
        @raise FileUnavailable: (C{unavailable}) it cannot be read any more.
        """
        try:
            outcome = self._read_if_changed(self._known_stamp())
        except (OSError, ValueError) as error:
            if self._stamp is None:
                raise
            reason = getattr(error, "strerror", None) or str(error)
            self._lost(reason)
            raise self.unavailable(reason) from None
        self._took(outcome)
        return self._parsed

    def fresh(self) -> Deferred[Parsed]:
        """
        The file's contents as they are now, or L{FileUnavailable} when it
        cannot be read, or does not answer within C{read_timeout} seconds.
        """
        if self._current is None:
            if self._hung >= MAX_HUNG_READS:
                return fail(self.unavailable(f"{self._hung} reads of it are hung"))
            self._current = self._start_read()
        waiter: Deferred[Parsed] = Deferred()
        self._current.waiters.append(waiter)
        return waiter

    def _start_read(self) -> _Read:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        reactor = self._reactor
        self._reads_started += 1
        read = _Read(self._reads_started)
        known = self._known_stamp()
        read.deadline = reactor.callLater(self.read_timeout, self._overdue, read)

        def run() -> None:
            try:
                outcome = self._read_if_changed(known)
            except Exception:
                outcome = Failure()
            reactor.callFromThread(self._finished, read, outcome)

        if self._looker is None or not self._looker.submit(run):
            self._looker = _Looker(f"{self.what} reader", self._looker_idle)
            self._looker.submit(run)
        return read

    def _overdue(self, read: _Read) -> None:
        read.deadline = None
        if self._looker is not None:
            self._looker.retire()
            self._looker = None
        self._current = None
        self._hung += 1
        reason = f"no answer within {self.read_timeout:g} seconds"
        self._lost(reason)
        waiters, read.waiters = read.waiters, []
        for waiter in waiters:
            waiter.errback(self.unavailable(reason))

    def _finished(self, read: _Read, outcome: tuple | None | Failure) -> None:
        if read.deadline is None:
            self._hung -= 1
        else:
            read.deadline.cancel()
            read.deadline = None
            self._current = None
        if read.generation > self._newest_outcome:
            self._newest_outcome = read.generation
            if isinstance(outcome, Failure):
                error = outcome.value
                self._lost(getattr(error, "strerror", None) or str(error))
            else:
                self._took(outcome)
        waiters, read.waiters = read.waiters, []
        for waiter in waiters:
            if self._unavailable is None:
                waiter.callback(self._parsed)
            else:
                waiter.errback(self.unavailable(self._unavailable))
