"""
A cache on disk of what describing each file found (hashes, metadata), so a
restart serves a large directory at once instead of reading every file again.

Entries are keyed by path, size and modification time: a file that changed
in any of these is described anew.  A missing, stale, corrupt or foreign
cache file is simply not used: a BLAKE2 digest covers everything after the
header, and nothing is trusted before it matches.

The file holds the metadata files back to back, then the descriptions in
C{marshal} chunks of L{CHUNK_ENTRIES}, so that loading makes no more
short-lived objects at a time than one chunk's (which would otherwise stay
in the process's memory as fragmentation), and metadata is streamed
straight into the L{MetadataStore} without passing through the heap.

A save in a server runs in a thread beside the reactor and would take the
interpreter from it for as long as it runs (halving the pages served
meanwhile): it works in slices of L{SLICE} seconds and sleeps between them,
so that it holds the interpreter for at most L{BACKGROUND_SHARE} of the time,
and takes that much longer, until its C{hurry} event says the process is
stopping.
Blocking: call from a thread.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import tempfile
import threading
import time
from typing import Callable, Iterable

from twistedpypi.fs import is_leftover, temporary_tag
from twistedpypi.index.distfile import distribution_name
from twistedpypi.index.metadatastore import PLACE_SHIFT, MetadataStore, place, unpack
from twistedpypi.index.model import DistributionFile, FilesByPath

FORMAT = b"twistedpypi-describe-cache-6\n"
_HEADER = struct.Struct("<QQ32s")  # metadata length, entries length, digest
_CHUNK_LENGTH = struct.Struct("<I")
CHUNK_ENTRIES = 1000
_COPY_SIZE = 1024 * 1024
_TEMPORARY_PREFIX = ".describe-cache-"

BACKGROUND_SHARE = 0.05
"""
The share of the time a save off the main thread may work: the rest it
sleeps, leaving the interpreter to the reactor.  (A 100,000-file save
takes a quarter of a second of work, so about five seconds in all.)
"""

SLICE = 0.002
"""
Seconds a paced save works before it sleeps: what a request may wait for
the interpreter at most while a save runs.
"""

def _digest() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=32)


def load(path: str, store: MetadataStore | None = None) -> FilesByPath:
    """
    The cached descriptions by path; empty when there is no usable cache.

    @param store: where to keep the metadata; without one, each file's
        metadata is kept as bytes.
    """
    try:
        with open(path, "rb") as stream:
            if stream.read(len(FORMAT)) != FORMAT:
                return FilesByPath()
            metadata_length, entries_length, digest = _HEADER.unpack(stream.read(_HEADER.size))
            hasher = _digest()
            if store is None:
                metadata = stream.read(metadata_length)
                hasher.update(metadata)
                base = 0
            else:
                metadata = None
                base = store.add_from(stream, metadata_length, hasher.update)
            entries = stream.read(entries_length + 1)
            hasher.update(entries)
            if len(entries) != entries_length or hasher.digest() != digest:
                return FilesByPath()
            files = FilesByPath()
            for entry in _entries(entries):
                files.add(_file(entry, base << PLACE_SHIFT, metadata))
            return files
    except (OSError, ValueError, EOFError, TypeError, struct.error):
        return FilesByPath()


def _entries(data: bytes) -> Iterable[tuple]:
    view = memoryview(data)
    position = 0
    while position < len(view):
        (length,) = _CHUNK_LENGTH.unpack_from(view, position)
        position += _CHUNK_LENGTH.size
        yield from marshal.loads(view[position : position + length])
        position += length


def _file(entry: tuple, base: int, metadata: bytes | None) -> DistributionFile:
    """
    A description from its cache entry.  (Positional and terse: a restart
    makes one per file.)

    @param base: what to add to a place in the cache's metadata for the
        place in the store.
    @param metadata: the cache's metadata, when it is kept in memory rather
        than in a store (C{base} is then unused).
    """
    (filename, directory, project, version, kind, size, mtime_ns, sha256, extra_digests, where,
     metadata_digest, requires_python, display_name, signature) = entry
    if where is not None:
        if metadata is None:
            if base:
                where += base
        else:
            offset, length = unpack(where)
            where = metadata[offset : offset + length]
    return DistributionFile(
        filename, directory, distribution_name(project, version, kind), size, mtime_ns, sha256,
        extra_digests, where, metadata_digest, requires_python, display_name, signature,
    )


def save(
    path: str,
    files: Iterable[DistributionFile],
    metadata_of,
    share: float | None = None,
    hurry: threading.Event | None = None,
) -> None:
    """
    Replace the cache with these descriptions, atomically.

    @param metadata_of: reads a file's metadata (L{PackageIndex.metadata_of}).
    @param share: the share of the time the save may work, sleeping the
        rest (see L{Pacer}); by default L{BACKGROUND_SHARE} off the main
        thread (in a server, beside the reactor), and all of it on the main
        thread (a process that does nothing else meanwhile).
    @param hurry: once set (from any thread: the process is stopping, and
        waits for the save), the save works on without pausing.
    @raise OSError: when the cache cannot be written.
    """
    if share is None:
        share = 1.0 if threading.current_thread() is threading.main_thread() else BACKGROUND_SHARE
    pace = Pacer(share, hurry=hurry)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    _remove_abandoned(directory)
    descriptor, temporary = tempfile.mkstemp(prefix=f"{_TEMPORARY_PREFIX}{temporary_tag()}-", dir=directory)
    try:
        # The entries come after the metadata but are made alongside it:
        # they wait in a second, anonymous file rather than in memory.
        with os.fdopen(descriptor, "wb") as stream, tempfile.TemporaryFile(dir=directory) as entries:
            stream.write(FORMAT + bytes(_HEADER.size))
            hasher = _digest()
            chunk = []
            metadata_length = 0
            for dist in files:
                metadata = metadata_of(dist)
                if metadata is None:
                    where = None
                else:
                    where = place(metadata_length, len(metadata))
                    stream.write(metadata)
                    hasher.update(metadata)
                    metadata_length += len(metadata)
                chunk.append(_entry(dist, where))
                pace()
                if len(chunk) == CHUNK_ENTRIES:
                    entries.write(_chunk(chunk))
                    chunk = []
            if chunk:
                entries.write(_chunk(chunk))
            entries_length = entries.tell()
            entries.seek(0)
            while block := entries.read(_COPY_SIZE):
                hasher.update(block)
                stream.write(block)
                pace()
            stream.seek(len(FORMAT))
            stream.write(_HEADER.pack(metadata_length, entries_length, hasher.digest()))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class Pacer:
    """
    Sleeps, when called, so that the work done between calls takes at most
    a share of the time: after each L{SLICE} of work, for as long as that
    work took times C{(1 - share) / share}.  Work is measured in wall-clock
    time, so time spent waiting for the interpreter counts as work: a
    paced thread errs on the side of sleeping.  Once its C{hurry} event is
    set, it neither sleeps nor goes on sleeping.
    """

    def __init__(
        self,
        share: float,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], object] | None = None,
        hurry: threading.Event | None = None,
    ) -> None:
        """
        @param share: more than 0; 1 or more means never sleeping.
        @param sleep: sleeps for the seconds given; by default, until
            C{hurry} is set at the latest.
        @param hurry: set when the work is to go on without sleeping.
        """
        self._ratio = max(0.0, (1 - share) / share)
        self._clock = clock
        self._hurry = hurry or threading.Event()
        self._sleep = self._hurry.wait if sleep is None else sleep
        self._since = clock()

    def __call__(self) -> None:
        if not self._ratio or self._hurry.is_set():
            return
        worked = self._clock() - self._since
        if worked >= SLICE:
            self._sleep(worked * self._ratio)
            self._since = self._clock()


def _remove_abandoned(directory: str) -> None:
    """
    Delete the half-written caches of processes that died writing them
    (several servers, on several nodes, may share a cache: only the dead
    ones' are deleted, see L{is_leftover}).
    """
    for name in os.listdir(directory):
        if not name.startswith(_TEMPORARY_PREFIX):
            continue
        # mkstemp's random part, after the last "-", has no "-" in it.
        tag = name[len(_TEMPORARY_PREFIX) :].rpartition("-")[0]
        path = os.path.join(directory, name)
        if is_leftover(tag, path):
            try:
                os.unlink(path)
            except OSError:
                pass


def _entry(dist: DistributionFile, where: int | None) -> tuple:
    return (
        dist.filename,
        dist.directory,
        dist.dist.project,
        dist.dist.version,
        dist.dist.kind,
        dist.size,
        dist.mtime_ns,
        dist.sha256_digest,
        dist.extra_digests,
        where,
        dist.metadata_digest,
        dist.requires_python,
        dist.display_name,
        dist.signature,
    )


def _chunk(entries: list[tuple]) -> bytes:
    data = marshal.dumps(tuple(entries))
    return _CHUNK_LENGTH.pack(len(data)) + data
