"""
Listing the package directories, here or in another process started with
the server (L{EarlyListing}): the same files either way, and nothing lost
between the early listing and the watches.
"""

import os
import sys
import time

import pytest_twisted
from twisted.internet import reactor, task

from tests.distributions import sdist_bytes, wheel_bytes, write
from twistedpypi.index import PackageIndex
from twistedpypi.listing import EarlyListing, link_roots, list_tree
from twistedpypi.watch import PackageWatcher


def fill(packages):
    write(packages, wheel_bytes("first", "1.0"))
    write(packages, sdist_bytes("first", "1.1"))
    (packages / "first-1.1.tar.gz.asc").write_bytes(b"signature")
    (packages / ".hidden-1.0.tar.gz").write_bytes(b"skipped")
    (packages / "sub").mkdir()
    write(packages / "sub", wheel_bytes("second", "2.0"))
    (packages / "outside").symlink_to("/")


def same(one, other):
    return (
        sorted((d, sorted(entries)) for d, entries in one.files),
        one.signed,
        sorted(one.directories),
        one.unreadable,
    ) == (
        sorted((d, sorted(entries)) for d, entries in other.files),
        other.signed,
        sorted(other.directories),
        other.unreadable,
    )


def test_another_process_lists_what_this_one_would(packages):
    fill(packages)
    directories = [str(packages)]
    roots = link_roots(directories, follow_symlinks=False)

    early = EarlyListing.start(directories, roots)
    listing = early.result()
    early.dismiss()

    assert listing is not None
    assert same(listing, list_tree(directories, roots))
    names = {name for _, entries in listing.files for name, _, _ in entries}
    assert names == {"first-1.0-py3-none-any.whl", "first-1.1.tar.gz", "second-2.0-py3-none-any.whl"}
    assert listing.signed == {str(packages / "first-1.1.tar.gz")}


def test_a_listing_process_that_fails_gives_no_listing(packages, monkeypatch):
    fill(packages)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    assert EarlyListing.start([str(packages)], [str(packages)]).result() is None


def test_a_listing_process_that_cannot_start_gives_no_listing(packages, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(packages / "no-such-python"))
    assert EarlyListing.start([str(packages)], [str(packages)]).result() is None


async def wait_for(condition, timeout):
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        await task.deferLater(reactor, 0.02)


@pytest_twisted.ensureDeferred
async def test_the_first_scan_uses_the_early_listing_then_finds_what_came_after_it(packages):
    fill(packages)
    directories = [str(packages)]
    early = EarlyListing.start(directories, link_roots(directories, False))
    assert early.result() is not None  # taken
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
