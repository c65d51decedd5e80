"""
Content negotiation for the simple API (PEP 691): pick a representation
from the C{Accept} header's q-values or the C{format} query parameter.
"""

from __future__ import annotations

from twistedpypi.pages.simple import HTML, SIMPLE_HTML, SIMPLE_JSON
from twistedpypi.web.memo import BoundedMemo

TEXT_HTML = b"text/html"

_ALIASES = {
    b"application/vnd.pypi.simple.v1+json": SIMPLE_JSON,
    b"application/vnd.pypi.simple.latest+json": SIMPLE_JSON,
    b"application/vnd.pypi.simple.v1+html": SIMPLE_HTML,
    b"application/vnd.pypi.simple.latest+html": SIMPLE_HTML,
    b"text/html": HTML,
    b"json": SIMPLE_JSON,
    b"html": HTML,
}

# Among equally good exact matches a client that names JSON gets JSON; a
# wildcard (curl's and browsers' */*) gets the HTML everyone can read.
_EXACT_PREFERENCE = {SIMPLE_JSON: 2, SIMPLE_HTML: 1, HTML: 0}
_WILDCARD_PREFERENCE = {HTML: 2, SIMPLE_JSON: 1, SIMPLE_HTML: 0}
_OFFERS = (SIMPLE_JSON, SIMPLE_HTML, HTML)

_cache: BoundedMemo[bytes, bytes | None] = BoundedMemo(512)


def _matches(pattern: bytes, offer: bytes) -> int:
    """
    How specifically a media range names an offer: 2 exactly, 1 by
    C{type/*}, 0 by C{*/*}, -1 not at all.
    """
    if _ALIASES.get(pattern) == offer:
        return 2
    if pattern == b"*/*":
        return 0
    if pattern.endswith(b"/*") and offer.startswith(pattern[:-1]):
        return 1
    return -1


def _ranges(accept: bytes) -> list[tuple[bytes, float]]:
    """
    The media ranges of an C{Accept} header with their q-values.
    """
    ranges = []
    for item in accept.split(b","):
        parts = item.split(b";")
        pattern = parts[0].strip().lower()
        if not pattern:
            continue
        quality = 1.0
        for parameter in parts[1:]:
            name, _, value = parameter.strip().partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        ranges.append((pattern, quality))
    return ranges


def _choose(accept: bytes) -> bytes | None:
    ranges = _ranges(accept)
    best: tuple | None = None
    for offer in _OFFERS:
        # The offer's quality is that of the most specific range naming it
        # (RFC 9110 12.5.1): "text/html;q=0, */*" refuses HTML.
        named = [(_matches(pattern, offer), quality) for pattern, quality in ranges]
        specificity, quality = max(named, default=(-1, 0.0))
        if specificity < 0 or quality <= 0:
            continue
        preference = (_EXACT_PREFERENCE if specificity else _WILDCARD_PREFERENCE)[offer]
        key = (quality, specificity, preference)
        if best is None or key > best[0]:
            best = (key, offer)
    return None if best is None else best[1]


def choose_media_type(accept: bytes | None, format_parameter: bytes | None = None) -> bytes | None:
    """
    The media type to answer with: one of L{HTML}, L{SIMPLE_HTML} or
    L{SIMPLE_JSON}, or L{None} when nothing the client accepts is offered
    (answer 406).

    @param accept: the C{Accept} header, L{None} when absent (HTML then).
    @param format_parameter: the C{?format=} query value, which wins over
        the header.
    """
    if format_parameter is not None:
        # An unescaped "+" in a query string arrives as a space.
        return _ALIASES.get(format_parameter.strip().lower().replace(b" ", b"+"))
    if accept is None:
        return HTML
    try:
        return _cache[accept]
    except KeyError:
        pass
    return _cache.remember(accept, _choose(accept))
