"""
The watcher's plan: what to change in the index so that it says what a look
at the disk found.  Pure functions, tested without a reactor or a disk.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from twistedpypi.index.distfile import parse_filename
from twistedpypi.index.model import DistributionFile, FilesByPath
from twistedpypi.scan.describe import FileState, ScanResult
from twistedpypi.scan.plan import SETTLE_SECONDS, plan_changes, reuse_cached

NOW_NS = 1_700_000_000 * 10**9
"""The wall clock in these tests."""

LONG_AGO_NS = NOW_NS - 3600 * 10**9
"""When the files of these tests were last modified, unless said otherwise."""

DIRECTORIES = ["/packages", "/packages/team", "/packages/other"]


def state(path: str, size: int = 100, mtime_ns: int = LONG_AGO_NS) -> FileState:
    """A distribution file as a scan finds it."""
    dist = parse_filename(path.rsplit("/", 1)[1])
    assert dist is not None
    return FileState(path, dist, size, mtime_ns)


def described(found: FileState, signature: bool = False, extra: tuple = ()) -> DistributionFile:
    """C{found} as the index (or the description cache) describes it."""
    directory, filename = found.path.rsplit("/", 1)
    return DistributionFile(
        filename=filename,
        directory=directory,
        dist=found.dist,
        size=found.size,
        mtime_ns=found.mtime_ns,
        sha256_digest=b"\0" * 32,
        extra_digests=extra,
        signature=signature,
    )


def indexed(*files: DistributionFile) -> FilesByPath:
    held = FilesByPath()
    for dist in files:
        held.add(dist)
    return held


def found(*states: FileState, signed=(), unreadable=None) -> ScanResult:
    return ScanResult({s.path: s for s in states}, set(signed), list(DIRECTORIES), dict(unreadable or {}))


def plan(held: FilesByPath, scanned: ScanResult, **options):
    options.setdefault("scope", None)
    options.setdefault("settle", False)
    options.setdefault("now_ns", NOW_NS)
    options.setdefault("now", 1000.0)
    return plan_changes(held, scanned, **options)


# A tree: each file's directory, project, size and whether it is signed.
files = st.dictionaries(
    st.tuples(st.sampled_from(DIRECTORIES), st.sampled_from(["alpha", "beta", "gamma", "delta"]), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.booleans()),
    max_size=12,
)


def tree(chosen: dict) -> tuple[list[FileState], set[str]]:
    states, signed = [], set()
    for (directory, project, version), (size, is_signed) in chosen.items():
        s = state(f"{directory}/{project}-{version}.0.tar.gz", size=size)
        states.append(s)
        if is_signed:
            signed.add(s.path)
    return states, signed


@given(files)
def test_a_tree_the_index_already_holds_changes_nothing(chosen):
    states, signed = tree(chosen)
    held = indexed(*(described(s, signature=s.path in signed) for s in states))
    result = plan(held, found(*states, signed=signed))
    assert (result.changed, result.gone, result.signatures) == ([], [], {})


@given(files, files)
def test_a_full_scan_adds_what_is_new_or_changed_and_removes_what_is_missing(before, after):
    old, _ = tree(before)
    new, _ = tree(after)
    held = indexed(*(described(s) for s in old))
    result = plan(held, found(*new))
    old_by_path = {s.path: s for s in old}
    assert sorted(s.path for s in result.changed) == sorted(
        s.path for s in new if old_by_path.get(s.path) != s
    )
    assert sorted(result.gone) == sorted(set(old_by_path) - {s.path for s in new})


@given(files, files, st.sampled_from(DIRECTORIES[1:]))
def test_what_changed_since_the_scan_is_left_alone(before, after, newer):
    old, _ = tree(before)
    new, _ = tree(after)
    result = plan(indexed(*(described(s) for s in old)), found(*new), newer={newer})
    touched = [s.path for s in result.changed] + result.gone
    assert not [path for path in touched if path.startswith(newer + "/")]


@given(files, st.sampled_from(DIRECTORIES))
def test_nothing_below_an_unreadable_directory_is_removed(before, unreadable):
    old, _ = tree(before)
    result = plan(indexed(*(described(s) for s in old)), found(unreadable={unreadable: "Permission denied"}))
    assert not [path for path in result.gone if path.startswith(unreadable + "/")]


@given(files, files, st.sampled_from(DIRECTORIES))
def test_a_scan_of_one_directory_removes_only_below_it(before, after, directory):
    old, _ = tree(before)
    new, _ = tree(after)
    new = [s for s in new if s.path.startswith(directory + "/")]
    result = plan(indexed(*(described(s) for s in old)), found(*new), scope=[directory])
    assert all(path.startswith(directory + "/") for path in result.gone)


def test_a_look_at_some_paths_removes_only_what_it_is_told_is_gone():
    kept, removed = state("/packages/kept-1.0.tar.gz"), state("/packages/removed-1.0.tar.gz")
    below = state("/packages/team/below-1.0.tar.gz")
    held = indexed(described(kept), described(removed), described(below))
    result = plan(held, found(), scope=[], removed=[removed.path], removed_below=["/packages/team/"])
    assert sorted(result.gone) == [removed.path, below.path]


def test_a_signature_that_came_or_went_is_planned_without_describing_the_file():
    came, went = state("/packages/came-1.0.tar.gz"), state("/packages/went-1.0.tar.gz")
    held = indexed(described(came), described(went, signature=True))
    result = plan(held, found(came, went, signed={came.path}))
    assert result.changed == []
    assert result.signatures == {came.path: True, went.path: False}


def test_a_settling_scan_waits_until_a_fresh_file_has_been_left_alone_long_enough():
    fresh = state("/packages/fresh-1.0.tar.gz", mtime_ns=NOW_NS - 10**8)
    first = plan(FilesByPath(), found(fresh), settle=True, now=1000.0)
    assert first.changed == []
    assert first.unsettled == {fresh.path: (fresh, 1000.0)}
    # Seen unchanged, but not for long enough yet.
    soon = plan(FilesByPath(), found(fresh), settle=True, now=1001.0, unsettled=first.unsettled)
    assert soon.changed == []
    later = plan(
        FilesByPath(), found(fresh), settle=True, now=1000.0 + SETTLE_SECONDS, unsettled=soon.unsettled
    )
    assert later.changed == [fresh]


def test_a_file_that_changed_while_settling_starts_settling_again():
    fresh = state("/packages/fresh-1.0.tar.gz", mtime_ns=NOW_NS - 10**8)
    grown = replace(fresh, size=fresh.size + 1)
    first = plan(FilesByPath(), found(fresh), settle=True, now=1000.0)
    later = plan(
        FilesByPath(), found(grown), settle=True, now=1000.0 + SETTLE_SECONDS, unsettled=first.unsettled
    )
    assert later.changed == []
    assert later.unsettled == {grown.path: (grown, 1000.0 + SETTLE_SECONDS)}


def test_a_file_dated_in_the_future_counts_once_left_alone_long_enough():
    future = state("/packages/future-1.0.tar.gz", mtime_ns=NOW_NS + 3600 * 10**9)
    first = plan(FilesByPath(), found(future), settle=True, now=1000.0)
    later = plan(
        FilesByPath(), found(future), settle=True, now=1000.0 + SETTLE_SECONDS, unsettled=first.unsettled
    )
    assert (first.changed, later.changed) == ([], [future])


def test_without_settling_a_fresh_file_is_planned_at_once():
    fresh = state("/packages/fresh-1.0.tar.gz", mtime_ns=NOW_NS)
    assert plan(FilesByPath(), found(fresh)).changed == [fresh]


def test_a_file_that_could_not_be_described_is_skipped_until_it_changes_and_forgotten_once_gone():
    bad = state("/packages/bad-1.0.tar.gz")
    other = state("/packages/other-1.0.tar.gz")
    undescribable = {bad.path: bad, other.path: other}
    result = plan(FilesByPath(), found(bad), undescribable=undescribable)
    assert result.changed == []
    assert result.undescribable == {bad.path: bad}
    changed = replace(bad, size=bad.size + 1)
    assert plan(FilesByPath(), found(changed), undescribable=undescribable).changed == [changed]


@given(files)
def test_the_description_cache_answers_for_exactly_the_files_it_describes_unchanged(chosen):
    states, signed = tree(chosen)
    cached = FilesByPath()
    expected_reused, expected_stale = [], []
    for n, s in enumerate(states):
        kind = n % 4
        if kind == 0:  # described unchanged, with every digest wanted
            cached.add(described(s, extra=(("md5", b"m"),)))
            expected_reused.append(s.path)
        elif kind == 1:  # changed since
            cached.add(described(replace(s, size=s.size + 10), extra=(("md5", b"m"),)))
            expected_stale.append(s.path)
        elif kind == 2:  # lacks a digest now wanted
            cached.add(described(s))
            expected_stale.append(s.path)
        # else not in the cache at all
    split = reuse_cached(states, cached, ("md5",), signed)
    assert [d.path for d in split.reused] == expected_reused
    assert sorted(split.stale) == sorted(expected_stale)
    assert sorted([d.path for d in split.reused] + [s.path for s in split.fresh]) == sorted(s.path for s in states)
    assert all(d.signature == (d.path in signed) for d in split.reused)


def test_a_description_the_scan_gave_is_reused_as_it_is():
    s = state("/packages/known-1.0.tar.gz")
    dist = described(s)
    split = reuse_cached([dist], FilesByPath(), (), set())
    assert split.reused == [dist]
    assert split.reused[0] is dist
