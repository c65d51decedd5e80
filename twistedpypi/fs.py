"""
The file system, safely: opening only regular files (never blocking on a
FIFO or a device), syncing directories, and naming temporary files so that
only the process that wrote one, or a later one on its node, reclaims it
(several nodes may share a directory).  Blocking functions, for threads,
except where said.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import time
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


NODE_NAME_VARIABLE = "TWISTEDPYPI_NODE_NAME"
"""
The environment variable naming this node on shared storage; the host's
name when it is unset.  Set it when nodes sharing a directory share a host
name too (containers given the same one).
"""

ABANDONED_AFTER = 24 * 60 * 60
"""
Seconds after its last write when any node's temporary file counts as
abandoned: no upload, download or save stalls that long (their connections
time out in minutes), so the file's node is dead or gone for good.  Only
then is another node's temporary file deleted.
"""

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def node_name() -> str:
    """
    This node's name on shared storage (L{NODE_NAME_VARIABLE}, else the
    host name), made safe for file names: letters, digits and C{-} only,
    so it never holds the C{_} that ends it in a L{temporary_tag}.
    """
    name = os.environ.get(NODE_NAME_VARIABLE) or socket.gethostname()
    return _UNSAFE.sub("-", name).strip("-")[:64] or "node"


def temporary_tag() -> str:
    """
    What this process puts in the names of its temporary files:
    C{<node>_<pid>} (see L{node_name}), no C{.} in it.  No I/O: safe on
    the reactor.
    """
    return f"{node_name()}_{os.getpid()}"


def is_leftover(tag: str, path: str, at_start: bool = False) -> bool:
    """
    Whether this process may delete the temporary file at C{path}, whose
    name carries C{tag} (see L{temporary_tag}): it is this node's, and the
    process that wrote it is gone; or it was written by this very process
    id and C{at_start} says this process has written nothing yet (a
    container restarts as pid 1 every time); or it has not been written
    for L{ABANDONED_AFTER}, whichever node wrote it.  Another node's recent
    temporary file is never a leftover: its process ids mean nothing here.
    A bare process id (the names before nodes were named) counts as this
    node's.

    @param at_start: this process has no temporary file of its own yet.
    """
    node, _, pid = tag.rpartition("_")
    if not pid.isdigit():
        return False
    if node in ("", node_name()):
        if int(pid) == os.getpid():
            if at_start:
                return True
        elif process_is_gone(int(pid)):
            return True
    try:
        return time.time() - os.stat(path).st_mtime > ABANDONED_AFTER
    except OSError:
        return False
