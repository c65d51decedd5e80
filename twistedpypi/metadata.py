"""
Core metadata (METADATA / PKG-INFO) read out of a distribution file without
extracting anything to disk and without reading unbounded data into memory.

Blocking: call these from a thread, never from the reactor.
"""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32

from packaging.version import InvalidVersion, Version

MAX_METADATA_SIZE = 4 * 1024 * 1024
"""The largest METADATA or PKG-INFO we read; larger ones are ignored."""

MAX_ARCHIVE_MEMBERS = 10_000
"""How many tar members we look through for PKG-INFO before giving up."""

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
        message = BytesParser(policy=compat32).parsebytes(self.raw)
        result: dict[str, str | list[str]] = {}
        for key, value in message.items():
            key = key.lower()
            value = _text(value)
            if key in _MULTI_VALUED:
                result.setdefault(key, []).append(value)  # type: ignore[union-attr]
            else:
                result[key] = value
        body = message.get_payload()
        if isinstance(body, str) and body.strip() and "description" not in result:
            result["description"] = body
        return result

    def requires_python(self) -> str | None:
        """
        The C{Requires-Python} specifier, if the distribution has one.
        """
        value = _headers(self.raw).get("Requires-Python")
        if value is None:
            return None
        return _text(value).strip() or None


def _headers(raw: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _text(value: object) -> str:
    """
    Header values of metadata that is not valid UTF-8 come back from the
    email parser as C{Header} objects; make everything a plain string.
    """
    if isinstance(value, str):
        return value
    return str(value)


def _metadata_version_at_least_2_2(raw: bytes) -> bool:
    value = _headers(raw).get("Metadata-Version")
    try:
        return value is not None and Version(_text(value).strip()) >= Version("2.2")
    except InvalidVersion:
        return False


def _read_bounded(stream, limit: int = MAX_METADATA_SIZE) -> bytes | None:
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


def _from_zip(path: str, wanted) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
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


def _from_tar(path: str) -> bytes | None:
    with tarfile.open(path, "r:*") as archive:
        for count, info in enumerate(archive):
            if count >= MAX_ARCHIVE_MEMBERS:
                return None
            if _is_sdist_pkg_info(info.name) and info.isfile():
                if info.size > MAX_METADATA_SIZE:
                    return None
                member = archive.extractfile(info)
                return None if member is None else _read_bounded(member)
    return None


def read_core_metadata(path: str, kind: str) -> CoreMetadata | None:
    """
    Read a distribution's core metadata.

    @param path: the distribution file.
    @param kind: its C{DistributionName.kind}.
    @return: L{None} when the file has no readable metadata: eggs, broken or
        hostile archives, oversized metadata.  Never raises for bad files.
    """
    try:
        if kind == "bdist_wheel":
            raw = _from_zip(path, _is_wheel_metadata)
            return None if raw is None else CoreMetadata(raw, servable=True)
        if kind == "sdist":
            if path.endswith(".zip"):
                raw = _from_zip(path, _is_sdist_pkg_info)
            else:
                raw = _from_tar(path)
            if raw is None:
                return None
            return CoreMetadata(raw, servable=_metadata_version_at_least_2_2(raw))
    except (
        OSError,
        EOFError,
        ValueError,
        RuntimeError,
        NotImplementedError,
        zipfile.BadZipFile,
        tarfile.TarError,
        zlib.error,
        lzma.LZMAError,
    ):
        # Corrupt, truncated, encrypted or otherwise unreadable archives are
        # indexed as files without metadata.
        return None
    return None
