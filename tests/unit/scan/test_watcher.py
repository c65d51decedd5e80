"""
The watcher against a real directory and the real reactor: files copied in
are served within a second (with inotify; polling waits until a file has
been left alone for L{SETTLE_SECONDS}), removed ones disappear, half-written
ones never show.
"""

import os
import shutil

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.watcher import POLL_INTERVAL, SETTLE_SECONDS, PackageWatcher


@pytest.fixture(params=["inotify", "polling"])
def mode(request):
    return request.param


@pytest.fixture
def watcher(mode, packages):
    watcher = PackageWatcher(PackageIndex(), [str(packages)], use_inotify=mode == "inotify")
    yield watcher
    watcher.stopService()


@pytest.fixture
def new_file_within(mode):
    """Seconds within which a file copied in must be served."""
    return 1.0 if mode == "inotify" else SETTLE_SECONDS + 3 * POLL_INTERVAL


@pytest_twisted.ensureDeferred
async def test_initial_scan_then_new_and_removed_files_promptly(watcher, packages, tmp_path, new_file_within):
    write(packages, wheel_bytes("first", "1.0"))
    watcher.startService()
    await watcher.ready
    assert list(watcher.index.projects) == ["first"]

    outside = tmp_path / "outside"
    outside.mkdir()
    source = write(outside, sdist_bytes("second", "1.0"))
    shutil.copy(source, packages)
    await wait_for(lambda: watcher.index.project("second") is not None, timeout=new_file_within)

    os.remove(packages / "first-1.0-py3-none-any.whl")
    await wait_for(lambda: watcher.index.project("first") is None)


@pytest_twisted.ensureDeferred
async def test_new_subdirectories_are_watched(watcher, packages, new_file_within):
    watcher.startService()
    await watcher.ready
    (packages / "team" / "nested").mkdir(parents=True)
    write(packages / "team" / "nested", wheel_bytes("nested", "1.0"))
    await wait_for(lambda: watcher.index.project("nested") is not None, timeout=new_file_within)
    shutil.rmtree(packages / "team")
    await wait_for(lambda: watcher.index.project("nested") is None)


@pytest_twisted.ensureDeferred
async def test_a_half_written_file_is_never_served(watcher, packages, new_file_within):
    watcher.startService()
    await watcher.ready
    filename, data = wheel_bytes("slow", "1.0")
    stream = open(packages / filename, "wb")
    try:
        for offset in range(0, len(data), 64):
            stream.write(data[offset : offset + 64])
            stream.flush()
            await task.deferLater(reactor, 0.05)
            assert watcher.index.file(filename) is None
    finally:
        stream.close()
    await wait_for(lambda: watcher.index.file(filename) is not None, timeout=new_file_within + 1.0)
    assert watcher.index.file(filename).size == len(data)


@pytest_twisted.ensureDeferred
async def test_signatures_are_noticed(watcher, packages):
    path = write(packages, sdist_bytes("signed", "1.0"))
    watcher.startService()
    await watcher.ready
    with open(path + ".asc", "wb") as stream:
        stream.write(b"signature")
    await wait_for(lambda: watcher.index.files_by_path[path].signature)


def test_safety_net_rescans_are_spaced_by_what_they_cost(packages):
    from twisted.internet.task import Clock, LoopingCall

    from twistedpypi.scan import watcher as watch

    watcher = watch.PackageWatcher(PackageIndex(), [str(packages)], reactor=Clock())
    watcher._notifier = object()  # as when inotify announces changes
    watcher._loop = LoopingCall(lambda: None)
    watcher._pace(0.01)
    assert watcher._loop.interval == watch.RESCAN_INTERVAL
    watcher._pace(3.0)
    assert watcher._loop.interval == 3.0 * watch.RESCAN_BUDGET
    watcher._notifier = None  # polling keeps its pace
    watcher._loop.interval = watch.POLL_INTERVAL
    watcher._pace(3.0)
    assert watcher._loop.interval == watch.POLL_INTERVAL
