"""
Watching the package directories by looking at them, for shared storage
(NFS, EFS, CephFS), where inotify does not see what other hosts write, and
for systems without inotify.

Every interval a look (L{DirectoryPoller.look}, in a thread) opens each
known directory and compares its modification and change times and inode
with the last look's.  Opening, not C{stat}: NFS revalidates attributes
when a file is opened (close-to-open), where a C{stat} may be answered from
the attribute cache.  Only a directory that changed is listed: names and
inode numbers, no C{stat} per file.  Against its last listing, names new,
gone, or now another file (replaced by a rename or a link, as
C{--overwrite} does) are the changed paths.  New subdirectories are listed
and looked at from then on; gone ones are forgotten.

A new or replaced file may still be being written.  One modified more than
L{SETTLE_SECONDS} ago is taken at once.  A recent one is looked at again
every L{SETTLING_LOOK} seconds (or the interval, if shorter), whether or not
its directory changed, and taken once a look finds it as the one before did
(device, inode, size, modification time): an upload stored by any node
(written under a hidden name, then linked) is listed everywhere within an
interval and a quarter of a second.  Nothing on the file tells a
complete file from one whose writer paused for longer than a tick (its
change time is no help: with the kernel's coarse clock a link made right
after the last write has that write's time), so it is still looked at
every tick until it has been left alone for L{SETTLE_SECONDS}: a copy
written in place that resumes is told again, and described again.
Signatures only count by their presence, and yank markers and status
files are read, at once, and followed as files are.

A file rewritten in place changes no directory: the watcher's safety-net
rescans find it.  Yank markers and status files are the exception: they
are few, and edited in place by hand (C{echo "reason" > FILE.yanked}), so
every sweep also opens each one it knows and tells it if its size or
modification time changed.

Cost: a sweep of the directories is one C{open} and C{fstat} a directory
(about 3 microseconds each here: 100,000 files in one directory cost
nothing to watch, in 10,000 directories 30 ms a sweep); a listing costs in
proportion to the directory (0.1 s for 100,000 names) and comes only when
it changed.  L{Poller} spaces the sweeps at least L{PACE} times their own
duration apart, so that many directories (or a slow file server) make it
sweep less often rather than take more than 1/L{PACE} of a core; the files
still settling are looked at all the same.

L{DirectoryPoller} blocks on the file system (one look at a time, in a
thread); L{Poller} is reactor code.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from twistedpypi.index.distfile import SIGNATURE_SUFFIX, parse_filename
from twistedpypi.index.markers import is_marker_name
from twistedpypi.scan.plan import SETTLE_SECONDS

log = Logger()

PACE = 50
"""The interval between looks is at least this many times a look's duration."""

SETTLING_LOOK = 0.25
"""
Seconds between looks at files still settling: a copy under way changes
within it, an upload stored by another node is listed that much after it
is seen.
"""

_SETTLE_NS = int(SETTLE_SECONDS * 1e9)

_ENTRY_SEPARATOR = b"/"
"""Between a listing's entries: no name holds it (nor a NUL)."""

DirectoryIdentity = tuple[int, int, int]
"""A directory's modification time, change time (ns) and inode."""

Identity = tuple[int, int, int, int]
"""A file's device, inode, size and modification time (ns)."""


@dataclass(slots=True)
class Look:
    """
    What one look at the directories found.

    @ivar changed: paths to look at again: new, gone, replaced, or settled.
    @ivar gone_directories: directories gone with everything below them.
    @ivar listed: the directories listed, because they changed or are new.
    @ivar missing: package directories that could not be opened, since the
        look before could.
    @ivar unseen: whether a directory to watch changed since the listing
        that indexed it: what changed meanwhile is unknown.
    @ivar settling: how many recent files are followed.
    @ivar checking_seconds: how long the look took, its listings aside.
    """

    changed: set[str] = field(default_factory=set)
    gone_directories: set[str] = field(default_factory=set)
    listed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    settling: int = 0
    checking_seconds: float = 0.0
    unseen: bool = False


@dataclass(slots=True)
class _Directory:
    """
    A directory as the last look saw it.

    @ivar identity: its L{DirectoryIdentity}.
    @ivar entries: its listing: each entry's name and inode number, joined
        (kept as one string of bytes: a directory of 100,000 files costs
        megabytes less than a dictionary would).
    """

    identity: DirectoryIdentity | None
    entries: bytes


@dataclass(slots=True)
class _Settling:
    """
    A recent file, as last seen, since when (monotonic) it is so, and
    whether it was told as it is.
    """

    identity: Identity
    since: float
    told: bool = False


class DirectoryPoller:
    """
    Looks at directories and tells what changed in them since the last
    look.  Blocking; one look at a time.

    @param directories: the package directories: one that cannot be opened
        is told in L{Look.missing}, and kept.
    """

    def __init__(self, directories: Iterable[str]) -> None:
        self._tops = set(directories)
        self._known: dict[str, _Directory] = {}
        self._settling: dict[str, _Settling] = {}
        self._missing: set[str] = set()
        self._markers: dict[str, Identity] = {}

    def look(self, watch: Iterable[tuple[str, int | None]] = (), forget: bool = False, directories: bool = True) -> Look:
        """
        Look at every known directory, and at the files still settling.

        @param watch: directories to know from now on, each with the time
            (ns) the listing that indexed them began: if one changed since,
            the look says so (L{Look.unseen}); or L{None} if that listing
            comes after this look.
        @param forget: forget every directory first (one may be a new one by
            the same name): only those of C{watch} are known then.
        @param directories: whether to look at the directories, or only at
            the files still settling.
        """
        started = time.monotonic()
        look = Look()
        listing = 0.0
        if forget:
            self._known.clear()
            self._settling.clear()
            self._missing.clear()
            self._markers.clear()
        # First, so that a file found below is looked at again next time.
        self._look_at_settling(look)
        for directory, listed_ns in watch:
            if directory not in self._known:
                listing += self._learn(directory, look, listed_ns, new=False)
        if directories:
            listing += self._look_at_directories(look)
            self._look_at_markers(look)
        look.settling = len(self._settling)
        look.checking_seconds = time.monotonic() - started - listing
        return look

    def _look_at_directories(self, look: Look) -> float:
        """
        Open every known directory, and list those that changed.

        @return: the seconds the listings took.
        """
        listing = 0.0
        # The loop is a system call's length or two a directory: kept lean.
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        open_, fstat, close = os.open, os.fstat, os.close
        for directory, known in list(self._known.items()):
            try:
                descriptor = open_(directory, flags)
                try:
                    status = fstat(descriptor)
                finally:
                    close(descriptor)
            except OSError:
                if directory in self._tops:
                    self._tell_missing(directory, look)
                continue
            identity = (status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
            if identity != known.identity and self._known.get(directory) is known:
                # (Not forgotten meanwhile, as below a gone directory.)
                self._missing.discard(directory)
                listing += self._relist(directory, known, identity, look)
        return listing

    def _learn(self, directory: str, look: Look, listed_ns: int | None = None, new: bool = True) -> float:
        """
        Know C{directory}, and those below it, from now on.

        @param listed_ns: when the listing that indexed it began: if it
            changed since (with a second's margin: a directory's time is
            that of a clock tick), the look says so.  L{None} if that
            listing is to come.
        @param new: whether it is new, nothing of it indexed: its entries
            are changed paths.
        @return: the seconds its listing took.
        """
        started = time.monotonic()
        identity = _directory_identity(directory)
        entries = _list(directory) if identity is not None else None
        if entries is None:
            if directory in self._tops:
                # Known as empty: all it holds is told once it can be read.
                self._known[directory] = _Directory(None, b"")
                if listed_ns is None:
                    self._missing.add(directory)  # the listing to come finds out
                else:
                    self._tell_missing(directory, look)
            return time.monotonic() - started
        look.listed.append(directory)
        self._known[directory] = _Directory(identity, _ENTRY_SEPARATOR.join(entries[0]))
        seconds = time.monotonic() - started
        if new:
            for entry in entries[0]:
                name = entry.split(b"\0", 1)[0]
                if name not in entries[1]:
                    self._consider(os.path.join(directory, os.fsdecode(name)), look)
        else:
            if listed_ns is not None and identity[0] >= listed_ns - 1_000_000_000:
                look.unseen = True
            # Indexed already: only its markers are to be followed.
            for entry in entries[0]:
                name = os.fsdecode(entry.split(b"\0", 1)[0])
                if is_marker_name(name):
                    self._follow_marker(os.path.join(directory, name))
        for name in entries[1]:
            seconds += self._learn(os.path.join(directory, os.fsdecode(name)), look, listed_ns, new)
        return seconds

    def _tell_missing(self, directory: str, look: Look) -> None:
        if directory not in self._missing:
            self._missing.add(directory)
            look.missing.append(directory)

    def _relist(self, directory: str, known: _Directory, identity: DirectoryIdentity, look: Look) -> float:
        """
        List C{directory}, which changed, and tell what differs from its last
        listing.

        @return: the seconds that took.
        """
        started = time.monotonic()
        listed = _list(directory)
        if listed is None:
            return time.monotonic() - started
        look.listed.append(directory)
        entries, subdirectories = listed
        before = set(known.entries.split(_ENTRY_SEPARATOR)) if known.entries else set()
        known.identity = identity
        known.entries = _ENTRY_SEPARATOR.join(entries)
        gone = {entry.split(b"\0", 1)[0] for entry in before - entries}
        came = {entry.split(b"\0", 1)[0] for entry in entries - before}
        seconds = time.monotonic() - started
        for name in gone:
            path = os.path.join(directory, os.fsdecode(name))
            if path in self._known:
                self._forget_below(path)
                look.gone_directories.add(path)
            elif name not in came:
                self._settling.pop(path, None)
                self._markers.pop(path, None)
                if _matters(path):
                    look.changed.add(path)
        for name in came:
            path = os.path.join(directory, os.fsdecode(name))
            if name in subdirectories:
                if name in gone:
                    look.changed.add(path)  # a file gave its name to a directory
                seconds += self._learn(path, look)
            else:
                self._consider(path, look)
        return seconds

    def _forget_below(self, directory: str) -> None:
        prefix = directory + os.sep
        for path in [p for p in self._known if p == directory or p.startswith(prefix)]:
            del self._known[path]
        for path in [p for p in self._settling if p.startswith(prefix)]:
            del self._settling[path]
        for path in [p for p in self._markers if p.startswith(prefix)]:
            del self._markers[path]

    def _consider(self, path: str, look: Look) -> None:
        """A new or replaced entry: a changed path now, or once it has settled."""
        name = os.path.basename(path)
        if name.endswith(SIGNATURE_SUFFIX):
            look.changed.add(path)
            return
        marker = is_marker_name(name)
        if not marker and parse_filename(name) is None:
            return
        status = _file_status(path)
        if status is None or not stat.S_ISREG(status.st_mode):
            look.changed.add(path)  # gone again, or not a file: inspected as such
            return
        if marker:
            self._markers[path] = _identity(status)
        recent = time.time_ns() - status.st_mtime_ns < _SETTLE_NS
        if recent:
            self._settling[path] = _Settling(_identity(status), time.monotonic(), told=marker)
        else:
            self._settling.pop(path, None)
        if marker or not recent:
            look.changed.add(path)

    def _follow_marker(self, path: str) -> None:
        """Look at the marker C{path} in every sweep from now on."""
        status = _file_status(path)
        if status is not None and stat.S_ISREG(status.st_mode):
            self._markers[path] = _identity(status)

    def _look_at_markers(self, look: Look) -> None:
        """
        Tell of the markers edited in place (their directories unchanged)
        since the last sweep.  A gone one is its directory's news.
        """
        for path, seen in list(self._markers.items()):
            status = _file_status(path)
            if status is None or not stat.S_ISREG(status.st_mode):
                del self._markers[path]
                continue
            identity = _identity(status)
            if identity != seen:
                self._markers[path] = identity
                look.changed.add(path)

    def _look_at_settling(self, look: Look) -> None:
        """
        Tell of the recent files found as the look before found them, and
        stop following those left alone for L{SETTLE_SECONDS}.
        """
        now = time.monotonic()
        for path, seen in list(self._settling.items()):
            status = _file_status(path)
            if status is None or not stat.S_ISREG(status.st_mode):
                del self._settling[path]
                look.changed.add(path)
                continue
            identity = _identity(status)
            if identity != seen.identity:
                self._settling[path] = _Settling(identity, now)
                continue
            if not seen.told:
                seen.told = True
                look.changed.add(path)
            # A future time counts once it has been seen that long.
            if now - seen.since >= SETTLE_SECONDS or time.time_ns() - status.st_mtime_ns >= _SETTLE_NS:
                del self._settling[path]


def _matters(path: str) -> bool:
    """Whether the index may hold something of C{path}."""
    name = os.path.basename(path)
    return name.endswith(SIGNATURE_SUFFIX) or is_marker_name(name) or parse_filename(name) is not None


def _directory_identity(directory: str) -> DirectoryIdentity | None:
    """A directory's identity, read through an open (see the module's docstring)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return (status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


def _file_status(path: str) -> os.stat_result | None:
    """A file's status, read through an open that cannot hang on a FIFO."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.fstat(descriptor)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _identity(status: os.stat_result) -> Identity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _list(directory: str) -> tuple[set[bytes], set[bytes]] | None:
    """
    The entries of C{directory}, hidden ones left out, each its name and
    inode number joined by a NUL; and the names of its subdirectories (not
    links to them).  L{None} if it cannot be listed.
    """
    entries: set[bytes] = set()
    subdirectories: set[bytes] = set()
    try:
        with os.scandir(os.fsencode(directory)) as listing:
            for entry in listing:
                name = entry.name
                if name.startswith(b"."):
                    continue
                entries.add(b"%s\0%d" % (name, entry.inode()))
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.add(name)
    except OSError:
        return None
    return entries, subdirectories


class Poller:
    """
    Looks at the package directories every C{interval} seconds, in a
    thread, and tells its owner what changed, as L{twistedpypi.scan.notify.Notifier}
    does for inotify.  Reactor code.

    @param directories: the package directories.
    @param interval: seconds between looks, at least (see L{PACE}).
    @param changed: called with the paths that changed (and, as the
        notifier's, the files just created: always none here).
    @param moved: called when a package directory can no longer be opened.
    @param missed: called when changes may have come unseen (a directory
        changed between its listing and its first look): everything is to
        be looked at again.
    """

    def __init__(
        self,
        reactor,
        directories: list[str],
        interval: float,
        changed: Callable[[set[str], dict[str, int]], None],
        moved: Callable[[], None],
        missed: Callable[[], None],
    ) -> None:
        self._reactor = reactor
        self._directories = directories
        self._poller = DirectoryPoller(directories)
        self.interval = interval
        self._changed = changed
        self._moved = moved
        self._missed = missed
        self._to_watch: list[tuple[str, int | None]] = []
        self._forget = False
        self._gone_directories: set[str] = set()
        self._next: IDelayedCall | None = None
        self._next_sweep = 0.0
        self._stopped = True

    def start(self) -> Deferred[None]:
        """
        Know the package directories as they are now, then look at them
        every interval.  Fires once they are known: a listing taken after
        misses nothing.
        """
        self._stopped = False
        self._to_watch = [(directory, None) for directory in self._directories]
        return self._look()

    def restart(self) -> None:
        """
        Forget every directory: one that was gone may be a new one by the
        same name.  The directories are to be L{watch}ed again.
        """
        self._forget = True
        self._to_watch.clear()

    def stop(self) -> None:
        """Look no more, and tell nothing more."""
        self._stopped = True
        if self._next is not None and self._next.active():
            self._next.cancel()

    def watch(self, directories: Iterable[str], listed_ns: int | None = None) -> None:
        """
        Look at C{directories} from the next look on, and at the directories
        created below them.

        @param listed_ns: when the listing that indexed them began: what
            changed in them since is told.
        """
        self._to_watch.extend((directory, listed_ns) for directory in directories)

    def take_gone_directories(self) -> set[str]:
        """The directories gone, with everything below them, since last asked."""
        gone, self._gone_directories = self._gone_directories, set()
        return gone

    def _schedule(self, delay: float) -> None:
        if not self._stopped:
            self._next = self._reactor.callLater(delay, self._look)

    def _look(self) -> Deferred[None]:
        watch, self._to_watch = self._to_watch, []
        forget, self._forget = self._forget, False
        sweep = self._reactor.seconds() >= self._next_sweep
        looking = deferToThread(self._poller.look, watch, forget, directories=sweep)
        return looking.addCallback(self._looked, sweep).addErrback(self._failed)

    def _looked(self, look: Look, sweep: bool) -> None:
        if self._stopped:
            return
        self._gone_directories |= look.gone_directories
        if look.changed or look.gone_directories:
            self._changed(look.changed, {})
        if look.missing:
            self._moved()
        if look.unseen:
            self._missed()
        now = self._reactor.seconds()
        if sweep:
            self._next_sweep = now + max(self.interval, PACE * look.checking_seconds)
        # Files settling are looked at soon, even while many directories
        # make the sweeps rarer: an upload is listed a quarter of a second
        # after a sweep sees it.
        until_sweep = self._next_sweep - now
        soon = min(SETTLING_LOOK, self.interval, until_sweep)
        self._schedule(max(0.0, soon if look.settling else until_sweep))

    def _failed(self, failure) -> None:
        log.failure("looking at the package directories failed", failure)
        self._schedule(self.interval)
