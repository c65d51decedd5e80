"""
Describing many files on more than one core.

Describing a file (hashing it, reading its core metadata) is Python work
that holds the GIL, so threads cannot spread it over cores; processes can.
When thousands of files need describing at once (a first start on a large
directory, a big copy into it), worker processes each describe a share
while the server's own thread describes the rest.

A worker reads its list of files from a file, and writes what it finds as a
description cache (L{twistedpypi.scan.describecache}): the server loads it as it
loads its own cache at a restart, streaming the metadata into its store.  A
file a worker did not describe (gone, changed meanwhile, or one it failed
on) is described by the server itself, so a worker that fails costs time,
never a file.

L{describe_all} shares a batch out and describes the rest.  Blocking: used
from the watcher's thread.  A worker runs as
C{python -m twistedpypi.scan.offcore LIST CACHE ALGORITHM...}; at
start-up, the process that listed the package directories (see
L{twistedpypi.scan.listing}) stands by to be the first worker, already started.
"""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import tempfile
from typing import Callable, Iterable, Sequence

from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedpypi.index.metadatastore import MetadataStore
from twistedpypi.index.model import DistributionFile, FilesByPath
from twistedpypi.scan import describecache
from twistedpypi.scan.describe import FileState, describe, describes
from twistedpypi.scan.listing import OFFCORE, EarlyListing, start_module

log = Logger()

START_COST = 3000
"""
About how many files the server describes while a worker starts (a worker
takes 0.2-0.4 s to start, describing takes about 0.1 ms a file): a worker's
share is that much smaller than the server's own, so that both end together.
"""

MIN_SHARE = 1000
"""The fewest files worth starting a worker for."""

MAX_DESCRIBE_WORKERS = 3
"""The most workers a server starts, however many cores it has."""

TIMEOUT = 600
"""Seconds a worker may take before it is killed (its files then described here)."""


def shares(states: Sequence[FileState], workers: int, ready: int = 0) -> list[Sequence[FileState]]:
    """
    Split C{states} into this process's share (first) and one share per
    worker worth starting, at most C{workers}, the first C{ready} of which
    are already running: this process's share is as large as a running
    worker's, L{START_COST} files larger than the share of a worker still to
    start, and no worker's is smaller than L{MIN_SHARE}.
    """
    while workers > 0:
        costs = [0] * min(ready, workers) + [START_COST] * (workers - min(ready, workers))
        mine = (len(states) + sum(costs)) // (workers + 1)
        if mine - max(costs) >= MIN_SHARE:
            cuts = [0, mine]
            for cost in costs:
                cuts.append(cuts[-1] + mine - cost)
            cuts[-1] = len(states)
            return [states[start:end] for start, end in zip(cuts, cuts[1:])]
        workers -= 1
    return [states]


class DescribeWorker:
    """
    One worker process describing a share of files.  Start it with
    L{DescribeWorker.start}, collect its descriptions with L{results}.
    """

    def __init__(self, process: subprocess.Popen | None, directory: str | None, cache_path: str | None) -> None:
        self._process = process
        self._directory = directory
        self._cache_path = cache_path

    @classmethod
    def start(
        cls,
        states: Sequence[FileState],
        algorithms: Sequence[str],
        signed: set[str] | frozenset[str],
        standby: EarlyListing | None = None,
    ) -> DescribeWorker:
        """
        Start a worker describing C{states} with C{algorithms}; C{signed}
        holds the paths with a detached signature beside them.  A worker
        that cannot start is one whose results are empty.

        @param standby: the process that listed the package directories,
            standing by: it is the worker, with no start to wait for.
        """
        try:
            directory = tempfile.mkdtemp(prefix="twistedpypi-describe-")
        except OSError:  # no writable temporary directory
            if standby is not None:
                standby.dismiss()
            return cls(None, None, None)
        list_path = os.path.join(directory, "files")
        cache_path = os.path.join(directory, "descriptions")
        try:
            with open(list_path, "wb") as stream:
                marshal.dump(
                    [
                        (s.path, s.dist.project, s.dist.version, s.dist.kind, s.size, s.mtime_ns, s.path in signed)
                        for s in states
                    ],
                    stream,
                )
            arguments = [list_path, cache_path, *algorithms]
            if standby is None:
                process = start_module(OFFCORE, arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            else:
                process = standby.describe(arguments)
        except OSError:
            process = None
            if standby is not None:
                standby.dismiss()
        return cls(process, directory, cache_path)

    def results(self, store: MetadataStore | None) -> FilesByPath:
        """
        Wait for the worker, and take in what it described (its metadata
        into C{store}).  Empty if it failed.
        """
        try:
            if self._process is None:
                return FilesByPath()
            try:
                code = self._process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                return FilesByPath()
            if code != 0:
                return FilesByPath()
            return describecache.load(self._cache_path, store)
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)


def describe_all(
    states: list[FileState],
    algorithms: tuple[str, ...],
    signed: set[str],
    store: MetadataStore | None,
    workers: int = 0,
    standby: EarlyListing | None = None,
    describe: Callable[[FileState, tuple[str, ...], bool], DistributionFile | None] = describe,
) -> tuple[list[DistributionFile], list[tuple[FileState, Failure]]]:
    """
    Describe files, moving each one's metadata into C{store} (off the heap)
    as soon as it is read.  Worker processes, at most C{workers}, take
    shares of a large batch; what they leave undescribed is described here.
    One that cannot be described (a bug met by a strange file) is reported,
    not allowed to sink the others.

    @param signed: paths of files with a detached signature beside them.
    @param standby: the process that listed the package directories, if it
        may stand by as the first worker (L{EarlyListing.standing_by}).
    @param describe: what describes one file here (L{describe}).
    @return: the descriptions, and the files that could not be described,
        each with why.
    """
    if standby is not None and not standby.standing_by():
        standby = None
    mine, *theirs = shares(states, workers, ready=0 if standby is None else 1)
    started = [
        DescribeWorker.start(share, algorithms, signed, standby if n == 0 else None)
        for n, share in enumerate(theirs)
    ]
    results: list[DistributionFile] = []
    failed: list[tuple[FileState, Failure]] = []
    store = _describe_here(describe, mine, algorithms, signed, store, results, failed)
    for worker, share in zip(started, theirs):
        described = worker.results(store)
        left = []
        for state in share:
            dist = described.get(state.path)
            if dist is not None and describes(dist, state):
                results.append(dist)
            else:
                left.append(state)
        store = _describe_here(describe, left, algorithms, signed, store, results, failed)
    return results, failed


def _describe_here(
    describe: Callable[[FileState, tuple[str, ...], bool], DistributionFile | None],
    states: Iterable[FileState],
    algorithms: tuple[str, ...],
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
            dist = describe(state, algorithms, state.path in signed)
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
