"""
The upload form of PyPI's legacy API as it is filled by the multipart
parser, and the checks an upload must pass before anything is stored.
Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from twistedpypi.index.distfile import (
    DistributionName,
    is_hidden_or_temporary,
    normalize_name,
    parse_filename,
    version_from_filename_matches,
)
from twistedpypi.uploads.multipart import (
    MAX_FIELD_SIZE,
    MAX_FIELDS_SIZE,
    PartHeaders,
    UploadRejected,
)

CONTENT_FIELD = "content"

UPLOAD_FORM_ALLOWANCE = MAX_FIELDS_SIZE + 1024 * 1024
"""
Bytes an upload's body may carry beyond its file: the form's other fields,
which the parser holds to L{MAX_FIELDS_SIZE} together, and a megabyte for
the part headers, the boundaries and a chunked body's chunk-size lines.
The one margin between C{--max-upload-size} and the largest body.
"""


DIGEST_FIELDS = {
    "md5_digest": "md5",
    "sha256_digest": "sha256",
    "blake2_256_digest": "blake2_256",
}
"""The form's digest fields and the hash each one names."""


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


def largest_upload_body(max_upload_size: int) -> int:
    """
    The most bytes an upload's whole body may take when its file may take
    C{max_upload_size}.
    """
    return max_upload_size + UPLOAD_FORM_ALLOWANCE


def check_content_size(form: UploadForm, max_upload_size: int) -> None:
    """
    Check that the file received so far is within C{--max-upload-size}.

    @raise UploadRejected: 413, saying the limit and who can raise it.
    """
    if form.content_size > max_upload_size:
        raise UploadRejected(
            413,
            f"the file is larger than this server accepts ({max_upload_size} bytes);"
            " the administrator can raise --max-upload-size",
        )


def sent_digests(form: UploadForm) -> dict[str, str]:
    """
    The digests the form sent, as {field name: hash name} (hash names as in
    L{twistedpypi.scan.describe.new_hash}).

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
