"""
Describing on more than one core: worker processes describe shares of a
large batch exactly as the server's own thread would, and a worker that
fails (or skips a file) costs time, never a file.
"""

import os
import sys

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.distributions import sdist_bytes, wheel_bytes, write
from twistedpypi.index.metadatastore import MetadataStore
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan import workers as describeworker
from twistedpypi.scan.describe import describe, scan
from twistedpypi.scan.listing import EarlyListing, link_roots
from twistedpypi.scan.watcher import PackageWatcher
from twistedpypi.scan.workers import DescribeWorker, shares


@pytest.mark.parametrize("count, workers", [(0, 1), (500, 2), (4000, 1), (5000, 1), (20000, 1), (20000, 3), (100001, 3)])
@pytest.mark.parametrize("ready", [0, 1])
def test_shares_cover_every_file_once_in_order_and_only_worthwhile_workers_start(count, workers, ready):
    states = list(range(count))
    split = shares(states, workers, ready)
    assert [s for share in split for s in share] == states
    assert 1 <= len(split) <= workers + 1
    mine, *theirs = split
    for n, share in enumerate(theirs):
        assert len(share) >= describeworker.MIN_SHARE
        # A running worker takes as many files as this process; one to
        # start, as many less as this process describes while it starts.
        cost = 0 if n < ready else describeworker.START_COST
        assert len(mine) - len(share) in range(cost - workers, cost + workers + 1)


def test_a_running_worker_is_given_a_share_one_to_start_would_not_be_worth():
    states = list(range(3 * describeworker.MIN_SHARE))
    assert len(shares(states, 1)) == 1
    assert [len(share) for share in shares(states, 1, ready=1)] == [len(states) // 2] * 2


def fill(packages):
    """A directory of wheels and sdists, one of them signed, one of them garbage."""
    for n in range(12):
        write(packages, wheel_bytes(f"proj{n % 4}", f"1.{n}", requires_python=">=3.8", summary=f"Project {n}"))
        write(packages, sdist_bytes(f"proj{n % 4}", f"1.{n}"))
    (packages / "proj0-1.0-py3-none-any.whl.asc").write_bytes(b"signature")
    (packages / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip at all")
    return scan([str(packages)], None)


def fields(dist, metadata):
    return (
        dist.filename, dist.directory, dist.dist, dist.size, dist.mtime_ns, dist.sha256_digest,
        dist.extra_digests, metadata, dist.metadata_digest, dist.requires_python, dist.display_name,
        dist.signature,
    )


def test_a_worker_describes_as_this_process_does(packages, tmp_path):
    found = fill(packages)
    states = sorted(found.files.values(), key=lambda s: s.path)
    algorithms = ("sha256", "md5")
    store = MetadataStore(str(tmp_path))
    described = DescribeWorker.start(states, algorithms, found.signed).results(store)
    assert len(described) == len(states)
    for state in states:
        here = describe(state, algorithms, state.path in found.signed)
        there = described[state.path]
        metadata = store.read(there.metadata) if there.metadata is not None else None
        assert fields(there, metadata) == fields(here, here.metadata)
    assert described[str(packages / "proj0-1.0-py3-none-any.whl")].signature
    assert not [name for name in os.listdir(tmp_path) if name.startswith("twistedpypi-describe-")]


def test_a_worker_that_cannot_run_gives_nothing_and_leaves_nothing(packages, monkeypatch):
    found = fill(packages)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    worker = DescribeWorker.start(list(found.files.values()), ("sha256",), found.signed)
    assert len(worker.results(None)) == 0
    assert not os.path.exists(worker._directory)


def test_a_worker_without_a_temporary_directory_gives_nothing(packages, monkeypatch, tmp_path):
    found = fill(packages)
    monkeypatch.setattr(describeworker.tempfile, "tempdir", str(tmp_path / "missing"))
    assert len(DescribeWorker.start(list(found.files.values()), ("sha256",), found.signed).results(None)) == 0


async def index_with(packages, workers, early_listing=None):
    index = PackageIndex()
    watcher = PackageWatcher(
        index, [str(packages)], use_inotify=False, describe_workers=workers, early_listing=early_listing
    )
    watcher.startService()
    await watcher.ready
    await (watcher.stopService() or watcher.ready)
    return {path: fields(dist, index.metadata_of(dist)) for path, dist in index.files_by_path.items()}


@pytest.fixture
def small_shares(monkeypatch):
    """Workers worth starting for a handful of files."""
    monkeypatch.setattr(describeworker, "START_COST", 2)
    monkeypatch.setattr(describeworker, "MIN_SHARE", 1)


@pytest_twisted.ensureDeferred
async def test_an_index_built_with_workers_is_the_one_built_without(packages, small_shares):
    fill(packages)
    alone = await index_with(packages, 0)
    assert len(alone) == 25
    assert await index_with(packages, 2) == alone


@pytest_twisted.ensureDeferred
async def test_files_a_failed_worker_leaves_are_described_here(packages, small_shares, monkeypatch):
    fill(packages)
    alone = await index_with(packages, 0)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    assert await index_with(packages, 3) == alone


def early_listing(packages):
    return EarlyListing.start([str(packages)], link_roots([str(packages)], False))


@pytest_twisted.ensureDeferred
async def test_the_listing_process_stands_by_as_the_first_worker(packages, small_shares, monkeypatch):
    fill(packages)
    alone = await index_with(packages, 0)
    exits = []
    describe = EarlyListing.describe

    def describing(self, arguments):
        process = describe(self, arguments)
        exits.append(process.wait())
        return process

    monkeypatch.setattr(EarlyListing, "describe", describing)
    assert await index_with(packages, 1, early_listing(packages)) == alone
    assert exits == [0]


@pytest_twisted.ensureDeferred
async def test_files_a_failed_listing_process_leaves_are_described_here(packages, small_shares, monkeypatch):
    fill(packages)
    alone = await index_with(packages, 0)
    describe = EarlyListing.describe

    def dying(self, arguments):
        self._process.kill()
        self._process.wait()
        return describe(self, arguments)

    monkeypatch.setattr(EarlyListing, "describe", dying)
    assert await index_with(packages, 1, early_listing(packages)) == alone


@pytest_twisted.ensureDeferred
async def test_a_listing_process_with_nothing_to_describe_ends(packages, small_shares):
    write(packages, wheel_bytes("proj", "1.0"))
    cache = str(packages.parent / "cache")
    first = PackageWatcher(PackageIndex(), [str(packages)], use_inotify=False, cache_path=cache)
    first.startService()
    await first.ready
    await first.stopService()
    early = early_listing(packages)
    process = early._process
    watcher = PackageWatcher(
        PackageIndex(), [str(packages)], use_inotify=False, cache_path=cache, early_listing=early
    )
    watcher.startService()
    await watcher.ready
    await watcher.stopService()
    assert watcher.index.project("proj") is not None
    assert await deferToThread(process.wait, 10) == 0


@pytest_twisted.ensureDeferred
async def test_a_listing_process_started_before_twistd_became_a_daemon_is_not_waited_for(
    packages, small_shares, monkeypatch
):
    fill(packages)
    alone = await index_with(packages, 0)
    early = early_listing(packages)
    process = early._process
    given = []
    monkeypatch.setattr(EarlyListing, "describe", lambda self, arguments: given.append(arguments))
    # The daemon twistd forks into cannot wait for its parent's children.
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)
    assert await index_with(packages, 1, early) == alone
    assert given == []
    monkeypatch.undo()
    assert await deferToThread(process.wait, 10) == 0
