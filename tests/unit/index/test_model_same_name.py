"""
The same file name in two package directories: the copy seen first is
served, and describing it again (its signature appeared, it was rewritten)
keeps it served rather than handing its place to the other copy.
"""

from dataclasses import replace

from tests.distributions import wheel_bytes, write
from twistedpypi.index.model import PackageIndex
from twistedpypi.pages.simple import simple_project_html
from twistedpypi.scan.describe import describe, scan

FILENAME = "demo-1.0-py3-none-any.whl"


def two_copies(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    served = write(first, wheel_bytes("demo", "1.0"))
    waiting = write(second, wheel_bytes("demo", "1.0"))
    found = scan([str(first), str(second)])
    index = PackageIndex()
    index.update(added=[describe(found.files[p], ("sha256",), False) for p in (served, waiting)])
    return index, served, waiting


def test_a_signature_beside_the_served_copy_keeps_it_served_and_shows_it(tmp_path):
    index, served, waiting = two_copies(tmp_path)
    size = index.total_size
    assert index.file(FILENAME).path == served
    index.set_signature(served, True)
    assert index.file(FILENAME).path == served
    assert index.file(FILENAME).signature
    assert index.project("demo").files[FILENAME] is index.file(FILENAME)
    assert b"data-gpg-sig" in simple_project_html(index.project("demo"), "sha256")
    assert index.total_size == size
    # The other copy still waits behind it.
    index.update(removed=[served])
    assert index.file(FILENAME).path == waiting
    assert not index.file(FILENAME).signature


def test_redescribing_the_waiting_copy_leaves_the_served_one_alone(tmp_path):
    index, served, waiting = two_copies(tmp_path)
    index.set_signature(waiting, True)
    assert index.file(FILENAME).path == served
    assert not index.file(FILENAME).signature
    index.update(removed=[served])
    assert index.file(FILENAME).path == waiting
    assert index.file(FILENAME).signature


def test_a_rewritten_served_copy_changes_the_total_size(tmp_path):
    index, served, waiting = two_copies(tmp_path)
    size = index.total_size
    dist = index.file(FILENAME)
    index.update(added=[replace(dist, size=dist.size + 10)])
    assert index.file(FILENAME).path == served
    assert index.total_size == size + 10
    index.update(removed=[served, waiting])
    assert index.total_size == 0
    assert index.project("demo") is None
