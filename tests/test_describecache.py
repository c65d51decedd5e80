"""
The description cache: a restart reuses what was read before, and a stale or
broken cache is never trusted.
"""

import os

import pytest_twisted

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.indexing import index_directory
from twistedpypi import describecache
from twistedpypi.index import PackageIndex
from twistedpypi.watch import PackageWatcher


def test_descriptions_round_trip(packages, tmp_path):
    write(packages, wheel_bytes("demo", "1.0", requires_python=">=3.8"))
    write(packages, sdist_bytes("demo", "1.0", metadata_version="2.2"))
    files = list(index_directory(packages).files_by_path.values())
    cache = str(tmp_path / "cache.json")
    describecache.save(cache, files)
    assert describecache.load(cache) == {dist.path: dist for dist in files}


def test_a_corrupt_or_foreign_cache_is_ignored(tmp_path):
    for content in (b"{not json", b'{"format": "other", "files": []}', b'{"format": "twistedpypi-describe-cache-3"}\n[1, 2]\n', b"[]"):
        path = tmp_path / "cache.json"
        path.write_bytes(content)
        assert describecache.load(str(path)) == {}
    assert describecache.load(str(tmp_path / "missing.json")) == {}


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
    forged = {path: dist for path, dist in cached.items()}
    from dataclasses import replace

    forged[stable] = replace(forged[stable], digests=(("sha256", bytes(32)),))
    describecache.save(cache, list(forged.values()))
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
