"""
The upload store: an upload streamed into a hidden temporary file beside
its final name, verified, then claimed with link(2) so that it appears
whole or not at all; signatures stored beside their file; removals; and the
temporary files of dead processes of this node reclaimed.  Blocking functions, for
threads.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

from twistedpypi.fs import current_umask, fsync_directory, is_leftover, temporary_tag
from twistedpypi.index.distfile import (
    SIGNATURE_SUFFIX,
)
from twistedpypi.index.markers import YANKED_SUFFIX
from twistedpypi.scan.describe import READ_CHUNK, file_digests

UPLOAD_PREFIX = ".upload-"
"""Temporary upload files start so: hidden, so scans and watchers skip them."""

UPLOAD_SUFFIX = ".tmp"
"""And end so."""


def new_hash(name: str):
    """
    A hasher by the names uploads use: C{md5}, C{sha256}, C{blake2_256}
    (BLAKE2b, 32 bytes) and C{blake2_512} (what the stdlib distutils sends
    as its "blake2_256" digest).
    """
    if name == "md5":
        return hashlib.md5(usedforsecurity=False)
    if name == "blake2_256":
        return hashlib.blake2b(digest_size=32)
    if name == "blake2_512":
        return hashlib.blake2b()
    return hashlib.new(name)


class TemporaryUpload:
    """
    An upload being received: a hidden temporary file in the directory it
    will be stored in (so storing it is a rename on one file system),
    hashed as it is written.

    The name carries this process's node and id (C{.upload-<tag>-XXXXXXXX.tmp},
    see L{temporary_tag}), so that a later start on the same node can tell
    the leftovers of a killed server, and no other node takes them for its
    own (L{remove_stale_uploads}).  Blocking: call every method in a thread,
    one at a time.
    """

    def __init__(self, directory: str, algorithms: Iterable[str] = ("sha256",)) -> None:
        import tempfile

        fd, self.path = tempfile.mkstemp(
            prefix=f"{UPLOAD_PREFIX}{temporary_tag()}-", suffix=UPLOAD_SUFFIX, dir=directory
        )
        # mkstemp makes the file private; a stored upload is as readable
        # as any file this process creates.
        os.fchmod(fd, 0o666 & ~current_umask())
        self._stream = os.fdopen(fd, "wb")
        self._hashers = {name: new_hash(name) for name in {"sha256", *algorithms}}
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append and hash some bytes."""
        self._stream.write(data)
        for hasher in self._hashers.values():
            hasher.update(data)
        self.size += len(data)

    def finish(self, wanted: Iterable[str] = ()) -> dict[str, str]:
        """
        Flush the file to disk (fsync) and close it.

        @param wanted: digests needed besides those computed while writing
            (a client may send its digests after the file): the file is
            read again for them.
        @return: hex digests by name: C{sha256}, and every one asked for
            (see L{new_hash}).
        """
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        digests = {name: hasher.hexdigest() for name, hasher in self._hashers.items()}
        missing = [name for name in wanted if name not in digests]
        if missing:
            hashers = {name: new_hash(name) for name in missing}
            with open(self.path, "rb") as stream:
                while chunk := stream.read(READ_CHUNK):
                    for hasher in hashers.values():
                        hasher.update(chunk)
            digests.update((name, hasher.hexdigest()) for name, hasher in hashers.items())
        return digests

    def discard(self) -> None:
        """Close and delete the file, if it is still there."""
        try:
            self._stream.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def claim(temporary: str, final: str, overwrite: bool, sha256: str) -> bool:
    """
    Store a complete temporary file under its final name, atomically: no
    one ever sees a partial file there, and of two uploads racing for one
    name exactly one wins.  The temporary file is gone afterwards.

    @param sha256: the temporary file's sha256, to recognise a re-upload of
        the very same bytes.
    @return: L{True} if the file was stored, L{False} if the identical file
        was already there (a success, as on PyPI).
    @raise FileExistsError: a different file has that name and C{overwrite}
        is off.
    """
    try:
        if overwrite:
            os.replace(temporary, final)
            fsync_directory(os.path.dirname(final))
            return True
        try:
            # link() fails if the name exists, where rename() would replace.
            os.link(temporary, final)
        except FileExistsError:
            try:
                same = file_digests(final, ("sha256",))[0][1].hex() == sha256
            except OSError:
                same = False
            if same:
                return False
            raise
        fsync_directory(os.path.dirname(final))
        return True
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass


def store_signature(final: str, signature: bytes, overwrite: bool) -> bool:
    """
    Write the detached signature C{<final>.asc} beside a stored file, the
    same atomic way; an existing signature is kept unless C{overwrite}.

    @return: whether it was written.
    """
    directory = os.path.dirname(final)
    upload = TemporaryUpload(directory)
    try:
        upload.write(signature)
        upload.finish()
        try:
            claim(upload.path, final + SIGNATURE_SUFFIX, overwrite, "")
        except FileExistsError:
            return False
        return True
    finally:
        upload.discard()


def write_marker(path: str, content: bytes) -> None:
    """
    Write a marker file (a yank, a project's status: see
    L{twistedpypi.index.markers}) atomically: whole, or not at all, in
    place of any before it.
    """
    upload = TemporaryUpload(os.path.dirname(path))
    try:
        upload.write(content)
        upload.finish()
        os.replace(upload.path, path)
        fsync_directory(os.path.dirname(path))
    finally:
        upload.discard()


def remove_marker(path: str) -> bool:
    """
    Delete a marker file.

    @return: whether there was one.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_directory(os.path.dirname(path))
    return True


def remove_files(paths: list[str]) -> list[str]:
    """
    Delete distribution files, their signatures and their yank markers.

    @return: the paths that were deleted (signatures and markers included).
    """
    removed = []
    for path in paths:
        for candidate in (path, path + SIGNATURE_SUFFIX, path + YANKED_SUFFIX):
            try:
                os.unlink(candidate)
            except FileNotFoundError:
                continue
            removed.append(candidate)
    return removed


def remove_stale_uploads(directory: str) -> list[str]:
    """
    Delete the temporary files of uploads this node's servers were taking
    when they were killed, and any node's abandoned ones (see
    L{is_leftover}); another node's live uploads are left alone.  Call it
    before this process receives any upload: files bearing its own process
    id are leftovers too (a container restarts as pid 1 every time).

    @return: the paths deleted.
    """
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for name in entries:
        if not (name.startswith(UPLOAD_PREFIX) and name.endswith(UPLOAD_SUFFIX)):
            continue
        # mkstemp's random part, after the last "-", has no "-" in it.
        tag = name[len(UPLOAD_PREFIX) : -len(UPLOAD_SUFFIX)].rpartition("-")[0]
        path = os.path.join(directory, name)
        if not is_leftover(tag, path, at_start=True):
            continue
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed
