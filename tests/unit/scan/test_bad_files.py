"""
Bad and hostile distribution files: each is indexed as a file without
metadata (or not at all), quickly, in bounded memory, extracting nothing,
and the watcher keeps serving everything else.
"""

import io
import json
import os
import tarfile
import threading
import time
import tracemalloc
import zipfile

import pytest
import pytest_twisted

from tests.distributions import core_metadata, sdist_bytes, wheel_bytes, write
from tests.hostile import (
    GIB,
    tar_gz,
    tar_gz_bomb_before_pkg_info,
    tar_gz_with_huge_extended_header,
    zip_bomb,
    zip_with_many_members,
)
from tests.indexing import index_directory
from twistedpypi.index.model import PackageIndex
from twistedpypi.pages.jsonapi import json_api
from twistedpypi.pages.simple import simple_project_html, simple_project_json
from twistedpypi.scan.describe import describe, scan
from twistedpypi.scan.metadata import MAX_METADATA_SIZE, read_core_metadata
from twistedpypi.scan.watcher import PackageWatcher

MEMORY_LIMIT = 16 * 1024 * 1024
"""A few times MAX_METADATA_SIZE; every bomb here unpacks to 1 GiB."""

TIME_LIMIT = 2.0

HOSTILE = {
    # name: (bytes, kind)
    "notzip-1.0-py3-none-any.whl": (lambda: b"this is not a zip file", "bdist_wheel"),
    "empty-1.0-py3-none-any.whl": (lambda: b"", "bdist_wheel"),
    "empty-1.0.tar.gz": (lambda: b"", "sdist"),
    "text-1.0.tar.gz": (lambda: b"Name: text\nVersion: 1.0\n" * 100, "sdist"),
    "textzip-1.0.zip": (lambda: b"PK but not really", "sdist"),
    "bomb-1.0-py3-none-any.whl": (lambda: zip_bomb("bomb-1.0.dist-info/METADATA", GIB), "bdist_wheel"),
    "liar-1.0-py3-none-any.whl": (lambda: zip_bomb("liar-1.0.dist-info/METADATA", 1000), "bdist_wheel"),
    "edge-1.0-py3-none-any.whl": (lambda: zip_bomb("edge-1.0.dist-info/METADATA", MAX_METADATA_SIZE), "bdist_wheel"),
    "crowd-1.0-py3-none-any.whl": (lambda: zip_with_many_members(150_000), "bdist_wheel"),
    "tarbomb-1.0.tar.gz": (lambda: tar_gz_bomb_before_pkg_info("tarbomb-1.0"), "sdist"),
    "longname-1.0.tar.gz": (lambda: tar_gz_with_huge_extended_header(tarfile.GNUTYPE_LONGNAME), "sdist"),
    "pax-1.0.tar.gz": (lambda: tar_gz_with_huge_extended_header(tarfile.XHDTYPE), "sdist"),
    "hugepkginfo-1.0.tar.gz": (
        lambda: tar_gz({"hugepkginfo-1.0/PKG-INFO": b"Name: hugepkginfo\n" + b"x" * (MAX_METADATA_SIZE + 1)}),
        "sdist",
    ),
    "nopkginfo-1.0.tar.gz": (lambda: tar_gz({"nopkginfo-1.0/setup.py": b"pass\n"}), "sdist"),
    "climb-1.0.tar.gz": (
        lambda: tar_gz({"../PKG-INFO": core_metadata("climb", "1.0", metadata_version="2.2")}),
        "sdist",
    ),
    "absolute-1.0.tar.gz": (
        lambda: tar_gz({"/PKG-INFO": core_metadata("absolute", "1.0", metadata_version="2.2")}),
        "sdist",
    ),
}


@pytest.fixture
def hostile(packages):
    for filename, (build, _) in HOSTILE.items():
        (packages / filename).write_bytes(build())
    return packages


@pytest.mark.parametrize("filename", sorted(HOSTILE))
def test_a_hostile_file_has_no_metadata_and_costs_little(packages, filename):
    build, kind = HOSTILE[filename]
    (packages / filename).write_bytes(build())
    tracemalloc.start()
    started = time.monotonic()
    try:
        metadata = read_core_metadata(str(packages / filename), kind)
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert metadata is None
    assert seconds < TIME_LIMIT
    assert peak < MEMORY_LIMIT


def test_metadata_that_is_not_utf8_is_rendered_on_every_page(packages):
    (packages / "latin-1.0-py3-none-any.whl").write_bytes(
        _wheel_with_metadata(
            "latin-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: latin\nVersion: 1.0\nAuthor: J\xf6rg\n"
            b"Requires-Python: >=3\xff\nSummary: \xe9t\xe9\n\nbody \xff\n",
        )
    )
    index = index_directory(packages)
    project = index.project("latin")
    assert b"latin-1.0-py3-none-any.whl" in simple_project_html(project, "sha256")
    json.loads(simple_project_json(project, "sha256"))
    assert json.loads(json_api(project, None, "http://x", index.metadata_of))["info"]["name"] == "latin"


def _wheel_with_metadata(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


def test_a_fifo_put_in_place_of_a_file_does_not_hang_the_describer(packages):
    path = write(packages, wheel_bytes("swapped", "1.0"))
    state = scan([str(packages)]).files[path]
    os.remove(path)
    os.mkfifo(path)
    results = []
    worker = threading.Thread(target=lambda: results.append(describe(state, ("sha256",), False)), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "describe blocked opening a FIFO"
    assert results == [None]


def _odd_entries(directory, outside):
    """Things named like distributions that are not files to serve."""
    os.mkfifo(directory / "fifo-1.0-py3-none-any.whl")
    (directory / "folder-1.0-py3-none-any.whl").mkdir()
    os.symlink(directory / "nowhere", directory / "dangling-1.0.tar.gz")
    secret = outside / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, directory / "escape-1.0.tar.gz")
    # A name that is not UTF-8 arrives with surrogates in it.
    with open(os.path.join(os.fsencode(directory), b"caf\xe9-1.0.tar.gz"), "wb") as stream:
        stream.write(b"not utf-8")


@pytest_twisted.ensureDeferred
async def test_the_watcher_indexes_hostile_files_without_metadata_and_serves_the_rest(hostile, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    _odd_entries(hostile, outside)
    write(hostile, wheel_bytes("good", "1.0"))
    write(hostile, sdist_bytes("good", "1.0", metadata_version="2.2"))
    before = sorted(os.listdir(hostile))
    watcher = PackageWatcher(PackageIndex(), [str(hostile)])
    watcher.startService()
    try:
        await watcher.ready
        index = watcher.index
        for filename in HOSTILE:
            dist = index.file(filename)
            assert dist is not None, filename
            assert dist.metadata is None and dist.metadata_sha256 is None, filename
        for odd in ("fifo-1.0-py3-none-any.whl", "folder-1.0-py3-none-any.whl", "dangling-1.0.tar.gz", "escape-1.0.tar.gz"):
            assert index.file(odd) is None, odd
        assert index.project("caf") is None
        assert index.file("good-1.0-py3-none-any.whl").metadata_sha256 is not None
        assert index.file("good-1.0.tar.gz").metadata_sha256 is not None
        # Nothing was extracted anywhere.
        assert sorted(os.listdir(hostile)) == before
        assert sorted(os.listdir(outside)) == ["secret.txt"]
    finally:
        watcher.stopService()
