"""
What to change in the index so that it says what a look at the disk found:
the files to describe (or take from the description cache), the paths to
remove, the signatures that came or went, and the yanks and project
statuses their marker files set (L{plan_markers}).

Pure: no I/O and no reactor; the clocks' readings are given.  The watcher
runs these functions in a thread, under the lock that keeps the index still
while they read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

from twistedpypi.index.distfile import normalize_name
from twistedpypi.index.markers import (
    ACTIVE_STATUS,
    STATUS_SUFFIX,
    YANKED_SUFFIX,
    ProjectStatus,
    parse_status,
    status_project,
    yank_reason,
)
from twistedpypi.index.model import DistributionFile, FilesByPath
from twistedpypi.scan.describe import FileState, ScanResult, describes

SETTLE_SECONDS = 2.0
"""A file modified more recently than this is left to the events to announce."""

Unsettled = Mapping[str, tuple[FileState, float]]
"""
Files a settling scan found modified within L{SETTLE_SECONDS}: each as it
was first seen unchanged, and when (a monotonic time, in seconds).
"""


@dataclass(slots=True)
class Plan:
    """
    What is to change in the index.

    @ivar changed: files new, or changed since the index described them:
        each to describe, or to take from the description cache (see
        L{reuse_cached}).
    @ivar gone: paths to remove.
    @ivar signatures: files whose detached signature came (L{True}) or
        went (L{False}).
    @ivar unsettled: the files still settling, for the next settling plan
        (empty when this one did not settle).
    @ivar undescribable: the files that could not be described and have not
        changed since, still worth skipping.
    """

    changed: list[FileState | DistributionFile] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    signatures: dict[str, bool] = field(default_factory=dict)
    unsettled: dict[str, tuple[FileState, float]] = field(default_factory=dict)
    undescribable: dict[str, FileState] = field(default_factory=dict)


def plan_changes(
    indexed: FilesByPath,
    found: ScanResult,
    *,
    scope: Sequence[str] | None,
    settle: bool,
    now_ns: int,
    now: float,
    removed: Iterable[str] = (),
    newer: set[str] | None = None,
    removed_below: Sequence[str] = (),
    unsettled: Unsettled | None = None,
    undescribable: dict[str, FileState] | None = None,
) -> Plan:
    """
    Work out how to bring C{indexed} in line with C{found}.

    @param indexed: what the index holds, by path.
    @param scope: the directories C{found} covers completely: indexed files
        below them that C{found} lacks are gone.  L{None} means everything;
        an empty list means nothing is gone but C{removed} and
        C{removed_below}.
    @param settle: leave out files modified within L{SETTLE_SECONDS} of
        C{now_ns} until C{unsettled} has had them unchanged that long: they
        may still be being written.  (A file dated in the future counts
        once it has been seen unchanged that long.)
    @param now_ns: the wall clock, in nanoseconds (files' times are on it).
    @param now: a monotonic clock, in seconds (C{unsettled}'s times are on it).
    @param removed: paths known to be gone.
    @param newer: paths (files, or directories with everything below)
        changed since C{found} was made: left as they are.
    @param removed_below: directories (ending in a separator) known to be
        gone with everything below them.
    @param unsettled: what the last settling plan left settling.
    @param undescribable: files that could not be described, as they were
        then: skipped while unchanged.
    """
    unsettled = unsettled or {}
    undescribable = undescribable or {}
    plan = Plan(undescribable=undescribable)
    still_settling = plan.unsettled
    known = indexed.get if len(indexed) else _nothing
    for path, state in found.files.items():
        if newer and is_under(path, newer):
            continue
        dist = known(path)
        if dist is not None and (dist.size, dist.mtime_ns) == (state.size, state.mtime_ns):
            if dist.signature != (path in found.signed):
                plan.signatures[path] = path in found.signed
            continue
        if undescribable.get(path) == state:
            continue
        if settle and now_ns - state.mtime_ns < SETTLE_SECONDS * 1e9:
            # Unchanged in two scans is not enough: a copy can pause for
            # longer than the scans' interval.
            seen = unsettled.get(path)
            if seen is None or seen[0] != state:
                seen = (state, now)
            still_settling[path] = seen
            if now - seen[1] < SETTLE_SECONDS:
                continue
        plan.changed.append(state)
    gone = list(removed)
    if removed_below:
        gone += [p for p in indexed if p.startswith(tuple(removed_below))]
    if scope is None:
        plan.undescribable = {p: state for p, state in undescribable.items() if p in found.files}
        gone += [p for p in indexed if p not in found.files]
    elif scope:
        prefixes = tuple(d.rstrip(os.sep) + os.sep for d in scope)
        gone += [p for p in indexed if p.startswith(prefixes) and p not in found.files]
    if newer:
        gone = [p for p in gone if not is_under(p, newer)]
    if found.unreadable:
        # Unknown is not gone: a directory that cannot be read for a moment
        # must not empty the index (and send pip elsewhere).
        unknown = tuple(d.rstrip(os.sep) + os.sep for d in found.unreadable)
        gone = [p for p in gone if not p.startswith(unknown)]
    plan.gone = gone
    return plan


@dataclass(slots=True)
class CacheSplit:
    """
    Changed files, sorted by what the description cache knows of them.

    @ivar reused: descriptions the cache holds, unchanged since.
    @ivar fresh: files to describe.
    @ivar stale: paths whose cached description is of no use: the file
        changed since, or it lacks a digest now wanted.
    """

    reused: list[DistributionFile] = field(default_factory=list)
    fresh: list[FileState | DistributionFile] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def reuse_cached(
    states: Iterable[FileState | DistributionFile],
    cached: FilesByPath,
    extra_algorithms: Sequence[str],
    signed: set[str],
) -> CacheSplit:
    """
    Split files into those C{cached} describes, unchanged since, and those
    to describe.  (A scan given the cached files gives a file unchanged
    since as its cached description.)

    @param extra_algorithms: the digests wanted besides SHA-256: a cached
        description lacking one is of no use.
    @param signed: paths of files with a detached signature beside them.
    """
    split = CacheSplit()
    for state in states:
        if type(state) is DistributionFile:
            dist = state
        else:
            dist = cached.get(state.path)
            if dist is None:
                split.fresh.append(state)
                continue
            if not describes(dist, state):
                split.stale.append(state.path)
                split.fresh.append(state)
                continue
        if extra_algorithms and not all(name in dict(dist.extra_digests) for name in extra_algorithms):
            split.stale.append(dist.path)
            split.fresh.append(state)
            continue
        signature = bool(signed) and state.path in signed
        split.reused.append(dist if dist.signature == signature else replace(dist, signature=signature))
    return split


def is_under(path: str, paths: set[str]) -> bool:
    """Whether C{path} or a directory above it is one of C{paths}."""
    while path not in paths:
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return True


def _nothing(_path: str) -> None:
    """What an empty index holds at any path."""
    return None


@dataclass(slots=True)
class MarkerChanges:
    """
    The yanks and project statuses to change in the index (see
    L{twistedpypi.index.model.PackageIndex.mark}).

    @ivar yanks: reasons by the yanked file's path; L{None} unyanks.
    @ivar statuses: statuses by normalised project name; L{None} makes
        the project active.
    """

    yanks: dict[str, str | None] = field(default_factory=dict)
    statuses: dict[str, ProjectStatus | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.yanks or self.statuses)


def plan_markers(
    yanks: Mapping[str, str],
    statuses: Mapping[str, ProjectStatus],
    markers: Mapping[str, bytes | None],
    complete: bool,
    newer: set[str] | None = None,
) -> MarkerChanges:
    """
    What marker files found on disk change in the index.

    @param yanks: the index's yanks, by file path.
    @param statuses: the index's statuses other than active, by project.
    @param markers: marker files by path, with their contents, or L{None}
        for one that is gone.
    @param complete: whether C{markers} are every marker there is (a full
        scan's): the index's others are then gone.
    @param newer: paths changed by events since C{markers} were read: left
        as they are.
    """
    changes = MarkerChanges()
    found_yanks: set[str] = set()
    found_statuses: set[str] = set()
    for path, content in markers.items():
        name = os.path.basename(path)
        if name.endswith(YANKED_SUFFIX):
            target = path[: -len(YANKED_SUFFIX)]
            found_yanks.add(target)
            reason = None if content is None else yank_reason(content)
            if yanks.get(target) != reason:
                changes.yanks[target] = reason
            continue
        project = status_project(name)
        if project is None:
            continue
        project = normalize_name(project)
        # A file that names no status counts as none: the project is active.
        status = None if content is None else parse_status(content)
        if status is not None and status == ACTIVE_STATUS:
            status = None
        if content is not None:
            found_statuses.add(project)
        if statuses.get(project) != status:
            changes.statuses[project] = status
    if complete:
        newer = newer or set()
        for path in yanks:
            if path not in found_yanks and path + YANKED_SUFFIX not in newer:
                changes.yanks[path] = None
        newer_names = {os.path.basename(path) for path in newer}
        for project in statuses:
            if project not in found_statuses and project + STATUS_SUFFIX not in newer_names:
                changes.statuses[project] = None
    return changes
