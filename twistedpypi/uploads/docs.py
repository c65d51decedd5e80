"""
The documentation zip of a C{doc_upload}, which this index checks as
pypiserver does (a zip archive holding C{index.html}) and never stores.

Blocking (it reads the spooled file): run it in a thread.  Memory stays
small whatever the archive holds: the central directory is read one entry
at a time, never whole, and its entries are not kept.
"""

from __future__ import annotations

import os
import struct

INDEX_PAGE = b"index.html"

_END = struct.Struct("<4sHHHHIIH")
_END_SIGNATURE = b"PK\x05\x06"
_END_SEARCHED = _END.size + 0xFFFF
"""The end record is followed by a comment of at most 64 KiB."""

_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"

_ENTRY = struct.Struct("<4s24xHHH12x")
"""A central directory entry's fixed part, keeping the signature and the
lengths of its name, extra field and comment."""
_ENTRY_SIGNATURE = b"PK\x01\x02"


def documentation_zip_problem(path: str) -> str | None:
    """
    What is wrong with the file at C{path} as a documentation zip, or
    L{None} when it is a zip archive with C{index.html} at its top (what
    pypiserver's C{zipfile.ZipFile(...).getinfo("index.html")} accepts).

    @return: the problem, in words for the user.
    """
    with open(path, "rb") as archive:
        directory = _central_directory(archive)
        if directory is None:
            return "it is not a zip archive (no end of central directory record)"
        start, size = directory
        archive.seek(start)
        read = 0
        while read + _ENTRY.size <= size:
            fixed = archive.read(_ENTRY.size)
            if len(fixed) < _ENTRY.size:
                break
            signature, name_length, extra_length, comment_length = _ENTRY.unpack(fixed)
            if signature != _ENTRY_SIGNATURE:
                return "it is not a zip archive (its central directory is damaged)"
            if archive.read(name_length) == INDEX_PAGE:
                return None
            archive.seek(extra_length + comment_length, os.SEEK_CUR)
            read += _ENTRY.size + name_length + extra_length + comment_length
    return "the zip archive has no index.html at its top"


def _central_directory(archive) -> tuple[int, int] | None:
    """
    Where the central directory starts, and its size, from the end record
    (the ZIP64 one when the classic record overflows); L{None} if there is
    none.  Data prepended to the archive (a self-extractor) is allowed for,
    as C{zipfile} does: the directory ends where the end records begin.
    """
    length = archive.seek(0, os.SEEK_END)
    searched = min(length, _END_SEARCHED)
    archive.seek(length - searched)
    tail = archive.read(searched)
    found = tail.rfind(_END_SIGNATURE)
    if found < 0 or searched - found < _END.size:
        return None
    end_at = length - searched + found
    fields = _END.unpack(tail[found : found + _END.size])
    entries, size, offset = fields[4], fields[5], fields[6]
    directory_end = end_at
    if (entries == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF) and end_at >= _ZIP64_LOCATOR.size:
        archive.seek(end_at - _ZIP64_LOCATOR.size)
        locator = _ZIP64_LOCATOR.unpack(archive.read(_ZIP64_LOCATOR.size))
        if locator[0] == _ZIP64_LOCATOR_SIGNATURE:
            # The ZIP64 end record sits just before its locator.
            directory_end = end_at - _ZIP64_LOCATOR.size - _ZIP64_END.size
            if directory_end < 0:
                return None
            archive.seek(directory_end)
            record = archive.read(_ZIP64_END.size)
            if len(record) < _ZIP64_END.size:
                return None
            zip64 = _ZIP64_END.unpack(record)
            if zip64[0] != _ZIP64_END_SIGNATURE:
                return None
            size = zip64[8]
    start = directory_end - size
    if start < 0:
        return None
    return start, size
