"""
The watcher in poll mode (C{--watch poll}, for shared storage) against real
directories and the real reactor: what another host would write, as this
one sees it, only by looking.
"""

import hashlib
import os

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.plan import SETTLE_SECONDS
from twistedpypi.scan.watcher import PackageWatcher

INTERVAL = 0.2


@pytest.fixture
def watcher(packages):
    watcher = PackageWatcher(PackageIndex(), [str(packages)], use_inotify=False, poll_interval=INTERVAL)
    yield watcher
    watcher.stopService()


async def started(watcher):
    watcher.startService()
    await watcher.ready
    return watcher


def upload_like(directory, filename_and_bytes):
    """Store a file as an upload does: written under a hidden name, then linked."""
    filename, data = filename_and_bytes
    hidden = os.path.join(directory, f".upload-{filename}")
    with open(hidden, "wb") as stream:
        stream.write(data)
    os.link(hidden, os.path.join(directory, filename))
    os.unlink(hidden)
    return os.path.join(directory, filename)


@pytest_twisted.ensureDeferred
async def test_a_linked_file_is_indexed_within_two_looks_and_the_mode_is_logged(watcher, packages, logged):
    await started(watcher)
    assert any("polling every 0.2s" in line for line in logged)
    upload_like(packages, wheel_bytes("linked", "1.0"))
    took = await wait_for(lambda: watcher.index.project("linked") is not None, timeout=3 * INTERVAL + 0.5)
    assert took < SETTLE_SECONDS


@pytest_twisted.ensureDeferred
async def test_an_old_file_copied_in_is_indexed_and_a_removed_one_removed(watcher, packages, tmp_path):
    kept = write(packages, wheel_bytes("kept", "1.0"))
    await started(watcher)
    outside = tmp_path / "outside"
    outside.mkdir()
    old = write(outside, sdist_bytes("old", "1.0"))
    os.utime(old, (1_600_000_000, 1_600_000_000))
    os.rename(old, packages / os.path.basename(old))
    await wait_for(lambda: watcher.index.project("old") is not None, timeout=2 * INTERVAL + 0.5)
    os.remove(kept)
    await wait_for(lambda: watcher.index.project("kept") is None, timeout=2 * INTERVAL + 0.5)
    assert sorted(watcher.index.projects) == ["old"]


@pytest_twisted.ensureDeferred
async def test_a_file_replaced_under_its_name_is_described_again(watcher, packages, tmp_path):
    filename, first = wheel_bytes("replaced", "1.0")
    path = write(packages, (filename, first))
    await started(watcher)
    assert watcher.index.file(filename).sha256 == hashlib.sha256(first).hexdigest()
    # Another build of the same name, moved over it (as --overwrite does).
    _, second = wheel_bytes("replaced", "1.0", summary="a second build")
    assert second != first
    staged = tmp_path / filename
    staged.write_bytes(second)
    os.replace(staged, path)
    wanted = hashlib.sha256(second).hexdigest()
    await wait_for(lambda: watcher.index.file(filename).sha256 == wanted, timeout=3 * INTERVAL + 0.5)


@pytest_twisted.ensureDeferred
async def test_the_files_of_a_new_subdirectory_are_indexed_and_gone_with_it(watcher, packages, tmp_path):
    await started(watcher)
    staging = tmp_path / "team"
    (staging / "nested").mkdir(parents=True)
    write(staging / "nested", wheel_bytes("nested", "1.0"))
    os.utime(staging / "nested" / "nested-1.0-py3-none-any.whl", (1_600_000_000, 1_600_000_000))
    os.rename(staging, packages / "team")
    await wait_for(lambda: watcher.index.project("nested") is not None, timeout=2 * INTERVAL + 0.5)
    os.rename(packages / "team", tmp_path / "gone")
    await wait_for(lambda: watcher.index.project("nested") is None, timeout=2 * INTERVAL + 0.5)


@pytest_twisted.ensureDeferred
async def test_a_yank_marker_is_noticed(watcher, packages):
    path = write(packages, wheel_bytes("marked", "1.0"))
    await started(watcher)
    with open(path + ".yanked", "w") as stream:
        stream.write("broken build")
    await wait_for(lambda: watcher.index.yanks.get(path) == "broken build", timeout=2 * INTERVAL + 0.5)
    os.remove(path + ".yanked")
    await wait_for(lambda: path not in watcher.index.yanks, timeout=2 * INTERVAL + 0.5)


@pytest_twisted.ensureDeferred
async def test_a_file_still_growing_is_not_indexed_until_it_stops(watcher, packages):
    await started(watcher)
    filename, data = wheel_bytes("growing", "1.0")
    step = max(1, len(data) // 20)
    with open(packages / filename, "wb") as stream:
        # Written in place, a little at a time, for longer than SETTLE_SECONDS.
        for offset in range(0, len(data), step):
            stream.write(data[offset : offset + step])
            stream.flush()
            await task.deferLater(reactor, INTERVAL / 2)
            assert watcher.index.file(filename) is None
    await wait_for(lambda: watcher.index.file(filename) is not None, timeout=3 * INTERVAL + 0.5)
    assert watcher.index.file(filename).size == len(data)


@pytest_twisted.ensureDeferred
async def test_a_copy_that_pauses_longer_than_two_looks_is_described_again_when_it_resumes(watcher, packages):
    await started(watcher)
    filename, data = wheel_bytes("paused", "1.0")
    with open(packages / filename, "wb") as stream:
        stream.write(data[:200])
        stream.flush()
        # Unchanged for two looks: nothing tells it from a complete file.
        await wait_for(lambda: watcher.index.file(filename) is not None, timeout=3 * INTERVAL + 0.5)
        stream.write(data[200:])
    await wait_for(lambda: watcher.index.file(filename).size == len(data), timeout=3 * INTERVAL + 0.5)


@pytest_twisted.ensureDeferred
async def test_a_yank_reason_edited_in_place_is_noticed(watcher, packages):
    path = write(packages, wheel_bytes("marked", "1.0"))
    with open(path + ".yanked", "w") as stream:
        stream.write("broken build")
    await started(watcher)
    assert watcher.index.yanks.get(path) == "broken build"
    with open(path + ".yanked", "w") as stream:
        stream.write("broken build: use 1.1")
    await wait_for(lambda: watcher.index.yanks.get(path) == "broken build: use 1.1", timeout=2 * INTERVAL + 0.5)
