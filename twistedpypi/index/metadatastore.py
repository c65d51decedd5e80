"""
Core metadata files kept on disk rather than on the heap.

A METADATA file carries the project's long description, often tens of KB;
an index of 100,000 files holding them all in memory would need gigabytes.
The store is one anonymous file (unlinked from the start, so it goes with
the process, crash or not) that metadata is appended to; the index keeps,
per file, only where its metadata is: one int.

Appending is blocking and happens in the threads that describe files;
reading back is one C{pread} of a few KB from a file the page cache holds,
as cheap as the chunked reads L{twisted.web.static.File} makes on the
reactor thread.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import BinaryIO, Callable

PLACE_SHIFT = 24
"""
A place is its offset shifted left this far, plus its length: adding
C{n << PLACE_SHIFT} to a place moves it C{n} bytes on.
"""

_COPY_SIZE = 1024 * 1024

MAX_LENGTH = (1 << PLACE_SHIFT) - 1
"""The largest metadata file a place can describe (16 MiB)."""


def place(offset: int, length: int) -> int:
    """Pack where some metadata is into one int."""
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"metadata of {length} bytes is too large to store")
    return offset << PLACE_SHIFT | length


def unpack(where: int) -> tuple[int, int]:
    """The offset and length a L{place} packed."""
    return where >> PLACE_SHIFT, where & MAX_LENGTH


class MetadataStore:
    """
    An append-only file of metadata, read back by place.

    @ivar size: how many bytes have been appended.
    """

    def __init__(self, directory: str | None = None) -> None:
        """
        @param directory: where to create the (anonymous) file; the system's
            temporary directory by default.
        @raise OSError: it cannot be created there.
        """
        self._file = tempfile.TemporaryFile(dir=directory)
        self._fd = self._file.fileno()
        self._lock = threading.Lock()
        self.size = 0

    def add(self, data: bytes | memoryview) -> int:
        """
        Append some metadata.  Blocking; safe from several threads.

        @return: its place, for L{read}.
        @raise OSError: it cannot be written (a full disk).
        """
        with self._lock:
            where = place(self.size, len(data))
            self._write_all(data, self.size)
            self.size += len(data)
        return where

    def add_from(self, stream: BinaryIO, length: int, seen: Callable[[bytes], object]) -> int:
        """
        Append the next C{length} bytes of C{stream}, many metadata files
        back to back, in one piece: no other thread's metadata lands among
        them.  Blocking.

        @param seen: shown every block read (to hash them).
        @return: the offset they start at: the place of the metadata C{start}
            bytes into them is C{place(offset + start, its length)}.
        @raise EOFError: C{stream} ends sooner; nothing is appended.
        """
        with self._lock:
            start = end = self.size
            while end - start < length:
                block = stream.read(min(length - (end - start), _COPY_SIZE))
                if not block:
                    raise EOFError("the stream ends before the metadata does")
                seen(block)
                self._write_all(block, end)
                end += len(block)
            self.size = end
        return start

    def _write_all(self, data: bytes | memoryview, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def read(self, where: int) -> bytes:
        """
        The metadata at a place L{add} returned.

        @raise OSError: it cannot be read back whole.
        """
        offset, length = unpack(where)
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise OSError(f"the metadata store ends before {offset + length}")
        return data

    def close(self) -> None:
        """Let the file go."""
        self._file.close()
