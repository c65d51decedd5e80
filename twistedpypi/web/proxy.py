"""
C{--fallback-mode proxy}: simple pages of projects not found here, fetched
from the upstream index and shown as our own, and C{/upstream/<project>/<file>}
where their files (and PEP 658 metadata) are served from the cache.

A project that exists locally is never proxied: its page is the local one,
and C{/upstream/} refuses its files, so nobody upstream can publish into a
local name (dependency confusion).
"""

from __future__ import annotations

import os
from typing import IO

from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twistedpypi.index.distfile import parse_filename
from twistedpypi.index.model import PackageIndex, Page
from twistedpypi.pages.simple import SIMPLE_JSON
from twistedpypi.proxy.fetch import FileDownload, UpstreamError
from twistedpypi.proxy.pages import simple_upstream_html, simple_upstream_json
from twistedpypi.proxy.upstream import (
    METADATA_SUFFIX,
    Upstream,
    is_normalized_project_name,
)
from twistedpypi.web.files import DistributionFileResource
from twistedpypi.web.respond import error_page, render_later, send_body, send_page


class UpstreamProxy:
    """
    The L{MissingProject} answer that fetches the project from upstream and
    shows it as our own page, every file linked under C{/upstream/}.
    """

    def __init__(self, upstream: Upstream, cache_control: bytes | None = None) -> None:
        self.upstream = upstream
        self.cache_control = cache_control

    def render_missing(self, request: Request, project: str, media_type: bytes) -> int:
        return render_later(request, self._page(request, project, media_type))

    async def _page(self, request: Request, project: str, media_type: bytes) -> bytes:
        try:
            proxied = await self.upstream.project(project)
        except UpstreamError as error:
            return error_page(request, error.code, "Not available from the upstream index", error.reason)
        if proxied.project is None:
            return error_page(request, 404, "No such project here or upstream", f"project {project!r} is neither here nor on the upstream index")
        upstream_project = proxied.project

        def render() -> Page:
            if media_type == SIMPLE_JSON:
                return Page.of(simple_upstream_json(upstream_project, project), media_type)
            return Page.of(simple_upstream_html(upstream_project, project), media_type)

        page = await proxied.cached(media_type, render)
        return send_page(request, page, cache_control=self.cache_control)


class _StreamToRequest:
    """
    Sends a file to one client while it downloads from upstream; detached
    from the download when the client goes away, so it is told nothing
    after that.
    """

    def __init__(self, request: Request, etag: str | None, cache_control: bytes | None) -> None:
        self.request = request
        self.etag = etag
        self.cache_control = cache_control

    def started(self, length: int | None) -> None:
        request = self.request
        request.setHeader(b"content-type", b"application/octet-stream")
        # As for files from the cache (DistributionFileResource): upstream's
        # bytes are not a page.
        request.setHeader(b"x-content-type-options", b"nosniff")
        if length is not None:
            request.setHeader(b"content-length", str(length).encode("ascii"))
        if self.etag:
            request.setHeader(b"etag", f'"{self.etag}"'.encode("ascii"))
        if self.cache_control is not None:
            request.setHeader(b"cache-control", self.cache_control)

    def data(self, chunk: bytes) -> None:
        self.request.write(chunk)

    def finished(self) -> None:
        self.request.finish()

    def failed(self, error: UpstreamError) -> None:
        if self.request.startedWriting:
            # Too late for a status: cut the response short so the client
            # sees a failed download, never a complete wrong file.
            self.request.loseConnection()
            return
        for name in (b"content-length", b"etag", b"cache-control"):
            self.request.responseHeaders.removeHeader(name)
        send_body(self.request, error_page(self.request, error.code, "Not available from the upstream index", error.reason))


def _open(path: str) -> tuple[IO[bytes], os.stat_result]:
    """The file open for reading, and its status.  Blocks: call it in a thread."""
    stream = open(path, "rb")
    try:
        return stream, os.fstat(stream.fileno())
    except BaseException:
        stream.close()
        raise


class _CachedFile(DistributionFileResource):
    """
    A file of the cache opened (and its status read) in a thread beforehand,
    so that C{static.File} sends it (HEAD, conditional requests, a
    producer) without touching the disk on the reactor thread, its ranges
    answered as local files' are (L{twistedpypi.web.ranges}).
    """

    def __init__(
        self, path: str, stream: IO[bytes], status: os.stat_result, etag: bytes | None, cache_control: bytes | None
    ) -> None:
        super().__init__(path, etag, cache_control)
        self._prepared: tuple[IO[bytes], os.stat_result] | None = (stream, status)

    def open_for_request(self) -> tuple[IO[bytes], os.stat_result]:
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            raise OSError("a cached file answers one request")
        return prepared

    def close(self) -> None:
        """Close the file if no request took it."""
        if self._prepared is not None:
            self._prepared[0].close()
            self._prepared = None


class UpstreamFiles(Resource):
    """
    C{/upstream/<project>/<file>} and C{<file>.metadata}: files of proxied
    projects, from the cache, fetched on first request.
    """

    isLeaf = True

    def __init__(self, upstream: Upstream, index: PackageIndex, cache_control: bytes | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.index = index
        self.cache_control = cache_control

    def render_GET(self, request: Request) -> bytes | int:
        postpath = request.postpath
        try:
            project, filename = (part.decode("utf-8") for part in postpath)
        except (ValueError, UnicodeDecodeError):
            return error_page(request, 404, "use /upstream/<project>/<file>")
        if not is_normalized_project_name(project) or "\0" in filename:
            return error_page(request, 404, "no such file")
        if self.index.project(project) is not None:
            return error_page(
                request, 404, "This project is served from local files only",
                f"project {project!r} is served from local files only, never from upstream",
            )
        metadata = filename.endswith(METADATA_SUFFIX)
        distribution = filename[: -len(METADATA_SUFFIX)] if metadata else filename
        if parse_filename(distribution) is None:
            return error_page(request, 404, "no such file")
        if metadata:
            return render_later(request, self._metadata(request, project, distribution))
        return render_later(request, self._file(request, project, filename))

    async def _open_cached(self, project: str, filename: str) -> _CachedFile | None:
        """
        The cached file, opened in a thread, or L{None} if it is not in the
        cache.
        """
        path = await self.upstream.cached_file(project, filename)
        if path is None:
            return None
        try:
            stream, status = await deferToThread(_open, path)
        except FileNotFoundError:
            # Deleted from the cache to reclaim space: fetched again.
            self.upstream.forget_file(project, filename)
            return None
        sha256 = self.upstream.known_sha256(project, filename)
        etag = f'"{sha256}"'.encode("ascii") if sha256 else None
        return _CachedFile(path, stream, status, etag, self.cache_control)

    async def _file(self, request: Request, project: str, filename: str) -> bytes | int:
        cached = await self._open_cached(project, filename)
        if cached is not None:
            self.upstream.stats.file_hits += 1
            return cached.render(request)
        return await self._fetch(request, project, filename)

    async def _fetch(self, request: Request, project: str, filename: str) -> bytes | int:
        # A client going away cancels this (render_later): whatever it
        # awaits then raises, and nothing below is done for it.
        try:
            download: FileDownload | None = await self.upstream.download(project, filename)
        except UpstreamError as error:
            return error_page(request, error.code, "Not available from the upstream index", error.reason)
        if download is not None:
            streamable = request.method == b"GET" and request.getHeader(b"range") is None
            listener = _StreamToRequest(request, self.upstream.known_sha256(project, filename), self.cache_control)
            if streamable and download.attach(listener):
                request.notifyFinish().addErrback(lambda _: download.detach(listener))
                return NOT_DONE_YET
            try:
                await download.wait()
            except UpstreamError as error:
                return error_page(request, error.code, "Not available from the upstream index", error.reason)
        else:
            self.upstream.stats.file_hits += 1
        cached = await self._open_cached(project, filename)
        if cached is None:
            return error_page(request, 502, "Bad Gateway: the file vanished from the cache", f"{filename} vanished from the cache")
        return cached.render(request)

    async def _metadata(self, request: Request, project: str, filename: str) -> bytes | int:
        for _ in range(2):  # once more if it was deleted from the cache meanwhile
            try:
                await self.upstream.metadata(project, filename)
            except UpstreamError as error:
                return error_page(request, error.code, "Not available from the upstream index", error.reason)
            cached = await self._open_cached(project, filename + METADATA_SUFFIX)
            if cached is not None:
                return cached.render(request)
        return error_page(request, 502, "Bad Gateway: the file vanished from the cache", f"{filename}{METADATA_SUFFIX} vanished from the cache")
