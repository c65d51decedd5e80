"""
Names that appear in a package directory without ever being closed after
writing — an upload stored by another process (written under a hidden name,
then linked to its own), a hard link whose other name is removed at once —
are served by every process within a second; a file replaced by a directory
of its name leaves the index as fast.  And files still being written are
never served, however long their writer pauses.
"""

import os
import time
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.forms import post, upload_form
from tests.server import WITH_TWO_WORKERS, listening_sockets
from tests.waiting import wait_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan import notify
from twistedpypi.scan.watcher import PackageWatcher

pytestmark = pytest.mark.skipif(not notify.HAVE_INOTIFY, reason="needs inotify")

OPEN = ("-P", ".", "-a", ".", "--disable-fallback")
"""A server that takes uploads without a password."""

LISTED_WITHIN = 3.0
"""Seconds a test waits for a change to show (the promise is one second)."""


def settled(packages) -> str:
    """
    The package directory, dated long ago: else a server that finds it
    changed while it started scans it again two seconds later, which would
    hide what the events miss.
    """
    os.utime(packages, (1_600_000_000, 1_600_000_000))
    return str(packages)


def project_page(server, project: str) -> tuple[int, bytes]:
    """C{/simple/PROJECT/} on a new connection: its status and body."""
    try:
        with urllib.request.urlopen(f"{server.url}/simple/{project}/", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def lists(server, project: str, filename: str) -> bool:
    status, body = project_page(server, project)
    return status == 200 and filename.encode() in body


def seconds_until(condition, timeout: float = LISTED_WITHIN) -> float:
    """Poll C{condition()} until it holds; the seconds it took.  Fails after C{timeout}."""
    started = time.monotonic()
    while not condition():
        took = time.monotonic() - started
        assert took < timeout, f"still not so after {took:.1f}s"
        time.sleep(0.02)
    return time.monotonic() - started


def upload_three(server, project: str) -> list[str]:
    """
    Upload three versions of C{project}, as twine does; their file names.
    (A process that happens to look while the upload's temporary name is
    still there sees a link: three uploads make that luck unlikely.)
    """
    filenames = []
    for version in ("1.0", "2.0", "3.0"):
        filename, data = wheel_bytes(project, version)
        status, _, _, _ = post(server, upload_form(filename, data, name=project, version=version), auth=False)
        assert status == 200
        filenames.append(filename)
    return filenames


def lists_all(server, project: str, filenames: list[str]) -> bool:
    status, body = project_page(server, project)
    return status == 200 and all(filename.encode() in body for filename in filenames)


def test_an_upload_through_one_server_is_listed_by_another_on_the_same_directory_at_once(
    start_server, packages
):
    first = start_server(*OPEN, settled(packages))
    second = start_server(*OPEN, str(packages))
    filenames = upload_three(first, "shared")
    assert lists_all(first, "shared", filenames)
    seconds_until(lambda: lists_all(second, "shared", filenames))


def test_with_two_workers_an_upload_is_listed_by_every_worker_at_once(start_server, packages):
    server = start_server(*WITH_TWO_WORKERS, settled(packages))
    deadline = time.monotonic() + 20
    while len(listening_sockets(server.port)) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    filenames = upload_three(server, "both")
    # Each new connection goes to either process: thirty answers in a row
    # that list them come from both (were one blind, 1 in 2**30).
    in_a_row = [0]

    def every_answer_lists_them() -> bool:
        in_a_row[0] = in_a_row[0] + 1 if lists_all(server, "both", filenames) else 0
        return in_a_row[0] >= 30

    seconds_until(every_answer_lists_them)


@pytest.mark.parametrize("source_kept", [True, False], ids=["source-kept", "source-unlinked"])
def test_a_hard_link_made_into_the_directory_is_listed_at_once(start_server, packages, tmp_path, source_kept):
    server = start_server(*OPEN, settled(packages))
    outside = tmp_path / "outside"
    outside.mkdir()
    source = write(outside, wheel_bytes("linked", "1.0"))
    filename = os.path.basename(source)
    os.link(source, packages / filename)
    if not source_kept:
        os.unlink(source)
    seconds_until(lambda: lists(server, "linked", filename))


def test_a_file_replaced_by_a_directory_of_its_name_is_unlisted_at_once(start_server, packages):
    old = write(packages, sdist_bytes("swapped", "1.0"))
    newer = write(packages, sdist_bytes("swapped", "2.0"))
    server = start_server(*OPEN, settled(packages))
    assert lists(server, "swapped", os.path.basename(old))
    os.remove(old)
    os.mkdir(old)
    # And a directory named like a distribution, that never was a file.
    os.mkdir(packages / "swapped-3.0.tar.gz")
    seconds_until(lambda: not lists(server, "swapped", os.path.basename(old)))
    status, body = project_page(server, "swapped")
    assert status == 200 and os.path.basename(newer).encode() in body
    assert b"swapped-3.0" not in body


# The watcher itself: being written is never taken for complete.


@pytest.fixture
def watcher(packages):
    watcher = PackageWatcher(PackageIndex(), [str(packages)])
    watcher.startService()
    yield watcher
    watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_file_being_written_is_not_served_while_its_writer_pauses(watcher, packages):
    await watcher.ready
    filename, data = wheel_bytes("paused", "1.0")
    with open(packages / filename, "wb") as stream:
        stream.write(data[:100])
        stream.flush()
        # Much longer than the look a created file gets.
        await task.deferLater(reactor, 4 * notify.QUIET_SECONDS + 0.5)
        assert watcher.index.file(filename) is None
        stream.write(data[100:])
    await wait_for(lambda: watcher.index.file(filename) is not None)
    assert watcher.index.file(filename).size == len(data)


@pytest_twisted.ensureDeferred
async def test_a_file_created_empty_and_written_later_is_not_served_until_closed(watcher, packages):
    await watcher.ready
    filename, data = wheel_bytes("late", "1.0")
    with open(packages / filename, "wb") as stream:
        await task.deferLater(reactor, 2 * notify.QUIET_SECONDS + 0.2)
        stream.write(data[:100])
        stream.flush()
        await task.deferLater(reactor, 4 * notify.QUIET_SECONDS + 0.5)
        assert watcher.index.file(filename) is None
        stream.write(data[100:])
    await wait_for(lambda: watcher.index.file(filename) is not None)
    assert watcher.index.file(filename).size == len(data)


@pytest_twisted.ensureDeferred
async def test_a_hard_link_whose_source_is_removed_at_once_is_served_within_a_second(
    watcher, packages, tmp_path
):
    await watcher.ready
    outside = tmp_path / "outside"
    outside.mkdir()
    source = write(outside, wheel_bytes("moved", "1.0"))
    os.link(source, packages / os.path.basename(source))
    os.unlink(source)
    await wait_for(lambda: watcher.index.project("moved") is not None, timeout=1.0)
