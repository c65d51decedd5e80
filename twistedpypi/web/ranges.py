"""
Byte ranges (RFC 9110 section 14): which parts of a file a C{Range} header
asks for, and how they are answered.  Pure functions, no I/O.

The policy is nginx's and Apache's, so that what a client sends bounds what
it gets, and never more than the file:

  - a header that is not C{bytes=} ranges, or lists more than L{MAX_RANGES}
    of them, is ignored: the whole file, C{200};
  - ranges are resolved against the file's size, those starting past its
    end dropped; if none is left, C{416};
  - overlapping and adjacent ranges are merged, in the file's order;
  - one range left is a C{206} of that range;
  - several are a C{206} C{multipart/byteranges} body, unless that body
    would be no smaller than the file, which is then sent whole, C{200}.

So the body of any answer is at most as long as the file, and a multipart
body has at most L{MAX_RANGES} parts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

MAX_RANGES = 16
"""The most ranges one C{Range} header may list before it is ignored (as
nginx's C{max_ranges}, Apache's C{MaxRanges}): download tools and pip ask
for one at a time."""

_RANGE = re.compile(rb"([0-9]*)-([0-9]*)")

RangeSpec = tuple[int | None, int | None]
"""One range as the header writes it: (first, last), inclusive, either
(not both) L{None}; C{(None, n)} is the last C{n} bytes."""


class Span(NamedTuple):
    """Part of a file: C{length} bytes from C{offset}."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """The offset just past the span."""
        return self.offset + self.length


class RangePlan(NamedTuple):
    """
    How to answer: C{status} 200 (the whole file; C{spans} empty), 206
    (C{spans}, one or several, sorted, apart) or 416 (C{spans} empty).
    """

    status: int
    spans: tuple[Span, ...]


WHOLE_FILE = RangePlan(200, ())
UNSATISFIABLE = RangePlan(416, ())


def parse_range_header(value: bytes, max_ranges: int = MAX_RANGES) -> list[RangeSpec] | None:
    """
    The ranges a C{Range} header lists, or L{None} if it is to be ignored:
    not in bytes, not well formed (RFC 9110 14.1.1: digits only, first
    not after last), or listing more than C{max_ranges} ranges.  Empty
    list elements are allowed, as the RFC's list syntax does.
    """
    unit, equals, listed = value.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes":
        return None
    elements = [element.strip() for element in listed.split(b",")]
    elements = [element for element in elements if element]
    if not elements or len(elements) > max_ranges:
        return None
    specs: list[RangeSpec] = []
    for element in elements:
        match = _RANGE.fullmatch(element)
        if match is None:
            return None
        first_digits, last_digits = match.groups()
        try:
            first = int(first_digits) if first_digits else None
            last = int(last_digits) if last_digits else None
        except ValueError:  # more digits than Python converts
            return None
        if first is None and last is None:
            return None
        if first is not None and last is not None and first > last:
            return None
        specs.append((first, last))
    return specs


def resolve(specs: Sequence[RangeSpec], size: int) -> list[Span]:
    """
    The spans of a file of C{size} bytes that C{specs} ask for, in their
    order, without those it cannot satisfy: starting past the end, or the
    last zero bytes.  A last byte past the end, or a suffix longer than the
    file, stops at the end (RFC 9110 14.1.2).
    """
    spans = []
    for first, last in specs:
        if first is None:
            start = max(0, size - last)
        else:
            start = first
        stop = size if last is None or first is None else min(last + 1, size)
        if start < stop:
            spans.append(Span(start, stop - start))
    return spans


def merge(spans: Sequence[Span]) -> list[Span]:
    """
    C{spans} sorted by offset, those that overlap or touch merged into one:
    no byte is sent twice, and no part costs a separator it need not.
    """
    merged: list[Span] = []
    for span in sorted(spans):
        if merged and span.offset <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.offset, max(last.end, span.end) - last.offset)
        else:
            merged.append(span)
    return merged


def multipart_parts(
    spans: Sequence[Span], size: int, content_type: bytes, boundary: str
) -> tuple[list[tuple[bytes, Span]], bytes]:
    """
    The C{multipart/byteranges} body (RFC 9110 14.6) for C{spans} of a file
    of C{size} bytes of C{content_type}: each part's separator and headers
    with the span to follow it, and the closing delimiter.
    """
    delimiter = b"\r\n--" + boundary.encode("ascii")
    parts = [
        (
            delimiter
            + b"\r\nContent-Type: "
            + content_type
            + b"\r\nContent-Range: "
            + content_range(span, size)
            + b"\r\n\r\n",
            span,
        )
        for span in spans
    ]
    return parts, delimiter + b"--\r\n"


def multipart_length(spans: Sequence[Span], size: int, content_type: bytes, boundary: str) -> int:
    """The length of the body L{multipart_parts} describes."""
    parts, closing = multipart_parts(spans, size, content_type, boundary)
    return sum(len(separator) + span.length for separator, span in parts) + len(closing)


def content_range(span: Span, size: int) -> bytes:
    """The C{Content-Range} value of C{span} of a file of C{size} bytes."""
    return b"bytes %d-%d/%d" % (span.offset, span.end - 1, size)


def unsatisfied_range(size: int) -> bytes:
    """The C{Content-Range} value of a 416 for a file of C{size} bytes."""
    return b"bytes */%d" % (size,)


def plan_ranges(
    header: bytes, size: int, content_type: bytes, boundary: str, max_ranges: int = MAX_RANGES
) -> RangePlan:
    """
    How to answer a C{Range} header for a file of C{size} bytes, by the
    policy of this module; C{content_type} and C{boundary} are those a
    multipart answer would have, which its length depends on.
    """
    specs = parse_range_header(header, max_ranges)
    if specs is None:
        return WHOLE_FILE
    spans = merge(resolve(specs, size))
    if not spans:
        return UNSATISFIABLE
    if len(spans) > 1 and multipart_length(spans, size, content_type, boundary) >= size:
        return WHOLE_FILE
    return RangePlan(206, tuple(spans))
