"""
Giving memory the process freed back to the system.

Python's small objects live in arenas it returns once they are empty, but
larger blocks (file contents read while describing, the pages built for
every project, a cache's chunks) come from the C library's heap, which
keeps freed memory for reuse.  After the first scan of a large directory
that is tens of megabytes the server stays resident with and never uses
again: glibc's C{malloc_trim} returns what is free to the system.

glibc also moves large blocks onto that heap as the process runs: each
time it frees a block it had mapped on its own (128 KiB or more), it raises
that threshold to the block's size, up to 32 MiB.  One description cache
read, or one listing, and every later block of a first scan's describing
lands among short-lived ones on the heap.  L{keep_large_blocks_apart}
fixes the threshold instead.  (Measured after a first start on 100,000
files: 133-147 MiB resident, depending on which large blocks came and went
first; 135-137 MiB with the threshold fixed.)
"""

from __future__ import annotations

import ctypes
from typing import Callable

_M_MMAP_THRESHOLD = -3
"""glibc's C{mallopt} parameter for the size from which blocks are mapped apart."""

LARGE_BLOCK = 128 * 1024
"""Blocks of this size and more are mapped on their own (glibc's initial threshold)."""


def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc function, or L{None} on a C library without it (musl, macOS)."""
    try:
        # The C library the interpreter runs with (ctypes.util.find_library
        # would run ldconfig at every start to find it).
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


_trim = _libc_function("malloc_trim")
_mallopt = _libc_function("mallopt")


def keep_large_blocks_apart() -> bool:
    """
    Have every block of L{LARGE_BLOCK} bytes or more mapped on its own, and
    given back to the system as soon as it is freed, for the life of the
    process.

    @return: whether the C library took the setting.
    """
    if _mallopt is None:
        return False
    return bool(_mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))


def release_free_memory() -> bool:
    """
    Return the C library's free memory to the system.  Blocking (it walks
    the heap, some milliseconds for a large one, without the GIL): call
    from a thread.

    @return: whether any memory was returned.
    """
    if _trim is None:
        return False
    return bool(_trim(0))
