"""
Temporary files named by node and process, and which of them a starting
server reclaims: only its own node's, of processes that are gone (or of
its own process id, a container's pid 1), and anyone's abandoned a day ago.
"""

import os
import subprocess
import sys
import time

import pytest

from twistedpypi.fs import ABANDONED_AFTER, NODE_NAME_VARIABLE, is_leftover, node_name, temporary_tag
from twistedpypi.uploads.store import TemporaryUpload, remove_stale_uploads


@pytest.fixture
def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid():
    """The id of a process running through the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def node(monkeypatch):
    monkeypatch.setenv(NODE_NAME_VARIABLE, "node-a")
    return "node-a"


def touch(directory, name, age=0.0):
    path = directory / name
    path.write_bytes(b"part of an upload")
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return str(path)


def test_the_node_name_defaults_to_the_host_name_made_safe_for_file_names(monkeypatch):
    monkeypatch.delenv(NODE_NAME_VARIABLE, raising=False)
    monkeypatch.setattr("socket.gethostname", lambda: "web_1.example.com")
    assert node_name() == "web-1-example-com"
    monkeypatch.setenv(NODE_NAME_VARIABLE, "pypi/2 b")
    assert node_name() == "pypi-2-b"
    assert temporary_tag() == f"pypi-2-b_{os.getpid()}"
    monkeypatch.setenv(NODE_NAME_VARIABLE, "..")
    assert node_name() == "node"


def test_an_upload_is_written_under_a_name_carrying_the_node_and_process(tmp_path, node):
    upload = TemporaryUpload(str(tmp_path))
    try:
        name = os.path.basename(upload.path)
        assert name.startswith(f".upload-{node}_{os.getpid()}-") and name.endswith(".tmp")
    finally:
        upload.discard()


def test_this_nodes_temporary_files_of_dead_processes_are_leftovers_and_of_live_ones_are_not(
    tmp_path, node, dead_pid, live_pid
):
    dead = touch(tmp_path, "dead")
    assert is_leftover(f"{node}_{dead_pid}", dead)
    assert is_leftover(str(dead_pid), dead)  # named before nodes were
    assert not is_leftover(f"{node}_{live_pid}", dead)
    assert not is_leftover(str(live_pid), dead)


def test_this_process_own_files_are_leftovers_only_at_its_start(tmp_path, node):
    path = touch(tmp_path, "mine")
    assert is_leftover(temporary_tag(), path, at_start=True)
    assert not is_leftover(temporary_tag(), path)


def test_another_nodes_temporary_file_is_kept_whatever_its_pid_until_abandoned_for_a_day(tmp_path, node, dead_pid):
    recent = touch(tmp_path, "recent", age=ABANDONED_AFTER - 600)
    for pid in (dead_pid, os.getpid(), 1):
        assert not is_leftover(f"node-b_{pid}", recent, at_start=True)
    old = touch(tmp_path, "old", age=ABANDONED_AFTER + 600)
    assert is_leftover(f"node-b_{os.getpid()}", old)


def test_a_name_that_is_no_tag_is_never_a_leftover(tmp_path, node):
    old = touch(tmp_path, "old", age=ABANDONED_AFTER + 600)
    for tag in ("", "node-a", "node-a_x", "foo-1.0"):
        assert not is_leftover(tag, old, at_start=True)


def test_a_start_removes_this_nodes_dead_uploads_and_keeps_other_nodes_live_ones(tmp_path, node, dead_pid, live_pid):
    names = {
        f".upload-{node}_{dead_pid}-abc_1234.tmp": False,
        f".upload-{dead_pid}-abc_1234.tmp": False,
        f".upload-{node}_{os.getpid()}-abc_1234.tmp": False,
        f".upload-{node}_{live_pid}-abc_1234.tmp": True,
        f".upload-{live_pid}-abc_1234.tmp": True,
        f".upload-node-b_{dead_pid}-abc_1234.tmp": True,
        f".upload-node-b_{os.getpid()}-abc_1234.tmp": True,
        ".upload-node-b_1-abc_1234.tmp": True,
        f".upload-{node}_{dead_pid}-abc_1234.part": True,
    }
    for name in names:
        touch(tmp_path, name)
    removed = remove_stale_uploads(str(tmp_path))
    kept = {name for name, stays in names.items() if stays}
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert sorted(removed) == sorted(str(tmp_path / name) for name in set(names) - kept)
