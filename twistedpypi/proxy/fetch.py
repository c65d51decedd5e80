"""
One file downloaded from the upstream index into the cache directory, and
streamed to the clients waiting for it while it is written.

The bytes go to a temporary file beside their final place, written and
hashed in a thread (in order, with a bounded backlog: the upstream is paused
while the disk is behind).  Only when every hash upstream gave matches is the
file renamed into place, so the cache never holds a partial or wrong file.
The last chunk is held back from the clients until then: a client never
receives a complete file that failed the check.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import IO, Protocol

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    TimeoutError,
    maybeDeferred,
    succeed,
)
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent

from twistedpypi.fs import temporary_tag

log = Logger()

WRITE_SIZE = 256 * 1024
"""Bytes gathered before one write to the cache file."""

MAX_BACKLOG = 8 * 1024 * 1024
"""Bytes received but not yet on disk before the upstream is paused."""


class UpstreamError(Exception):
    """
    The upstream could not give what was asked; C{code} is the status to
    answer the client with (404, 502 or 504), C{reason} says why.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def classify(failure: Failure, what: str, timeout: float) -> UpstreamError:
    """
    The error to answer with when talking to the upstream failed.
    """
    if failure.check(UpstreamError):
        return failure.value
    # A request cancelled on its way comes back as ResponseNeverReceived or
    # ResponseFailed wrapping the CancelledError.
    reasons = [failure, *getattr(failure.value, "reasons", [])]
    if any(reason.check(TimeoutError, CancelledError) for reason in reasons):
        return UpstreamError(504, f"the upstream index did not answer {what} within {timeout:g}s")
    message = "; ".join(reason.getErrorMessage() for reason in reasons[1:]) or failure.getErrorMessage()
    return UpstreamError(502, f"the upstream index is unreachable for {what}: {message}")


def error_for_status(code: int, what: str) -> UpstreamError:
    """
    The error to answer with when the upstream answered C{code}.
    """
    if code in (404, 410):
        return UpstreamError(404, f"{what} is not on the upstream index either")
    if code in (401, 403):
        return UpstreamError(
            502, f"the upstream index refused {what} ({code}): check the credentials in --fallback-url"
        )
    return UpstreamError(502, f"the upstream index answered {code} for {what}")


class DownloadListener(Protocol):
    """
    A client receiving a file while it downloads.
    """

    def started(self, length: int | None) -> None:
        """The upstream answered; C{length} is the size if it said."""

    def data(self, chunk: bytes) -> None:
        """More of the file."""

    def finished(self) -> None:
        """The whole file arrived and matched its hashes."""

    def failed(self, error: UpstreamError) -> None:
        """The download failed; nothing more will come."""


class _CacheWriter:
    """
    Writes to a temporary file and hashes what it writes, in a thread, one
    write at a time, in order.
    """

    def __init__(self, stream: IO[bytes], algorithms: list[str]) -> None:
        self.stream = stream
        self.hashers = {name: hashlib.new(name) for name in algorithms}
        self.backlog = 0
        self.size = 0
        self._buffer = bytearray()
        self._tail: Deferred = succeed(None)
        self._error: Failure | None = None

    def write(self, chunk: bytes) -> None:
        self.backlog += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= WRITE_SIZE:
            self._flush()

    def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        if not data:
            return

        def write_in_thread(_: object) -> Deferred:
            return deferToThread(self._write, data)

        def written(_: object) -> None:
            self.backlog -= len(data)

        def failed(failure: Failure) -> None:
            self._error = failure

        self._tail.addCallback(write_in_thread).addCallbacks(written, failed)

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        for hasher in self.hashers.values():
            hasher.update(data)
        self.size += len(data)

    def drained(self) -> Deferred:
        """Fires when everything written so far is on disk."""
        d: Deferred = Deferred()
        self._tail.addBoth(lambda _: d.callback(None))
        return d

    def close(self) -> Deferred:
        """
        Write what is left and close the file; fires with the hex digests,
        or fails if any write failed.
        """
        self._flush()

        def closed(_: object) -> Deferred:
            if self._error is not None:
                error = UpstreamError(502, f"the cache could not store the file: {self._error.getErrorMessage()}")
                return deferToThread(self.stream.close).addCallback(lambda _: Failure(error))
            return deferToThread(self.stream.close).addCallback(
                lambda _: {name: hasher.hexdigest() for name, hasher in self.hashers.items()}
            )

        return self.drained().addCallback(closed)


class _BodyReceiver(TwistedProtocol):
    def __init__(self, download: "FileDownload") -> None:
        self.download = download

    def connectionMade(self) -> None:
        self.download._transport = self.transport

    def dataReceived(self, data: bytes) -> None:
        self.download._received(data)

    def connectionLost(self, reason: Failure = None) -> None:
        self.download._body_done(reason)


def _open_temporary(directory: str, filename: str) -> tuple[str, IO[bytes]]:
    os.makedirs(directory, exist_ok=True)
    # Named by node and process, last before ".part", as all the cache's
    # temporaries are: see scan_cache.
    descriptor, path = tempfile.mkstemp(prefix=f".{filename}.", suffix=f".{temporary_tag()}.part", dir=directory)
    os.fchmod(descriptor, 0o644)  # mkstemp's 0600 would outlive the rename
    return path, os.fdopen(descriptor, "wb")


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class FileDownload:
    """
    Downloads one file from upstream into C{final_path}, streaming it to the
    listeners attached before its first bytes went out; everyone else
    L{wait}s for it to be in the cache.

    @ivar result: L{None} while downloading, then C{final_path}, or the
        L{Failure} (of an L{UpstreamError}) that ended it.
    """

    def __init__(
        self,
        agent: IAgent,
        url: str,
        headers: Headers,
        final_path: str,
        expected: dict[str, str],
        timeout: float,
        reactor,
    ) -> None:
        self.url = url
        self.final_path = final_path
        self.filename = os.path.basename(final_path)
        self.expected = {name: digest for name, digest in expected.items() if name in hashlib.algorithms_available}
        self.timeout = timeout
        self._agent = agent
        self._headers = headers
        self._reactor = reactor
        self._listeners: list[DownloadListener] = []
        self._sending = False
        self._held: bytes | None = None
        self._writer: _CacheWriter | None = None
        self._temporary: str | None = None
        self._transport = None
        self._paused = False
        self._idle = None
        self._timed_out = False
        self._failing = False
        self._waiters: list[Deferred] = []
        self.result: Failure | str | None = None

    def attach(self, listener: DownloadListener) -> bool:
        """
        Stream the file to C{listener} as it arrives; C{False} when it is
        too late for that (bytes were sent already), and the caller should
        wait for L{wait} and serve the file from the cache.
        """
        if self._sending or self.result is not None:
            return False
        self._listeners.append(listener)
        if self._writer is not None:
            listener.started(self._length)
        return True

    def detach(self, listener: DownloadListener) -> None:
        """A client went away; the download goes on for the cache."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def wait(self) -> Deferred:
        """
        A Deferred of its own (safe to cancel) that fires with the cached
        file's path, or fails with L{UpstreamError}.
        """
        d: Deferred = Deferred()
        if self.result is None:
            self._waiters.append(d)
        elif isinstance(self.result, Failure):
            d.errback(self.result)
        else:
            d.callback(self.result)
        return d

    def start(self) -> Deferred:
        """
        Begin the download; the returned Deferred fires (with None) when it
        is over, however it ended.
        """
        self._over: Deferred = Deferred()
        # Whatever fails before the request is under way (a URL that will
        # not encode, an agent that raises) ends the download like any other
        # failure, so it is forgotten and its waiters are answered.
        requested = maybeDeferred(lambda: self._agent.request(b"GET", self.url.encode("ascii"), self._headers))
        requested.addTimeout(self.timeout, self._reactor)
        requested.addCallback(self._got_response).addErrback(self._fail_with)
        return self._over

    def _got_response(self, response) -> Deferred | None:
        if response.code != 200:
            response.deliverBody(_Discard())
            raise error_for_status(response.code, self.filename)
        self._length = None if response.length is UNKNOWN_LENGTH else response.length
        opening = deferToThread(_open_temporary, os.path.dirname(self.final_path), self.filename)

        def opened(result: tuple[str, IO[bytes]]) -> None:
            self._temporary, stream = result
            algorithms = sorted(set(self.expected) | {"sha256"})
            self._writer = _CacheWriter(stream, algorithms)
            for listener in list(self._listeners):
                listener.started(self._length)
            self._idle = self._reactor.callLater(self.timeout, self._stalled)
            response.deliverBody(_BodyReceiver(self))

        return opening.addCallback(opened)

    def _stalled(self) -> None:
        self._timed_out = True
        self._transport.stopProducing()

    def _received(self, data: bytes) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.timeout)
        self._writer.write(data)
        if self._held is not None:
            self._sending = True
            for listener in list(self._listeners):
                listener.data(self._held)
        self._held = data
        if not self._paused and self._writer.backlog > MAX_BACKLOG:
            self._paused = True
            self._transport.pauseProducing()
            self._writer.drained().addCallback(self._resume)

    def _resume(self, _: object) -> None:
        if self._paused and self.result is None:
            self._paused = False
            self._transport.resumeProducing()

    def _body_done(self, reason: Failure) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        complete = reason.check(ResponseDone) or (reason.check(PotentialDataLoss) and self._length is None)
        if self._timed_out:
            self._finish_writer_then(self._fail, UpstreamError(504, f"the upstream index stopped sending {self.filename} for {self.timeout:g}s"))
        elif not complete:
            self._finish_writer_then(self._fail, classify(reason, self.filename, self.timeout))
        else:
            self._writer.close().addCallback(self._check).addErrback(self._fail_with)

    def _finish_writer_then(self, then, error: UpstreamError) -> None:
        self._writer.close().addBoth(lambda _: then(error))

    def _check(self, digests: dict[str, str]) -> Deferred | None:
        if self._length is not None and self._writer.size != self._length:
            raise UpstreamError(502, f"the upstream index sent {self._writer.size} of {self._length} bytes of {self.filename}")
        for name, digest in self.expected.items():
            if digests.get(name) != digest.lower():
                log.warn(
                    "discarded {filename} from upstream: its {algorithm} is {got}, the index says {expected}",
                    filename=self.filename, algorithm=name, got=digests.get(name), expected=digest,
                )
                raise UpstreamError(502, f"{self.filename} from the upstream index does not match its {name}")
        self.sha256 = digests["sha256"]
        return deferToThread(os.replace, self._temporary, self.final_path).addCallback(self._stored)

    def _stored(self, _: object) -> None:
        self._temporary = None
        log.info("cached {filename} from upstream ({size} bytes)", filename=self.filename, size=self._writer.size)
        if self._held is not None:
            for listener in list(self._listeners):
                listener.data(self._held)
        for listener in list(self._listeners):
            listener.finished()
        self._settle(self.final_path)

    def _fail_with(self, failure: Failure) -> None:
        self._fail(classify(failure, self.filename, self.timeout))

    def _fail(self, error: UpstreamError) -> None:
        if self.result is not None or self._failing:
            return
        self._failing = True
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        if self._temporary is not None:
            temporary, self._temporary = self._temporary, None
            deferToThread(_discard, temporary).addBoth(lambda _: self._failed(error))
        else:
            self._failed(error)

    def _failed(self, error: UpstreamError) -> None:
        log.warn("could not fetch {filename} from upstream: {reason}", filename=self.filename, reason=error.reason)
        for listener in list(self._listeners):
            listener.failed(error)
        self._settle(Failure(error))

    def _settle(self, result: Failure | str) -> None:
        self.result = result
        self._listeners.clear()
        # The owner's bookkeeping (the file is in the cache now) before the
        # waiters, who go and look for the file at once.
        self._over.callback(None)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.called:
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


class _Discard(TwistedProtocol):
    def connectionLost(self, reason: Failure = None) -> None:
        pass
