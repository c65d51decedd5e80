"""
What inotify says changed in the package directories, turned into batches
of paths for the watcher (L{twistedpypi.scan.watcher}) to look at.  Where
inotify is missing there is no notifier: the watcher polls.

With inotify a file counts once it is closed after writing or moved into
place.  A name can also appear whole, never to be closed after writing: a
hard link (C{ln}, or an upload another process stored: written under a
hidden name, linked to its own, the hidden one removed) or a symbolic link.
A file created by C{open} is being written and gets a write event
(C{IN_MODIFY}) as soon as a byte is in it; a link gets none.  So a created
name that is a link, or a non-empty file that no write event has touched
since it was created, is complete: the latter is looked at again after
L{QUIET_SECONDS} (with the events that came meanwhile read first), and
indexed if it is still the same file, unchanged.  A file that saw a write
waits for its close, however long its writer pauses.

L{Notifier} is reactor code; L{inspect_paths} and L{inspect_unchanged}
block on the file system: call them in a thread.
"""

from __future__ import annotations

import os
import select
import stat
import struct
from typing import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from twistedpypi.index.distfile import SIGNATURE_SUFFIX, parse_filename
from twistedpypi.index.markers import is_marker_name
from twistedpypi.scan.describe import ScanResult, stat_file
from twistedpypi.scan.listing import read_marker

try:
    from twisted.internet import inotify
except ImportError:  # not Linux
    inotify = None

log = Logger()

HAVE_INOTIFY = inotify is not None
"""Whether this system has inotify; without it the watcher polls."""

EVENT_DELAY = 0.02
"""Seconds to gather a burst of events into one batch."""

QUIET_SECONDS = 0.3
"""
Seconds after its creation that a file no write has touched is looked at
again, and indexed if unchanged: long enough for the write event of any
byte already in it to have been queued.
"""

_DRAIN_READS = 64
"""At most how many reads of queued events make way for a quiet file's look."""

Identity = tuple[int, int, int, int]
"""A file's device, inode, size and modification time (ns)."""


class _Reader(inotify.INotify if inotify is not None else object):  # type: ignore[misc]
    """
    Twisted's inotify reader, telling its owner when it stops (it closes
    itself when any watched directory is deleted, after which no event
    would ever arrive again) and when the kernel's event queue overflowed
    (events were lost; Twisted drops that news, which names no watch).
    """

    def __init__(self, reactor, on_lost, on_overflow) -> None:
        super().__init__(reactor)
        self._on_lost = on_lost
        self._on_overflow = on_overflow

    def _doRead(self, in_: bytes) -> None:
        overflowed = _overflowed(self._buffer + in_)
        super()._doRead(in_)
        if overflowed:
            self._on_overflow()

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self._on_lost(self)


def _overflowed(data: bytes) -> bool:
    """
    Whether the complete inotify events at the start of C{data} include a
    queue overflow.
    """
    offset = 0
    while len(data) - offset >= _EVENT_HEADER.size:
        _wd, mask, _cookie, size = _EVENT_HEADER.unpack_from(data, offset)
        if mask & inotify.IN_Q_OVERFLOW:
            return True
        offset += _EVENT_HEADER.size + size
    return False


_EVENT_HEADER = struct.Struct("=iIII")

# IN_MODIFY comes with every write (merged while unread), and only tells
# whether a created file is being written: cheap next to the write.
_FILE_EVENTS = (
    (
        inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_MOVED_FROM | inotify.IN_DELETE
        | inotify.IN_CREATE | inotify.IN_MOVE_SELF | inotify.IN_MODIFY
    )
    if inotify is not None
    else 0
)


class Notifier:
    """
    Watches directories with inotify and tells its owner, in batches, what
    changed.  Reactor code.

    @param directories: the package directories themselves: one of them
        moving away is told at once.
    @param changed: called with a batch: the paths that changed, and the
        files just created, each by its creation's number (see
        L{inspect_paths}'s C{created}; hand them back to L{look_when_quiet}).
    @param quiet: called with files created L{QUIET_SECONDS} before that no
        write, close or removal touched since, each with its L{Identity}
        then: complete if still the same.
    @param missed: called when events may have been lost (the reader
        stopped, or the kernel's queue overflowed): everything is to be
        looked at again.
    @param moved: called when a package directory itself moved away.
    """

    def __init__(
        self,
        reactor,
        directories: list[str],
        changed: Callable[[set[str], dict[str, int]], None],
        quiet: Callable[[dict[str, Identity]], None],
        missed: Callable[[], None],
        moved: Callable[[], None],
    ) -> None:
        self._reactor = reactor
        self._directories = directories
        self._changed = changed
        self._quiet = quiet
        self._missed = missed
        self._moved = moved
        self._reader: _Reader | None = None
        self._stopped = False
        self._watched: set[str] = set()
        self._pending: set[str] = set()
        # Files created since the last batch, and those created with no
        # write, close or removal seen since: each by its creation's number
        # (a name removed and created again is another file).
        self._created: dict[str, int] = {}
        self._untouched: dict[str, int] = {}
        self._creations = 0
        self._quiet_looks: set[IDelayedCall] = set()
        self._gone_directories: set[str] = set()
        self._flush_call: IDelayedCall | None = None

    def start(self) -> None:
        """Start reading events, with no directory watched yet."""
        self._reader = _Reader(self._reactor, self._reader_lost, self._events_lost)
        self._reader.startReading()
        self._watched.clear()

    def restart(self) -> None:
        """
        Watch afresh: a directory that was gone may be a new one by the same
        name.  The directories are to be L{watch}ed again.
        """
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.loseConnection()
        self.start()

    def stop(self) -> None:
        """Stop reading events, and tell nothing more."""
        self._stopped = True
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        for call in self._quiet_looks:
            call.cancel()
        self._quiet_looks.clear()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.loseConnection()

    def watch(self, directories: Iterable[str]) -> None:
        """Watch C{directories}, and the directories created below them."""
        if self._reader is None:
            return
        for directory in directories:
            if directory in self._watched:
                continue
            try:
                self._reader.watch(
                    FilePath(directory),
                    mask=_FILE_EVENTS,
                    autoAdd=True,
                    callbacks=[self._on_event],
                )
            except Exception as error:  # inotify raises plain errors
                log.warn("cannot watch {directory}: {error}", directory=directory, error=error)
                continue
            self._watched.add(directory)

    def take_gone_directories(self) -> set[str]:
        """The directories gone, with everything below them, since last asked."""
        gone, self._gone_directories = self._gone_directories, set()
        return gone

    def look_when_quiet(self, created: dict[str, int], quiet: dict[str, Identity]) -> None:
        """
        Look again after L{QUIET_SECONDS} at the files of a batch's
        C{created} that L{inspect_paths} found may be complete (its
        C{quiet}), if no event touches them meanwhile.  The others are
        settled: indexed now if links, else when they are closed.
        """
        later = {}
        for path, number in created.items():
            if self._untouched.get(path) != number:
                continue
            if path in quiet:
                later[path] = (number, quiet[path])
            else:
                # A link, indexed now; or nothing to wait for.
                del self._untouched[path]
        if later and not self._stopped:
            def look() -> None:
                self._quiet_looks.discard(call)
                self._look_at_quiet_files(later)

            call = self._reactor.callLater(QUIET_SECONDS, look)
            self._quiet_looks.add(call)

    def _reader_lost(self, reader: _Reader) -> None:
        if reader is not self._reader or self._stopped:
            return
        log.warn("inotify stopped (a watched directory was deleted); watching the package directories again")
        self.start()
        self._missed()

    def _events_lost(self) -> None:
        if self._stopped:
            return
        log.warn(
            "inotify's event queue overflowed and events were lost; scanning the package directories"
            " now (raising fs.inotify.max_queued_events makes this rarer)"
        )
        self._missed()

    def _on_event(self, _watch, filepath: FilePath, mask: int) -> None:
        path = os.fsdecode(filepath.path)
        if mask & inotify.IN_MOVE_SELF:
            # A package directory itself moved away: find out now, not at
            # the next safety-net rescan.  (Sub-directories' moves come as
            # their parent's events.)
            if path in self._directories:
                self._moved()
            return
        if mask & inotify.IN_ISDIR:
            if mask & (inotify.IN_MOVED_FROM | inotify.IN_DELETE):
                self._forget_directory(path)
            elif mask & inotify.IN_MOVED_TO:
                # Moved-in trees are not added by autoAdd: scan them.
                self._pending.add(path)
            elif mask & inotify.IN_CREATE:
                self._watched.add(path)
                self._pending.add(path)
        elif mask & inotify.IN_MODIFY:
            # Being written: it waits for its close.
            self._untouched.pop(path, None)
            return
        elif mask & inotify.IN_CREATE:
            # A file being created is not complete yet: wait for its close.
            # But a link to an existing file is created whole and never
            # closed after writing (see the module's docstring).
            self._creations += 1
            self._created[path] = self._untouched[path] = self._creations
        else:
            self._untouched.pop(path, None)
            self._pending.add(path)
        if self._flush_call is None or not self._flush_call.active():
            self._flush_call = self._reactor.callLater(EVENT_DELAY, self._flush)

    def _forget_directory(self, path: str) -> None:
        prefix = path + os.sep
        for watched in [w for w in self._watched if w == path or w.startswith(prefix)]:
            self._watched.discard(watched)
            try:
                self._reader.ignore(FilePath(watched))
            except Exception:  # not watched, or the watch died with it
                pass
        self._gone_directories.add(path)

    def _flush(self) -> None:
        paths, self._pending = self._pending, set()
        created = {path: number for path, number in self._created.items() if path not in paths}
        self._created = {}
        self._changed(paths, created)

    def _drain_events(self) -> None:
        """
        Read the events the kernel has queued now, rather than when the
        reactor next gets to them: a busy reactor runs a timed call first.
        """
        reader = self._reader
        for _ in range(_DRAIN_READS):
            if reader is None or reader is not self._reader:
                return
            readable, _, _ = select.select([reader.fileno()], [], [], 0)
            if not readable:
                return
            reader.doRead()

    def _look_at_quiet_files(self, quiet: dict[str, tuple[int, Identity]]) -> None:
        """
        Tell of the files created L{QUIET_SECONDS} ago that no write, close
        or removal has touched since.

        @param quiet: each file's creation number and what it was.
        """
        self._drain_events()
        still = {
            path: identity for path, (number, identity) in quiet.items()
            if self._untouched.get(path) == number
        }
        for path in still:
            del self._untouched[path]
        if still and not self._stopped:
            self._quiet(still)


class Inspection:
    """
    What a look at some changed paths found.

    @ivar files: the distribution files, as a scan of them.
    @ivar gone: paths whose file is gone (or is now a directory).
    @ivar directories: directories among the paths, to scan.
    @ivar signatures: files whose detached signature came (L{True}) or went.
    @ivar markers: yank markers and project status files, by path, with
        their contents, or L{None} for those gone.
    @ivar quiet: files just created that may be complete, each with its
        L{Identity}: complete if still the same a little later.
    """

    def __init__(self) -> None:
        self.files = ScanResult({}, set(), [])
        self.gone: list[str] = []
        self.directories: list[str] = []
        self.signatures: dict[str, bool] = {}
        self.markers: dict[str, bytes | None] = {}
        self.quiet: dict[str, Identity] = {}


def inspect_paths(paths: Iterable[str], roots: list[str], created: Iterable[str] = ()) -> Inspection:
    """
    Sort changed paths into distribution files, directories, signatures,
    markers and paths that are gone.  Blocking.

    @param roots: where symbolic links may lead.
    @param created: paths just created, looked at now only if they are
        links to files: a file created by writing it is not complete yet.
        The others that may be complete are left in C{quiet}.
    """
    result = Inspection()
    paths = list(paths)
    for path in created:
        found = _look_at_created(path)
        if found is True:
            paths.append(path)
        elif found is not None:
            result.quiet[path] = found
    for path in paths:
        if os.path.isdir(path):
            # Whatever file had its name is gone.
            result.gone.append(path)
            result.directories.append(path)
        elif path.endswith(SIGNATURE_SUFFIX):
            result.signatures[path[: -len(SIGNATURE_SUFFIX)]] = os.path.exists(path)
        elif is_marker_name(os.path.basename(path)):
            result.markers[path] = read_marker(path)
        else:
            state = stat_file(path, roots)
            if state is None:
                result.gone.append(path)
                continue
            result.files.files[path] = state
            if os.path.exists(path + SIGNATURE_SUFFIX):
                result.files.signed.add(path)
    return result


def inspect_unchanged(quiet: dict[str, Identity], roots: list[str]) -> Inspection:
    """
    L{inspect_paths} the files of C{quiet} that are still what they were.
    Blocking.
    """
    unchanged = []
    for path, identity in quiet.items():
        try:
            status = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode) and _identity(status) == identity:
            unchanged.append(path)
    return inspect_paths(unchanged, roots)


def _identity(status: os.stat_result) -> Identity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _look_at_created(path: str) -> bool | Identity | None:
    """
    What a just-created name is.  Blocking.

    @return: L{True} for a symbolic link to a file or one of several hard
        links to one, complete now; for a non-empty file with one name,
        which may be being written, its identity, to compare later; else
        L{None}.
    """
    name = os.path.basename(path)
    if not name.endswith(SIGNATURE_SUFFIX) and not is_marker_name(name) and parse_filename(name) is None:
        return None
    try:
        status = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(status.st_mode):
        return os.path.isfile(path) or None
    if not stat.S_ISREG(status.st_mode):
        return None
    if status.st_nlink > 1:
        return True
    return _identity(status) if status.st_size else None
