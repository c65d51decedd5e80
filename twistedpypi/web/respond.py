"""
Small pieces every resource uses to answer: sending a pre-rendered page
with its ETag, relative redirects, plain error pages, the public base URL,
and an answer that is only known later (L{render_later}).

Reactor code: nothing here blocks.
"""

from __future__ import annotations

import re
import time
from collections.abc import Coroutine
from functools import cache
from html import escape
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.reflect import prefixedMethodNames
from twisted.web.http import NOT_MODIFIED, PRECONDITION_FAILED
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twistedpypi.index.model import Page
from twistedpypi.web.memo import BoundedMemo
from twistedpypi.web.plainbodies import PLAIN_BODIES

log = Logger()


MICRO_CACHE = b"x-micro-cache"
"""
A request header a caching proxy in front of the nodes sends
(C{init/nginx-replicas.conf}: C{X-Micro-Cache: second}): pages are then
answered with C{X-Accel-Expires: @<this second>}, which tells nginx to keep
the page only until the wall clock's next second.  Its own shortest time,
C{proxy_cache_valid 1s}, keeps a page 1 to 2 s, since nginx counts whole
seconds; this keeps it 0 to 1 s, so an upload is listed through the cache
a second sooner.  Any value asks; a client sending it gets a header it
ignores, and nginx never passes C{X-Accel-Expires} on.
"""


class _ThisSecond:
    """The C{X-Accel-Expires} value for the current second, made once a second."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        second = int(self._clock())
        if second != self._second:
            self._second = second
            self._value = b"@%d" % second
        return self._value


_this_second = _ThisSecond()


def send_page(
    request: Request,
    page: Page,
    content_type: bytes | None = None,
    cache_control: bytes | None = None,
    vary: bytes | None = None,
) -> bytes:
    """
    Answer with a pre-rendered page, or 304 when the client's
    C{If-None-Match} already names it; gzip-compressed when the page is
    kept so and the client accepts it, else from L{PLAIN_BODIES}.  A
    caching proxy that asks (L{MICRO_CACHE}) is told to keep it until the
    next second.

    @param vary: the request headers, besides C{Accept-Encoding}, that chose
        this page (C{Vary}); a C{Vary} the response has already is kept.
    """
    headers = request.responseHeaders
    if cache_control is not None:
        headers.setRawHeaders(b"cache-control", [cache_control])
    if request.getHeader(MICRO_CACHE) is not None:
        headers.setRawHeaders(b"x-accel-expires", [_this_second.value()])
    gzipped = page.gzipped
    if gzipped is not None:
        compressed = accepts_gzip(request.getHeader(b"accept-encoding"))
        if vary is None:
            vary = b", ".join([*headers.getRawHeaders(b"vary", []), b"Accept-Encoding"])
        else:
            vary += b", Accept-Encoding"
    else:
        compressed = False
    if vary is not None:
        headers.setRawHeaders(b"vary", [vary])
    # Either coding's tag means the client holds this page: a client that
    # cached it plain, then asks accepting gzip, need not fetch it again.
    if compressed:
        answered = not_modified(request, page.gzip_etag, also=page.etag)
    else:
        answered = not_modified(request, page.etag, also=page.gzip_etag if gzipped is not None else None)
    if answered:
        return b""
    headers.setRawHeaders(b"content-type", [content_type or page.content_type])
    if compressed:
        headers.setRawHeaders(b"content-encoding", [b"gzip"])
        return gzipped
    return page.plain if gzipped is None else PLAIN_BODIES.body(page)


_accepts_gzip: BoundedMemo[bytes | None, bool] = BoundedMemo(256)


def accepts_gzip(header: bytes | None) -> bool:
    """
    Whether an C{Accept-Encoding} header lets the response be gzip-coded:
    C{gzip} (or C{x-gzip}, or C{*}) listed with a q-value above zero.
    """
    try:
        return _accepts_gzip[header]
    except KeyError:
        pass
    # Clients send one of a few values: each is parsed once.
    return _accepts_gzip.remember(header, _parse_accepts_gzip(header))


def _parse_accepts_gzip(header: bytes | None) -> bool:
    if not header:
        return False
    for item in header.split(b","):
        coding, _, parameters = item.partition(b";")
        if coding.strip().lower() not in (b"gzip", b"x-gzip", b"*"):
            continue
        quality = parameters.strip().lower()
        if not quality.startswith(b"q="):
            return True
        try:
            return float(quality[2:]) > 0
        except ValueError:
            return False
    return False


# An entity tag in a list: optionally weak, quoted, and free to contain
# commas, so the list cannot simply be split (RFC 9110 8.8.3).
_ENTITY_TAG = re.compile(rb'\*|(?:W/)?"[^"]*"')


def not_modified(request: Request, etag: bytes, also: bytes | None = None) -> bool:
    """
    Give the response the strong entity tag C{etag}, and answer 304 (412
    for methods other than GET and HEAD) when the request's
    C{If-None-Match} names it: C{*}, or any tag in the list equal to it by
    the weak comparison RFC 9110 13.1.2 prescribes for C{If-None-Match}, so
    C{W/"tag"} matches C{"tag"}.

    Twisted's C{Request.setETag} splits the header on whitespace only, so
    C{"a", "b"} and C{W/"a"} never match there.

    @param also: another tag of the same content (in another coding) that
        matches too.

    @return: whether the caller must send no body.
    """
    request.etag = etag
    header = request.getHeader(b"if-none-match")
    if not header:
        return False
    # The common case first: the one tag this server gave.
    if header == etag or header == also or _names(header, etag, also):
        request.setResponseCode(
            NOT_MODIFIED if request.method in (b"GET", b"HEAD") else PRECONDITION_FAILED
        )
        return True
    return False


def _names(header: bytes, etag: bytes, also: bytes | None) -> bool:
    """Whether an C{If-None-Match} list names C{etag} or C{also}."""
    matching = {tag.removeprefix(b"W/") for tag in (etag, also) if tag is not None}
    return any(tag == b"*" or tag.removeprefix(b"W/") in matching for tag in _ENTITY_TAG.findall(header))


# What may stand unescaped in the path of a Location header: the
# characters RFC 3986 allows there.  A query, passed on as the client sent
# it, keeps its "%" escapes and its "?", "=" and "&".
_PATH_SAFE = "/:@!$'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?&%"


def location_header(path: str, query: bytes | None = None) -> bytes:
    """
    A C{Location} header value: C{path} (text, such as a decoded path
    segment) and the raw C{query} percent-encoded, so no control character,
    space or non-ASCII character of a client's request reaches the header.
    """
    header = quote(path, safe=_PATH_SAFE)
    if query is not None:
        header += "?" + quote(query, safe=_QUERY_SAFE)
    return header.encode("ascii")


def relative_redirect(request: Request, target: str, code: int = 301) -> bytes:
    """
    Redirect to C{target}, a path from the site root, with a C{Location}
    relative to the request's own path, so it stays right behind a reverse
    proxy at any prefix.  The query string is kept.
    """
    depth = request.path.count(b"/") - 1
    path = "../" * depth + target.lstrip("/")
    query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else None
    return _redirect(request, code, location_header(path or "./", query))


def absolute_redirect(request: Request, location: str, code: int = 303) -> bytes:
    """
    Redirect to another site (the fallback index): C{location} is our own
    URL text, escaped as a whole.
    """
    return _redirect(request, code, quote(location, safe=_QUERY_SAFE + "#[]").encode("ascii"))


def _redirect(request: Request, code: int, location: bytes) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"location", location)
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    link = escape(location.decode("ascii"))
    return f'<html><body>Moved to <a href="{link}">{link}</a></body></html>\n'.encode("utf-8")


MAX_PHRASE_LENGTH = 200
"""The longest reason phrase sent; a phrase is one short sentence."""

# Every byte a reason phrase may not hold becomes a space.
_TO_PHRASE = bytes(byte if 0x20 <= byte <= 0x7E else 0x20 for byte in range(256))


def status_phrase(phrase: str | bytes) -> bytes:
    """
    C{phrase} as it may go in a status line: printable ASCII only, at most
    L{MAX_PHRASE_LENGTH} bytes.  Phrases are fixed texts written here; this
    is the last defence should one ever carry anything else, so that no
    CR, LF or other control byte can end or split the status line.
    """
    raw = phrase.encode("ascii", "replace") if isinstance(phrase, str) else phrase
    return raw.translate(_TO_PHRASE)[:MAX_PHRASE_LENGTH].strip() or b"-"


def error_page(request: Request, code: int, phrase: str, detail: str | None = None) -> bytes:
    """
    A short plain-text error.

    @param phrase: the reason phrase of the status line, where pip and
        twine show it: a fixed text written for the user, never anything
        taken from the request (which could split the response).
    @param detail: the body, which may quote the request (it is sent as
        C{text/plain}, never sniffed as HTML); the phrase when not given.
    """
    request.setResponseCode(code, status_phrase(phrase))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"x-content-type-options", b"nosniff")
    return ((phrase if detail is None else detail) + "\n").encode("utf-8", "replace")


_METHOD_ORDER = {method: rank for rank, method in enumerate([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS"])}


def allowed_methods(resource: Resource) -> tuple[bytes, ...] | None:
    """
    The methods C{resource} answers, from its C{render_*} methods: C{HEAD}
    where it answers C{GET}, and C{OPTIONS} always.  L{None} for a
    resource that overrides C{render} and so answers every method itself
    (the password guard, which renders the resource it guards).

    Twisted's C{Resource} answers C{HEAD} with C{render_GET} even when
    there is none, and any method it does not know with 501: both are
    decided here instead.
    """
    return _allowed_methods_of(type(resource))


@cache
def _allowed_methods_of(kind: type) -> tuple[bytes, ...] | None:
    # Per class, once: reflection over its methods is too slow for every
    # request.
    if getattr(kind, "render", None) is not Resource.render:
        return None
    methods = {name.encode("ascii") for name in prefixedMethodNames(kind, "render_")}
    if b"GET" not in methods and getattr(kind, "render_HEAD", None) is Resource.render_HEAD:
        methods.discard(b"HEAD")
    methods.add(b"OPTIONS")
    return tuple(sorted(methods, key=lambda method: (_METHOD_ORDER.get(method, len(_METHOD_ORDER)), method)))


def _forwarded(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    if not value:
        return None
    return value.decode("latin-1").split(",")[0].strip() or None


def base_url(request: Request) -> str:
    """
    This server's public URL, without a trailing slash, as the client sees
    it: from C{X-Forwarded-Proto}, C{X-Forwarded-Host} and
    C{X-Forwarded-Prefix} when a reverse proxy sets them, else from the
    request itself; then the path this server serves under, if any.
    """
    scheme = _forwarded(request, b"x-forwarded-proto") or (
        "https" if request.isSecure() else "http"
    )
    host = _forwarded(request, b"x-forwarded-host") or _forwarded(request, b"host")
    if not host:
        address = request.getHost()
        host = f"{address.host}:{address.port}"
    prefix = (_forwarded(request, b"x-forwarded-prefix") or "").rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    # The path this server itself serves under (--server-base-url).
    prefix += getattr(request, "base_path", b"").decode("ascii")
    return f"{scheme}://{host}{prefix}"


def send_body(request: Request, body: bytes) -> None:
    """
    Finish C{request} with C{body}, as Twisted's C{Request.render} finishes
    a resource's synchronous answer: with its C{Content-Length}, and
    without the bytes for C{HEAD}.
    """
    if request.method == b"HEAD":
        if body:
            request.setHeader(b"content-length", b"%d" % len(body))
        request.write(b"")
    else:
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
    request.finish()


Work = Deferred[Any] | Coroutine[Deferred[Any], Any, Any]
"""Asynchronous work whose result is a resource's answer: C{bytes} or
C{NOT_DONE_YET}."""


def render_later(request: Request, work: Work) -> int:
    """
    Answer C{request} with what asynchronous C{work} gives, once it gives
    it; a resource's C{render} method returns what this returns
    (C{NOT_DONE_YET}).

    C{work} is a coroutine (run at once, as by C{Deferred.fromCoroutine})
    or a L{Deferred}, whose result is what a C{render} method returns:
        - C{bytes}: the body, sent by L{send_body} (so the status and
          headers the work set stand, C{Content-Length} is set and C{HEAD}
          gets no bytes), and the request finished;
        - C{NOT_DONE_YET}: the work has answered, or will answer, the
          request itself (it rendered another resource, or streams).
    When the work fails, the failure is logged and the client answered 500
    (or, when the response has begun, its connection cut short so it sees a
    failed download rather than a wrong one).

    When the client goes away first, the work is cancelled (the
    L{Deferred} it is waiting on is, so a thread's or upstream's answer is
    dropped), and whatever it still gives is dropped: nothing is written
    to a request that is gone.  A coroutine that is running at that moment
    (the client went away because of something it did) is not cancelled:
    it runs to its end, and its answer is dropped.

    @param request: the request to answer.
    @param work: the coroutine or L{Deferred} giving the answer.
    @return: C{NOT_DONE_YET}.
    """
    coroutine = None if isinstance(work, Deferred) else work
    answer = work if coroutine is None else Deferred.fromCoroutine(coroutine)
    gone = False

    def lost(_: Failure) -> None:
        nonlocal gone
        gone = True
        # Cancelling a coroutine while it runs would find it waiting on
        # nothing: it is left to finish, its answer dropped.
        if not answer.called and not (coroutine is not None and coroutine.cr_running):
            answer.cancel()

    def send(body: bytes | int) -> None:
        if gone or request.finished or body is NOT_DONE_YET:
            return
        send_body(request, body)

    def failed(failure: Failure) -> None:
        if gone and failure.check(CancelledError):
            return
        log.failure("answering {uri} failed", failure, uri=request.uri)
        if gone or request.finished:
            return
        if request.startedWriting:
            request.loseConnection()
            return
        send(error_page(request, 500, "Internal Server Error", "the server failed to answer; its log says why"))

    # Only a client going away (an errback) cancels: the request finished
    # by the work itself is its answer, given.
    request.notifyFinish().addErrback(lost)
    answer.addCallback(send).addErrback(failed)
    return NOT_DONE_YET
