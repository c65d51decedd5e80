"""
The package directories on disk: finding distribution files and describing
each one (size, hashes, metadata).

Every function here blocks on the file system: call them in a thread.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from twistedpypi.distfile import DistributionName, normalize_name, parse_filename
from twistedpypi.index import DistributionFile, FilesByPath, split_path
from twistedpypi.listing import SIGNATURE_SUFFIX, Listing, inside, list_tree
from twistedpypi.metadata import MAX_LEAN_SIZE, header_fields, read_core_metadata

_CHUNK = 1024 * 1024
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
    """

    files: dict[str, FileState | DistributionFile]
    signed: set[str]
    directories: list[str]
    unreadable: dict[str, str] = field(default_factory=dict)


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
    return ScanResult(found, listing.signed, listing.directories, listing.unreadable)


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


def open_regular_descriptor(path: str) -> tuple[int, os.stat_result]:
    """
    Open a file for reading only if it is a regular file: a FIFO or device
    put in a file's place would otherwise block the reading thread for ever
    or never end.  (The descriptor is non-blocking, which reads of a regular
    file do not notice.)

    @return: the descriptor, and the file's status.
    @raise OSError: it is not a regular file, or cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return fd, status
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str, limit: int) -> tuple[bytes, os.stat_result]:
    """
    Read up to C{limit} bytes of a small regular file in one call, and its
    status after the read (so a file that changed meanwhile shows it).
    Five system calls, where a file object takes nine.

    @raise OSError: it is not a regular file, or cannot be read.
    """
    fd, _ = open_regular_descriptor(path)
    try:
        return os.read(fd, limit), os.fstat(fd)
    finally:
        os.close(fd)


def open_regular_file(path: str) -> BinaryIO:
    """
    L{open_regular_descriptor}, as a blocking binary file object.

    @raise OSError: it is not a regular file, or cannot be opened.
    """
    fd, _ = open_regular_descriptor(path)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _hash_stream(stream: BinaryIO, algorithms: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    hashers = [(name, hashlib.new(name)) for name in algorithms]
    while chunk := stream.read(_CHUNK):
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
        # A name that does not match the file's is not trusted for display.
        if name is not None and normalize_name(name.strip()) == state.dist.project:
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


UPLOAD_PREFIX = ".upload-"
"""Temporary upload files start so: hidden, so scans and watchers skip them."""


def new_hash(name: str):
    """
    A hasher by the names uploads use: C{md5}, C{sha256}, C{blake2_256}
    (BLAKE2b, 32 bytes) and C{blake2_512} (what the stdlib distutils sends
    as its "blake2_256" digest).
    """
    if name == "md5":
        return hashlib.md5(usedforsecurity=False)
    if name == "blake2_256":
        return hashlib.blake2b(digest_size=32)
    if name == "blake2_512":
        return hashlib.blake2b()
    return hashlib.new(name)


_UMASK: list[int] = []


def _umask() -> int:
    """This process's umask (read once: reading it means setting it)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


class TemporaryUpload:
    """
    An upload being received: a hidden temporary file in the directory it
    will be stored in (so storing it is a rename on one file system),
    hashed as it is written.

    The name carries this process's id, so a later start can tell the
    leftovers of a killed server (L{remove_stale_uploads}).  Blocking: call
    every method in a thread, one at a time.
    """

    def __init__(self, directory: str, algorithms: Iterable[str] = ("sha256",)) -> None:
        import tempfile

        fd, self.path = tempfile.mkstemp(
            prefix=f"{UPLOAD_PREFIX}{os.getpid()}-", suffix=".tmp", dir=directory
        )
        # mkstemp makes the file private; a stored upload is as readable
        # as any file this process creates.
        os.fchmod(fd, 0o666 & ~_umask())
        self._stream = os.fdopen(fd, "wb")
        self._hashers = {name: new_hash(name) for name in {"sha256", *algorithms}}
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append and hash some bytes."""
        self._stream.write(data)
        for hasher in self._hashers.values():
            hasher.update(data)
        self.size += len(data)

    def finish(self, wanted: Iterable[str] = ()) -> dict[str, str]:
        """
        Flush the file to disk (fsync) and close it.

        @param wanted: digests needed besides those computed while writing
            (a client may send its digests after the file): the file is
            read again for them.
        @return: hex digests by name: C{sha256}, and every one asked for
            (see L{new_hash}).
        """
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        digests = {name: hasher.hexdigest() for name, hasher in self._hashers.items()}
        missing = [name for name in wanted if name not in digests]
        if missing:
            hashers = {name: new_hash(name) for name in missing}
            with open(self.path, "rb") as stream:
                while chunk := stream.read(_CHUNK):
                    for hasher in hashers.values():
                        hasher.update(chunk)
            digests.update((name, hasher.hexdigest()) for name, hasher in hashers.items())
        return digests

    def discard(self) -> None:
        """Close and delete the file, if it is still there."""
        try:
            self._stream.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def claim(temporary: str, final: str, overwrite: bool, sha256: str) -> bool:
    """
    Store a complete temporary file under its final name, atomically: no
    one ever sees a partial file there, and of two uploads racing for one
    name exactly one wins.  The temporary file is gone afterwards.

    @param sha256: the temporary file's sha256, to recognise a re-upload of
        the very same bytes.
    @return: L{True} if the file was stored, L{False} if the identical file
        was already there (a success, as on PyPI).
    @raise FileExistsError: a different file has that name and C{overwrite}
        is off.
    """
    try:
        if overwrite:
            os.replace(temporary, final)
            _fsync_directory(os.path.dirname(final))
            return True
        try:
            # link() fails if the name exists, where rename() would replace.
            os.link(temporary, final)
        except FileExistsError:
            try:
                same = file_digests(final, ("sha256",))[0][1].hex() == sha256
            except OSError:
                same = False
            if same:
                return False
            raise
        _fsync_directory(os.path.dirname(final))
        return True
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass


def store_signature(final: str, signature: bytes, overwrite: bool) -> bool:
    """
    Write the detached signature C{<final>.asc} beside a stored file, the
    same atomic way; an existing signature is kept unless C{overwrite}.

    @return: whether it was written.
    """
    directory = os.path.dirname(final)
    upload = TemporaryUpload(directory)
    try:
        upload.write(signature)
        upload.finish()
        try:
            claim(upload.path, final + SIGNATURE_SUFFIX, overwrite, "")
        except FileExistsError:
            return False
        return True
    finally:
        upload.discard()


def remove_files(paths: list[str]) -> list[str]:
    """
    Delete distribution files and their signatures.

    @return: the paths that were deleted (signatures included).
    """
    removed = []
    for path in paths:
        for candidate in (path, path + SIGNATURE_SUFFIX):
            try:
                os.unlink(candidate)
            except FileNotFoundError:
                continue
            removed.append(candidate)
    return removed


def process_is_gone(pid: int) -> bool:
    """Whether no process has that id (one we may not signal still counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_uploads(directory: str) -> list[str]:
    """
    Delete the temporary files of uploads whose server process is gone (it
    was killed mid-upload).  Call it before this process receives any
    upload: files bearing its own process id are leftovers too (a container
    restarts as pid 1 every time).

    @return: the paths deleted.
    """
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for name in entries:
        if not (name.startswith(UPLOAD_PREFIX) and name.endswith(".tmp")):
            continue
        pid = name[len(UPLOAD_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        if int(pid) != os.getpid() and not process_is_gone(int(pid)):
            continue  # another server is writing it
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
        except OSError:
            pass
    return removed
