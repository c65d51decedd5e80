"""
One look at the directories (L{DirectoryPoller.look}), without a reactor:
what it lists, what it tells, and how the looks are spaced.
"""

import os
import time

from twisted.internet.task import Clock

from tests.distributions import wheel_bytes, write
from twistedpypi.scan.poll import PACE, SETTLING_LOOK, DirectoryPoller, Look, Poller

OLD = 1_600_000_000


def old_wheel(directory, name):
    """A wheel written long ago: taken at once."""
    path = write(directory, wheel_bytes(name, "1.0"))
    os.utime(path, (OLD, OLD))
    return path


def tree(root, directories):
    for index in range(directories):
        (root / f"team{index}").mkdir()
        old_wheel(root / f"team{index}", f"project{index}")


def known(root):
    """A poller that knows C{root}'s tree as it is."""
    poller = DirectoryPoller([str(root)])
    first = poller.look([(str(root), None)])
    assert not first.changed
    return poller


def test_unchanged_directories_are_opened_but_not_listed(packages):
    tree(packages, 50)
    poller = known(packages)
    assert poller.look().listed == []
    new = old_wheel(packages / "team7", "late")
    look = poller.look()
    assert look.listed == [str(packages / "team7")]
    assert look.changed == {new}


def test_new_gone_and_replaced_names_are_told_and_hidden_ones_are_not(packages, tmp_path):
    kept = old_wheel(packages, "kept")
    gone = old_wheel(packages, "gone")
    poller = known(packages)
    os.remove(gone)
    new = old_wheel(packages, "new")
    replacement = old_wheel(tmp_path, "kept")
    os.replace(replacement, kept)
    old_wheel(packages, ".hidden-upload")
    assert poller.look().changed == {gone, new, kept}
    assert poller.look().changed == set()


def test_a_new_subdirectory_is_listed_and_a_gone_one_told(packages, tmp_path):
    poller = known(packages)
    staging = tmp_path / "team"
    (staging / "nested").mkdir(parents=True)
    inside = old_wheel(staging / "nested", "nested")
    os.rename(staging, packages / "team")
    look = poller.look()
    assert look.changed == {str(packages / "team" / "nested" / os.path.basename(inside))}
    # Known from now on: a file added below is seen.
    later = old_wheel(packages / "team" / "nested", "later")
    assert poller.look().changed == {later}
    os.rename(packages / "team", tmp_path / "away")
    assert poller.look().gone_directories == {str(packages / "team")}
    assert poller.look().listed == []


def test_a_recent_file_is_told_once_two_looks_find_it_alike_and_again_if_it_changes(packages):
    poller = known(packages)
    path = write(packages, wheel_bytes("recent", "1.0"))
    assert poller.look().changed == set()
    assert poller.look().changed == {path}
    with open(path, "ab") as stream:
        stream.write(b"more")
    assert poller.look().changed == set()  # its directory did not change: it is followed
    assert poller.look().changed == {path}
    assert poller.look().changed == set()


def test_a_directory_changed_between_its_listing_and_its_first_look_is_said_unseen(packages):
    listed_ns = time.time_ns() - 10_000_000_000
    os.utime(packages, (OLD, OLD))
    assert not DirectoryPoller([str(packages)]).look([(str(packages), listed_ns)]).unseen
    old_wheel(packages, "meanwhile")
    assert DirectoryPoller([str(packages)]).look([(str(packages), listed_ns)]).unseen


def test_a_package_directory_that_cannot_be_opened_is_told_once(packages, tmp_path):
    poller = known(packages)
    os.rename(packages, tmp_path / "away")
    assert poller.look().missing == [str(packages)]
    assert poller.look().missing == []


def test_sweeps_are_spaced_by_what_they_cost_and_settling_files_still_looked_at_soon():
    clock = Clock()
    poller = Poller(clock, ["/nowhere"], 0.5, changed=lambda *_: None, moved=lambda: None, missed=lambda: None)
    poller._stopped = False

    def next_look():
        (call,) = clock.getDelayedCalls()
        call.cancel()
        return call.getTime()

    poller._looked(Look(checking_seconds=0.001), sweep=True)
    assert next_look() == 0.5
    poller._looked(Look(checking_seconds=0.1), sweep=True)
    assert next_look() == PACE * 0.1
    poller._looked(Look(checking_seconds=0.1, settling=1), sweep=True)
    assert next_look() == SETTLING_LOOK < 0.5


def test_a_marker_edited_in_place_is_told_though_its_directory_did_not_change(packages):
    wheel = old_wheel(packages, "marked")
    marker = wheel + ".yanked"
    with open(marker, "w") as stream:
        stream.write("first reason")
    os.utime(marker, (OLD, OLD))
    (packages / "team").mkdir()
    status_file = packages / "team" / "nested.status"
    status_file.write_text("archived\n")
    os.utime(status_file, (OLD, OLD))
    poller = known(packages)
    identity = os.stat(packages).st_mtime_ns
    with open(marker, "w") as stream:  # in place, as `echo ... >` does
        stream.write("a longer second reason")
    status_file.write_text("quarantined\nmalware\n")
    assert os.stat(packages).st_mtime_ns == identity
    look = poller.look()
    assert look.listed == []
    assert look.changed == {marker, str(status_file)}
    assert poller.look().changed == set()
    # Gone: its directory tells it, once.
    os.remove(marker)
    assert poller.look().changed == {marker}
    assert poller.look().changed == set()
