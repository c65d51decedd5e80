"""
Core metadata (METADATA / PKG-INFO) read out of a distribution file without
extracting anything to disk and without reading unbounded data into memory.

Blocking: call these from a thread, never from the reactor.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import zipfile
import zlib
from typing import BinaryIO, Callable

from twistedpypi.index.coremetadata import CoreMetadata, _metadata_version_at_least_2_2
from twistedpypi.scan.leanarchive import (
    EXTENDED_HEADER_TYPES,
    Unusual,
    tar_gz_member,
    zip_member,
)

MAX_METADATA_SIZE = 4 * 1024 * 1024
"""The largest METADATA or PKG-INFO we read; larger ones are ignored."""

MAX_LEAN_SIZE = 4 * 1024 * 1024
"""
Distribution files up to this size are read whole into memory and their
metadata found there, which is several times faster than C{zipfile} and
C{tarfile} for the small files most indexes hold.
"""

MAX_ARCHIVE_MEMBERS = 10_000
"""How many tar members we look through for PKG-INFO before giving up."""

MAX_ZIP_MEMBERS = 100_000
"""
Zips listing more members are not opened: Python's zipfile holds the whole
central directory in memory, some hundreds of bytes a member.
"""

MAX_ZIP_DIRECTORY_SIZE = 32 * 1024 * 1024
"""Zips whose central directory is larger are not opened either."""

MAX_TAR_EXTENDED_HEADER = 1024 * 1024
"""
The largest long-name or pax header we let C{tarfile} read: it reads them
whole into memory, so a tiny compressed file could otherwise declare
gigabytes.
"""

MIN_UNPACKED_SCAN = 64 * 1024 * 1024
MAX_UNPACK_RATIO = 50
"""
An sdist is decompressed looking for PKG-INFO up to C{MAX_UNPACK_RATIO}
times its own size (at least L{MIN_UNPACKED_SCAN} bytes), so a
decompression bomb costs a bounded time.  Honest sdists compress a few
times, not fifty.
"""

UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
)
"""What C{zipfile} and C{tarfile} raise for archives they cannot read."""


def _read_bounded(stream, limit: int = MAX_METADATA_SIZE) -> bytes | None:
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


def _zip_directory_is_reasonable(stream: BinaryIO) -> bool:
    """
    Whether a zip's end record announces a central directory small enough
    to load; read before C{zipfile} loads it whole.
    """
    end = zipfile._EndRecData(stream)  # the parser zipfile itself uses
    if end is None:
        return False
    return (
        end[zipfile._ECD_ENTRIES_TOTAL] <= MAX_ZIP_MEMBERS
        and end[zipfile._ECD_SIZE] <= MAX_ZIP_DIRECTORY_SIZE
    )


def _from_zip(stream: BinaryIO, wanted) -> bytes | None:
    if not _zip_directory_is_reasonable(stream):
        return None
    stream.seek(0)
    with zipfile.ZipFile(stream) as archive:
        for info in archive.infolist():
            if wanted(info.filename):
                if info.file_size > MAX_METADATA_SIZE:
                    return None
                with archive.open(info) as member:
                    return _read_bounded(member)
    return None


def _is_wheel_metadata(member: str) -> bool:
    parts = member.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"


def _is_sdist_pkg_info(member: str) -> bool:
    parts = member.split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO" and parts[0] not in ("", "..", ".")


class _BoundedTarInfo(tarfile.TarInfo):
    """
    A tar member header that refuses extended headers (GNU long names, pax
    records) too large to read into memory, which C{tarfile} would.
    """

    def _proc_member(self, tarfile_):
        if self.type in EXTENDED_HEADER_TYPES and self.size > MAX_TAR_EXTENDED_HEADER:
            raise tarfile.HeaderError("extended header too large")
        return super()._proc_member(tarfile_)


def _from_tar(stream: BinaryIO, size: int) -> bytes | None:
    unpacked_limit = max(MIN_UNPACKED_SCAN, MAX_UNPACK_RATIO * size)
    with tarfile.open(fileobj=stream, mode="r:*", tarinfo=_BoundedTarInfo) as archive:
        for count, info in enumerate(archive):
            if count >= MAX_ARCHIVE_MEMBERS:
                return None
            if _is_sdist_pkg_info(info.name) and info.isfile():
                if info.size > MAX_METADATA_SIZE:
                    return None
                member = archive.extractfile(info)
                return None if member is None else _read_bounded(member)
            # Going on to the next member decompresses this one's data.
            if info.offset_data + info.size > unpacked_limit:
                return None
    return None


def read_core_metadata(
    path: str, kind: str, stream: BinaryIO | None = None, content: bytes | None = None
) -> CoreMetadata | None:
    """
    Read a distribution's core metadata.

    A file of at most L{MAX_LEAN_SIZE} bytes is read by the lean readers of
    L{twistedpypi.scan.leanarchive} from memory, and by C{zipfile} or C{tarfile}
    only when they cannot answer for it; larger files go to those straight.

    @param path: the distribution file.
    @param kind: its C{DistributionName.kind}.
    @param stream: the file, already open for reading (binary, seekable), so
        the metadata comes from the very file that was hashed; else C{path}
        is opened.
    @param content: all of C{stream}'s bytes, when they were read already.
    @return: L{None} when the file has no readable metadata: eggs, broken or
        hostile archives, oversized metadata.  Never raises for bad files.
    """
    if kind not in ("bdist_wheel", "sdist"):
        return None
    try:
        if stream is None:
            with open(path, "rb") as opened:
                return _read_file(path, kind, opened, content)
        return _read_file(path, kind, stream, content)
    except UNREADABLE:
        # Corrupt, truncated, encrypted or otherwise unreadable archives are
        # indexed as files without metadata.
        return None


def _read_file(
    path: str, kind: str, stream: BinaryIO, content: bytes | None
) -> CoreMetadata | None:
    if content is None:
        size = stream.seek(0, os.SEEK_END)
        if size <= MAX_LEAN_SIZE:
            stream.seek(0)
            content = stream.read(size + 1)
    if content is not None:
        try:
            return _read_lean(path, kind, content)
        except Unusual:
            pass
    stream.seek(0)
    return _read(path, kind, stream)


def _core_metadata(
    path: str,
    kind: str,
    from_zip: Callable[[Callable[[str], bool]], bytes | None],
    from_tar: Callable[[], bytes | None],
) -> CoreMetadata | None:
    if kind == "bdist_wheel":
        raw = from_zip(_is_wheel_metadata)
        return None if raw is None else CoreMetadata(raw, servable=True)
    raw = from_zip(_is_sdist_pkg_info) if path.endswith(".zip") else from_tar()
    if raw is None:
        return None
    return CoreMetadata(raw, servable=_metadata_version_at_least_2_2(raw))


def _read(path: str, kind: str, stream: BinaryIO) -> CoreMetadata | None:
    """The reference: C{zipfile} and C{tarfile} reading C{stream}."""

    def from_tar() -> bytes | None:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        return _from_tar(stream, size)

    return _core_metadata(path, kind, lambda wanted: _from_zip(stream, wanted), from_tar)


def _read_lean(path: str, kind: str, content: bytes) -> CoreMetadata | None:
    """
    The fast path: the lean readers reading C{content}.

    @raise Unusual: they cannot answer for it.
    """

    def from_zip(wanted: Callable[[str], bool]) -> bytes | None:
        return zip_member(
            content, wanted, MAX_METADATA_SIZE, MAX_ZIP_MEMBERS, MAX_ZIP_DIRECTORY_SIZE
        )

    def from_tar() -> bytes | None:
        return tar_gz_member(
            content,
            _is_sdist_pkg_info,
            MAX_METADATA_SIZE,
            MAX_ARCHIVE_MEMBERS,
            MAX_TAR_EXTENDED_HEADER,
            max(MIN_UNPACKED_SCAN, MAX_UNPACK_RATIO * len(content)),
        )

    return _core_metadata(path, kind, from_zip, from_tar)
