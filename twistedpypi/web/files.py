"""
C{/packages/}: the list of files, the files themselves (with HEAD, Range and
ETag), their PEP 658 metadata and their detached signatures.

Ranges are answered as L{twistedpypi.web.ranges} decides: merged, capped,
and never more bytes than the file.  Everything here is reactor code.

Files are found by name in the index, never by mapping the URL onto the
disk, so no path in a request can reach anything the index does not list.
"""

from __future__ import annotations

import errno
import os
import time
from collections import OrderedDict, deque
from io import BytesIO
from typing import BinaryIO, Callable, Sequence

from twisted.internet.interfaces import IPullProducer
from twisted.web import http, static
from twisted.web.http import (
    CACHED,
    OK,
    PARTIAL_CONTENT,
    REQUESTED_RANGE_NOT_SATISFIABLE,
)
from twisted.web.resource import Resource
from twisted.web.server import Request
from zope.interface import implementer

from twistedpypi.config import DEFAULT_FILE_CACHE_SIZE
from twistedpypi.fs import open_regular_descriptor, open_regular_file
from twistedpypi.index.distfile import SIGNATURE_SUFFIX
from twistedpypi.index.model import PackageIndex, Page
from twistedpypi.pages.simple import HTML, packages_listing_html
from twistedpypi.web.ranges import (
    WHOLE_FILE,
    RangePlan,
    Span,
    content_range,
    multipart_parts,
    plan_ranges,
    unsatisfied_range,
)
from twistedpypi.web.respond import error_page, not_modified, send_page
from twistedpypi.web.sendfile import SendfileProducer, sendfile_producer

METADATA_SUFFIX = ".metadata"

OCTET_STREAM = b"application/octet-stream"

BOUNDARY_BYTES = 12
"""Random bytes in a multipart boundary (written in hex): a file's bytes
will not hold it by chance."""

SMALL_FILE_SIZE = static.StaticProducer.bufferSize
"""The largest file kept in memory: one that static.File reads in one go
(64 KiB), so filling the cache reads no more on the reactor thread than
sending the file from disk does."""


_REGISTRY = static.Registry()
"""static.File's registry (of script processors, which serve nothing here):
one for all, where each File would build its own on every download."""


def _identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """
    What changes when a file is replaced, rewritten, truncated or has its
    permissions changed: its device, inode, size, and modification and
    change times.
    """
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class SmallFileCache:
    """
    The bytes of small files, most recently served first, up to a total
    size, so that a popular small file is sent without opening it.

    An entry is only ever served while the file on disk has the status it
    had when it was read (L{_identity}) and the index describes it as it
    did then (its ETag): each hit costs one C{stat} of the path, and a file
    replaced, rewritten, re-described or removed is read again (or not
    found) as if it had never been cached.

    A file changed less than L{SETTLE_SECONDS} before it was read is sent
    but not kept: file times have a granularity of a clock tick, so a file
    written again within the tick of its last change could keep its
    status; one older than that cannot.

    A file is kept from its second read among the recent ones, as nginx's
    C{proxy_cache_min_uses 2} does: a client going through every file once
    (a mirror, a scanner) would otherwise push out the popular files for
    ones nobody asks for again, and pay for keeping each.  How recent is
    L{SEEN_PER_BYTE} reads of files not kept per byte the cache holds.

    @ivar size: the bytes held, each file counted with L{ENTRY_OVERHEAD}.
    """

    ENTRY_OVERHEAD = 500
    """Bytes an entry costs beyond the file's own (its key, status, tag and
    place in the order), so that many tiny files cannot exceed the bound."""

    SETTLE_SECONDS = 1.0

    SEEN_PER_BYTE = 1 / 1024
    """Files read but not kept that are remembered, per byte of the bound:
    a file of about a kilobyte read again before the cache could have held
    as many is worth keeping."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_FILE_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
        min_uses: int = 2,
    ) -> None:
        """
        @param clock: the current time, in seconds since the epoch, as file
            times count it.
        @param min_uses: the read of a file from which it is kept.
        """
        self.max_bytes = max_bytes
        self.size = 0
        self.min_uses = min_uses
        self._clock = clock
        self._entries: OrderedDict[str, tuple[tuple[int, ...], bytes | None, bytes]] = OrderedDict()
        # Reads so far of recent files not kept, by the hash of their path:
        # small, and a collision only keeps a file a read early.
        self._seen: OrderedDict[int, int] = OrderedDict()
        self._seen_limit = max(1, int(max_bytes * self.SEEN_PER_BYTE))

    def __len__(self) -> int:
        return len(self._entries)

    def accepts(self, size: int) -> bool:
        """Whether a file of C{size} bytes is worth keeping."""
        return size <= SMALL_FILE_SIZE and size + self.ENTRY_OVERHEAD <= self.max_bytes

    def get(self, path: str, tag: bytes | None) -> tuple[bytes, os.stat_result] | None:
        """
        The bytes of the file at C{path} and its current status, if they are
        here, were kept with the same C{tag}, and the file has not changed
        since they were read.
        """
        entry = self._entries.get(path)
        if entry is None:
            return None
        try:
            status = os.stat(path)
        except OSError:
            status = None
        if status is None or _identity(status) != entry[0] or tag != entry[1]:
            self.discard(path)
            return None
        self._entries.move_to_end(path)
        return entry[2], status

    def wants(self, path: str, status: os.stat_result) -> bool:
        """
        Whether the file at C{path}, read whole while it had C{status}, is
        to be kept: it is small, settled, and read often enough.  Counts
        this read.
        """
        settled = status.st_ctime_ns < (self._clock() - self.SETTLE_SECONDS) * 1e9
        if not settled or not self.accepts(status.st_size):
            return False
        return path in self._entries or self._used_enough(path)

    def put(self, path: str, tag: bytes | None, body: bytes, status: os.stat_result) -> None:
        """
        Keep C{body}, the whole file at C{path} read while it had C{status}
        and the index gave it the ETag C{tag}, dropping the least recently
        served files to stay within the bound.  For a file L{wants} says
        is to be kept.
        """
        if len(body) != status.st_size:
            return
        self.discard(path)
        self._entries[path] = (_identity(status), tag, body)
        self.size += len(body) + self.ENTRY_OVERHEAD
        while self.size > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.size -= len(dropped) + self.ENTRY_OVERHEAD

    def _used_enough(self, path: str) -> bool:
        """Count a read of C{path}; whether it is the one to keep it from."""
        if self.min_uses <= 1:
            return True
        key = hash(path)
        uses = self._seen.pop(key, 0) + 1
        if uses >= self.min_uses:
            return True
        self._seen[key] = uses
        if len(self._seen) > self._seen_limit:
            self._seen.popitem(last=False)
        return False

    def discard(self, path: str) -> None:
        """Forget the file at C{path}, if it is here."""
        entry = self._entries.pop(path, None)
        if entry is not None:
            self.size -= len(entry[2]) + self.ENTRY_OVERHEAD


@implementer(IPullProducer)
class MultipartRangesProducer:
    """
    Sends a C{multipart/byteranges} body: each part's separator, then its
    span of the file, at most L{BLOCK_SIZE} bytes per turn.

    Unlike static.File's MultipleRangeStaticProducer, a read never asks for
    a negative or zero length (that producer's reads go negative once the
    separators of one turn pass a block, and an in-memory file answers a
    negative read with everything, for ever), and a file found shorter
    than its spans aborts the connection, so the client sees a broken
    download rather than a short one: every turn moves towards the end.
    """

    BLOCK_SIZE = static.StaticProducer.bufferSize

    def __init__(
        self, request: Request, file: BinaryIO, parts: Sequence[tuple[bytes, Span]], closing: bytes
    ) -> None:
        """
        @param parts: each part's separator and the span of C{file} after
            it (L{multipart_parts}).
        @param closing: the closing delimiter, sent after the last part.
        """
        self._request: Request | None = request
        self._file = file
        self._parts = deque(parts)
        self._closing = closing
        self._left_in_part = 0

    def start(self) -> None:
        """Begin sending, as the transport asks for more."""
        self._request.registerProducer(self, False)

    def resumeProducing(self) -> None:
        request = self._request
        if request is None:
            return
        pieces = []
        room = self.BLOCK_SIZE
        while room > 0:
            if not self._left_in_part:
                if not self._parts:
                    break
                separator, span = self._parts.popleft()
                pieces.append(separator)
                room -= len(separator)
                self._file.seek(span.offset)
                self._left_in_part = span.length
                continue
            data = self._file.read(min(room, self._left_in_part))
            if not data:  # the file is shorter than announced
                self._abort()
                return
            pieces.append(data)
            room -= len(data)
            self._left_in_part -= len(data)
        finished = not self._left_in_part and not self._parts
        if finished:
            pieces.append(self._closing)
            # Before writing, which may call back in here.
            self._request = None
        request.write(b"".join(pieces))
        if finished:
            request.unregisterProducer()
            request.finish()
            self._file.close()

    def stopProducing(self) -> None:
        self._request = None
        self._file.close()

    def _abort(self) -> None:
        transport = self._request.transport
        self.stopProducing()
        if transport is not None:
            transport.abortConnection()


class DistributionFileResource(static.File):
    """
    One file from disk, sent as it is: no C{Content-Encoding} for
    C{.tar.gz} (clients would unpack it and fail the hash check), with the
    file's sha256 as ETag.

    The file is opened once per request, with L{open_regular_descriptor},
    and everything sent about it (size, C{Last-Modified}, the body) comes
    from that open file, never from a second look at the path.  A small
    file is read whole when it is opened and sent from memory, without a
    producer; a L{SmallFileCache} may keep it, to send it again while it
    is unchanged on disk.
    """

    contentEncodings: dict[str, str] = {}
    isLeaf = True

    def __init__(
        self,
        path: str,
        etag: bytes | None,
        cache_control: bytes | None,
        described: tuple[int, int] | None = None,
        small_files: SmallFileCache | None = None,
    ) -> None:
        """
        @param described: the size and C{st_mtime_ns} the index saw when it
            hashed the file, which C{etag} is true for; L{None} to serve
            whatever is there.
        @param small_files: where small files are kept in memory, if
            anywhere.
        """
        super().__init__(path, defaultType="application/octet-stream", registry=_REGISTRY)
        self.contentTypes = {}
        self.type = "application/octet-stream"
        self.encoding = None
        self._etag = etag
        self._cache_control = cache_control
        self._described = described
        self._small_files = small_files
        self._opened: BinaryIO | None = None
        self._status: os.stat_result | None = None

    def open_for_request(self) -> tuple[BinaryIO, os.stat_result]:
        """
        The file, opened for the request being answered, and its status.

        Opening a regular file and fstat-ing it only reads metadata the page
        cache holds, so it is done on the reactor thread;
        L{open_regular_descriptor}'s C{O_NONBLOCK} and C{S_ISREG} check keep
        a FIFO or a device put in the file's place from blocking the whole
        server.

        A small file is read whole here, in one call (static.File would
        read it in one go too), and sent from memory; the L{SmallFileCache},
        if any, may keep it, and one kept there, unchanged since, is not
        opened at all.
        """
        small_files = self._small_files
        if small_files is not None:
            kept = small_files.get(self.path, self._etag)
            if kept is not None:
                return BytesIO(kept[0]), kept[1]
        fd, status = open_regular_descriptor(self.path)
        try:
            if status.st_size <= SMALL_FILE_SIZE and self._describes(status):
                body = os.read(fd, SMALL_FILE_SIZE + 1)
                if len(body) == status.st_size:
                    if small_files is not None:
                        self._keep(small_files, fd, body, status)
                    return BytesIO(body), status
                # Changing as it was read: sent from the file as it is now,
                # whose status shows it is not the one the index described.
                os.lseek(fd, 0, os.SEEK_SET)
                status = os.fstat(fd)
            os.set_blocking(fd, True)
            opened, fd = os.fdopen(fd, "rb"), None
            return opened, status
        finally:
            if fd is not None:
                os.close(fd)

    def _describes(self, status: os.stat_result) -> bool:
        """Whether C{status} is that of the file the index described."""
        return self._described is None or (status.st_size, status.st_mtime_ns) == self._described

    def _keep(self, small_files: SmallFileCache, fd: int, body: bytes, status: os.stat_result) -> None:
        """
        Keep C{body}, the whole file read from C{fd} while it had C{status},
        in C{small_files} if it wants it and the file did not change while
        it was read.  The status is looked at again only for a file to be
        kept: one sent once is sent as read, as from disk.
        """
        if small_files.wants(self.path, status) and _identity(os.fstat(fd)) == _identity(status):
            small_files.put(self.path, self._etag, body, status)

    def render_GET(self, request: Request) -> bytes | int:
        # Uploaders' bytes: a browser must not take them for a page.
        request.setHeader(b"x-content-type-options", b"nosniff")
        try:
            opened, status = self.open_for_request()
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM):
                return error_page(request, 403, "Forbidden: the file cannot be read by the server", f"{self.basename()} cannot be read by the server")
            return error_page(request, 404, "No such file on disk", f"{self.basename()} is not a readable file on disk")
        self._opened = opened
        try:
            if not self._describes(status):
                # Being overwritten (cp truncates, then writes): its bytes
                # are not the ones the ETag and the index's hash describe
                # until the watcher has read it again.
                request.setHeader(b"retry-after", b"2")
                return error_page(
                    request, 503, "The file is changing on disk: try again in a few seconds",
                    f"{self.basename()} is changing on disk; try again in a few seconds",
                )
            if self._cache_control is not None:
                request.setHeader(b"cache-control", self._cache_control)
            if self._etag is not None and not_modified(request, self._etag):
                return b""
            self._status = status
            if isinstance(opened, BytesIO) and request.method == b"GET":
                return self._send_from_memory(request, opened.getvalue())
            return super().render_GET(request)
        finally:
            # Once static.File has taken the file through openForReading it
            # closes it or hands it to a producer; else it is closed here.
            if self._opened is not None:
                self._opened.close()
                self._opened = None

    def _send_from_memory(self, request: Request, body: bytes) -> bytes:
        """
        Answer a GET of a file held in memory as it is answered from disk
        (C{Accept-Ranges}, C{Last-Modified} and a 304 on
        C{If-Modified-Since}, the same range answers), with the bytes
        sliced from C{body}: no producer, no round through the reactor, no
        read loop.
        """
        request.setHeader(b"accept-ranges", b"bytes")
        # CACHED and the codes imported once: twisted.web.http is wrapped by
        # a deprecation proxy that makes each attribute lookup cost
        # microseconds.
        if request.setLastModified(self._status.st_mtime) is CACHED:
            return b""
        plan, boundary = self._range_plan(request, len(body))
        if plan.status == OK:
            # Content-Length comes with the body.
            request.setHeader(b"content-type", OCTET_STREAM)
            return body
        parts, closing = self._start_answer(request, plan, len(body), boundary)
        if plan.status != PARTIAL_CONTENT:
            return b""
        if len(plan.spans) == 1:
            (span,) = plan.spans
            return body[span.offset : span.end]
        pieces = [piece for separator, span in parts for piece in (separator, body[span.offset : span.end])]
        return b"".join(pieces) + closing

    def _range_plan(self, request: Request, size: int) -> tuple[RangePlan, str]:
        """
        How to answer C{request} for this file of C{size} bytes
        (L{plan_ranges}), and the boundary a multipart answer has.  A
        C{Range} that C{If-Range} says is for another file is not honoured.
        """
        header = request.getHeader(b"range")
        if header is None or not self._if_range_holds(request):
            return WHOLE_FILE, ""
        boundary = os.urandom(BOUNDARY_BYTES).hex()
        return plan_ranges(header, size, OCTET_STREAM, boundary), boundary

    def _start_answer(
        self, request: Request, plan: RangePlan, size: int, boundary: str
    ) -> tuple[list[tuple[bytes, Span]], bytes]:
        """
        Set the status and the headers that describe the body of C{plan}
        for this file of C{size} bytes.

        @return: for a multipart answer, its parts and closing delimiter
            (L{multipart_parts}); else no parts.
        """
        parts: list[tuple[bytes, Span]] = []
        closing = b""
        request.setResponseCode(plan.status)
        if plan.status == REQUESTED_RANGE_NOT_SATISFIABLE:
            request.setHeader(b"content-range", unsatisfied_range(size))
            request.setHeader(b"content-length", b"0")
        elif plan.status == OK:
            self._setContentHeaders(request, size)
        elif len(plan.spans) == 1:
            (span,) = plan.spans
            request.setHeader(b"content-range", content_range(span, size))
            self._setContentHeaders(request, span.length)
        else:
            parts, closing = multipart_parts(plan.spans, size, OCTET_STREAM, boundary)
            length = sum(len(separator) + span.length for separator, span in parts) + len(closing)
            request.setHeader(b"content-type", b'multipart/byteranges; boundary="%s"' % boundary.encode("ascii"))
            request.setHeader(b"content-length", b"%d" % (length,))
        return parts, closing

    # static.File sets render_HEAD = render_GET on itself, which would skip
    # the ETag, Cache-Control and If-None-Match above.
    render_HEAD = render_GET

    def makeProducer(
        self, request: Request, fileForReading: BinaryIO
    ) -> static.StaticProducer | SendfileProducer | MultipartRangesProducer:
        """
        The producer of the answer L{plan_ranges} decides on, its status and
        headers set: the whole file or a single range sent with sendfile
        where that can be (else by static.File's producers), several ranges
        by a L{MultipartRangesProducer}.  Replaces static.File's own range
        handling, which neither merges nor caps ranges.
        """
        size = self.getFileSize()
        plan, boundary = self._range_plan(request, size)
        parts, closing = self._start_answer(request, plan, size, boundary)
        if plan.status == REQUESTED_RANGE_NOT_SATISFIABLE:
            # An empty body: a single range of no bytes finishes at once.
            return static.SingleRangeStaticProducer(request, fileForReading, 0, 0)
        if plan.status == OK:
            span = Span(0, size)
            producer = static.NoRangeStaticProducer(request, fileForReading)
        elif len(plan.spans) == 1:
            (span,) = plan.spans
            producer = static.SingleRangeStaticProducer(request, fileForReading, span.offset, span.length)
        else:
            return MultipartRangesProducer(request, fileForReading, parts, closing)
        return sendfile_producer(request, fileForReading, *span) or producer

    def _if_range_holds(self, request: Request) -> bool:
        """
        Whether a C{Range} may be honoured: there is no C{If-Range}, or it
        names this very file (RFC 9110 13.1.5), by its entity tag compared
        strongly (a weak tag never matches) or by its exact
        C{Last-Modified} date.  Else the client's partial copy is of another
        file, and it must be sent the whole of this one.
        """
        condition = request.getHeader(b"if-range")
        if condition is None:
            return True
        condition = condition.strip()
        if condition.startswith((b'"', b"W/")):
            return self._etag is not None and condition == self._etag
        try:
            return http.stringToDatetime(condition) == request.lastModified
        except ValueError:
            return False

    def restat(self, reraise: bool = True) -> None:
        # static.File.render_GET restats the path first: use the status of
        # the file already open, which is the one that will be sent.
        if self._status is None:
            super().restat(reraise)
        else:
            self._statinfo = self._status

    def getFileSize(self) -> int:
        if self._status is None:
            return super().getFileSize()
        return self._status.st_size

    def openForReading(self) -> BinaryIO:
        if self._opened is None:
            return open_regular_file(self.path)
        opened, self._opened = self._opened, None
        return opened


class MetadataResource(static.Data):
    """
    A distribution's PEP 658 metadata: its uploader's text, sent as plain
    text that no browser may take for a page.  Sent whole: a C{Range} is
    ignored, as RFC 9110 lets a server do.
    """

    def __init__(self, metadata: bytes) -> None:
        super().__init__(metadata, "text/plain; charset=utf-8")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"x-content-type-options", b"nosniff")
        return super().render_GET(request)

    render_HEAD = render_GET


class Packages(Resource):
    """
    C{/packages/} and everything below it.
    """

    isLeaf = True

    def __init__(
        self,
        index: PackageIndex,
        cache_control: bytes | None = None,
        file_cache_size: int = DEFAULT_FILE_CACHE_SIZE,
    ) -> None:
        """
        @param file_cache_size: bytes of small files kept in memory (0 for
            none).
        """
        super().__init__()
        self.index = index
        self.cache_control = cache_control
        self.small_files = SmallFileCache(file_cache_size) if file_cache_size > 0 else None

    def render_GET(self, request: Request) -> bytes | int:
        postpath = request.postpath
        if postpath in ([], [b""]):
            if not postpath:
                request.setResponseCode(301)
                request.setHeader(b"location", b"packages/")
                return b""
            page = self.index.cached(
                "packages", lambda: Page.of(packages_listing_html(self.index), HTML)
            )
            return send_page(request, page)
        # /packages/<any folders>/<file>: pypiserver links files with their
        # sub-folder; the file name alone decides what is served.
        try:
            filename = postpath[-1].decode("utf-8")
        except UnicodeDecodeError:
            return error_page(request, 404, "no such file")
        resource = self.file_resource(filename)
        if resource is None:
            return error_page(request, 404, "No such file on this index", f"{filename!r} is not on this index")
        return resource.render(request)

    def file_resource(self, filename: str) -> Resource | None:
        """
        The resource that serves C{filename}, or L{None} if the index has no
        such file, or does not offer it (its project is quarantined).
        """
        dist = self.index.offered_file(filename)
        if dist is not None:
            return DistributionFileResource(
                dist.path,
                f'"{dist.sha256}"'.encode("ascii"),
                self.cache_control,
                described=(dist.size, dist.mtime_ns),
                small_files=self.small_files,
            )
        if filename.endswith(METADATA_SUFFIX):
            dist = self.index.offered_file(filename[: -len(METADATA_SUFFIX)])
            if dist is None or dist.metadata_sha256 is None:
                return None
            return MetadataResource(self.index.metadata_of(dist))
        if filename.endswith(SIGNATURE_SUFFIX):
            dist = self.index.offered_file(filename[: -len(SIGNATURE_SUFFIX)])
            if dist is None or not dist.signature:
                return None
            return DistributionFileResource(
                dist.path + SIGNATURE_SUFFIX, None, self.cache_control, small_files=self.small_files
            )
        return None
