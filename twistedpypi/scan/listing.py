"""
Listing the package directories: each file's name, size and modification
time, found without reading any file.

With tens of thousands of files the listing is one C{stat} call a file,
most of a restart's scan.  At start-up it can be taken by another process
(L{EarlyListing}), started before the server imports its web stack, so
that those calls run on a spare core while this one imports; the server
collects the listing when its first scan begins.  That process then stands
by as a describe worker (L{twistedpypi.scan.workers}) already started,
for a first start that finds thousands of files to describe.

It runs as C{python -m twistedpypi.scan.listing}.  It reads its directories and
link roots from stdin, writes the listing to stdout and closes it, then
reads from stdin the arguments a describe worker is given, or the end of
the input when there is nothing to describe; all with C{marshal}.  The
listing goes in parts of at most L{PART_ENTRIES} files, each after its
length, and the server takes them in one by one: one block of several
megabytes, once freed, would make the C allocator keep every later block
under that size on its heap, and a whole listing held at once would leave
it fragmented (measured on 100,000 files: 9 MiB more resident after a
first start, and 15 MiB more when a warm one is ready).

Blocking: consume listings, and call L{EarlyListing}'s methods, in a
thread.  This module imports nothing of the server, so that the process
starts fast.
"""

from __future__ import annotations

import marshal
import os
import stat
import struct
import subprocess
import sys
import time
from typing import BinaryIO, Iterable, Iterator

from twistedpypi.index.distfile import SIGNATURE_SUFFIX
from twistedpypi.index.markers import MARKER_SIZE_LIMIT, is_marker_name

PART_ENTRIES = 1000
"""The most files in one part of a listing sent by another process."""

_LENGTH = struct.Struct("<I")


class Listing:
    """
    What a walk of the package directories finds, as it finds it.

    @ivar files: the regular files, in parts: each a directory and some of
        its files, as C{(name, size, mtime_ns)}.  An iterator, consumed
        once as the walk goes on, so that a large directory is never held
        whole (tens of megabytes of short-lived objects would leave the
        heap fragmented).
    @ivar signed: paths of files that have a detached signature beside them.
    @ivar markers: the yank markers and project status files, by path, with
        their contents (see L{twistedpypi.index.markers}).
    @ivar directories: every directory walked, the top ones included.
    @ivar unreadable: directories that could not be listed, with the
        reason: what is below them is unknown, not gone.
    @ivar started_ns: when the walk began (C{time.time_ns()}).

    C{signed}, C{markers}, C{directories} and C{unreadable} are complete
    once C{files} has been consumed.
    """

    __slots__ = ("files", "signed", "markers", "directories", "unreadable", "started_ns")

    def __init__(self) -> None:
        self.files: Iterator[tuple[str, list[tuple[str, int, int]]]] = iter(())
        self.signed: set[str] = set()
        self.markers: dict[str, bytes] = {}
        self.directories: list[str] = []
        self.unreadable: dict[str, str] = {}
        self.started_ns = time.time_ns()


OFFCORE = "twistedpypi.scan.offcore"
"""The module another process runs to list, or describe, for the server."""


def start_module(module: str, arguments: list[str], **options) -> subprocess.Popen:
    """
    Start C{python -m module arguments} with this interpreter, the way the
    server's helper processes (this listing, the describe workers) run.  It
    imports this very twistedpypi, wherever it was found.

    @param options: for L{subprocess.Popen}.
    @raise OSError: it cannot start.
    """
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.Popen([sys.executable, "-m", module, *arguments], env=environment, **options)


class ListingLost(Exception):
    """The process taking a listing failed before it had sent it all."""


def link_roots(directories: list[str], follow_symlinks: bool) -> list[str]:
    """
    Where symbolic links in C{directories} may lead: inside the directories
    themselves, or anywhere when the administrator allows it.
    """
    return [os.sep] if follow_symlinks else [os.path.realpath(d) for d in directories]


def inside(path: str, roots: list[str]) -> bool:
    """Whether C{path}, links resolved, is one of C{roots} or below one."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def changed_since(directories: Iterable[str], since_ns: int) -> bool:
    """
    Whether any of C{directories} may have had an entry added, removed or
    renamed since C{since_ns}, or is gone.  A directory's time is that of a
    clock tick: it is given a second's margin.
    """
    for directory in directories:
        try:
            if os.stat(directory).st_mtime_ns >= since_ns - 1_000_000_000:
                return True
        except OSError:
            return True
    return False


def list_tree(directories: list[str], roots: list[str]) -> Listing:
    """
    Walk C{directories} recursively, as the listing's C{files} are
    consumed.  Hidden files and directories are skipped, and so are
    symbolic links that lead outside C{roots}; links to directories are
    never walked.
    """
    listing = Listing()
    listing.files = _walk(directories, roots, listing)
    return listing


def _walk(directories: list[str], roots: list[str], listing: Listing) -> Iterator[tuple[str, list]]:
    pending = list(directories)
    while pending:
        directory = pending.pop()
        here: list[tuple[str, int, int]] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    _list_entry(entry, roots, here, listing, pending)
                    if len(here) == PART_ENTRIES:
                        yield directory, here
                        here = []
        except OSError as error:
            listing.unreadable[directory] = error.strerror or str(error)
            continue
        if here:
            yield directory, here
        listing.directories.append(directory)


def read_marker(path: str) -> bytes | None:
    """
    The contents of a marker file (see L{twistedpypi.index.markers}), at
    most L{MARKER_SIZE_LIMIT} bytes, or L{None} if it is not a regular
    file that can be read.  Blocking; opened without waiting, so a FIFO
    under that name cannot hang.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return os.read(descriptor, MARKER_SIZE_LIMIT)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _list_entry(entry: os.DirEntry, roots: list[str], here: list, listing: Listing, pending: list[str]) -> None:
    """Sort one directory entry for L{list_tree}."""
    name = entry.name
    if name.startswith("."):
        return
    try:
        if entry.is_symlink() and not inside(entry.path, roots):
            return
        if entry.is_dir():
            if not entry.is_symlink():
                pending.append(entry.path)
            return
        if name.endswith(SIGNATURE_SUFFIX):
            listing.signed.add(entry.path[: -len(SIGNATURE_SUFFIX)])
            return
        if is_marker_name(name):
            content = read_marker(entry.path)
            if content is not None:
                listing.markers[entry.path] = content
            return
        if not entry.is_file():
            return
        status = entry.stat()
    except OSError:
        return
    here.append((name, status.st_size, status.st_mtime_ns))


class EarlyListing:
    """
    A listing taken by another process: start it with L{EarlyListing.start}
    as early as can be, collect it with L{result}, then give that process a
    share of files to describe (L{describe}) or L{dismiss} it.
    """

    def __init__(self, process: subprocess.Popen | None) -> None:
        self._process = process
        self._parent = os.getpid()
        self._reading = False
        self._listed = False

    @classmethod
    def start(cls, directories: list[str], roots: list[str]) -> EarlyListing:
        """
        Start listing C{directories} (see L{list_tree}) in another process.
        One that cannot start gives no result.
        """
        try:
            process = start_module(OFFCORE, [], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError:
            return cls(None)
        listing = cls(process)
        try:
            # A few paths: far less than a pipe holds, so this never waits.
            process.stdin.write(marshal.dumps((directories, roots)))
            process.stdin.flush()
        except OSError:
            listing.dismiss()
        return listing

    def result(self) -> Listing | None:
        """
        The listing, read from the process as its C{files} are consumed
        (which raises L{ListingLost} if the process failed part way; it is
        then dismissed).  L{None} if the process could not start, or at a
        second call: the caller lists the directories itself.
        """
        if self._reading or self._process is None:
            return None
        self._reading = True
        listing = Listing()
        listing.files = self._read(listing)
        return listing

    def _read(self, listing: Listing) -> Iterator[tuple[str, list]]:
        """Read a listing written by L{write_listing} into C{listing}."""
        try:
            with self._process.stdout as stream:
                while True:
                    header = stream.read(_LENGTH.size)
                    if len(header) != _LENGTH.size:
                        raise ListingLost("the listing was cut short")
                    directory, body = marshal.loads(stream.read(_LENGTH.unpack(header)[0]))
                    if directory is None:
                        (
                            listing.signed,
                            listing.markers,
                            listing.directories,
                            listing.unreadable,
                            listing.started_ns,
                        ) = body
                        break
                    yield directory, body
        except (EOFError, ValueError, TypeError, OSError) as error:
            self.dismiss()
            raise ListingLost(str(error)) from error
        self._listed = True

    def standing_by(self) -> bool:
        """
        Whether the process can be given files to describe: it listed, and
        this process can wait for it (twistd forks when it becomes a daemon,
        after the process was started).
        """
        return self._listed and self._process is not None and os.getpid() == self._parent

    def describe(self, arguments: list[str]) -> subprocess.Popen | None:
        """
        Have the process, done listing, run as a describe worker given
        C{arguments}.

        @return: the process, to wait for; L{None} if it is gone.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            with process.stdin:
                process.stdin.write(marshal.dumps(arguments))
        except OSError:
            process.wait()
            return None
        return process

    def dismiss(self) -> None:
        """Tell the process there is nothing to describe, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:  # it is gone already
            pass
        process.stdout.close()
        process.wait()


def write_listing(listing: Listing, stream: BinaryIO) -> None:
    """
    Write C{listing} in parts (see the module's docstring), once it is
    complete: the server reads it only when its first scan begins, and a
    pipe holds far less.
    """
    parts = list(listing.files)
    # The last part has no directory: the rest of the listing.
    parts.append(
        (None, (listing.signed, listing.markers, listing.directories, listing.unreadable, listing.started_ns))
    )
    for part in parts:
        data = marshal.dumps(part)
        stream.write(_LENGTH.pack(len(data)) + data)
