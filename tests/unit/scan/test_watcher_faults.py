"""
Faults in the package directories, with the real watcher and reactor: a
directory that goes away keeps its files in the index and is watched again
when it is back; deleting a watched sub-directory does not stop the
watching.
"""

import os
import shutil

import pytest
import pytest_twisted

from tests.distributions import wheel_bytes, write
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.watcher import PackageWatcher


@pytest.fixture(params=["inotify", "polling"])
def watcher(request, packages):
    watcher = PackageWatcher(PackageIndex(), [str(packages)], use_inotify=request.param == "inotify")
    yield watcher
    watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_directory_that_goes_away_keeps_its_files_and_recovers(watcher, packages, tmp_path, logged):
    write(packages, wheel_bytes("kept", "1.0"))
    watcher.startService()
    await watcher.ready
    away = tmp_path / "away"
    os.rename(packages, away)
    await wait_for(lambda: any("cannot read the package directory" in line for line in logged), timeout=3)
    assert any(str(packages) in line and "No such file" in line for line in logged)
    # Unknown is not gone: the index still has the file.
    assert watcher.index.project("kept") is not None
    os.rename(away, packages)
    write(packages, wheel_bytes("later", "1.0"))
    await wait_for(lambda: watcher.index.project("later") is not None, timeout=5)
    assert watcher.index.project("kept") is not None
    assert any("can be read again" in line for line in logged)


@pytest_twisted.ensureDeferred
async def test_a_directory_deleted_and_recreated_is_watched_again(watcher, packages):
    write(packages, wheel_bytes("old", "1.0"))
    watcher.startService()
    await watcher.ready
    shutil.rmtree(packages)
    packages.mkdir()
    write(packages, wheel_bytes("fresh", "1.0"))
    await wait_for(lambda: watcher.index.project("fresh") is not None, timeout=5)
    await wait_for(lambda: watcher.index.project("old") is None, timeout=5)
    # And it is watched, not merely rescanned.
    write(packages, wheel_bytes("newer", "1.0"))
    await wait_for(lambda: watcher.index.project("newer") is not None, timeout=5)


@pytest_twisted.ensureDeferred
async def test_deleting_a_sub_directory_does_not_stop_the_watching(watcher, packages):
    watcher.startService()
    await watcher.ready
    (packages / "team").mkdir()
    write(packages / "team", wheel_bytes("nested", "1.0"))
    await wait_for(lambda: watcher.index.project("nested") is not None, timeout=5)
    shutil.rmtree(packages / "team")
    await wait_for(lambda: watcher.index.project("nested") is None)
    write(packages, wheel_bytes("after", "1.0"))
    await wait_for(lambda: watcher.index.project("after") is not None, timeout=5)
