"""
The uncompressed bodies of gzip-kept pages, for clients that do not accept
gzip: kept for the next such request, within a fixed number of bytes.
"""

import os

from twistedpypi.index.model import Page
from twistedpypi.web.plainbodies import ENTRY_OVERHEAD, PlainBodies


def page(size: int, seed: int = 0) -> Page:
    """A gzip-kept page of C{size} bytes that compress poorly, unlike any other seed's."""
    body = (b"%d:" % seed + os.urandom(size).hex().encode())[:size]
    kept = Page.of(body, b"text/html")
    assert kept.gzipped is not None
    return kept


def test_the_body_is_the_page_uncompressed_and_kept_for_the_next_request():
    bodies = PlainBodies()
    first = page(4000)
    body = bodies.body(first)
    assert body == first.body
    assert bodies.body(first) is body
    assert bodies.size == len(body) + ENTRY_OVERHEAD


def test_a_page_rendered_again_with_other_bytes_is_not_answered_with_the_old_body():
    bodies = PlainBodies()
    old, new = page(3000, seed=1), page(3000, seed=2)
    assert bodies.body(old) == old.body
    assert bodies.body(new) == new.body != old.body


def test_memory_stays_within_the_limit_and_the_least_recently_sent_go_first():
    limit = 20 * (2000 + ENTRY_OVERHEAD)
    bodies = PlainBodies(limit)
    pages = [page(2000, seed=n) for n in range(60)]
    for kept in pages[:20]:
        bodies.body(kept)
    bodies.body(pages[0])  # sent again: now the most recent
    for kept in pages[20:]:
        bodies.body(kept)
        assert bodies.size <= limit
    survivors = [p for p in pages if p in bodies]
    assert pages[-1] in survivors and pages[1] not in survivors
    assert len(survivors) == 20


def test_a_page_larger_than_an_eighth_of_the_limit_is_not_kept():
    bodies = PlainBodies(8 * 1024)
    large = page(1500)
    assert bodies.body(large) == large.body
    assert bodies.size == 0
