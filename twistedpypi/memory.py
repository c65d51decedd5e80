"""
Giving memory the process freed back to the system.

Python's small objects live in arenas it returns once they are empty, but
larger blocks (file contents read while describing, the pages built for
every project, a cache's chunks) come from the C library's heap, which
keeps freed memory for reuse.  After the first scan of a large directory
that is tens of megabytes the server stays resident with and never uses
again: glibc's C{malloc_trim} returns what is free to the system.
"""

from __future__ import annotations

import ctypes
from typing import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's C{malloc_trim}, or L{None} on a C library without it (musl, macOS)."""
    try:
        # The C library the interpreter runs with (ctypes.util.find_library
        # would run ldconfig at every start to find it).
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_trim = _malloc_trim()


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
