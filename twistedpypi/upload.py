"""
The upload form of PyPI's legacy API, read as a stream: an incremental
C{multipart/form-data} parser fed chunk by chunk, the form it fills, and the
checks an upload must pass before anything is stored.

Pure: no I/O and no reactor.  The distribution file itself never passes
through here whole: its bytes are handed to a L{ContentSink} as they arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from twistedpypi.distfile import (
    DistributionName,
    is_hidden_or_temporary,
    normalize_name,
    parse_filename,
    version_from_filename_matches,
)

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

CONTENT_FIELD = "content"

DIGEST_FIELDS = {
    "md5_digest": "md5",
    "sha256_digest": "sha256",
    "blake2_256_digest": "blake2_256",
}
"""The form's digest fields and the hash each one names."""


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


class ContentSink(Protocol):
    """
    Where the bytes of the uploaded file go (a temporary file, in practice).
    """

    def open(self, filename: str) -> None:
        """The file part, named C{filename} by the client, begins."""

    def write(self, data: bytes) -> None:
        """The next bytes of the file."""

    def close(self) -> None:
        """The file part is complete."""


@dataclass(slots=True)
class UploadForm:
    """
    The fields of an upload or removal form, filled by a
    L{MultipartParser}: small fields in memory, the C{content} file sent on
    to a L{ContentSink}.

    @ivar fields: text fields by name (the last value of repeated ones).
    @ivar files: small file parts (C{gpg_signature}) by name, as bytes.
    @ivar filename: the name the client gave the C{content} part.
    @ivar content_size: how many bytes of it have been received.
    """

    content: ContentSink | None = None
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    filename: str | None = None
    content_size: int = 0
    content_complete: bool = False
    _current: PartHeaders | None = None
    _value: bytearray = field(default_factory=bytearray)
    _in_content: bool = False
    _total: int = 0

    def part_started(self, headers: PartHeaders) -> None:
        self._current = headers
        self._value = bytearray()
        if headers.name == CONTENT_FIELD and headers.filename is not None:
            if self.filename is not None:
                raise UploadRejected(400, "the form has more than one 'content' file")
            if self.content is None:
                raise UploadRejected(400, "this request cannot carry a file")
            self.filename = headers.filename
            self._in_content = True
            self.content.open(headers.filename)
            return
        # Names are kept too: they count against the fields' bound.
        self._total += len(headers.name)
        if self._total > MAX_FIELDS_SIZE:
            raise UploadRejected(413, "the form's fields are too large")

    def part_data(self, data: bytes) -> None:
        if self._in_content:
            self.content_size += len(data)
            self.content.write(data)
            return
        self._total += len(data)
        if len(self._value) + len(data) > MAX_FIELD_SIZE or self._total > MAX_FIELDS_SIZE:
            raise UploadRejected(
                413, f"the form field {self._current.name!r} is too large", "a form field is too large"
            )
        self._value += data

    def part_ended(self) -> None:
        headers = self._current
        self._current = None
        if self._in_content:
            self._in_content = False
            self.content_complete = True
            self.content.close()
            return
        if headers.filename is not None:
            self.files[headers.name] = bytes(self._value)
        else:
            try:
                self.fields[headers.name] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadRejected(
                    400, f"the form field {headers.name!r} is not UTF-8 text", "a form field is not UTF-8 text"
                ) from None
        self._value = bytearray()

    @property
    def action(self) -> str | None:
        """The C{:action} field."""
        return self.fields.get(":action")


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def check_filename(filename: str | None) -> None:
    """
    Refuse any file name that is not a plain base name.

    @raise UploadRejected: it is missing, empty, a path, hidden or a
        temporary file's name.
    """
    if filename is None:
        raise UploadRejected(400, "the form has no 'content' file: nothing to upload")
    if not filename:
        raise UploadRejected(400, "the uploaded file has an empty name")
    if "\x00" in filename or any(ord(c) < 32 for c in filename):
        raise UploadRejected(400, "the uploaded file name contains control characters")
    if "/" in filename or "\\" in filename or ".." in filename:
        raise UploadRejected(
            400,
            f"the uploaded file name {filename!r} must be a plain file name, not a path",
            "the uploaded file name must be a plain file name, not a path",
        )
    if filename.startswith(".") or is_hidden_or_temporary(filename):
        raise UploadRejected(
            400,
            f"the uploaded file name {filename!r} is a hidden or temporary file's name",
            "the uploaded file name is a hidden or temporary file's name",
        )
    if len(filename.encode("utf-8")) > 255:
        raise UploadRejected(400, "the uploaded file name is too long")


def check_upload(form: UploadForm) -> DistributionName:
    """
    Check that an upload names a distribution file that matches the form's
    project and version.  Digests are checked by L{check_digests} once the
    file is complete.

    @return: what the file name says.
    @raise UploadRejected: with the reason.
    """
    check_filename(form.filename)
    filename = form.filename
    dist = parse_filename(filename)
    if dist is None:
        raise UploadRejected(
            400,
            f"{filename!r} is not a wheel or sdist file name"
            " (expected NAME-VERSION-TAGS.whl or NAME-VERSION.tar.gz)",
            "the file name is not a wheel or sdist file name",
        )
    name = form.fields.get("name", "").strip()
    version = form.fields.get("version", "").strip()
    if not name or not version:
        raise UploadRejected(400, "the form must give the project's 'name' and 'version'")
    if normalize_name(name) != dist.project:
        raise UploadRejected(
            400, f"the file {filename!r} is not of project {name!r}", "the file's project is not the one the form names"
        )
    if not version_from_filename_matches(dist, version):
        raise UploadRejected(
            400, f"the file {filename!r} is not version {version!r} of {name}", "the file's version is not the one the form names"
        )
    for field_name in DIGEST_FIELDS:
        value = form.fields.get(field_name, "").strip()
        if value and not _HEX.match(value):
            raise UploadRejected(400, f"{field_name} is not a hexadecimal digest")
    return dist


def sent_digests(form: UploadForm) -> dict[str, str]:
    """
    The digests the form sent, as {field name: hash name} (hash names as in
    L{twistedpypi.storage.new_hash}).

    The stdlib distutils' C{upload} sends a 64-byte BLAKE2b as
    C{blake2_256_digest}; its length gives it away.
    """
    sent = {}
    for field_name, algorithm in DIGEST_FIELDS.items():
        value = form.fields.get(field_name, "").strip()
        if not value:
            continue
        if algorithm == "blake2_256" and len(value) == 128:
            algorithm = "blake2_512"
        sent[field_name] = algorithm
    return sent


def check_digests(form: UploadForm, digests: dict[str, str]) -> None:
    """
    Check every digest the form sent against the file as received.

    @param digests: hex digests of the received file by hash name; has
        every one L{sent_digests} names.
    @raise UploadRejected: a digest does not match.
    """
    for field_name, algorithm in sent_digests(form).items():
        sent = form.fields[field_name].strip().lower()
        if sent != digests[algorithm]:
            raise UploadRejected(
                400,
                f"{field_name} does not match the file received: it was damaged"
                " on the way, or is not the file the digest was computed for",
            )
