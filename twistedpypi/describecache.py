"""
A cache on disk of what describing each file found (hashes, metadata), so a
restart serves a large directory at once instead of reading every file again.

Entries are keyed by path, size and modification time: a file that changed
in any of these is described anew.  A missing, stale, corrupt or foreign
cache file is simply not used.  The file is JSON lines, read one line at a
time, so loading it never holds the whole document in memory.  Blocking:
call from a thread.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from typing import Iterable

from twistedpypi.distfile import distribution_name
from twistedpypi.index import DistributionFile

FORMAT = "twistedpypi-describe-cache-3"


def _entry(dist: DistributionFile) -> list:
    return [
        dist.path,
        dist.filename,
        dist.dist.project,
        dist.dist.version,
        dist.dist.kind,
        dist.size,
        dist.mtime_ns,
        [[name, digest.hex()] for name, digest in dist.digests],
        None if dist.metadata is None else base64.b64encode(dist.metadata).decode("ascii"),
        dist.metadata_sha256,
        dist.requires_python,
        dist.display_name,
        dist.signature,
    ]


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def _file(entry: list) -> DistributionFile:
    (path, filename, project, version, kind, size, mtime_ns, digests,
     metadata, metadata_sha256, requires_python, display_name, signature) = entry
    return DistributionFile(
        filename=filename,
        path=path,
        dist=distribution_name(project, version, kind),
        size=int(size),
        mtime_ns=int(mtime_ns),
        digests=tuple((sys.intern(name), bytes.fromhex(digest)) for name, digest in digests),
        metadata=None if metadata is None else base64.b64decode(metadata),
        metadata_digest=None if metadata_sha256 is None else bytes.fromhex(metadata_sha256),
        requires_python=_intern(requires_python),
        display_name=_intern(display_name),
        signature=bool(signature),
    )


def load(path: str) -> dict[str, DistributionFile]:
    """
    The cached descriptions by path; empty when there is no usable cache.
    """
    try:
        with open(path, "rb") as stream:
            if json.loads(stream.readline()) != {"format": FORMAT}:
                return {}
            files = (_file(json.loads(line)) for line in stream)
            return {dist.path: dist for dist in files}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(path: str, files: Iterable[DistributionFile]) -> None:
    """
    Replace the cache with these descriptions, atomically.

    @raise OSError: when the cache cannot be written.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".describe-cache-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(json.dumps({"format": FORMAT}) + "\n")
            for dist in files:
                stream.write(json.dumps(_entry(dist), separators=(",", ":")) + "\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
