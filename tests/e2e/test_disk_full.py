"""
A disk that fills up during an upload: the server answers 507 Insufficient
Storage with a reason twine prints, leaves no partial or temporary file, and
keeps serving.

In process, the fault is injected where the bytes are written (and where the
file is flushed, and linked), through the real site on a loopback port; end to
end, the real server fills a real 1 MiB tmpfs, when this process may mount one.
"""

import errno
import io
import os
import subprocess
import sys
import zipfile

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from tests.distributions import wheel_bytes, write
from tests.forms import BOUNDARY, fetch, form_body, post, twine, upload_form
from tests.indexing import config_for
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.watcher import PackageWatcher
from twistedpypi.uploads import store
from twistedpypi.web.site import make_site

CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}".encode()


def listing(directory):
    return sorted(os.listdir(directory))


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def site(packages):
    """The real site, open to uploads, on a loopback port."""
    write(packages, wheel_bytes("keep", "1.0"))
    config = config_for(packages, authenticate=frozenset(), fallback_url=None)
    index = PackageIndex()
    watcher = PackageWatcher(index, config.directories, use_inotify=False)
    watcher.startService()
    pytest_twisted.blockon(watcher.ready)
    port = reactor.listenTCP(0, make_site(config, index, watcher), interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"
    yield base
    pytest_twisted.blockon(port.stopListening())
    stopped = watcher.stopService()
    if stopped is not None:
        pytest_twisted.blockon(stopped)


async def upload(base, filename, data):
    response = await treq.post(
        base + "/",
        data=upload_form(filename, data),
        headers={b"content-type": CONTENT_TYPE},
        persistent=False,
    )
    return response.code, response.phrase.decode(), (await response.content()).decode()


def half_then_enospc(real):
    """A write that stores half its bytes, then finds the disk full."""

    def write(self, data):
        if self.size > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


FAULTS = {
    "write": lambda monkeypatch: monkeypatch.setattr(
        store.TemporaryUpload, "write", half_then_enospc(store.TemporaryUpload.write)
    ),
    "fsync": lambda monkeypatch: monkeypatch.setattr(store.os, "fsync", no_space),
    "create": lambda monkeypatch: monkeypatch.setattr("tempfile.mkstemp", no_space),
    "link": lambda monkeypatch: monkeypatch.setattr(store.os, "link", no_space),
}


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_full_disk_is_507_with_a_reason_and_leaves_no_file(site, packages, monkeypatch, fault):
    before = listing(packages)
    FAULTS[fault](monkeypatch)
    filename, data = "demo-1.0.tar.gz", os.urandom(3 * 1024 * 1024)
    code, phrase, text = await upload(site, filename, data)
    assert code == 507, (code, text)
    assert "No space left on device" in phrase and "No space left on device" in text
    assert "could not store" in text
    assert listing(packages) == before
    monkeypatch.undo()
    # Space again: the server still serves, and takes the same upload.
    response = await treq.get(site + "/simple/keep/", persistent=False)
    assert response.code == 200
    assert await upload(site, filename, data) == (200, "OK", f"stored {filename}\n")
    assert (packages / filename).read_bytes() == data
    assert listing(packages) == sorted(before + [filename])


@pytest_twisted.ensureDeferred
async def test_a_signature_that_does_not_fit_is_507_and_the_file_is_kept_whole(site, packages, monkeypatch):
    filename, data = wheel_bytes("demo", "1.0")
    real = store.TemporaryUpload.write

    def write(self, chunk):
        if chunk.startswith(b"-----BEGIN PGP"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, chunk)

    monkeypatch.setattr(store.TemporaryUpload, "write", write)
    body = form_body(
        [(":action", "file_upload"), ("name", "demo"), ("version", "1.0")],
        [("content", filename, data), ("gpg_signature", filename + ".asc", b"-----BEGIN PGP SIGNATURE-----\n")],
    )
    response = await treq.post(site + "/", data=body, headers={b"content-type": CONTENT_TYPE}, persistent=False)
    text = (await response.content()).decode()
    assert response.code == 507 and "signature" in text
    assert (packages / filename).read_bytes() == data
    assert not any(name.startswith(".") for name in listing(packages))


def big_wheel(name, version, size):
    """A wheel carrying C{size} random bytes, stored uncompressed."""
    _, small = wheel_bytes(name, version)
    buffer = io.BytesIO(small)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr("big.bin", os.urandom(size))
    return buffer.getvalue()


def can_mount_tmpfs(tmp_path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
    if mounted.returncode != 0:
        return False
    subprocess.run(["umount", str(probe)], check=True)
    return True


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, or a skip where this process may not mount one."""
    if sys.platform != "linux" or os.geteuid() != 0 or not can_mount_tmpfs(tmp_path):
        pytest.skip("mounting a tmpfs needs root (the in-process tests above cover the fault)")
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_the_real_server_on_a_full_disk_answers_507_and_keeps_serving(start_server, small_disk):
    packages = small_disk / "packages"
    packages.mkdir()
    earlier = write(str(packages), wheel_bytes("keep", "1.0"))
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    status, reason, text, _ = post(server, upload_form("demo-1.0.tar.gz", os.urandom(2 * 1024 * 1024)), auth=False)
    assert status == 507, text
    assert "No space left on device" in reason
    assert listing(packages) == [os.path.basename(earlier)]
    assert fetch(server.url + "/packages/" + os.path.basename(earlier))[1] == open(earlier, "rb").read()
    # twine says why.
    wheel = small_disk.parent / "dist" / "big-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(big_wheel("big", "1.0", 2 * 1024 * 1024))
    refused = twine("--repository-url", server.url + "/", "-u", "x", "-p", "y", str(wheel), check=False)
    assert refused.returncode != 0
    assert "507" in refused.stdout + refused.stderr
    assert "No space left on device" in refused.stdout + refused.stderr
    assert listing(packages) == [os.path.basename(earlier)]
    # Space enough for a small one: taken, the server is fine.
    small = wheel_bytes("demo", "1.0")
    status, _, text, _ = post(server, upload_form(*small), auth=False)
    assert status == 200, text
    assert (packages / small[0]).read_bytes() == small[1]
    assert "demo-1.0-py3-none-any.whl" in fetch(server.url + "/simple/demo/")[1].decode()
