"""
C{/packages/}: the list of files, the files themselves (with HEAD, Range and
ETag), their PEP 658 metadata and their detached signatures.

Files are found by name in the index, never by mapping the URL onto the
disk, so no path in a request can reach anything the index does not list.
"""

from __future__ import annotations

from twisted.web import static
from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index import PackageIndex, Page
from twistedpypi.render import HTML, packages_listing_html
from twistedpypi.storage import SIGNATURE_SUFFIX
from twistedpypi.web.respond import error_page, not_modified, send_page

METADATA_SUFFIX = ".metadata"


class DistributionFileResource(static.File):
    """
    One file from disk, sent as it is: no C{Content-Encoding} for
    C{.tar.gz} (clients would unpack it and fail the hash check), with the
    file's sha256 as ETag.
    """

    contentEncodings: dict[str, str] = {}
    isLeaf = True

    def __init__(self, path: str, etag: bytes | None, cache_control: bytes | None) -> None:
        super().__init__(path, defaultType="application/octet-stream")
        self.contentTypes = {}
        self.type = "application/octet-stream"
        self.encoding = None
        self._etag = etag
        self._cache_control = cache_control

    def render_GET(self, request: Request) -> bytes | int:
        if self._cache_control is not None:
            request.setHeader(b"cache-control", self._cache_control)
        if self._etag is not None and not_modified(request, self._etag):
            return b""
        return super().render_GET(request)

    # static.File sets render_HEAD = render_GET on itself, which would skip
    # the ETag, Cache-Control and If-None-Match above.
    render_HEAD = render_GET


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
                dist.path, f'"{dist.sha256}"'.encode("ascii"), self.cache_control
            )
        if filename.endswith(METADATA_SUFFIX):
            dist = self.index.file(filename[: -len(METADATA_SUFFIX)])
            if dist is None or dist.metadata_sha256 is None:
                return None
            return static.Data(dist.metadata, "text/plain; charset=utf-8")
        if filename.endswith(SIGNATURE_SUFFIX):
            dist = self.index.file(filename[: -len(SIGNATURE_SUFFIX)])
            if dist is None or not dist.signature:
                return None
            return DistributionFileResource(dist.path + SIGNATURE_SUFFIX, None, self.cache_control)
        return None
