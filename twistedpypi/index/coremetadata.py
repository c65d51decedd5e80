"""
Core metadata (METADATA / PKG-INFO) as text: its fields, parsed.  Pure
functions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

_MULTI_VALUED = frozenset(
    {
        "classifier",
        "requires-dist",
        "provides-extra",
        "project-url",
        "platform",
        "supported-platform",
        "dynamic",
        "license-file",
        "requires-external",
        "provides-dist",
        "obsoletes-dist",
    }
)


@dataclass(frozen=True, slots=True)
class CoreMetadata:
    """
    A distribution's core metadata.

    @ivar raw: the file's bytes, exactly as stored in the distribution.
    @ivar servable: whether PEP 658 lets an index serve C{raw} as the
        distribution's metadata file (always for wheels; for sdists only from
        Metadata-Version 2.2 on, when the fields are reliable).
    """

    raw: bytes
    servable: bool

    def fields(self) -> dict[str, str | list[str]]:
        """
        The metadata as a dictionary keyed by lower-case field name, with
        multiple-use fields as lists and the body as C{description}.
        """
        result: dict[str, str | list[str]] = {}
        headers, body = parse_core_metadata(self.raw)
        for key, value in headers:
            if key in _MULTI_VALUED:
                result.setdefault(key, []).append(value)  # type: ignore[union-attr]
            else:
                result[key] = value
        if body.strip() and "description" not in result:
            result["description"] = body
        return result


def parse_core_metadata(raw: bytes) -> tuple[list[tuple[str, str]], str]:
    """
    Split core metadata into its fields, in order, with lower-case names,
    and its body.

    The format is RFC 822 headers: a line starting with white space
    continues the previous field, a blank line starts the body.  This does
    what C{email.parser} does for these files at a fraction of the cost,
    which matters when thousands of files are indexed at start-up.  Bytes
    that are not UTF-8 are replaced, never an error.
    """
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    head, separator, body = text.partition("\n\n")
    if not separator and head.endswith("\n"):
        head = head[:-1]
    fields: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            key, value = fields[-1]
            fields[-1] = (key, value + "\n" + line)
            continue
        key, colon, value = line.partition(":")
        if colon and key.strip():
            fields.append((key.strip().lower(), value.strip()))
    return fields, body


def header_fields(raw: bytes, wanted: frozenset[str]) -> dict[str, str]:
    """
    Some single-use fields of core metadata, as L{CoreMetadata.fields} gives
    them, without building all the others.

    Only the header part is decoded and split: the body (the long
    description, often most of the file) is left as bytes.

    @param wanted: lower-case field names.
    """
    # The first blank line, with either line ending ("\r\n\n" and
    # "\r\n\r\n" hold one of these too); the line ending before it stays.
    end = raw.find(b"\n\n")
    if b"\r" in raw:  # (searching for "\n\r\n" is slow: only when needed)
        crlf = raw.find(b"\n\r\n")
        if crlf >= 0 and (end < 0 or crlf < end):
            end = crlf
    if end >= 0:
        raw = raw[: end + 1]
    headers, _ = parse_core_metadata(raw)
    return {key: value for key, value in headers if key in wanted}


_VERSION_LINE = b"Metadata-Version:"


def _metadata_version_at_least_2_2(raw: bytes) -> bool:
    line, _, rest = raw.partition(b"\n")
    if line.startswith(_VERSION_LINE) and rest[:1] not in (b" ", b"\t"):
        # The usual first line, not continued: no need to parse the rest.
        value: str | None = line[len(_VERSION_LINE) :].decode("utf-8", "replace").strip()
    else:
        headers, _ = parse_core_metadata(raw)
        value = next((v for k, v in headers if k == "metadata-version"), None)
    return value is not None and _at_least_2_2(value)


@functools.lru_cache(maxsize=64)
def _at_least_2_2(version: str) -> bool:
    try:
        return Version(version) >= Version("2.2")
    except InvalidVersion:
        return False
