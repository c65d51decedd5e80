"""
C{/packages/}: the list of files, the files themselves (with HEAD, Range and
ETag), their PEP 658 metadata and their detached signatures.

Files are found by name in the index, never by mapping the URL onto the
disk, so no path in a request can reach anything the index does not list.
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO

from twisted.web import http, static
from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index import PackageIndex, Page
from twistedpypi.render import HTML, packages_listing_html
from twistedpypi.storage import SIGNATURE_SUFFIX, open_regular_file
from twistedpypi.web.respond import error_page, not_modified, send_page

METADATA_SUFFIX = ".metadata"


_REGISTRY = static.Registry()
"""static.File's registry (of script processors, which serve nothing here):
one for all, where each File would build its own on every download."""


class DistributionFileResource(static.File):
    """
    One file from disk, sent as it is: no C{Content-Encoding} for
    C{.tar.gz} (clients would unpack it and fail the hash check), with the
    file's sha256 as ETag.

    The file is opened once per request, with L{open_regular_file}, and
    everything sent about it (size, C{Last-Modified}, the body) comes from
    that open file, never from a second look at the path.
    """

    contentEncodings: dict[str, str] = {}
    isLeaf = True

    def __init__(
        self,
        path: str,
        etag: bytes | None,
        cache_control: bytes | None,
        described: tuple[int, int] | None = None,
    ) -> None:
        """
        @param described: the size and C{st_mtime_ns} the index saw when it
            hashed the file, which C{etag} is true for; L{None} to serve
            whatever is there.
        """
        super().__init__(path, defaultType="application/octet-stream", registry=_REGISTRY)
        self.contentTypes = {}
        self.type = "application/octet-stream"
        self.encoding = None
        self._etag = etag
        self._cache_control = cache_control
        self._described = described
        self._opened: BinaryIO | None = None
        self._status: os.stat_result | None = None

    def open_for_request(self) -> tuple[BinaryIO, os.stat_result]:
        """
        The file, opened for the request being answered, and its status.

        Opening a regular file and fstat-ing it only reads metadata the page
        cache holds, so it is done on the reactor thread; open_regular_file's
        O_NONBLOCK and S_ISREG check keep a FIFO or a device put in the
        file's place from blocking the whole server.
        """
        opened = open_regular_file(self.path)
        try:
            return opened, os.fstat(opened.fileno())
        except BaseException:
            opened.close()
            raise

    def render_GET(self, request: Request) -> bytes | int:
        try:
            opened, status = self.open_for_request()
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM):
                return error_page(request, 403, f"{self.basename()} cannot be read by the server")
            return error_page(request, 404, f"{self.basename()} is not a readable file on disk")
        self._opened = opened
        try:
            if self._described is not None and (status.st_size, status.st_mtime_ns) != self._described:
                # Being overwritten (cp truncates, then writes): its bytes
                # are not the ones the ETag and the index's hash describe
                # until the watcher has read it again.
                request.setHeader(b"retry-after", b"2")
                return error_page(
                    request, 503, f"{self.basename()} is changing on disk; try again in a few seconds"
                )
            if self._cache_control is not None:
                request.setHeader(b"cache-control", self._cache_control)
            if self._etag is not None and not_modified(request, self._etag):
                return b""
            self._status = status
            return super().render_GET(request)
        finally:
            # Once static.File has taken the file through openForReading it
            # closes it or hands it to a producer; else it is closed here.
            if self._opened is not None:
                self._opened.close()
                self._opened = None

    # static.File sets render_HEAD = render_GET on itself, which would skip
    # the ETag, Cache-Control and If-None-Match above.
    render_HEAD = render_GET

    def makeProducer(self, request: Request, fileForReading: BinaryIO) -> static.StaticProducer:
        if request.getHeader(b"range") is not None and not self._if_range_holds(request):
            # As static.File answers a request without a Range.
            self._setContentHeaders(request)
            request.setResponseCode(http.OK)
            return static.NoRangeStaticProducer(request, fileForReading)
        return super().makeProducer(request, fileForReading)

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


class Packages(Resource):
    """
    C{/packages/} and everything below it.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, cache_control: bytes | None = None) -> None:
        super().__init__()
        self.index = index
        self.cache_control = cache_control

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
            return error_page(request, 404, f"{filename!r} is not on this index")
        return resource.render(request)

    def file_resource(self, filename: str) -> Resource | None:
        """
        The resource that serves C{filename}, or L{None} if the index has no
        such file.
        """
        dist = self.index.file(filename)
        if dist is not None:
            return DistributionFileResource(
                dist.path,
                f'"{dist.sha256}"'.encode("ascii"),
                self.cache_control,
                described=(dist.size, dist.mtime_ns),
            )
        if filename.endswith(METADATA_SUFFIX):
            dist = self.index.file(filename[: -len(METADATA_SUFFIX)])
            if dist is None or dist.metadata_sha256 is None:
                return None
            return static.Data(self.index.metadata_of(dist), "text/plain; charset=utf-8")
        if filename.endswith(SIGNATURE_SUFFIX):
            dist = self.index.file(filename[: -len(SIGNATURE_SUFFIX)])
            if dist is None or not dist.signature:
                return None
            return DistributionFileResource(dist.path + SIGNATURE_SUFFIX, None, self.cache_control)
        return None
