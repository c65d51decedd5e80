"""
Describing what the package directories hold: which files are
distributions (a scan, from a listing), and each file's size, hashes and
core metadata.

Every function here blocks on the file system: call them in a thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from twistedpypi.fs import open_regular_file, read_regular_file
from twistedpypi.index.coremetadata import header_fields
from twistedpypi.index.distfile import DistributionName, parse_filename, spells_project
from twistedpypi.index.model import DistributionFile, FilesByPath, split_path
from twistedpypi.scan.listing import Listing, inside, list_tree
from twistedpypi.scan.metadata import MAX_LEAN_SIZE, read_core_metadata

READ_CHUNK = 1024 * 1024
_DESCRIBED_FIELDS = frozenset({"name", "requires-python"})


@dataclass(slots=True)
class FileState:
    """
    What a directory scan learns of a distribution file without reading it.
    (Not frozen, only because a scan makes one per file and frozen ones
    take several times as long to make; never changed.)
    """

    path: str
    dist: DistributionName
    size: int
    mtime_ns: int


@dataclass(slots=True)
class ScanResult:
    """
    What a scan of a directory tree found.

    @ivar files: distribution files by path: each one's L{FileState}, or,
        for a file unchanged since a description the scan was given
        (C{known}), that description.
    @ivar signed: paths of files that have a detached signature beside them.
    @ivar directories: every directory walked, the top ones included.
    @ivar unreadable: directories that could not be listed, with the
        reason: what the index has below them is unknown, not gone.
    @ivar markers: the yank markers and project status files found (see
        L{twistedpypi.index.markers}), by path, with their contents.
    """

    files: dict[str, FileState | DistributionFile]
    signed: set[str]
    directories: list[str]
    unreadable: dict[str, str] = field(default_factory=dict)
    markers: dict[str, bytes] = field(default_factory=dict)


def scan(
    directories: list[str],
    roots: list[str] | None = None,
    known: FilesByPath | None = None,
    listing: Listing | None = None,
) -> ScanResult:
    """
    Find every distribution file below C{directories}, recursively, without
    reading any (see L{list_tree}).

    @param roots: where symbolic links may lead, by default the directories
        themselves.
    @param known: files already described: their names need not be parsed
        again, and one unchanged since is given as its description, which
        keeps a scan of a large tree light.
    @param listing: the directories' listing, if another process took it.
    """
    if listing is None:
        listing = list_tree(directories, [os.path.realpath(root) for root in (roots or directories)])
    known = known if known is not None else FilesByPath()
    found: dict[str, FileState | DistributionFile] = {}
    for directory, entries in listing.files:
        known_here = known.in_directory(directory)
        prefix = os.path.join(directory, "")
        for name, size, mtime_ns in entries:
            described = known_here.get(name)
            if described is not None:
                if (described.size, described.mtime_ns) == (size, mtime_ns):
                    # Unchanged since it was described: the description
                    # stands for its state (same path, dist, size and mtime).
                    found[prefix + name] = described
                    continue
                dist = described.dist
            else:
                dist = parse_filename(name)
                if dist is None:
                    continue
            path = prefix + name
            found[path] = FileState(path, dist, size, mtime_ns)
    return ScanResult(found, listing.signed, listing.directories, listing.unreadable, listing.markers)


def stat_file(path: str, roots: list[str]) -> FileState | None:
    """
    The state of one distribution file, or L{None} if it is gone, is not a
    distribution, or is a link leading outside C{roots}.
    """
    dist = parse_filename(os.path.basename(path))
    if dist is None:
        return None
    try:
        if os.path.islink(path) and not inside(path, roots):
            return None
        status = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return FileState(path, dist, status.st_size, status.st_mtime_ns)


def describes(dist: DistributionFile, state: FileState) -> bool:
    """Whether C{dist} was made from the file as C{state} finds it.  Pure."""
    return (dist.size, dist.mtime_ns, dist.dist) == (state.size, state.mtime_ns, state.dist)


def _hash_stream(stream: BinaryIO, algorithms: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    hashers = [(name, hashlib.new(name)) for name in algorithms]
    while chunk := stream.read(READ_CHUNK):
        for _, hasher in hashers:
            hasher.update(chunk)
    return tuple((name, hasher.digest()) for name, hasher in hashers)


def _hash_bytes(content: bytes, algorithms: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, hashlib.new(name, content).digest()) for name in algorithms)


def file_digests(path: str, algorithms: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """
    Hash a file in chunks with each of C{algorithms} in one pass; the raw
    digests in the order of C{algorithms}.
    """
    with open_regular_file(path) as stream:
        return _hash_stream(stream, algorithms)


def _is_as_scanned(status: os.stat_result, state: FileState) -> bool:
    return (status.st_size, status.st_mtime_ns) == (state.size, state.mtime_ns)


def describe(
    state: FileState, algorithms: tuple[str, ...], signed: bool
) -> DistributionFile | None:
    """
    Read a distribution file once: its hashes and core metadata.

    @return: L{None} if the file vanished or changed while it was read (it
        was still being written); it will be described again when it
        settles.
    """
    # Hashes and metadata come from the same bytes, even if the name is
    # pointed elsewhere meanwhile: one read of a small file, or one open
    # file.
    try:
        if state.size <= MAX_LEAN_SIZE:
            content, status = read_regular_file(state.path, state.size + 1)
            if not _is_as_scanned(status, state) or len(content) != state.size:
                return None
            digests = _hash_bytes(content, algorithms)
            metadata = read_core_metadata(state.path, state.dist.kind, io.BytesIO(content), content)
        else:
            with open_regular_file(state.path) as stream:
                digests = _hash_stream(stream, algorithms)
                if not _is_as_scanned(os.fstat(stream.fileno()), state):
                    return None
                metadata = read_core_metadata(state.path, state.dist.kind, stream)
    except OSError:
        return None
    directory, filename = split_path(state.path)
    display_name = requires_python = None
    if metadata is not None:
        fields = header_fields(metadata.raw, _DESCRIBED_FIELDS)
        name = fields.get("name")
        # Only an ASCII spelling of the file's own name is kept for display:
        # not another name, nor a look-alike that str.lower folds onto it.
        if name is not None and spells_project(name.strip(), state.dist.project):
            display_name = name.strip()
        value = fields.get("requires-python")
        requires_python = value.strip() or None if value is not None else None
    return DistributionFile(
        filename=filename,
        directory=sys.intern(directory),
        dist=state.dist,
        size=state.size,
        mtime_ns=state.mtime_ns,
        sha256_digest=digests[0][1],
        extra_digests=digests[1:],
        metadata=metadata.raw if metadata is not None else None,
        metadata_digest=(
            hashlib.sha256(metadata.raw).digest()
            if metadata is not None and metadata.servable
            else None
        ),
        requires_python=None if requires_python is None else sys.intern(requires_python),
        display_name=None if display_name is None else sys.intern(display_name),
        signature=signed,
    )



