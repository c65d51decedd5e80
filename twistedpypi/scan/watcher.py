"""
Keeps the in-memory index in step with the package directories: a full scan
at start-up, then inotify events (or polling where inotify is missing), with
a periodic full rescan as a safety net.

Only complete files are indexed: with inotify a file counts once it is closed
after writing or moved into place; a scan skips files modified in the last
L{SETTLE_SECONDS}, which the events announce when they settle.  Without
inotify, the scans are all there is: a file is served once it has been left
alone for L{SETTLE_SECONDS}.

A name can also appear whole, never to be closed after writing: a hard link
(C{ln}, or an upload another process stored: written under a hidden name,
linked to its own, the hidden one removed) or a symbolic link.  A file
created by C{open} is being written and gets a write event (C{IN_MODIFY}) as
soon as a byte is in it; a link gets none.  So a created name that is a
link, or a non-empty file that no write event has touched since it was
created, is complete: the latter is looked at again after L{QUIET_SECONDS}
(with the events that came meanwhile read first), and indexed if it is
still the same file, unchanged.  A file that saw a write waits for its
close, however long its writer pauses.
"""

from __future__ import annotations

import gc
import os
import select
import stat
import struct
import time
from typing import Iterable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

from twistedpypi.index.distfile import SIGNATURE_SUFFIX, parse_filename
from twistedpypi.index.metadatastore import MetadataStore
from twistedpypi.index.model import DistributionFile, FilesByPath, PackageIndex
from twistedpypi.process.memory import release_free_memory
from twistedpypi.scan import describecache
from twistedpypi.scan.describe import FileState, ScanResult, describe, describes, scan, stat_file
from twistedpypi.scan.listing import EarlyListing, ListingLost, link_roots
from twistedpypi.scan.plan import SETTLE_SECONDS, CacheSplit, Plan, plan_changes, reuse_cached
from twistedpypi.scan.workers import DescribeWorker, shares

try:
    from twisted.internet import inotify
except ImportError:  # not Linux
    inotify = None

log = Logger()

RESCAN_INTERVAL = 60.0
"""Seconds between safety-net rescans when inotify announces changes."""

RESCAN_BUDGET = 100
"""A safety-net rescan comes at least this many times its own duration later."""

POLL_INTERVAL = 0.4
"""Seconds between scans where there is no inotify."""

CACHE_SAVE_DELAY = 10.0
"""Seconds after the last change before the description cache is written."""

EVENT_DELAY = 0.02
"""Seconds to gather a burst of events into one batch."""

RETRY_INTERVAL = 1.0
"""Seconds between scans while a package directory cannot be read."""

QUIET_SECONDS = 0.3
"""
Seconds after its creation that a file no write has touched is looked at
again, and indexed if unchanged: long enough for the write event of any
byte already in it to have been queued.
"""

_DRAIN_READS = 64
"""At most how many reads of queued events make way for a quiet file's look."""

class _Notifier(inotify.INotify if inotify is not None else object):  # type: ignore[misc]
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


class PackageWatcher(Service):
    """
    Feeds a L{PackageIndex} from package directories.

    Symbolic links to files are indexed when they lead inside the package
    directories, or anywhere with C{follow_symlinks}; links to directories
    are never walked.

    @param describe_workers: at most how many worker processes help
        describe thousands of new files at once (see
        L{twistedpypi.scan.workers}).
    @param early_listing: the package directories' listing, being taken by
        another process since before the server started: the first scan
        uses it, then scans again once every directory is watched.  That
        process is the first describe worker of the first scan.

    @ivar ready: fires once the first full scan is in the index.
    """

    def __init__(
        self,
        index: PackageIndex,
        directories: list[str],
        hash_algorithms: tuple[str, ...] = ("sha256",),
        reactor=None,
        use_inotify: bool = True,
        cache_path: str | None = None,
        follow_symlinks: bool = False,
        describe_workers: int = 0,
        early_listing: EarlyListing | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.index = index
        self.directories = [os.path.abspath(d) for d in directories]
        self._roots = link_roots(self.directories, follow_symlinks)
        self._early_listing = early_listing
        self._algorithms = hash_algorithms
        self._describe_workers = describe_workers
        self._use_inotify = use_inotify and inotify is not None
        self._lock = DeferredLock()
        self._notifier = None
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
        self._flush_call = None
        self._loop: LoopingCall | None = None
        self._unsettled: dict[str, tuple[FileState, float]] = {}
        self._unreadable: dict[str, str] = {}
        self._undescribable: dict[str, FileState] = {}
        self._rescans: list[set[str]] = []
        self._retry_call = None
        self.ready: Deferred[None] = Deferred()
        self.is_ready = False
        self._cache_path = cache_path
        self._cached = FilesByPath()
        self._save_call = None
        self._reused = 0
        self._cache_entries = 0
        self._cache_stale = False
        self._saving: Deferred[None] = succeed(None)

    def startService(self) -> None:
        super().startService()
        Deferred.fromCoroutine(self._start()).addErrback(
            lambda failure: log.failure("the package directories could not be read", failure)
        )

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        for call in self._quiet_looks:
            call.cancel()
        self._quiet_looks.clear()
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.loseConnection()
        if self._save_call is not None and self._save_call.active():
            self._save_call.cancel()
        if self._cache_path is not None and self.is_ready and self._cache_stale:
            # The last word on disk is the index as it is now.
            self._save_cache()
        return self._saved()

    # the description cache

    def _schedule_save(self) -> None:
        if self._cache_path is None or not self.is_ready:
            return
        self._cache_stale = True
        if self._save_call is not None and self._save_call.active():
            self._save_call.reset(CACHE_SAVE_DELAY)
        else:
            self._save_call = self._reactor.callLater(CACHE_SAVE_DELAY, self._save_cache)

    def _cache_is_current(self) -> bool:
        """Whether the cache on disk describes exactly what the index holds."""
        return self._reused == self._cache_entries == self.index.file_count

    def _save_cache(self) -> None:
        """
        Write the cache as the index is now, after any save still being
        written (so an older picture never replaces a newer one).
        """
        self._cache_stale = False
        files = list(self.index.files_by_path.values())

        def save(_) -> Deferred[None] | None:
            if self._cache_path is None:
                return None
            return deferToThread(_save_and_trim, self._cache_path, files, self.index.metadata_of)

        def failed(failure) -> None:
            log.warn(
                "cannot write the description cache {path}: {error}",
                path=self._cache_path,
                error=failure.getErrorMessage(),
            )
            self._cache_path = None

        self._saving = self._saved().addCallback(save).addErrback(failed)

    def _saved(self) -> Deferred[None]:
        """Fires once every save begun so far is on disk (or failed)."""
        done: Deferred[None] = Deferred()

        def saved(result: object) -> object:
            done.callback(None)
            return result

        self._saving.addBoth(saved)
        return done

    async def _start(self) -> None:
        started = time.monotonic()
        # The first scan makes an object or ten per file, nearly all for
        # good: collecting garbage meanwhile walks them again and again (15%
        # of a start with 100,000 files).  One collection at the end takes
        # what did not live on; then the rest is set aside (gc.freeze), so
        # later collections do not walk it either.  That collection walks
        # the young generations only: everything the scan made is there
        # (collection was off), and what importing the server left in the
        # old one holds no garbage (measured: none), only 50,000 objects to
        # walk for nothing.
        gc.disable()
        unseen = False
        try:
            unseen = await self._first_scan()
        except Exception:
            # Requests wait for the first scan: they must not wait forever
            # on one that broke.  What is indexed is served, like files in
            # a directory that cannot be read, and the safety-net rescans
            # fill in the rest once the cause is gone.
            log.failure(
                "the first scan of the package directories failed; serving the {files} files"
                " indexed so far and scanning again every {interval:g}s",
                files=self.index.file_count,
                interval=RESCAN_INTERVAL if self._notifier is not None else POLL_INTERVAL,
            )
        else:
            log.info(
                "indexed {files} files of {projects} projects from {directories} in {seconds:.2f}s"
                " ({reused} from the description cache, {mode})",
                files=self.index.file_count,
                projects=len(self.index.projects),
                directories=", ".join(self.directories),
                seconds=time.monotonic() - started,
                reused=self._reused,
                mode="inotify" if self._notifier is not None else "polling",
            )
        finally:
            gc.collect(1)
            gc.freeze()
            gc.enable()
        # What the scan made and dropped, back to the system before the
        # first request comes.
        self._cached = FilesByPath()
        await deferToThread(release_free_memory)
        self.is_ready = True
        self.index.on_change(self._schedule_save)
        if self._cache_path is not None and not self._cache_is_current():
            self._save_cache()
        self.ready.callback(None)
        if not self.running:
            return
        if unseen:
            self._look_again()
        interval = RESCAN_INTERVAL if self._notifier is not None else POLL_INTERVAL
        # A failed rescan is logged and the next one comes as usual.
        self._loop = LoopingCall(self._rescan_logged)
        self._loop.clock = self._reactor
        self._loop.start(interval, now=False)

    async def _first_scan(self) -> bool:
        """
        Scan every directory into the index, and start watching them.

        @return: whether changes may have come unseen: a directory changed
            between the early listing and the watches.  (A file rewritten
            in place meanwhile leaves its directory as it was: the
            safety-net rescans find it.)
        """
        if self._use_inotify:
            self._start_notifier()
        if self._cache_path is not None:
            self._cached = await deferToThread(describecache.load, self._cache_path, self.index.metadata_store)
            self._cache_entries = len(self._cached)
        early = self._early_listing
        found, listed_ns = await deferToThread(self._scan_with, early, self._cached)
        self._watch_directories(found.directories)
        try:
            await self._apply(found, scope=None, settle=False)
        finally:
            # Its process stood by to describe: done with, if not used.
            self._early_listing = None
            if early is not None:
                deferToThread(early.dismiss)
        self._note_unreadable(found)
        if listed_ns is None:
            return False
        return await deferToThread(_changed_since, found.directories, listed_ns)

    def _scan_with(self, lister: EarlyListing | None, known: FilesByPath) -> tuple[ScanResult, int | None]:
        """
        A scan, in a thread: with the listing C{lister}'s process takes if it
        comes, else listed here.

        @param known: the files already described (see L{scan}).
        @return: what it found, and when the listing began if it came.
        """
        listing = lister.result() if lister is not None else None
        if listing is not None:
            try:
                return scan(self.directories, self._roots, known, listing), listing.started_ns
            except ListingLost:
                pass  # its process failed: list here
        return scan(self.directories, self._roots, known), None

    def rescan(self) -> Deferred[None]:
        """
        Scan every directory again and bring the index in line with it.
        """

        async def rescan() -> None:
            # What events change while the scan walks the tree is newer
            # than what the scan saw: the scan must not undo it.
            newer: set[str] = set()
            self._rescans.append(newer)
            try:
                await scan_and_apply(newer)
            finally:
                self._rescans = [paths for paths in self._rescans if paths is not newer]

        async def scan_and_apply(newer: set[str]) -> None:
            found = await deferToThread(self._scan_again, elsewhere=self._notifier is not None)
            recovered = self._note_unreadable(found)
            if recovered:
                if self._notifier is not None:
                    # A directory that was gone may be a new one by the
                    # same name: start watching afresh.
                    self._restart_notifier()
                # Files written into it meanwhile are indexed once they
                # have settled.
                self._reactor.callLater(SETTLE_SECONDS + 0.1, self._retry)
            self._watch_directories(found.directories)
            await self._apply(found, scope=None, settle=True, newer=newer)

        return Deferred.fromCoroutine(rescan())

    def _scan_again(self, elsewhere: bool) -> ScanResult:
        """
        A rescan, in a thread.

        @param elsewhere: whether to have another process take the listing
            (L{EarlyListing}), as inotify's safety-net rescans do, a minute
            or more apart.  Its C{stat} calls, one a file, would otherwise
            contend with the reactor for the GIL: with 100,000 files, a
            rescan here took twenty-odd seconds under load, and the requests
            answered meanwhile fell by half.  Polling scans, a fraction of a
            second apart, list here.
        """
        lister = EarlyListing.start(self.directories, self._roots) if elsewhere else None
        try:
            return self._scan_with(lister, self.index.files_by_path)[0]
        finally:
            if lister is not None:
                lister.dismiss()

    def refresh(self, paths: Iterable[str]) -> Deferred[None]:
        """
        Look at some paths again right now and update the index: used when
        this process itself wrote or removed them, so the change is visible
        before any event arrives.
        """
        return Deferred.fromCoroutine(self._refresh_paths(set(paths)))

    # unreadable directories

    def _note_unreadable(self, found: ScanResult) -> bool:
        """
        Log directories that became unreadable or readable again, and keep
        scanning every L{RETRY_INTERVAL} while any is unreadable.

        @return: whether some directory became readable again.
        """
        before, self._unreadable = self._unreadable, dict(found.unreadable)
        for directory, reason in self._unreadable.items():
            if directory not in before:
                log.error(
                    "cannot read the package directory {directory}: {reason}; the files"
                    " indexed below it stay in the index until it can be read again",
                    directory=directory,
                    reason=reason,
                )
        recovered = [d for d in before if d not in self._unreadable]
        for directory in recovered:
            log.info("the package directory {directory} can be read again", directory=directory)
        if self._unreadable and self.running and (self._retry_call is None or not self._retry_call.active()):
            self._retry_call = self._reactor.callLater(RETRY_INTERVAL, self._retry)
        return bool(recovered)

    def _look_again(self) -> None:
        """Scan everything now, and again once files written meanwhile have settled."""
        self._retry()
        self._reactor.callLater(SETTLE_SECONDS + 0.1, self._retry)

    def _retry(self) -> None:
        if self.running:
            self._rescan_logged()

    def _rescan_logged(self) -> Deferred[None]:
        started = time.monotonic()
        rescanned = self.rescan()
        rescanned.addCallback(lambda _: self._pace(time.monotonic() - started))
        return rescanned.addErrback(
            lambda failure: log.failure("rescanning the package directories failed", failure)
        )

    def _pace(self, took: float) -> None:
        """
        Space the safety-net rescans so that they take at most 1/L{RESCAN_BUDGET}
        of the time: with 100,000 files a rescan takes seconds of CPU, which
        requests would otherwise feel every minute.  (Polling, where scans
        are all there is, keeps its pace.)
        """
        if self._notifier is not None and self._loop is not None:
            self._loop.interval = max(RESCAN_INTERVAL, took * RESCAN_BUDGET)

    # inotify

    def _start_notifier(self) -> None:
        self._notifier = _Notifier(self._reactor, self._notifier_lost, self._events_lost)
        self._notifier.startReading()
        self._watched.clear()

    def _restart_notifier(self) -> None:
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.loseConnection()
        self._start_notifier()

    def _notifier_lost(self, notifier) -> None:
        if notifier is not self._notifier or not self.running:
            return
        log.warn("inotify stopped (a watched directory was deleted); watching the package directories again")
        self._start_notifier()
        # Events may have been missed.
        self._look_again()

    def _events_lost(self) -> None:
        if not self.running:
            return
        log.warn(
            "inotify's event queue overflowed and events were lost; scanning the package directories"
            " now (raising fs.inotify.max_queued_events makes this rarer)"
        )
        self._look_again()

    def _watch_directories(self, directories: Iterable[str]) -> None:
        if self._notifier is None:
            return
        for directory in directories:
            if directory in self._watched:
                continue
            try:
                self._notifier.watch(
                    FilePath(directory),
                    mask=_FILE_EVENTS,
                    autoAdd=True,
                    callbacks=[self._on_event],
                )
            except Exception as error:  # inotify raises plain errors
                log.warn("cannot watch {directory}: {error}", directory=directory, error=error)
                continue
            self._watched.add(directory)

    def _on_event(self, _watch, filepath: FilePath, mask: int) -> None:
        path = os.fsdecode(filepath.path)
        if mask & inotify.IN_MOVE_SELF:
            # A package directory itself moved away: find out now, not at
            # the next safety-net rescan.  (Sub-directories' moves come as
            # their parent's events.)
            if path in self.directories:
                self._retry()
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
                self._notifier.ignore(FilePath(watched))
            except Exception:  # not watched, or the watch died with it
                pass
        self._gone_directories.add(path)

    def _flush(self) -> None:
        paths, self._pending = self._pending, set()
        created = {path: number for path, number in self._created.items() if path not in paths}
        self._created = {}
        Deferred.fromCoroutine(self._refresh_paths(paths, created)).addErrback(
            lambda failure: log.failure("updating the index failed", failure)
        )

    def _drain_events(self) -> None:
        """
        Read the events the kernel has queued now, rather than when the
        reactor next gets to them: a busy reactor runs a timed call first.
        """
        notifier = self._notifier
        for _ in range(_DRAIN_READS):
            if notifier is None or notifier is not self._notifier:
                return
            readable, _, _ = select.select([notifier.fileno()], [], [], 0)
            if not readable:
                return
            notifier.doRead()

    def _look_at_quiet_files(self, quiet: dict[str, tuple[int, _Identity]]) -> None:
        """
        Index the files created L{QUIET_SECONDS} ago that no write, close or
        removal has touched since, if they are still as they were then.

        @param quiet: each file's creation number and what it was.
        """
        self._drain_events()
        still = {
            path: identity for path, (number, identity) in quiet.items()
            if self._untouched.get(path) == number
        }
        for path in still:
            del self._untouched[path]
        if still and self.running:
            Deferred.fromCoroutine(self._refresh_quiet(still)).addErrback(
                lambda failure: log.failure("updating the index failed", failure)
            )

    # applying changes

    async def _refresh_paths(self, paths: set[str], created: dict[str, int] | None = None) -> None:
        """
        @param created: files just created, by their creation's number:
            indexed now if they are links, after L{QUIET_SECONDS} if no
            write touches them meanwhile, else when they are closed.
        """
        created = created or {}
        gone_directories, self._gone_directories = self._gone_directories, set()
        for newer in self._rescans:
            newer.update(paths, created, gone_directories)
            newer.update(p[: -len(SIGNATURE_SUFFIX)] for p in paths if p.endswith(SIGNATURE_SUFFIX))
        inspected = await deferToThread(_inspect, paths, self._roots, created)
        quiet = {}
        for path, number in created.items():
            if self._untouched.get(path) != number:
                continue
            if path in inspected.quiet:
                quiet[path] = (number, inspected.quiet[path])
            else:
                # A link, indexed now; or nothing to wait for.
                del self._untouched[path]
        if quiet and self.running:
            def look() -> None:
                self._quiet_looks.discard(call)
                self._look_at_quiet_files(quiet)

            call = self._reactor.callLater(QUIET_SECONDS, look)
            self._quiet_looks.add(call)
        await self._apply(
            inspected.files,
            scope=[],
            settle=False,
            removed=inspected.gone,
            removed_below=[p + os.sep for p in gone_directories],
            signatures=inspected.signatures,
        )
        for directory in inspected.directories:
            found = await deferToThread(scan, [directory], self._roots)
            self._watch_directories(found.directories)
            await self._apply(found, scope=[directory], settle=False)

    async def _refresh_quiet(self, quiet: dict[str, _Identity]) -> None:
        """
        Index the files of C{quiet} that are still as they were when they
        were created.
        """
        for newer in self._rescans:
            newer.update(quiet)
        inspected = await deferToThread(_inspect_unchanged, quiet, self._roots)
        await self._apply(inspected.files, scope=[], settle=False, signatures=inspected.signatures)

    async def _apply(
        self,
        found: ScanResult,
        scope: list[str] | None,
        settle: bool,
        removed: Iterable[str] = (),
        newer: set[str] | None = None,
        removed_below: list[str] = (),
        signatures: dict[str, bool] | None = None,
    ) -> None:
        """
        Bring the index in line with C{found}.

        Changes are worked out in a thread: with many files, comparing them
        all would hold up the reactor.  Only this method changes the index,
        under a lock, so it stays still while the thread reads it.  Until
        the first scan is in, no request looks at the index, and the index
        is filled in the thread too.

        @param scope: the directories C{found} covers completely: indexed
            files below them that C{found} lacks are removed.  L{None} means
            everything; an empty list means remove nothing.
        @param settle: skip files modified within L{SETTLE_SECONDS}; they
            may still be being written.  (A file whose time is in the future
            counts once the scans have seen it unchanged that long.)
        @param removed: paths known to be gone.
        @param newer: paths (files, or directories with everything below)
            changed by events since C{found} was made: left as they are.
        @param removed_below: directories (ending in a separator) known to
            be gone with everything below them.
        @param signatures: files whose detached signature appeared (L{True})
            or disappeared (L{False}).
        """
        await self._lock.acquire()
        try:
            plan, split = await deferToThread(self._plan, found, scope, settle, removed, newer, removed_below)
            described = split.reused
            if split.fresh:
                more, failed = await deferToThread(self._describe_all, split.fresh, found.signed)
                described += more
                for state, failure in failed:
                    log.failure(
                        "cannot describe {path}; it is left out of the index until it changes",
                        failure,
                        path=state.path,
                    )
                    self._undescribable[state.path] = state
            if described or plan.gone:
                if self.is_ready:
                    self.index.update(added=described, removed=plan.gone)
                else:
                    await deferToThread(self.index.update, added=described, removed=plan.gone)
            for path, present in {**plan.signatures, **(signatures or {})}.items():
                self.index.set_signature(path, present)
        finally:
            self._lock.release()

    def _plan(
        self,
        found: ScanResult,
        scope: list[str] | None,
        settle: bool,
        removed: Iterable[str],
        newer: set[str] | None,
        removed_below: list[str],
    ) -> tuple[Plan, CacheSplit]:
        """
        Work out what L{_apply} must change (see L{plan_changes}), and which
        of the changed files the description cache describes; in a thread,
        under its lock.  The cache's descriptions of no use are dropped.
        """
        plan = plan_changes(
            self.index.files_by_path,
            found,
            scope=scope,
            settle=settle,
            now_ns=time.time_ns(),
            now=time.monotonic(),
            removed=removed,
            newer=newer,
            removed_below=removed_below,
            unsettled=self._unsettled,
            undescribable=self._undescribable,
        )
        self._undescribable = plan.undescribable
        if settle:
            self._unsettled = plan.unsettled
        split = reuse_cached(plan.changed, self._cached, self._algorithms[1:], found.signed)
        for path in split.stale:
            self._cached.pop(path)
        self._reused += len(split.reused)
        return plan, split

    def _describe_all(
        self, states: list[FileState], signed: set[str]
    ) -> tuple[list[DistributionFile], list[tuple[FileState, Failure]]]:
        """
        Describe files, in a thread, moving each one's metadata into the
        index's metadata store (off the heap) as soon as it is read.  Worker
        processes take shares of a large batch; what they leave undescribed
        is described here.  One that cannot be described (a bug met by a
        strange file) is reported, not allowed to sink the others.
        """
        # The first scan's listing process stands by as a worker (the first
        # scan dismisses it, in another thread, if it is given nothing).
        standby, self._early_listing = self._early_listing, None
        if standby is not None and not standby.standing_by():
            standby = None
        mine, *theirs = shares(states, self._describe_workers, ready=0 if standby is None else 1)
        workers = [
            DescribeWorker.start(share, self._algorithms, signed, standby if n == 0 else None)
            for n, share in enumerate(theirs)
        ]
        store = self.index.metadata_store
        results: list[DistributionFile] = []
        failed: list[tuple[FileState, Failure]] = []
        store = self._describe_here(mine, signed, store, results, failed)
        for worker, share in zip(workers, theirs):
            described = worker.results(store)
            left = []
            for state in share:
                dist = described.get(state.path)
                if dist is not None and describes(dist, state):
                    results.append(dist)
                else:
                    left.append(state)
            store = self._describe_here(left, signed, store, results, failed)
        return results, failed

    def _describe_here(
        self,
        states: Iterable[FileState],
        signed: set[str],
        store: MetadataStore | None,
        results: list[DistributionFile],
        failed: list[tuple[FileState, Failure]],
    ) -> MetadataStore | None:
        """
        Describe files in this process into C{results} and C{failed}.

        @return: the store to go on with (none once it cannot be written).
        """
        for state in states:
            try:
                dist = describe(state, self._algorithms, state.path in signed)
            except Exception:
                failed.append((state, Failure()))
                continue
            if dist is None:
                continue
            if store is not None and dist.metadata is not None:
                try:
                    # Not yet in the index: nobody else sees it change.
                    dist.metadata = store.add(dist.metadata)
                except OSError as error:
                    # Kept in memory instead: served all the same.
                    log.warn("cannot write to the metadata store: {error}", error=error)
                    store = None
            results.append(dist)
        return store


def _changed_since(directories: Iterable[str], since_ns: int) -> bool:
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



def _save_and_trim(path: str, files: list[DistributionFile], metadata_of) -> None:
    """Save the description cache, then give back what saving took."""
    try:
        describecache.save(path, files, metadata_of)
    finally:
        release_free_memory()




_Identity = tuple[int, int, int, int]
"""A file's device, inode, size and modification time (ns)."""


def _identity(status: os.stat_result) -> _Identity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _look_at_created(path: str) -> bool | _Identity | None:
    """
    What a just-created name is.  Blocking.

    @return: L{True} for a symbolic link to a file or one of several hard
        links to one, complete now; for a non-empty file with one name,
        which may be being written, its identity, to compare later; else
        L{None}.
    """
    name = os.path.basename(path)
    if not name.endswith(SIGNATURE_SUFFIX) and parse_filename(name) is None:
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



class _Inspection:
    """
    What a look at some changed paths found.
    """

    def __init__(self) -> None:
        self.files = ScanResult({}, set(), [])
        self.gone: list[str] = []
        self.directories: list[str] = []
        self.signatures: dict[str, bool] = {}
        self.quiet: dict[str, _Identity] = {}


def _inspect(paths: Iterable[str], roots: list[str], created: Iterable[str] = ()) -> _Inspection:
    """
    Sort changed paths into distribution files, directories, signatures and
    paths that are gone.  Blocking.

    @param created: paths just created, looked at now only if they are
        links to files: a file created by writing it is not complete yet.
        The others that may be complete are left in C{quiet}.
    """
    result = _Inspection()
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
        else:
            state = stat_file(path, roots)
            if state is None:
                result.gone.append(path)
                continue
            result.files.files[path] = state
            if os.path.exists(path + SIGNATURE_SUFFIX):
                result.files.signed.add(path)
    return result


def _inspect_unchanged(quiet: dict[str, _Identity], roots: list[str]) -> _Inspection:
    """
    L{_inspect} the files of C{quiet} that are still what they were.  Blocking.
    """
    unchanged = []
    for path, identity in quiet.items():
        try:
            status = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode) and _identity(status) == identity:
            unchanged.append(path)
    return _inspect(unchanged, roots)
