"""
The Twisted Web site: the request class, the connection class that bounds
what a client may make the server hold, and the site that builds the
resource tree.
"""

from __future__ import annotations

import re
from io import BytesIO
from time import monotonic
from weakref import WeakSet

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import NOT_MODIFIED, HTTPChannel
from twisted.web.resource import Resource
from twisted.web.error import UnsupportedMethod
from twisted.web.server import NOT_DONE_YET, Request, Site

from twistedpypi.auth import AccessPolicy
from twistedpypi.config import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HEALTH_ENDPOINT,
    DEFAULT_MAX_UPLOAD_SIZE,
    Config,
)
from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import METRICS, Metrics
from twistedpypi.process.drain import InFlight
from twistedpypi.scan.watcher import PackageWatcher
from twistedpypi.uploads.form import largest_upload_body
from twistedpypi.uploads.multipart import boundary_from_content_type
from twistedpypi.uploads.publisher import Publisher
from twistedpypi.web.accesslog import log_access, log_refused_connection
from twistedpypi.web.respond import (
    allowed_methods,
    error_page,
    relative_redirect,
    status_phrase,
)
from twistedpypi.web.root import Root, RouteNames
from twistedpypi.web.upload import Uploads

log = Logger()

MAX_FORM_BODY = 1024 * 1024
"""
The largest body of a C{POST} or C{PUT} that is not an upload (a removal
form, an XML-RPC call), and the most bytes of a body kept in memory.
"""

LINGER_SECONDS = 30.0
"""How long a refused request's body is still read (and dropped) so the
client, still sending, gets to read the answer."""

IDLE_TIMEOUT = 60
"""Seconds a connection may send nothing, between or within requests."""

MAX_LINE_LENGTH = 16 * 1024
"""The longest request line or header line."""

MAX_HEADERS_SIZE = 16 * 1024
"""The most bytes of request line and headers together."""

MAX_HEADERS = 100
"""The most header lines in one request."""

MAX_BODY_WITHOUT_UPLOAD = 64 * 1024
"""
The largest body of a request whose method cannot upload (anything but POST
and PUT): nothing this server answers reads one.
"""

TOO_LARGE_PHRASE = "Content Too Large: the upload is larger than this server accepts"
"""The status line of a body refused before it is read."""

_UPLOAD_METHODS = frozenset({b"POST", b"PUT"})

_ABSOLUTE_FORM = re.compile(rb"(?i)https?://([^/?#]*)(.*)", re.DOTALL)
"""An absolute-form request target (RFC 9112 3.2.2): authority, and the rest."""


def upload_boundary(method: bytes | None, target: bytes | None, content_type: bytes | None) -> bytes | None:
    """
    The multipart boundary of a request that is an upload, a
    C{multipart/form-data} C{POST} to C{/}; L{None} for any other request.
    """
    if method != b"POST" or target is None:
        return None
    absolute = _ABSOLUTE_FORM.match(target)
    path = (absolute.group(2) if absolute else target).split(b"?", 1)[0]
    if path not in (b"/", b""):
        return None
    return boundary_from_content_type(content_type)


def request_body_limit(
    method: bytes, target: bytes, content_type: bytes | None, max_upload_size: int
) -> int:
    """
    The most body bytes one request may send: the server's one body-size
    policy, which L{IndexChannel} applies to a declared C{Content-Length}
    before reading any of the body, and to a chunked body (framing
    included) as it arrives.

      - An upload (see L{upload_boundary}; a C{PUT} of the same form is
        bounded alike, then refused with 405): C{--max-upload-size} for the
        file plus the form's
        L{twistedpypi.uploads.form.UPLOAD_FORM_ALLOWANCE}, the one margin.
        The file alone is held to C{--max-upload-size} as it streams in
        (L{twistedpypi.uploads.form.check_content_size}).
      - Any other C{POST} or C{PUT}: L{MAX_FORM_BODY}.
      - Any other method: L{MAX_BODY_WITHOUT_UPLOAD}.
    """
    if method not in _UPLOAD_METHODS:
        return MAX_BODY_WITHOUT_UPLOAD
    if upload_boundary(b"POST", target, content_type) is not None:
        return largest_upload_body(max_upload_size)
    return MAX_FORM_BODY


_twisted_header_received = HTTPChannel.headerReceived


class IndexChannel(HTTPChannel):
    """
    An HTTP/1.1 connection that cannot be held open by a slow client or made
    to buffer a body larger than the site accepts.

    Headers have a deadline (the site's C{header_timeout}) that, unlike the
    idle timeout, does not move with every byte; a body is refused with 413
    as soon as its declared or received size passes L{request_body_limit},
    before any of it is stored.  A body is framed by C{Content-Length} or
    by C{Transfer-Encoding: chunked} alone: any other transfer coding is
    refused with 400 and the connection closed, as RFC 9112 6.3 requires.
    """

    MAX_LENGTH = MAX_LINE_LENGTH
    totalHeadersSize = MAX_HEADERS_SIZE
    maxHeaders = MAX_HEADERS

    _awaiting_headers = True
    _header_deadline = None
    _header_started: float | None = None
    _abort_call = None
    _body_limit: int | None = None
    _body_received = 0
    _transfer_codings: tuple[bytes, ...] = ()

    _host = None
    _peer = None
    _refusal_sent = False
    """Whether this connection's request was answered early (refused):
    anything after that is not answered, logged or counted again."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self._start_header_deadline()

    def getHost(self):
        # Twisted asks for both addresses for every request it makes (for
        # the local one, a getsockname() system call: 5% of a small
        # request); neither changes while the connection lasts.
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self):
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def dataReceived(self, data: bytes) -> None:
        if self._awaiting_headers and self._header_started is None:
            self._start_header_deadline()
        super().dataReceived(data)

    def request_line_received(self) -> None:
        """
        A request line arrived (its L{IndexRequest} is being made): its
        headers' deadline starts now if no byte of it came through
        L{dataReceived}, as for a pipelined request buffered during the
        previous one, read from the buffer once that one is done.
        """
        if self._awaiting_headers and self._header_started is None:
            self._start_header_deadline()

    def lineLengthExceeded(self, line: bytes) -> None:
        # Twisted would close without a word; say which limit was hit.
        if hasattr(self, "_command"):
            self._respond_and_disconnect(431, b"Request Header Fields Too Large", "a header line is too long\n")
        else:
            self._respond_and_disconnect(414, b"URI Too Long", "the request line is too long\n")

    def headerReceived(self, line: bytes) -> bool:
        # A name with anything before its colon is refused by Twisted.
        if line[:1] in b"Tt" and line[:18].lower() == b"transfer-encoding:":
            # Twisted takes "chunked" and then "identity" (or "identity"
            # alone) as a framing it knows, and would read the body, or the
            # next request, by the wrong one (RFC 9112 6.1 and 6.3).
            codings = self._transfer_codings + tuple(
                coding.strip(b" \t").lower() for coding in line[18:].split(b",") if coding.strip(b" \t")
            )
            self._transfer_codings = codings
            if codings != (b"chunked",) or self._version != b"HTTP/1.1":
                self._respond_and_disconnect(
                    400,
                    b"Bad Request: unsupported Transfer-Encoding",
                    "this server reads request bodies sent with Content-Length or with"
                    " Transfer-Encoding: chunked alone (HTTP/1.1), nothing else\n",
                )
                return False
        # Twisted's own, called directly: this runs for every header line.
        return _twisted_header_received(self, line)

    def allHeadersReceived(self) -> None:
        self._transfer_codings = ()
        self._awaiting_headers = False
        self._cancel_header_deadline()
        if self._command in _UPLOAD_METHODS:
            request = self.requests[-1]
            content_type = request.requestHeaders.getRawHeaders(b"content-type", [None])[0]
            limit = request_body_limit(self._command, self._path, content_type, self.site.max_upload_size)
            if self.length is not None and self.length > limit:
                self._refuse_body(limit)
                return
            if isinstance(request, IndexRequest):
                request.headers_received(self._command, self._path, content_type)
        else:
            # Nothing but an upload method carries a body worth reading
            # (request_body_limit): no header to look at.
            limit = MAX_BODY_WITHOUT_UPLOAD
            if self.length is not None and self.length > limit:
                self._refuse_body(limit)
                return
        # A declared length is enforced by Twisted's decoder; a chunked body
        # is counted as it arrives.
        self._body_limit = limit if self.length is None else None
        self._body_received = 0
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if not self._handlingRequest and self._body_limit is not None:
            self._body_received += len(data)
            if self._body_received > self._body_limit:
                self._refuse_body(self._body_limit)
                return
        super().rawDataReceived(data)

    def requestDone(self, request: Request) -> None:
        # Until now the channel was handling the request, and took no body
        # bytes through rawDataReceived; the next request's headers set
        # its own limit (the buffered ones may, within super()).
        self._body_limit = None
        super().requestDone(request)
        # The next request's deadline starts with its first byte; until then
        # the idle timeout governs a kept-alive connection.
        self._awaiting_headers = True

    def connectionLost(self, reason) -> None:
        self._cancel_header_deadline()
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        super().connectionLost(reason)

    def _start_header_deadline(self) -> None:
        if self._header_started is None and self.transport is not None and not self.transport.disconnecting:
            self._header_started = monotonic()
            if self._header_deadline is None:
                self._header_deadline = self.callLater(self.site.header_timeout, self._check_header_deadline)

    def _cancel_header_deadline(self) -> None:
        # The timer is left to run: when it fires it finds no headers
        # awaited, or a later request's, whose deadline it moves to.  One
        # timer a connection every header_timeout, rather than one
        # scheduled and cancelled (with the reactor's heap of timers to
        # tidy) for every request.
        self._header_started = None

    def _check_header_deadline(self) -> None:
        self._header_deadline = None
        if self._header_started is None:
            return
        remaining = self._header_started + self.site.header_timeout - monotonic()
        if remaining > 0:
            self._header_deadline = self.callLater(remaining, self._check_header_deadline)
        else:
            self._headers_too_slow()

    def _headers_too_slow(self) -> None:
        log.info(
            "closing a connection from {peer}: no complete request headers within {seconds}s",
            peer=str(self.transport.getPeer()),
            seconds=self.site.header_timeout,
        )
        self._respond_and_disconnect(408, b"Request Timeout", "the request headers took too long\n")

    def _refuse_body(self, limit: int) -> None:
        self._body_limit = None
        method = self._command.decode("ascii", "replace")
        log.info(
            "refused a {method} body from {peer}: larger than {limit} bytes",
            method=method,
            peer=str(self.transport.getPeer()),
            limit=limit,
        )
        reason = f"a {method} request may carry at most {limit} bytes of body"
        if self._command in _UPLOAD_METHODS:
            reason += (
                f"; an upload's file at most {self.site.max_upload_size} bytes"
                " (the administrator can raise --max-upload-size)"
            )
        reason += "\n"
        self._respond_and_disconnect(413, b"Content Too Large", reason)

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's answer to a malformed request line or header, or too
        # many headers: a bare 400, neither logged nor counted.
        self._respond_and_disconnect(
            400, b"Bad Request", "the request line or a header is malformed, or there are too many headers\n"
        )

    def _respond_and_disconnect(self, code: int, phrase: bytes, reason: str) -> None:
        """
        Answer without a request object (there is none yet, or its body is
        not wanted) and close: whatever else the client sends is not read.
        The answer is logged and counted (L{IndexSite.refused_early}),
        unless the request was refused already, its body still being read
        and dropped (L{IndexRequest.refuse_early}): then this only closes.
        """
        if not self._refusal_sent:
            self._refusal_sent = True
            body = reason.encode("utf-8")
            self.transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, phrase, len(body), body)
            )
            started, self._header_started = self._header_started, None
            site = getattr(self, "site", None)
            if isinstance(site, IndexSite):
                site.refused_early(self, code, len(body), started)
        self.dataReceived = self.lineReceived = self.rawDataReceived = lambda *args: None
        self.loseConnection()
        # A client that does not read its answer does not keep the
        # connection either.
        self._abort_call = self.callLater(self.abortTimeout, self.transport.abortConnection)


class BasePathChannel(IndexChannel):
    """
    An L{IndexChannel} for a site served under a path (C{--server-base-url
    /pypi}, as pypiserver's): each request target is taken out of that path
    as soon as its request line is read, so that the body-size policy, the
    routes, the metrics and the pages all see the path they would see at
    C{/}, and L{base_url} the path the client used.
    """

    def lineReceived(self, line: bytes) -> None:
        fresh = not hasattr(self, "_command")
        super().lineReceived(line)
        if fresh and hasattr(self, "_command") and self.requests:
            self._path = self.requests[-1].enter_base_path(self._command, self._path, self.site.base_path)


class BaseRedirect(Resource):
    """
    The site's path itself (C{/pypi}, without its slash): sent on to
    C{/pypi/}, under which the pages' relative links work.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        return relative_redirect(request, request.path.decode("ascii") + "/")


class OutsideBasePath(Resource):
    """A target outside the site's path (C{--server-base-url}): 404."""

    isLeaf = True

    def __init__(self, base: bytes) -> None:
        super().__init__()
        self.base = base.decode("ascii")

    def render(self, request: Request) -> bytes:
        return error_page(request, 404, "Not Found", f"this index is served under {self.base}/")


class BadRequestTarget(Resource):
    """
    The answer to a request target that is neither a path (C{/...}), nor
    an absolute URL, nor C{*} (which only C{OPTIONS} may ask for, and
    Twisted answers).
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        return error_page(
            request,
            400,
            "Bad Request: the request target must be a path starting with /",
            "the request target must be a path starting with / (or an absolute http:// URL)",
        )


class IndexRequest(Request):
    """
    A request that is not answered before the first scan of the package
    directories is in the index, so nobody is told a package is missing
    just because the server started a moment ago.

    Bodies are not parsed into C{args}.  An upload (a
    C{multipart/form-data} C{POST /}) streams into an
    L{twistedpypi.uploads.receiver.UploadReceiver} as it arrives, never into
    memory or Twisted's temporary file; other bodies are kept in memory up
    to L{MAX_FORM_BODY} bytes.

    @ivar started: when its request line arrived (L{time.monotonic}), for
        the access log's duration.
    """

    upload = None
    body_truncated = False
    base_path = b""
    """The path the site is served under that this request came through."""
    sent_uri: bytes | None = None
    """The request target as sent, when it is not L{uri} (for the log)."""
    base_path_answer: Resource | None = None
    """What answers a target outside the site's path, or the path itself."""
    _refused = False
    _linger = None
    _upload_boundary: bytes | None = None

    _site: IndexSite | None = None

    def __init__(self, channel, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)
        self.started = monotonic()
        if isinstance(channel, IndexChannel):
            channel.request_line_received()
        site = getattr(channel, "site", None)
        if isinstance(site, IndexSite):
            site.request_started(self)
            self._site = site

    def finish(self) -> None:
        super().finish()
        site = self._site
        if site is not None:
            self._site = None
            site.request_done(self, None)

    def _report_done(self, reason: Failure | None) -> None:
        # Called directly when the request finishes (finish() does the
        # same, inline) or its client goes away, rather than through a
        # notifyFinish Deferred made for every request; once, whichever
        # comes first.
        site, self._site = self._site, None
        if site is not None:
            site.request_done(self, reason)

    def enter_base_path(self, method: bytes, target: bytes, base: bytes) -> bytes:
        """
        The request target C{target} with the site's path C{base} taken
        off, as the routes see it.  A target outside C{base} is kept, and
        answered 404; C{base} itself is sent on to C{base/}, but for a
        C{POST}, taken as one to C{base/} (twine takes a redirect as a
        failed upload).
        """
        absolute = None if target[:1] == b"/" else _ABSOLUTE_FORM.match(target)
        start = absolute.start(2) if absolute is not None else 0
        path, question, query = target[start:].partition(b"?")
        if path.startswith(base + b"/") or (path == base and method == b"POST"):
            self.sent_uri = target
            self.base_path = base
            return target[:start] + (path[len(base):] or b"/") + question + query
        self.base_path_answer = BaseRedirect() if path == base else OutsideBasePath(base)
        return target

    def headers_received(self, method: bytes, target: bytes, content_type: bytes | None) -> None:
        """
        The request line and headers are in, and its body is within the
        limit (L{request_body_limit}): Twisted sets C{method} and C{uri}
        only once the body is complete, so the channel tells them now,
        before the body's first byte.
        """
        self._upload_boundary = upload_boundary(method, target, content_type)

    def gotLength(self, length: int | None) -> None:
        site = getattr(self.channel, "site", None)
        uploads: Uploads | None = getattr(site, "uploads", None)
        self.content = BytesIO()
        if uploads is not None and self._upload_boundary is not None:
            self.upload = uploads.receiver(
                self, self._upload_boundary, self._pause_reading, self._resume_reading
            )

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

        @param reason: the body; the status line says only
            L{TOO_LARGE_PHRASE} (the reason may name what the client sent).
        """
        if self._refused:
            return
        self._refused = True
        if self.upload is not None:
            self.upload.discard()
        log.info("refused a request early: {code} {reason}", code=code, reason=reason)
        body = (reason + "\n").encode("utf-8")
        phrase = status_phrase(TOO_LARGE_PHRASE)
        # No "100 Continue" after this.
        self.requestHeaders.removeHeader(b"expect")
        channel = self.channel
        channel._refusal_sent = True
        transport = channel.transport
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, phrase, len(body), body)
        )
        site = getattr(channel, "site", None)
        if isinstance(site, IndexSite):
            site.refused_early(channel, code, len(body), self.started)
        try:
            transport.loseWriteConnection()
        except (AttributeError, NotImplementedError):
            transport.loseConnection()
        from twisted.internet import reactor

        self._linger = reactor.callLater(LINGER_SECONDS, transport.abortConnection)

    def write(self, data: bytes) -> None:
        if self.code == NOT_MODIFIED and not self.startedWriting:
            # Twisted gives every rendered answer the length of its body: a
            # 304 must not say 0 of a page that has more (RFC 9110 8.6),
            # which a cache could take for the page's new length.
            self.responseHeaders.removeHeader(b"content-length")
        super().write(data)

    def setResponseCode(self, code: int, message: bytes | None = None) -> None:
        # The last defence: whatever a caller passes, the status line holds
        # printable ASCII only, so no CR or LF can split the response.
        super().setResponseCode(code, None if message is None else status_phrase(message))

    def render(self, resource: Resource) -> None:
        """
        Render C{resource}, answering a method it does not serve here: 405
        with C{Allow} (Twisted's C{Resource} would answer C{HEAD} with a
        C{render_GET} it may not have, and other methods with 501), and
        C{OPTIONS} with its C{Allow}.
        """
        allowed = allowed_methods(resource)
        if allowed is None or self.method in allowed and self.method != b"OPTIONS":
            if self.method == b"HEAD":
                self._render_head(resource)
            else:
                super().render(resource)
            return
        self.setHeader(b"allow", b", ".join(allowed))
        if self.method == b"OPTIONS":
            self.setResponseCode(204)
            self.finish()
            return
        body = error_page(
            self,
            405,
            "Method Not Allowed",
            f"this page answers {', '.join(method.decode('ascii') for method in allowed)}",
        )
        self.setHeader(b"content-length", b"%d" % len(body))
        self.write(body)
        self.finish()

    def _render_head(self, resource: Resource) -> None:
        """
        Answer C{HEAD} as C{GET} would, without the body: a page gives its
        body whatever the method, which Twisted eats, but logging a warning
        for every C{HEAD} a client sends.
        """
        try:
            body = resource.render(self)
        except UnsupportedMethod:
            super().render(resource)  # Twisted's own answer; nothing was sent
            return
        if body is NOT_DONE_YET:
            return
        if not isinstance(body, bytes):
            log.error("{resource} answered HEAD with {body!r}, not bytes", resource=resource, body=body)
            self.setResponseCode(500)
            body = b""
        if body:
            self.setHeader(b"content-length", b"%d" % len(body))
        self.write(b"")
        self.finish()

    def process(self) -> None:
        absolute = None if self.uri[:1] == b"/" else _ABSOLUTE_FORM.match(self.uri)
        if absolute is not None:
            # Served as its path; the URI stays as sent, for the access log.
            # RFC 9112 3.2.2: the target's authority stands for Host.
            authority, rest = absolute.groups()
            path = rest.split(b"?", 1)[0]
            self.path = path if path.startswith(b"/") else b"/" + path
            self.requestHeaders.setRawHeaders(b"host", [authority.rpartition(b"@")[2]])
        watcher = self.channel.site.watcher
        if watcher.is_ready:
            super().process()
        else:
            watcher.ready.addBoth(self._scanned)

    def _scanned(self, result: object) -> object:
        # Every waiting request hangs off the same Deferred: each is let go
        # on its own and hands the result on untouched, so one whose client
        # has gone, or whose processing fails, cannot hold up the rest.
        if self.channel is not None:
            try:
                super().process()
            except Exception:
                log.failure("answering a request that waited for the first scan failed")
        return result

    def connectionLost(self, reason) -> None:
        if self.upload is not None:
            self.upload.discard()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)
        self._report_done(reason)


class IndexSite(Site):
    """
    The site of one index: its requests wait for the watcher's first scan,
    its connections are L{IndexChannel}s (HTTP/1.1 only), its requests are
    counted in L{Metrics} and the access log, and are tracked while in
    flight so a stop can wait for them.

    @ivar uploads: what receives and stores uploads, if anything does.
    @ivar max_upload_size: the largest upload accepted, in bytes.
    @ivar header_timeout: seconds a client has to send its request headers.
    @ivar base_path: the path every route is served under (C{b"/pypi"}), or
        C{b""}; its connections are then L{BasePathChannel}s.
    """

    protocol = IndexChannel
    requestFactory = IndexRequest
    displayTracebacks = False

    def __init__(
        self,
        resource,
        watcher: PackageWatcher,
        uploads: Uploads | None = None,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        metrics: Metrics | None = None,
        access_log: bool = True,
        health_path: bytes = DEFAULT_HEALTH_ENDPOINT.encode("ascii"),
        base_path: bytes = b"",
        **kwargs,
    ) -> None:
        kwargs.setdefault("timeout", IDLE_TIMEOUT)
        super().__init__(resource, **kwargs)
        self.watcher = watcher
        self.uploads = uploads
        self.max_upload_size = max_upload_size
        self.header_timeout = header_timeout
        self.metrics = METRICS if metrics is None else metrics
        self.access_log = access_log
        self.in_flight = InFlight()
        self._route = RouteNames(health_path)
        self._channels: WeakSet = WeakSet()
        self.base_path = base_path
        if base_path:
            self.protocol = BasePathChannel

    def request_started(self, request: IndexRequest) -> None:
        """
        Track C{request} from its request line until it is answered or its
        client goes away (L{request_done}).
        """
        self.in_flight.started()
        channel = request.channel
        # Remembered once per connection, not per request.
        if not getattr(channel, "_twistedpypi_seen", False):
            channel._twistedpypi_seen = True
            self._channels.add(channel)

    def request_done(self, request: IndexRequest, reason: Failure | None) -> None:
        """
        Count and log C{request}, answered or (C{reason}) left by its
        client, and stop tracking it.
        """
        # A request whose connection broke before it was even received
        # (no method yet) has nothing worth counting or logging.
        try:
            if "method" in request.__dict__:
                status = request.code
                if reason is not None and not request.startedWriting:
                    status = 499
                if self.access_log:
                    log_access(request, status, monotonic() - request.started)
                # Outside --server-base-url, or its bare path: no route's.
                route = "other" if request.base_path_answer is not None else self._route(request)
                self.metrics.request_answered(route, status, request.sentLength)
        except Exception:
            log.failure("counting an answered request failed")
        finally:
            # Whatever failed above, a stop must not wait for this request.
            self.in_flight.finished()

    def refused_early(self, channel: IndexChannel, code: int, size: int, started: float | None) -> None:
        """
        Count and log an answer the connection gave before its request was
        whole (a bad Transfer-Encoding, 400, 408, 413, 414, 431), which
        Twisted would neither log nor count: under the request's line when
        it was read, as C{"-"} otherwise.

        @param size: the bytes of the answer's body.
        @param started: when the request's first byte came (L{monotonic}).
        """
        requests = channel.requests
        request = requests[-1] if requests else None
        command = getattr(channel, "_command", None)
        if isinstance(request, IndexRequest) and request._site is self and command is not None:
            # Twisted names a request only once its body is in: named here
            # from what the connection read of it.
            request.method = command
            request.uri = channel._path
            request.path = channel._path.split(b"?", 1)[0]
            request.clientproto = channel._version
            request.code = code
            request.sentLength = size
            request._report_done(None)
            return
        try:
            duration = 0.0 if started is None else monotonic() - started
            if self.access_log:
                log_refused_connection(getattr(channel.getPeer(), "host", "-"), code, size, duration)
            self.metrics.request_answered("other", code, size)
        except Exception:
            log.failure("counting a refused connection failed")

    def getResourceFor(self, request: Request) -> Resource:
        if not request.path.startswith(b"/"):
            return BadRequestTarget()
        answer = getattr(request, "base_path_answer", None)
        if answer is not None:
            return answer
        return super().getResourceFor(request)

    def open_connections(self) -> list:
        """
        The transports of the connections that have carried a request and
        are still open.
        """
        return [
            channel.transport
            for channel in list(self._channels)
            if channel.transport is not None and channel.transport.connected
        ]

    def log(self, request: Request) -> None:
        # Twisted's own access log is replaced by request_done, which also
        # sees requests whose client went away.
        pass


def make_site(
    config: Config,
    index: PackageIndex,
    watcher: PackageWatcher,
    upstream=None,
    metrics: Metrics | None = None,
) -> IndexSite:
    """
    The site serving C{index} with the settings in C{config}, counting in
    C{metrics} (the process's L{METRICS} by default); C{upstream} is the
    L{twistedpypi.proxy.upstream.Upstream} to proxy, if any.
    """
    metrics = METRICS if metrics is None else metrics
    policy = AccessPolicy.from_config(config)
    uploads = Uploads(Publisher(config, index, watcher, metrics), policy)
    return IndexSite(
        Root(config, index, metrics=metrics, upstream=upstream, policy=policy, uploads=uploads),
        watcher,
        uploads,
        max_upload_size=config.max_upload_size,
        header_timeout=config.header_timeout,
        metrics=metrics,
        access_log=config.access_log,
        health_path=config.health_endpoint.encode("utf-8"),
        base_path=config.base_path.encode("ascii"),
    )
