"""
The upload form of PyPI's legacy API, read as a stream: an incremental
C{multipart/form-data} parser fed chunk by chunk, handing each part to a
sink (the form, L{twistedpypi.uploads.form.UploadForm}).

Pure: no I/O and no reactor.  The distribution file itself never passes
through here whole: its bytes are handed to a L{twistedpypi.uploads.form.ContentSink} as they arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

MAX_PART_HEADERS = 16 * 1024
"""Bytes a part's headers may take: they are a few short lines."""

MAX_FIELD_SIZE = 2 * 1024 * 1024
"""Bytes one in-memory field may hold (a long description, a signature)."""

MAX_FIELDS_SIZE = 8 * 1024 * 1024
"""Bytes all in-memory fields together may hold."""

MAX_PARTS = 1000
"""Parts one form may have."""

MAX_BOUNDARY_LINE = 256
"""Bytes of padding a boundary line may carry before its line break."""


class UploadRejected(Exception):
    """
    An upload or removal that cannot be accepted, with the status and a
    reason written for the user (the body of the answer).  The status line,
    which twine prints, says the reason too, unless the reason quotes the
    request: then C{phrase} gives fixed text for the status line.
    """

    def __init__(self, code: int, reason: str, phrase: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.phrase = phrase


class MultipartError(UploadRejected):
    """
    A body that is not well-formed C{multipart/form-data}.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(400, f"the upload is not valid multipart/form-data: {reason}")


def boundary_from_content_type(content_type: bytes | None) -> bytes | None:
    """
    The boundary of a C{multipart/form-data} content type, or L{None} when
    the type is something else or has no usable boundary.
    """
    if not content_type:
        return None
    media_type, _, parameters = content_type.partition(b";")
    if media_type.strip().lower() != b"multipart/form-data":
        return None
    match = re.search(rb'(?i)(?:^|;)\s*boundary\s*=\s*("([^"]*)"|[^;\s]*)', parameters)
    if match is None:
        return None
    boundary = match.group(2) if match.group(2) is not None else match.group(1)
    # RFC 2046: 1 to 70 characters.
    if not 1 <= len(boundary) <= 70 or b"\r" in boundary or b"\n" in boundary:
        return None
    return boundary


def _parse_parameters(value: str) -> tuple[str, dict[str, str]]:
    """
    Split a header value such as C{form-data; name="x"; filename="y"} into
    its main value and parameters, honouring quoted strings.
    """
    parameters: dict[str, str] = {}
    main, _, rest = value.partition(";")
    position = 0
    pattern = re.compile(r'\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))\s*;?')
    while position < len(rest):
        match = pattern.match(rest, position)
        if match is None:
            break
        key = match.group(1).lower()
        if match.group(2) is not None:
            parameters[key] = re.sub(r"\\(.)", r"\1", match.group(2))
        else:
            parameters[key] = match.group(3).strip()
        position = match.end()
    if "filename*" in parameters:
        # RFC 5987: charset'language'percent-encoded
        from urllib.parse import unquote

        charset, _, encoded = parameters["filename*"].partition("'")
        _, _, encoded = encoded.partition("'")
        try:
            parameters["filename"] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise MultipartError("a file name is not valid text") from None
    return main.strip().lower(), parameters


@dataclass(slots=True)
class PartHeaders:
    """
    What a part's headers say: its field name, and its file name if it is a
    file.
    """

    name: str
    filename: str | None
    content_type: str | None


def parse_part_headers(raw: bytes) -> PartHeaders:
    """
    Read a part's header block (without the blank line that ends it).
    """
    disposition = None
    content_type = None
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        header, colon, value = line.partition(b":")
        if not colon:
            raise MultipartError("a part header has no colon")
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = value.decode("latin-1").strip()
        header = header.strip().lower()
        if header == b"content-disposition":
            disposition = text
        elif header == b"content-type":
            content_type = text
    if disposition is None:
        raise MultipartError("a part has no Content-Disposition header")
    kind, parameters = _parse_parameters(disposition)
    if kind != "form-data" or "name" not in parameters:
        raise MultipartError("a part is not form-data with a name")
    return PartHeaders(parameters["name"], parameters.get("filename"), content_type)


class PartSink(Protocol):
    """
    Receives the parts of a form as the parser finds them.
    """

    def part_started(self, headers: PartHeaders) -> None:
        """A part begins."""

    def part_data(self, data: bytes) -> None:
        """Some of the current part's body, in order."""

    def part_ended(self) -> None:
        """The current part is complete."""


_PREAMBLE, _AFTER_BOUNDARY, _HEADERS, _BODY, _DONE = range(5)


class MultipartParser:
    """
    An incremental C{multipart/form-data} parser: feed it the body in chunks
    of any size, split anywhere, and it tells a L{PartSink} about each part.

    Memory stays bounded: part headers are limited to L{MAX_PART_HEADERS},
    and part bodies are passed on, keeping back only the few bytes that
    might be the start of a boundary.
    """

    def __init__(self, boundary: bytes, sink: PartSink) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._sink = sink
        # The first boundary has no CRLF before it: pretend it had.
        self._buffer = bytearray(b"\r\n")
        self._state = _PREAMBLE
        self._parts = 0

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of a boundary or headers."""
        return len(self._buffer)

    @property
    def complete(self) -> bool:
        """Whether the closing boundary has been seen."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """
        Parse the next chunk of the body.

        @raise MultipartError: the body is not well-formed.
        """
        if self._state == _DONE:
            return  # the epilogue is ignored
        self._buffer += data
        while self._step():
            pass

    def close(self) -> None:
        """
        The body ended.

        @raise MultipartError: it ended before the closing boundary.
        """
        if self._state != _DONE:
            raise MultipartError("the body ends before the closing boundary")

    def _step(self) -> bool:
        buffer = self._buffer
        if self._state == _PREAMBLE:
            found = buffer.find(self._delimiter)
            if found < 0:
                # Keep only what might be the start of the delimiter.
                keep = len(self._delimiter) - 1
                if len(buffer) > keep:
                    del buffer[: len(buffer) - keep]
                return False
            del buffer[: found + len(self._delimiter)]
            self._state = _AFTER_BOUNDARY
            return True
        if self._state == _AFTER_BOUNDARY:
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                self._state = _DONE
                buffer.clear()
                return False
            end = buffer.find(b"\r\n")
            # Decided the same however the body is split: the line ends
            # past MAX_BOUNDARY_LINE once that many bytes hold no CRLF.
            if end > MAX_BOUNDARY_LINE or (end < 0 and len(buffer) > MAX_BOUNDARY_LINE + 1):
                raise MultipartError("no line break after a boundary")
            if end < 0:
                return False
            if buffer[:end].strip(b" \t"):
                raise MultipartError("unexpected text after a boundary")
            del buffer[: end + 2]
            self._state = _HEADERS
            return True
        if self._state == _HEADERS:
            if buffer[:2] == b"\r\n":
                raw = b""
                consumed = 2
            else:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    # The blank line may be arriving: its first three bytes
                    # could already be here.
                    if len(buffer) > MAX_PART_HEADERS + 3:
                        raise MultipartError("a part's headers are too long")
                    return False
                if end > MAX_PART_HEADERS:
                    raise MultipartError("a part's headers are too long")
                raw = bytes(buffer[:end])
                consumed = end + 4
            self._parts += 1
            if self._parts > MAX_PARTS:
                raise MultipartError("too many parts")
            headers = parse_part_headers(raw)
            del buffer[:consumed]
            self._state = _BODY
            self._sink.part_started(headers)
            return True
        if self._state == _BODY:
            found = buffer.find(self._delimiter)
            if found < 0:
                keep = len(self._delimiter) - 1
                if len(buffer) > keep:
                    self._sink.part_data(bytes(buffer[: len(buffer) - keep]))
                    del buffer[: len(buffer) - keep]
                return False
            if found:
                self._sink.part_data(bytes(buffer[:found]))
            del buffer[: found + len(self._delimiter)]
            self._sink.part_ended()
            self._state = _AFTER_BOUNDARY
            return True
        return False



