"""
The watcher when things go wrong or race: a file that cannot be described,
a first scan that fails, a rescan racing an event, links made into a
watched directory, slow copies seen by polling.
"""

import os
import struct
import threading
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads

import twistedpypi.scan.describe as storage
import twistedpypi.scan.listing as listing
import twistedpypi.scan.notify as notify
import twistedpypi.scan.watcher as watch
from tests.distributions import wheel_bytes, write
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.watcher import PackageWatcher


@pytest.fixture
def started():
    """Start watchers; stopped after the test."""
    watchers = []

    def start(*args, **kwargs):
        watcher = PackageWatcher(PackageIndex(), *args, **kwargs)
        watchers.append(watcher)
        watcher.startService()
        return watcher

    yield start
    for watcher in watchers:
        watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_file_that_cannot_be_described_is_logged_and_the_others_are_served(packages, started, logged):
    write(packages, wheel_bytes("good", "1.0"))
    bad = write(packages, wheel_bytes("bad", "1.0"))

    def describe(state, *args):
        if state.path == bad:
            raise ValueError("a bug met by a strange file")
        return storage.describe(state, *args)

    watcher = started([str(packages)], describe=describe)
    await watcher.ready
    assert sorted(watcher.index.projects) == ["good"]
    assert any(f"cannot describe {bad}" in line for line in logged)


@pytest_twisted.ensureDeferred
async def test_a_failing_first_scan_is_logged_and_requests_are_answered_then_it_recovers(
    packages, started, logged
):
    write(packages, wheel_bytes("late", "1.0"))
    fixed = threading.Event()

    def scan(*args):
        if not fixed.is_set():
            raise RuntimeError("scan is broken")
        return storage.scan(*args)

    watcher = started([str(packages)], use_inotify=False, scan=scan)
    await wait_for(lambda: watcher.is_ready, timeout=3)
    assert watcher.ready.called
    assert any("the first scan of the package directories failed" in line for line in logged)
    # The safety-net rescans keep going, and fill the index once scans work.
    await task.deferLater(reactor, 2 * watch.POLL_INTERVAL)
    fixed.set()
    await wait_for(lambda: watcher.index.project("late") is not None, timeout=5)


@pytest_twisted.ensureDeferred
async def test_a_rescan_does_not_undo_what_events_did_while_it_scanned(packages, started):
    old = write(packages, wheel_bytes("old", "1.0"))
    os.utime(old, (1_600_000_000, 1_600_000_000))
    slow, scanned, go_on = threading.Event(), threading.Event(), threading.Event()

    def scan(*args):
        result = storage.scan(*args)
        if slow.is_set():
            scanned.set()
            go_on.wait(10)  # a big tree takes a while to walk
        return result

    watcher = started([str(packages)], scan=scan)
    await watcher.ready
    slow.set()
    rescanning = watcher.rescan()
    try:
        await wait_for(scanned.is_set, timeout=5)
        # Meanwhile a file is copied in and another removed, and the
        # events (or an upload) bring the index up to date.
        new = write(packages, wheel_bytes("new", "1.0"))
        os.remove(old)
        await watcher.refresh([new, old])
        assert sorted(watcher.index.projects) == ["new"]
    finally:
        go_on.set()
    await rescanning
    # The rescan's older picture of the directory does not win.
    assert sorted(watcher.index.projects) == ["new"]


@pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")
@pytest_twisted.ensureDeferred
async def test_hard_and_symbolic_links_made_into_a_watched_directory_are_served_within_a_second(
    packages, started, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    hard = write(outside, wheel_bytes("hard", "1.0"))
    soft = write(outside, wheel_bytes("soft", "1.0"))
    watcher = started([str(packages)], follow_symlinks=True)
    await watcher.ready
    os.link(hard, packages / os.path.basename(hard))
    os.symlink(soft, packages / os.path.basename(soft))
    await wait_for(lambda: sorted(watcher.index.projects) == ["hard", "soft"], timeout=1)


@pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")
@pytest_twisted.ensureDeferred
async def test_a_file_being_created_still_waits_for_its_close(packages, started):
    watcher = started([str(packages)])
    await watcher.ready
    filename, data = wheel_bytes("slow", "1.0")
    with open(packages / filename, "wb") as stream:
        stream.write(data[:100])
        stream.flush()
        await task.deferLater(reactor, 0.3)
        assert watcher.index.file(filename) is None
        stream.write(data[100:])
    await wait_for(lambda: watcher.index.file(filename) is not None)


@pytest_twisted.ensureDeferred
async def test_polling_describes_a_copy_that_paused_longer_than_the_looks_interval_again(packages, started):
    watcher = started([str(packages)], use_inotify=False)
    await watcher.ready
    filename, data = wheel_bytes("slow", "1.0")
    with open(packages / filename, "wb") as stream:
        stream.write(data[:200])
        stream.flush()
        # Several looks see it unchanged (and may take it: nothing tells it
        # from a complete file); it is still not complete.
        await task.deferLater(reactor, 3 * watch.POLL_INTERVAL)
        stream.write(data[200:])

    def complete():
        described = watcher.index.file(filename)
        return described is not None and described.size == len(data)

    await wait_for(complete, timeout=watch.SETTLE_SECONDS + 2)


@pytest_twisted.ensureDeferred
async def test_polling_serves_a_file_dated_in_the_future_once_it_has_been_left_alone(packages, started):
    watcher = started([str(packages)], use_inotify=False)
    await watcher.ready
    path = write(packages, wheel_bytes("future", "1.0"))
    later = time.time() + 3600
    os.utime(path, (later, later))
    await wait_for(lambda: watcher.index.project("future") is not None, timeout=watch.SETTLE_SECONDS + 2)


@pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")
@pytest_twisted.ensureDeferred
async def test_an_inotify_queue_overflow_scans_at_once(packages, started, monkeypatch, tmp_path, logged):
    # Events for this file are lost, as when the kernel's queue overflows.
    seen = notify.Notifier._on_event

    def lossy(self, watch_, filepath, mask):
        if not filepath.basename().startswith(b"lost"):
            seen(self, watch_, filepath, mask)

    monkeypatch.setattr(notify.Notifier, "_on_event", lossy)
    watcher = started([str(packages)])
    await watcher.ready
    outside = tmp_path / "outside"
    outside.mkdir()
    lost = write(outside, wheel_bytes("lost", "1.0"))
    os.utime(lost, (1_600_000_000, 1_600_000_000))
    os.rename(lost, packages / os.path.basename(lost))
    await task.deferLater(reactor, 0.2)
    assert watcher.index.project("lost") is None
    # The kernel says so with an event for no watch (wd -1).
    watcher._notifier._reader._doRead(struct.pack("=iIII", -1, notify.inotify.IN_Q_OVERFLOW, 0, 0))
    await wait_for(lambda: watcher.index.project("lost") is not None, timeout=1)
    assert any("overflow" in line for line in logged)


async def rescan_after(packages, started, change):
    """
    Start a watcher under inotify on a directory with one wheel; once it is
    ready, call C{change}, write a second wheel, and rescan as the safety
    net does.  The watcher, what the rescan found, and the wheels' paths.
    """
    first = write(packages, wheel_bytes("first", "1.0"))
    watcher = started([str(packages)])
    await watcher.ready
    change()
    second = write(packages, wheel_bytes("second", "1.0"))
    found = await threads.deferToThread(watcher._scan_again, elsewhere=True)
    return watcher, sorted(found.files), sorted([first, second])


@pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")
@pytest_twisted.ensureDeferred
async def test_a_safety_net_rescan_lists_the_directories_in_another_process(packages, started, monkeypatch):
    def listed_here(*args):
        raise AssertionError("the server listed the directories itself")

    # Its stat calls would contend with the reactor for the GIL.
    watcher, found, written = await rescan_after(
        packages, started, lambda: monkeypatch.setattr(storage, "list_tree", listed_here)
    )
    assert found == written
    await watcher.rescan()


@pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")
@pytest_twisted.ensureDeferred
async def test_a_rescan_lists_here_when_no_process_can_start(packages, started, monkeypatch):
    attempts = []

    def cannot_start(*args, **kwargs):
        attempts.append(args)
        raise OSError("no more processes")

    _, found, written = await rescan_after(
        packages, started, lambda: monkeypatch.setattr(listing, "start_module", cannot_start)
    )
    assert len(attempts) == 1
    assert found == written
