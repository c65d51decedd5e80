"""
The file system, safely: opening only regular files (never blocking on a
FIFO or a device), syncing directories, telling whether a process that left
a file behind is gone.  Blocking functions, for threads, except where said.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


def open_regular_descriptor(path: str) -> tuple[int, os.stat_result]:
    """
    Open a file for reading only if it is a regular file: a FIFO or device
    put in a file's place would otherwise block the reading thread for ever
    or never end.  (The descriptor is non-blocking, which reads of a regular
    file do not notice.)

    @return: the descriptor, and the file's status.
    @raise OSError: it is not a regular file, or cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return fd, status
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str, limit: int) -> tuple[bytes, os.stat_result]:
    """
    Read up to C{limit} bytes of a small regular file in one call, and its
    status after the read (so a file that changed meanwhile shows it).
    Five system calls, where a file object takes nine.

    @raise OSError: it is not a regular file, or cannot be read.
    """
    fd, _ = open_regular_descriptor(path)
    try:
        return os.read(fd, limit), os.fstat(fd)
    finally:
        os.close(fd)


def open_regular_file(path: str) -> BinaryIO:
    """
    L{open_regular_descriptor}, as a blocking binary file object.

    @raise OSError: it is not a regular file, or cannot be opened.
    """
    fd, _ = open_regular_descriptor(path)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_UMASK: list[int] = []


def current_umask() -> int:
    """This process's umask (read once: reading it means setting it)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_is_gone(pid: int) -> bool:
    """Whether no process has that id (one we may not signal still counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
