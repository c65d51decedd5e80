import os

import pytest

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.indexing import index_directory
from twistedpypi.scan.describe import describe, scan


def test_files_are_grouped_by_normalized_project(packages):
    write(packages, wheel_bytes("Demo.Pkg", "1.0"))
    write(packages, sdist_bytes("demo_pkg", "1.1"))
    write(packages, wheel_bytes("other", "0.1"))
    index = index_directory(packages)
    assert sorted(index.projects) == ["demo-pkg", "other"]
    assert index.project("demo-pkg").versions() == ["1.0", "1.1"]


def test_subdirectories_are_scanned_and_hidden_files_ignored(packages):
    (packages / "sub" / "deeper").mkdir(parents=True)
    write(packages / "sub" / "deeper", wheel_bytes("deep", "1.0"))
    write(packages, ("notes.txt", b"hello"))
    write(packages, (".hidden-1.0.tar.gz", sdist_bytes("hidden", "1.0")[1]))
    (packages / ".git").mkdir()
    write(packages / ".git", wheel_bytes("git", "1.0"))
    index = index_directory(packages)
    assert sorted(index.projects) == ["deep"]


def test_hashes_and_metadata_are_computed_when_the_file_is_described(packages):
    path = write(packages, wheel_bytes("demo", "1.0", requires_python=">=3.9"))
    dist = index_directory(packages).file(os.path.basename(path))
    import hashlib

    assert dist.sha256 == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert dist.requires_python == ">=3.9"
    assert dist.metadata_sha256 == hashlib.sha256(dist.metadata).hexdigest()


@pytest.mark.parametrize("lean", [True, False], ids=["small", "large"])
@pytest.mark.parametrize("change", ["grown", "rewritten", "gone"])
def test_a_file_changed_since_the_scan_is_not_described_until_scanned_again(packages, monkeypatch, lean, change):
    from twistedpypi.scan import describe as storage

    if not lean:  # read as a stream, as files over the lean size are
        monkeypatch.setattr(storage, "MAX_LEAN_SIZE", 10)
    path = write(packages, wheel_bytes("demo", "1.0"))
    state = scan([str(packages)]).files[path]
    if change == "grown":
        with open(path, "ab") as stream:
            stream.write(b"more")
    elif change == "rewritten":  # same size, later time
        os.utime(path, ns=(state.mtime_ns + 10**9, state.mtime_ns + 10**9))
    else:
        os.remove(path)
    assert describe(state, ("sha256",), False) is None
    if change != "gone":
        again = describe(scan([str(packages)]).files[path], ("sha256",), False)
        assert again.sha256_digest == storage.hashlib.sha256(open(path, "rb").read()).digest()


def test_a_change_invalidates_only_that_projects_pages(packages):
    write(packages, wheel_bytes("one", "1.0"))
    write(packages, wheel_bytes("two", "1.0"))
    index = index_directory(packages)
    one, two = index.project("one"), index.project("two")
    one.cached("k", lambda: "one page")
    two.cached("k", lambda: "two page")
    new = write(packages, wheel_bytes("one", "2.0"))
    found = scan([str(packages)])
    index.update(added=[describe(found.files[new], ("sha256",), False)])
    assert "k" not in one.pages
    assert two.pages["k"] == "two page"
    assert index.project("one").versions() == ["1.0", "2.0"]


def test_a_removed_last_file_removes_the_project(packages):
    path = write(packages, wheel_bytes("gone", "1.0"))
    index = index_directory(packages)
    index.update(removed=[path])
    assert index.project("gone") is None
    assert index.file_count == 0


def test_the_same_file_name_in_two_directories_is_served_once(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    path_a = write(first, wheel_bytes("dup", "1.0"))
    path_b = write(second, wheel_bytes("dup", "1.0"))
    index = index_directory(first)
    found = scan([str(second)])
    index.update(added=[describe(found.files[path_b], ("sha256",), False)])
    assert index.file("dup-1.0-py3-none-any.whl").path == path_a
    index.update(removed=[path_a])
    assert index.file("dup-1.0-py3-none-any.whl").path == path_b
    assert list(index.project("dup").files) == ["dup-1.0-py3-none-any.whl"]


def test_the_total_size_follows_the_files_served(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    path_a = write(first, wheel_bytes("dup", "1.0"))
    write(first, sdist_bytes("dup", "1.0"))
    index = index_directory(first)
    assert index.total_size == sum(os.path.getsize(first / name) for name in os.listdir(first))
    path_b = write(second, wheel_bytes("dup", "1.0", summary="other bytes"))
    found = scan([str(second)])
    index.update(added=[describe(found.files[path_b], ("sha256",), False)])
    index.update(removed=[path_a])
    assert index.total_size == os.path.getsize(path_b) + os.path.getsize(first / "dup-1.0.tar.gz")


def test_files_by_path_keeps_no_path_strings_yet_answers_by_path(packages):
    from twistedpypi.index.model import FilesByPath

    write(packages, wheel_bytes("demo", "1.0"))
    (packages / "sub").mkdir()
    write(packages / "sub", sdist_bytes("demo", "1.1"))
    index = index_directory(packages)
    files = FilesByPath()
    assert len(files) == 0 and files.get("/nowhere/x.whl") is None and "/nowhere/x.whl" not in files
    for dist in index.files_by_path.values():
        assert files.add(dist) is None
        assert files.add(dist) is dist
    assert len(files) == len(index.files_by_path) > 0
    assert sorted(files) == sorted(dist.path for dist in index.files_by_path.values())
    path = next(iter(files))
    assert files[path].path == path and path in files
    assert files.pop(path).path == path
    assert files.pop(path) is None and path not in files
    assert len(files) == len(index.files_by_path) - 1
    with pytest.raises(KeyError):
        files[path]


def test_a_file_at_the_root_keeps_its_path():
    from twistedpypi.index.model import split_path

    assert split_path("/demo-1.0.tar.gz") == ("", "demo-1.0.tar.gz")
    assert split_path("/srv/packages/demo-1.0.tar.gz") == ("/srv/packages", "demo-1.0.tar.gz")
