"""
The Twisted Web site: the request class and the site that builds the
resource tree.
"""

from __future__ import annotations

from io import BytesIO

from twisted.logger import Logger
from twisted.web.server import Request, Site

from twistedpypi.auth import AccessPolicy
from twistedpypi.config import Config
from twistedpypi.index import PackageIndex
from twistedpypi.upload import boundary_from_content_type
from twistedpypi.watch import PackageWatcher
from twistedpypi.web.root import Root
from twistedpypi.web.upload import Uploads

log = Logger()

MAX_FORM_BODY = 1024 * 1024
"""Bytes kept of a body that is not an upload (a removal form, XML-RPC)."""

BODY_SLACK = 16 * 1024 * 1024
"""Bytes an upload's body may exceed --max-upload-size by: the form's
other fields and the multipart framing."""

LINGER_SECONDS = 30.0
"""How long a refused request's body is still read (and dropped) so the
client, still sending, gets to read the answer."""


class IndexRequest(Request):
    """
    A request that is not answered before the first scan of the package
    directories is in the index, so nobody is told a package is missing
    just because the server started a moment ago.

    Bodies are not parsed into C{args}.  An upload (a
    C{multipart/form-data} C{POST /}) streams into an
    L{twistedpypi.web.upload.UploadReceiver} as it arrives, never into
    memory or Twisted's temporary file; other bodies are kept in memory up
    to L{MAX_FORM_BODY} bytes.
    """

    upload = None
    body_truncated = False
    _refused = False
    _linger = None

    def __init__(self, channel, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)
        self._body_size = 0

    def gotLength(self, length: int | None) -> None:
        site = getattr(self.channel, "site", None)
        uploads: Uploads | None = getattr(site, "uploads", None)
        self.content = BytesIO()
        limit = uploads.config.max_upload_size + BODY_SLACK if uploads is not None else MAX_FORM_BODY
        self._body_limit = limit
        if length is not None and length > limit:
            self.refuse_early(
                413,
                f"the upload is larger than this server accepts ({limit - BODY_SLACK} bytes);"
                " the administrator can raise --max-upload-size",
            )
            return
        boundary = boundary_from_content_type(self.requestHeaders.getRawHeaders(b"content-type", [None])[0])
        if uploads is not None and boundary is not None and self._is_root_post():
            self.upload = uploads.receiver(
                self, boundary, self._pause_reading, self._resume_reading
            )

    def _is_root_post(self) -> bool:
        # The request line is not on the request yet when the headers end;
        # the channel has it.  Without it, any form body is taken as an
        # upload candidate (the resource still refuses other paths).
        command = getattr(self.channel, "_command", b"POST")
        path = getattr(self.channel, "_path", b"/").split(b"?", 1)[0]
        return command == b"POST" and path in (b"/", b"")

    def _pause_reading(self) -> None:
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.pauseProducing()

    def _resume_reading(self) -> None:
        # Once the body is complete the channel manages reading itself.
        if self.channel is not None and self.channel.transport is not None and not self._body_done:
            self.channel.transport.resumeProducing()

    _body_done = False

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_size += len(data)
        if self._body_size > self._body_limit:
            self.refuse_early(413, "the upload is larger than this server accepts")
            return
        if self.upload is not None:
            self.upload.feed(data)
            error = self.upload.error
            if error is not None and error.code == 413:
                self.refuse_early(413, error.reason)
            return
        if self.content.tell() + len(data) > MAX_FORM_BODY:
            self.body_truncated = True
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._body_done = True
        if self._refused:
            return
        if self.upload is not None:
            self.upload.body_complete()
            self.notifyFinish().addBoth(lambda _: self.upload.discard())
        super().requestReceived(command, path, version)

    def refuse_early(self, code: int, reason: str) -> None:
        """
        Answer now, before the body is read, and close the connection: for
        bodies too large to be worth reading.  The rest of the body is read
        and dropped for a while, so a client still sending sees the answer
        rather than a reset connection.
        """
        if self._refused:
            return
        self._refused = True
        if self.upload is not None:
            self.upload.discard()
        log.info("refused a request early: {code} {reason}", code=code, reason=reason)
        body = (reason + "\n").encode("utf-8")
        phrase = reason.encode("utf-8", "replace")[:200].replace(b"\r", b" ").replace(b"\n", b" ")
        # No "100 Continue" after this.
        self.requestHeaders.removeHeader(b"expect")
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, phrase, len(body), body)
        )
        try:
            transport.loseWriteConnection()
        except (AttributeError, NotImplementedError):
            transport.loseConnection()
        from twisted.internet import reactor

        self._linger = reactor.callLater(LINGER_SECONDS, transport.abortConnection)

    def process(self) -> None:
        watcher = self.channel.site.watcher
        if watcher.is_ready:
            super().process()
        else:
            watcher.ready.addCallback(lambda _: Request.process(self))

    def connectionLost(self, reason) -> None:
        if self.upload is not None:
            self.upload.discard()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)


class IndexSite(Site):
    """
    The site of one index: its requests wait for the watcher's first scan.
    """

    requestFactory = IndexRequest
    displayTracebacks = False

    def __init__(self, resource, watcher: PackageWatcher, uploads: Uploads | None = None, **kwargs) -> None:
        super().__init__(resource, **kwargs)
        self.watcher = watcher
        self.uploads = uploads


def make_site(config: Config, index: PackageIndex, watcher: PackageWatcher) -> IndexSite:
    """
    The site serving C{index} with the settings in C{config}.
    """
    policy = AccessPolicy.from_config(config)
    uploads = Uploads(config, index, watcher, policy)
    return IndexSite(Root(config, index, policy=policy, uploads=uploads), watcher, uploads)
