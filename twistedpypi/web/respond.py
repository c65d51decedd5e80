"""
Small pieces every resource uses to answer: sending a pre-rendered page
with its ETag, relative redirects, plain error pages, the public base URL.
"""

from __future__ import annotations

import re
from html import escape

from twisted.web.http import NOT_MODIFIED, PRECONDITION_FAILED
from twisted.web.server import Request

from twistedpypi.index import Page


def send_page(
    request: Request,
    page: Page,
    content_type: bytes | None = None,
    cache_control: bytes | None = None,
) -> bytes:
    """
    Answer with a pre-rendered page, or 304 when the client's
    C{If-None-Match} already names it; gzip-compressed when the page is
    kept so and the client accepts it.
    """
    headers = request.responseHeaders
    if cache_control is not None:
        headers.setRawHeaders(b"cache-control", [cache_control])
    compressed = page.gzipped is not None and accepts_gzip(request.getHeader(b"accept-encoding"))
    if page.gzipped is not None:
        headers.setRawHeaders(b"vary", [b", ".join([*headers.getRawHeaders(b"vary", []), b"Accept-Encoding"])])
    # Either coding's tag means the client holds this page: a client that
    # cached it plain, then asks accepting gzip, need not fetch it again.
    if compressed:
        answered = not_modified(request, page.gzip_etag, also=page.etag)
    else:
        answered = not_modified(request, page.etag, also=page.gzip_etag if page.gzipped is not None else None)
    if answered:
        return b""
    headers.setRawHeaders(b"content-type", [content_type or page.content_type])
    if compressed:
        headers.setRawHeaders(b"content-encoding", [b"gzip"])
        return page.gzipped
    return page.body


def accepts_gzip(header: bytes | None) -> bool:
    """
    Whether an C{Accept-Encoding} header lets the response be gzip-coded:
    C{gzip} (or C{x-gzip}, or C{*}) listed with a q-value above zero.
    """
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


def relative_redirect(request: Request, target: str, code: int = 301) -> bytes:
    """
    Redirect to C{target}, a path from the site root, with a C{Location}
    relative to the request's own path, so it stays right behind a reverse
    proxy at any prefix.  The query string is kept.
    """
    depth = request.path.count(b"/") - 1
    location = "../" * depth + target.lstrip("/")
    if b"?" in request.uri:
        location += "?" + request.uri.split(b"?", 1)[1].decode("latin-1")
    request.setResponseCode(code)
    request.setHeader(b"location", location.encode("utf-8") or b"./")
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    link = escape(location)
    return f'<html><body>Moved to <a href="{link}">{link}</a></body></html>\n'.encode("utf-8")


def absolute_redirect(request: Request, location: str, code: int = 303) -> bytes:
    """
    Redirect to another site (the fallback index).
    """
    request.setResponseCode(code)
    request.setHeader(b"location", location.encode("utf-8"))
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    link = escape(location)
    return f'<html><body>Moved to <a href="{link}">{link}</a></body></html>\n'.encode("utf-8")


def error_page(request: Request, code: int, reason: str) -> bytes:
    """
    A short plain-text error whose reason also goes in the status line, where
    pip and twine show it.
    """
    request.setResponseCode(code, reason.encode("utf-8", "replace")[:200])
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    # The reason may quote the request: never let a browser run it as HTML.
    request.setHeader(b"x-content-type-options", b"nosniff")
    return (reason + "\n").encode("utf-8")


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
    request itself.
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
    return f"{scheme}://{host}{prefix}"
