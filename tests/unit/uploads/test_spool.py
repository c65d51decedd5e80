"""
The spool writer: an upload's bytes reach the temporary file in order,
hashed, written in threads, with the client paused while writes lag.
"""

import hashlib
import os

import pytest_twisted

from twistedpypi.uploads.spool import HIGH_WATER, SpoolWriter


@pytest_twisted.ensureDeferred
async def test_chunks_are_written_in_order_and_hashed(tmp_path):
    calls = []
    writer = SpoolWriter(str(tmp_path), ("md5",), lambda: calls.append("pause"), lambda: calls.append("resume"))
    chunks = [os.urandom(65536) + bytes([i % 256]) for i in range(300)]  # ~19 MB
    for chunk in chunks:
        writer.write(chunk)
    data = b"".join(chunks)
    digests = await writer.finish(("blake2_256",))
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert digests["md5"] == hashlib.md5(data).hexdigest()
    assert digests["blake2_256"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    [name] = os.listdir(tmp_path)
    assert name.startswith(".upload-") and name.endswith(".tmp")
    assert (tmp_path / name).read_bytes() == data
    # Queued faster than written: the client was paused, and let go again.
    assert len(data) > HIGH_WATER
    assert calls[:1] == ["pause"] and calls.count("pause") == calls.count("resume")


@pytest_twisted.ensureDeferred
async def test_discarding_deletes_the_temporary_file(tmp_path):
    writer = SpoolWriter(str(tmp_path), (), lambda: None, lambda: None)
    writer.write(os.urandom(3 * 1024 * 1024))
    await writer.discard()
    assert os.listdir(tmp_path) == []
