"""
Listing the package directories, here or in another process started with
the server (L{EarlyListing}): the same files either way, and nothing lost
between the early listing and the watches.
"""

import os
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.listing import (
    PART_ENTRIES,
    EarlyListing,
    ListingLost,
    link_roots,
    list_tree,
)
from twistedpypi.scan.watcher import PackageWatcher


def fill(packages):
    write(packages, wheel_bytes("first", "1.0"))
    write(packages, sdist_bytes("first", "1.1"))
    (packages / "first-1.1.tar.gz.asc").write_bytes(b"signature")
    (packages / ".hidden-1.0.tar.gz").write_bytes(b"skipped")
    (packages / "sub").mkdir()
    write(packages / "sub", wheel_bytes("second", "2.0"))
    (packages / "outside").symlink_to("/")


def taken(listing):
    """Everything in C{listing}, its files consumed in parts."""
    parts = list(listing.files)
    files = sorted((d, entry) for d, entries in parts for entry in entries)
    return files, listing.signed, sorted(listing.directories), listing.unreadable, parts


def test_another_process_lists_what_this_one_would(packages):
    fill(packages)
    many = packages / "many"  # more files than one part of a listing holds
    many.mkdir()
    for n in range(2 * PART_ENTRIES + 1):
        (many / f"many-{n}.tar.gz").write_bytes(b"")
    directories = [str(packages)]
    roots = link_roots(directories, follow_symlinks=False)

    early = EarlyListing.start(directories, roots)
    *there, parts = taken(early.result())
    early.dismiss()

    *here, _ = taken(list_tree(directories, roots))
    assert there == here
    files, signed, _, _ = there
    assert {name for _, (name, _, _) in files} - {f"many-{n}.tar.gz" for n in range(2 * PART_ENTRIES + 1)} == {
        "first-1.0-py3-none-any.whl", "first-1.1.tar.gz", "second-2.0-py3-none-any.whl"
    }
    assert signed == {str(packages / "first-1.1.tar.gz")}
    assert max(len(entries) for _, entries in parts) == PART_ENTRIES


def test_a_listing_process_that_fails_gives_no_listing(packages, tmp_path, monkeypatch):
    fill(packages)
    # It takes what it is sent, then fails without listing: reading after
    # the send, it cannot be gone before the send (as /bin/false could be).
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/sh\nhead -c 1 >/dev/null\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(failing))
    with pytest.raises(ListingLost):
        taken(EarlyListing.start([str(packages)], [str(packages)]).result())


def test_a_listing_process_that_cannot_start_gives_no_listing(packages, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(packages / "no-such-python"))
    assert EarlyListing.start([str(packages)], [str(packages)]).result() is None


class ListedBefore:
    """An early listing taken at once (before the test goes on), handed over later."""

    def __init__(self, early):
        self.early = early
        listing = early.result()
        self.parts = list(listing.files)
        self.listing = listing

    def result(self):
        self.listing.files = iter(self.parts)
        return self.listing

    def standing_by(self):
        return False

    def dismiss(self):
        self.early.dismiss()


@pytest_twisted.ensureDeferred
async def test_the_first_scan_uses_the_early_listing_then_finds_what_came_after_it(packages):
    fill(packages)
    directories = [str(packages)]
    early = ListedBefore(EarlyListing.start(directories, link_roots(directories, False)))
    # Copied in before the watcher starts watching, so with no event.
    late = write(packages, wheel_bytes("late", "1.0"))
    os.utime(late, (time.time() - 60, time.time() - 60))  # and settled
    watcher = PackageWatcher(PackageIndex(), directories, early_listing=early)
    watcher.startService()
    try:
        await watcher.ready
        assert sorted(watcher.index.projects) == ["first", "second"]
        await wait_for(lambda: watcher.index.project("late") is not None, timeout=5)
    finally:
        await watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_failed_early_listing_is_replaced_by_a_scan_here(packages, monkeypatch):
    fill(packages)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    early = EarlyListing.start([str(packages)], [str(packages)])
    watcher = PackageWatcher(PackageIndex(), [str(packages)], early_listing=early)
    watcher.startService()
    try:
        await watcher.ready
        assert sorted(watcher.index.projects) == ["first", "second"]
    finally:
        await watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_no_rescan_follows_an_early_listing_when_no_directory_changed_since(packages, monkeypatch):
    fill(packages)
    directories = [str(packages)]
    long_ago = time.time() - 10
    for directory in (packages, packages / "sub"):
        os.utime(directory, (long_ago, long_ago))
    rescans = []
    rescan = PackageWatcher.rescan
    monkeypatch.setattr(PackageWatcher, "rescan", lambda self: rescans.append(1) or rescan(self))
    watcher = PackageWatcher(
        PackageIndex(), directories, early_listing=EarlyListing.start(directories, link_roots(directories, False))
    )
    watcher.startService()
    try:
        await watcher.ready
        await task.deferLater(reactor, 0.2)
        assert sorted(watcher.index.projects) == ["first", "second"]
        assert rescans == []
    finally:
        await watcher.stopService()
