"""
A cache on disk of what describing each file found (hashes, metadata), so a
restart serves a large directory at once instead of reading every file again.

Entries are keyed by path, size and modification time: a file that changed
in any of these is described anew.  A missing, stale, corrupt or foreign
cache file is simply not used.  Blocking: call from a thread.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile

from twistedpypi.distfile import DistributionName
from twistedpypi.index import DistributionFile

FORMAT = "twistedpypi-describe-cache-2"


def _entry(dist: DistributionFile) -> list:
    return [
        dist.path,
        dist.filename,
        dist.dist.project,
        dist.dist.version,
        dist.dist.kind,
        dist.size,
        dist.mtime_ns,
        dist.hashes,
        None if dist.metadata is None else base64.b64encode(dist.metadata).decode("ascii"),
        dist.metadata_sha256,
        dist.requires_python,
        dist.display_name,
        dist.signature,
    ]


def _file(entry: list) -> DistributionFile:
    (path, filename, project, version, kind, size, mtime_ns, hashes,
     metadata, metadata_sha256, requires_python, display_name, signature) = entry
    return DistributionFile(
        filename=filename,
        path=path,
        dist=DistributionName(project, version, kind),
        size=int(size),
        mtime_ns=int(mtime_ns),
        hashes=dict(hashes),
        metadata=None if metadata is None else base64.b64decode(metadata),
        metadata_sha256=metadata_sha256,
        requires_python=requires_python,
        display_name=display_name,
        signature=bool(signature),
    )


def load(path: str) -> dict[str, DistributionFile]:
    """
    The cached descriptions by path; empty when there is no usable cache.
    """
    try:
        with open(path, "rb") as stream:
            document = json.load(stream)
        if document.get("format") != FORMAT:
            return {}
        files = (_file(entry) for entry in document["files"])
        return {dist.path: dist for dist in files}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(path: str, files: list[DistributionFile]) -> None:
    """
    Replace the cache with these descriptions, atomically.

    @raise OSError: when the cache cannot be written.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    document = {"format": FORMAT, "files": [_entry(dist) for dist in files]}
    descriptor, temporary = tempfile.mkstemp(prefix=".describe-cache-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
