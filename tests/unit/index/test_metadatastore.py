"""
Core metadata kept off the heap: the store, and the watcher putting what it
describes there.
"""

import hashlib
import io
import threading

import pytest
import pytest_twisted

from tests.distributions import sdist_bytes, wheel_bytes, write
from twistedpypi.index.metadatastore import MAX_LENGTH, MetadataStore, place, unpack
from twistedpypi.index.model import FilesByPath, PackageIndex
from twistedpypi.scan.describe import scan
from twistedpypi.scan.watcher import PackageWatcher


def test_what_is_added_reads_back(tmp_path):
    store = MetadataStore(str(tmp_path))
    places = [store.add(b"Name: a\n"), store.add(b""), store.add(b"x" * 70_000)]
    assert [store.read(where) for where in places] == [b"Name: a\n", b"", b"x" * 70_000]
    assert list(tmp_path.iterdir()) == []  # anonymous: nothing left behind


def test_a_block_is_read_back_piece_by_piece(tmp_path):
    store = MetadataStore(str(tmp_path))
    store.add(b"before")
    seen = []
    offset = store.add_from(io.BytesIO(b"onetwothree"), 6, seen.append)
    assert store.read(place(offset, 3)) == b"one"
    assert store.read(place(offset + 3, 3)) == b"two"
    assert b"".join(seen) == b"onetwo"


def test_a_stream_that_ends_early_appends_nothing(tmp_path):
    store = MetadataStore(str(tmp_path))
    with pytest.raises(EOFError):
        store.add_from(io.BytesIO(b"short"), 6, lambda block: None)
    assert store.size == 0
    assert store.read(store.add(b"next")) == b"next"


def test_places_pack_and_unpack():
    assert unpack(place(123_456_789_012, MAX_LENGTH)) == (123_456_789_012, MAX_LENGTH)
    with pytest.raises(ValueError):
        place(0, MAX_LENGTH + 1)


def test_reading_past_the_end_fails(tmp_path):
    store = MetadataStore(str(tmp_path))
    with pytest.raises(OSError):
        store.read(place(0, 10))


def test_threads_add_without_mixing(tmp_path):
    store = MetadataStore(str(tmp_path))
    results = {}

    def add(n):
        results[n] = [store.add(bytes([n]) * (100 + i)) for i in range(200)]

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, places in results.items():
        assert [store.read(where) for where in places] == [bytes([n]) * (100 + i) for i in range(200)]


@pytest_twisted.ensureDeferred
async def test_the_watcher_keeps_metadata_in_the_store(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0", summary="kept on disk"))
    write(packages, sdist_bytes("demo", "1.0", metadata_version="2.2"))
    index = PackageIndex(MetadataStore(str(tmp_path)))
    watcher = PackageWatcher(index, [str(packages)], use_inotify=False)
    watcher.startService()
    try:
        await watcher.ready
        for dist in index.files_by_path.values():
            assert isinstance(dist.metadata, int)
            metadata = index.metadata_of(dist)
            assert hashlib.sha256(metadata).digest() == dist.metadata_digest
            assert b"Name: demo" in metadata
    finally:
        await watcher.stopService()


def test_a_scan_reuses_what_it_knows(packages):
    path = write(packages, wheel_bytes("demo", "1.0"))
    first = scan([str(packages)])
    known = FilesByPath()
    known.add(_described(first.files[path]))
    again = scan([str(packages)], known=known)
    assert again.files[path].dist is first.files[path].dist


def _described(state):
    from twistedpypi.scan.describe import describe

    return describe(state, ("sha256",), False)
