"""
The description cache: a restart reuses what was read before, and a stale or
broken cache is never trusted.
"""

import os
import threading
import time

import pytest
import pytest_twisted

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.indexing import index_directory
from twistedpypi.index.distfile import distribution_name
from twistedpypi.index.metadatastore import MetadataStore
from twistedpypi.index.model import DistributionFile, PackageIndex
from twistedpypi.scan import describecache
from twistedpypi.scan.watcher import PackageWatcher


def test_descriptions_round_trip(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0", requires_python=">=3.8"))
    write(packages, sdist_bytes("demo", "1.0", metadata_version="2.2"))
    write(packages, ("demo-1.0-py3.8.egg", b"not read"))
    index = index_directory(packages)
    files = list(index.files_by_path.values())
    cache = str(tmp_path / "cache")
    describecache.save(cache, files, index.metadata_of)
    assert dict(describecache.load(cache).items()) == {dist.path: dist for dist in files}


def test_metadata_is_loaded_into_the_store(packages, tmp_path):
    for version in ("1.0", "2.0"):
        write(packages, wheel_bytes("demo", version, summary="from the cache " + version))
    index = index_directory(packages)
    cache = str(tmp_path / "cache")
    describecache.save(cache, list(index.files_by_path.values()), index.metadata_of)

    store = MetadataStore(str(tmp_path))
    store.add(b"already there")
    loaded = describecache.load(cache, store)
    restarted = PackageIndex(store)
    restarted.update(added=list(loaded.values()))
    for path, dist in index.files_by_path.items():
        assert isinstance(loaded[path].metadata, int)
        assert restarted.metadata_of(loaded[path]) == index.metadata_of(dist)
        assert loaded[path].sha256_digest == dist.sha256_digest


def test_a_corrupt_or_foreign_cache_is_ignored(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    index = index_directory(packages)
    good = tmp_path / "good"
    describecache.save(str(good), list(index.files_by_path.values()), index.metadata_of)
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[-5] ^= 1
    contents = [
        b"{not json",
        b'{"format": "twistedpypi-describe-cache-3"}\n[1, 2]\n',
        b"[]",
        data[: len(describecache.FORMAT) + 10],
        data[:-1],
        data + b"more",
        bytes(flipped),
    ]
    for content in contents:
        path = tmp_path / "cache"
        path.write_bytes(content)
        assert len(describecache.load(str(path))) == 0
        assert len(describecache.load(str(path), MetadataStore(str(tmp_path)))) == 0
    assert len(describecache.load(str(tmp_path / "missing"))) == 0


async def start(packages, cache):
    watcher = PackageWatcher(PackageIndex(), [str(packages)], cache_path=cache)
    watcher.startService()
    await watcher.ready
    return watcher


@pytest_twisted.ensureDeferred
async def test_a_restart_reuses_the_cache_but_not_for_changed_files(packages, tmp_path):
    stable = write(packages, wheel_bytes("stable", "1.0"))
    changing = write(packages, wheel_bytes("changing", "1.0"))
    cache = str(tmp_path / "cache.json")
    watcher = await start(packages, cache)
    await watcher.stopService()
    assert watcher._reused == 0

    # The cache claims different bytes for "stable": if it is used, the
    # index shows its (unchanged) size and mtime with the cached hash.
    cached = describecache.load(cache)
    assert set(cached) == {stable, changing}
    forged = dict(cached.items())
    from dataclasses import replace

    forged[stable] = replace(forged[stable], sha256_digest=bytes(32))
    describecache.save(cache, list(forged.values()), PackageIndex().metadata_of)
    filename, data = wheel_bytes("changing", "1.0", summary="other bytes")
    with open(changing, "wb") as stream:
        stream.write(data)
    os.utime(changing, ns=(1, 1))

    watcher = await start(packages, cache)
    try:
        assert watcher._reused == 1
        assert watcher.index.files_by_path[stable].sha256 == "0" * 64
        import hashlib

        assert watcher.index.files_by_path[changing].sha256 == hashlib.sha256(data).hexdigest()
    finally:
        await watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_restart_leaves_a_current_cache_alone(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    cache = tmp_path / "cache"
    watcher = await start(packages, str(cache))
    await watcher.stopService()
    os.utime(cache, ns=(1, 1))
    watcher = await start(packages, str(cache))
    try:
        assert watcher._reused == 1
        assert os.stat(cache).st_mtime_ns == 1
    finally:
        watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_restart_asked_for_another_digest_reads_the_files_again(packages, tmp_path):
    path = write(packages, wheel_bytes("demo", "1.0"))
    cache = str(tmp_path / "cache")
    watcher = await start(packages, cache)
    await watcher.stopService()
    watcher = PackageWatcher(PackageIndex(), [str(packages)], ("sha256", "md5"), cache_path=cache)
    watcher.startService()
    await watcher.ready
    try:
        import hashlib

        assert watcher._reused == 0
        md5 = dict(watcher.index.files_by_path[path].extra_digests)["md5"]
        assert md5 == hashlib.md5(open(path, "rb").read()).digest()
    finally:
        await watcher.stopService()


@pytest_twisted.ensureDeferred
async def test_a_restart_notices_a_signature_that_came_meanwhile(packages, tmp_path):
    path = write(packages, wheel_bytes("demo", "1.0"))
    cache = str(tmp_path / "cache")
    watcher = await start(packages, cache)
    assert not watcher.index.files_by_path[path].signature
    await watcher.stopService()
    with open(path + ".asc", "wb") as stream:
        stream.write(b"signature")
    watcher = await start(packages, cache)
    try:
        assert watcher._reused == 1
        assert watcher.index.files_by_path[path].signature
    finally:
        await watcher.stopService()


def test_a_scan_gives_an_unchanged_file_as_its_description_and_a_changed_one_as_found(packages):
    from twistedpypi.scan.describe import FileState, scan

    same = write(packages, wheel_bytes("same", "1.0"))
    changed = write(packages, wheel_bytes("changed", "1.0"))
    described = index_directory(packages).files_by_path
    os.utime(changed, ns=(5, 5))
    found = scan([str(packages)], known=described)
    assert found.files[same] is described[same]
    assert isinstance(found.files[changed], FileState) and found.files[changed].mtime_ns == 5
    assert found.files[changed].dist is described[changed].dist


def test_a_save_deletes_half_written_caches_of_this_nodes_dead_processes_only(packages, tmp_path, monkeypatch):
    import subprocess
    import sys

    from twistedpypi.fs import NODE_NAME_VARIABLE

    monkeypatch.setenv(NODE_NAME_VARIABLE, "node-a")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    dead = process.pid
    write(packages, wheel_bytes("demo", "1.0"))
    index = index_directory(packages)
    directory = tmp_path / "caches"
    directory.mkdir()
    kept = {f".describe-cache-node-b_{dead}-abc_1234", f".describe-cache-node-a_{os.getpid()}-abc_1234"}
    for name in kept | {f".describe-cache-node-a_{dead}-abc_1234", f".describe-cache-{dead}-abc_1234"}:
        (directory / name).write_bytes(b"half")
    describecache.save(str(directory / "cache"), list(index.files_by_path.values()), index.metadata_of)
    assert set(os.listdir(directory)) == kept | {"cache"}


def test_the_pacer_sleeps_after_each_slice_of_work_for_the_rest_of_its_share():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pace = describecache.Pacer(0.05, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        now[0] += describecache.SLICE / 4
        pace()
    assert slept == [pytest.approx(describecache.SLICE * 19)] * 2
    assert describecache.SLICE * 2.5 / now[0] == pytest.approx(0.05, rel=0.3)
    never = describecache.Pacer(1.0, clock=lambda: now[0], sleep=sleep)
    now[0] += 10
    never()
    assert len(slept) == 2


def many_files(count):
    index = PackageIndex()
    files = [
        DistributionFile(f"p{i}-1.0.tar.gz", "/d", distribution_name(f"p{i}", "1.0", "sdist"), 1, 1, bytes(32))
        for i in range(count)
    ]
    index.update(added=files)
    return list(index.files_by_path.values()), index.metadata_of


def save_in_a_thread(path, files, metadata_of, hurry=None):
    """Save in a thread; the seconds the save took, and the CPU seconds it used."""
    used = []

    def save():
        cpu = time.thread_time()
        describecache.save(path, files, metadata_of, hurry=hurry)
        used.append(time.thread_time() - cpu)

    started = time.perf_counter()
    thread = threading.Thread(target=save)
    thread.start()
    thread.join(60)
    return time.perf_counter() - started, used[0]


def test_a_save_beside_the_main_thread_works_a_small_share_of_the_time_and_one_on_it_all_of_it(tmp_path):
    files, metadata_of = many_files(20_000)
    took, used = save_in_a_thread(str(tmp_path / "cache"), files, metadata_of)
    assert used / took < describecache.BACKGROUND_SHARE * 2
    assert dict(describecache.load(str(tmp_path / "cache")).items()) == {dist.path: dist for dist in files}
    started = time.perf_counter()
    describecache.save(str(tmp_path / "cache"), files, metadata_of)
    assert time.perf_counter() - started < took / 4


def test_a_stopping_process_hurries_a_save_under_way(tmp_path):
    stopping = threading.Event()
    files, metadata_of = many_files(20_000)
    paced, _ = save_in_a_thread(str(tmp_path / "cache"), files, metadata_of, stopping)
    threading.Timer(paced / 4, stopping.set).start()
    hurried, _ = save_in_a_thread(str(tmp_path / "cache"), files, metadata_of, stopping)
    assert hurried < paced / 2
    assert dict(describecache.load(str(tmp_path / "cache")).items()) == {dist.path: dist for dist in files}
    started = time.perf_counter()
    save_in_a_thread(str(tmp_path / "cache"), files, metadata_of, stopping)
    assert time.perf_counter() - started < paced / 4
