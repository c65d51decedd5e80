"""
Memory the process freed goes back to the system after a large scan.
"""

import os
import sys

import pytest

from twistedpypi.process import memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux") or memory._trim is None, reason="glibc only")
def test_freed_heap_memory_is_given_back():
    # Blocks under glibc's mmap threshold (128 KiB) come from its heap,
    # which keeps them when they are freed.
    blocks = [bytearray(100_000) for _ in range(2000)]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touched: resident
    held = blocks[-1]
    del blocks
    before = resident_bytes()
    assert memory.release_free_memory()
    assert resident_bytes() < before - 100_000_000
    assert len(held) == 100_000
