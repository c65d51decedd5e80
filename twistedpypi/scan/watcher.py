"""
Keeps the in-memory index in step with the package directories: a full scan
at start-up, then inotify events, or looks at the directories every
interval (L{twistedpypi.scan.poll}: for shared storage, where inotify does
not see other hosts' writes, and where inotify is missing), with a periodic
full rescan as a safety net.

Only complete files are indexed: with inotify a file counts once it is
complete (see L{twistedpypi.scan.notify}), when polling once it has settled
(see L{twistedpypi.scan.poll}); a scan skips files modified in the last
L{SETTLE_SECONDS}, which the events or the looks announce when they settle.

Reactor code: the scans, the plans (L{twistedpypi.scan.plan}) and the
describing run in threads.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Callable, Iterable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedpypi.config import DEFAULT_POLL_INTERVAL
from twistedpypi.index.distfile import SIGNATURE_SUFFIX
from twistedpypi.index.model import DistributionFile, FilesByPath, PackageIndex
from twistedpypi.process.memory import release_free_memory
from twistedpypi.scan import describecache
from twistedpypi.scan.describe import FileState, ScanResult, describe, scan
from twistedpypi.scan.listing import EarlyListing, ListingLost, changed_since, link_roots
from twistedpypi.scan.notify import HAVE_INOTIFY, Identity, Notifier, inspect_paths, inspect_unchanged
from twistedpypi.scan.plan import SETTLE_SECONDS, CacheSplit, Plan, plan_changes, plan_markers, reuse_cached
from twistedpypi.scan.poll import Poller
from twistedpypi.scan.workers import describe_all

log = Logger()

RESCAN_INTERVAL = 60.0
"""Seconds between safety-net rescans."""

RESCAN_BUDGET = 100
"""A safety-net rescan comes at least this many times its own duration later."""

POLL_INTERVAL = DEFAULT_POLL_INTERVAL
"""Seconds between looks at the directories when polling, unless told otherwise."""

CACHE_SAVE_DELAY = 10.0
"""Seconds after the last change before the description cache is written."""

RETRY_INTERVAL = 1.0
"""Seconds between scans while a package directory cannot be read."""


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
    @param scan: what finds the distribution files below directories
        (L{twistedpypi.scan.describe.scan}), in a thread.
    @param describe: what describes one file in this process
        (L{twistedpypi.scan.describe.describe}), in a thread.
    @param use_inotify: whether inotify announces changes, where there is
        inotify; else the directories are looked at every C{poll_interval}
        seconds (see L{twistedpypi.scan.poll}).

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
        scan: Callable[..., ScanResult] = scan,
        describe: Callable[[FileState, tuple[str, ...], bool], DistributionFile | None] = describe,
        poll_interval: float = POLL_INTERVAL,
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
        self._scan = scan
        self._describe = describe
        self._use_inotify = use_inotify and HAVE_INOTIFY
        self._poll_interval = poll_interval
        self._lock = DeferredLock()
        # What announces changes: inotify's, or the looks at the directories.
        self._notifier: Notifier | Poller | None = None
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
        # Set when stopping: a paced save (see describecache.save) then
        # works on without pausing, since the stop waits for it.
        self._stopping = threading.Event()

    def startService(self) -> None:
        super().startService()
        Deferred.fromCoroutine(self._start()).addErrback(
            lambda failure: log.failure("the package directories could not be read", failure)
        )

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self._stopping.set()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.stop()
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
            return deferToThread(_save_and_trim, self._cache_path, files, self.index.metadata_of, self._stopping)

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
                " indexed so far and scanning again every {interval:g}s until a scan succeeds",
                files=self.index.file_count,
                interval=RETRY_INTERVAL,
            )
            scanned = False
        else:
            scanned = True
            log.info(
                "indexed {files} files of {projects} projects from {directories} in {seconds:.2f}s"
                " ({reused} from the description cache, {mode})",
                files=self.index.file_count,
                projects=len(self.index.projects),
                directories=", ".join(self.directories),
                seconds=time.monotonic() - started,
                reused=self._reused,
                mode=self._mode(),
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
        # A failed rescan is logged and the next one comes as usual; after a
        # failed first scan, soon, until one succeeds and paces them.
        self._loop = LoopingCall(self._rescan_logged)
        self._loop.clock = self._reactor
        self._loop.start(RESCAN_INTERVAL if scanned else RETRY_INTERVAL, now=False)

    def _mode(self) -> str:
        """How changes are seen, as the start-up line says it."""
        if isinstance(self._notifier, Poller):
            return f"polling every {self._notifier.interval:g}s"
        return "inotify"

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
        else:
            await self._start_poller()
        if self._cache_path is not None:
            self._cached = await deferToThread(describecache.load, self._cache_path, self.index.metadata_store)
            self._cache_entries = len(self._cached)
        early = self._early_listing
        started_ns = time.time_ns()
        found, listed_ns = await deferToThread(self._scan_with, early, self._cached)
        self._watch_directories(found.directories, listed_ns or started_ns)
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
        return await deferToThread(changed_since, found.directories, listed_ns)

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
                return self._scan(self.directories, self._roots, known, listing), listing.started_ns
            except ListingLost:
                pass  # its process failed: list here
        return self._scan(self.directories, self._roots, known), None

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
            started_ns = time.time_ns()
            found = await deferToThread(self._scan_again, elsewhere=self._notifier is not None)
            recovered = self._note_unreadable(found)
            if recovered:
                if self._notifier is not None:
                    # A directory that was gone may be a new one by the
                    # same name: start watching afresh.
                    self._notifier.restart()
                # Files written into it meanwhile are indexed once they
                # have settled.
                self._reactor.callLater(SETTLE_SECONDS + 0.1, self._retry)
            self._watch_directories(found.directories, started_ns)
            await self._apply(found, scope=None, settle=True, newer=newer)

        return Deferred.fromCoroutine(rescan())

    def _scan_again(self, elsewhere: bool) -> ScanResult:
        """
        A rescan, in a thread.

        @param elsewhere: whether to have another process take the listing
            (L{EarlyListing}), as the safety-net rescans do, a minute or
            more apart.  Its C{stat} calls, one a file, would otherwise
            contend with the reactor for the GIL: with 100,000 files, a
            rescan here took twenty-odd seconds under load, and the requests
            answered meanwhile fell by half.
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
        requests would otherwise feel every minute.
        """
        if self._notifier is not None and self._loop is not None:
            self._loop.interval = max(RESCAN_INTERVAL, took * RESCAN_BUDGET)

    # what announces changes: inotify, or looks at the directories

    def _start_notifier(self) -> None:
        self._notifier = Notifier(
            self._reactor,
            self.directories,
            changed=self._paths_changed,
            quiet=self._quiet_files,
            missed=self._look_again,
            moved=self._retry,
        )
        self._notifier.start()

    def _start_poller(self) -> Deferred[None]:
        self._notifier = Poller(
            self._reactor,
            self.directories,
            self._poll_interval,
            changed=self._paths_changed,
            moved=self._retry,
            missed=self._look_again,
        )
        return self._notifier.start()

    def _watch_directories(self, directories: Iterable[str], listed_ns: int) -> None:
        """
        @param listed_ns: when the listing that found C{directories} began
            (a poller tells what changed in them since).
        """
        if isinstance(self._notifier, Poller):
            self._notifier.watch(directories, listed_ns)
        elif self._notifier is not None:
            self._notifier.watch(directories)

    def _paths_changed(self, paths: set[str], created: dict[str, int]) -> None:
        Deferred.fromCoroutine(self._refresh_paths(paths, created)).addErrback(
            lambda failure: log.failure("updating the index failed", failure)
        )

    def _quiet_files(self, quiet: dict[str, Identity]) -> None:
        Deferred.fromCoroutine(self._refresh_quiet(quiet)).addErrback(
            lambda failure: log.failure("updating the index failed", failure)
        )

    # applying changes

    async def _refresh_paths(self, paths: set[str], created: dict[str, int] | None = None) -> None:
        """
        @param created: files just created, by their creation's number:
            indexed now if they are links, after L{twistedpypi.scan.notify.QUIET_SECONDS} if no
            write touches them meanwhile, else when they are closed.
        """
        created = created or {}
        gone_directories = self._notifier.take_gone_directories() if self._notifier is not None else set()
        for newer in self._rescans:
            newer.update(paths, created, gone_directories)
            newer.update(p[: -len(SIGNATURE_SUFFIX)] for p in paths if p.endswith(SIGNATURE_SUFFIX))
        inspected = await deferToThread(inspect_paths, paths, self._roots, created)
        if created and self._notifier is not None:
            self._notifier.look_when_quiet(created, inspected.quiet)
        await self._apply(
            inspected.files,
            scope=[],
            settle=False,
            removed=inspected.gone,
            removed_below=[p + os.sep for p in gone_directories],
            signatures=inspected.signatures,
            markers=inspected.markers,
        )
        for directory in inspected.directories:
            started_ns = time.time_ns()
            found = await deferToThread(self._scan, [directory], self._roots)
            self._watch_directories(found.directories, started_ns)
            await self._apply(found, scope=[directory], settle=False)

    async def _refresh_quiet(self, quiet: dict[str, Identity]) -> None:
        """
        Index the files of C{quiet} that are still as they were when they
        were created.
        """
        for newer in self._rescans:
            newer.update(quiet)
        inspected = await deferToThread(inspect_unchanged, quiet, self._roots)
        await self._apply(
            inspected.files, scope=[], settle=False, signatures=inspected.signatures, markers=inspected.markers
        )

    async def _apply(
        self,
        found: ScanResult,
        scope: list[str] | None,
        settle: bool,
        removed: Iterable[str] = (),
        newer: set[str] | None = None,
        removed_below: list[str] = (),
        signatures: dict[str, bool] | None = None,
        markers: dict[str, bytes | None] | None = None,
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
        @param markers: yank markers and project status files that changed,
            with their contents (L{None} for those gone), besides those
            C{found} holds.
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
            marked = plan_markers(
                self.index.yanks,
                self.index.statuses,
                {**found.markers, **(markers or {})},
                complete=scope is None and not found.unreadable,
                newer=newer,
            )
            if marked:
                self.index.mark(yanks=marked.yanks, statuses=marked.statuses)
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
        Describe files, in a thread (see L{describe_all}), into the index's
        metadata store.
        """
        # The first scan's listing process stands by as a worker (the first
        # scan dismisses it, in another thread, if it is given nothing).
        standby, self._early_listing = self._early_listing, None
        return describe_all(
            states,
            self._algorithms,
            signed,
            self.index.metadata_store,
            workers=self._describe_workers,
            standby=standby,
            describe=self._describe,
        )


def _save_and_trim(path: str, files: list[DistributionFile], metadata_of, hurry: threading.Event) -> None:
    """
    Save the description cache, paced (see L{describecache.save}) until
    C{hurry} is set, then give back what saving took.
    """
    try:
        describecache.save(path, files, metadata_of, hurry=hurry)
    finally:
        release_free_memory()
