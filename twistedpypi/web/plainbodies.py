"""
The uncompressed bodies of recently sent pages, for the clients that do not
accept gzip.

The index keeps its pages gzip-compressed (L{twistedpypi.index.model.Page}),
a quarter of their size, so that a large index stays small in memory.  pip,
uv and browsers take them so; a client that sends no C{Accept-Encoding}
(curl, wrk, some mirrors) would cost a decompression per request, a fifth
of what the request costs.  This keeps the bodies most recently sent so,
within a fixed number of bytes.

Reactor code: nothing here blocks.
"""

from __future__ import annotations

from collections import OrderedDict

from twistedpypi.index.model import Page

DEFAULT_LIMIT = 4 * 1024 * 1024
"""The most bytes of uncompressed bodies kept: a thousand 4 KB pages."""

ENTRY_OVERHEAD = 200
"""What an entry costs besides its body (key, dictionary slot, object
headers), counted against the limit so that tiny pages are bounded too."""


class PlainBodies:
    """
    A least-recently-used store of pages' uncompressed bodies, bounded in
    bytes, keyed by the page's ETag (which names its media type and bytes:
    a page rendered again with other content has another key, and its old
    body ages out).

    @ivar limit: the most bytes kept, bodies and L{ENTRY_OVERHEAD} each.
    @ivar size: the bytes kept now, counted the same way.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self._bodies: OrderedDict[bytes, bytes] = OrderedDict()

    def __contains__(self, page: Page) -> bool:
        """Whether the body of C{page} is kept."""
        return page.etag in self._bodies

    def body(self, page: Page) -> bytes:
        """The uncompressed body of C{page}, kept for the next time."""
        key = page.etag
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        body = page.body
        cost = len(body) + ENTRY_OVERHEAD
        # No one page takes more than an eighth: a few large pages cannot
        # push out every other.
        if cost * 8 <= self.limit:
            self._bodies[key] = body
            self.size += cost
            while self.size > self.limit:
                _, old = self._bodies.popitem(last=False)
                self.size -= len(old) + ENTRY_OVERHEAD
        return body


PLAIN_BODIES = PlainBodies()
"""The process's store: one server runs per process."""
