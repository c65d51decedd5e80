"""
Listing the package directories: each file's name, size and modification
time, found without reading any file.

With tens of thousands of files the listing is one C{stat} call a file,
most of a restart's scan.  At start-up it can be taken by another process
(L{EarlyListing}), started before the server imports its web stack, so
that those calls run on a spare core while this one imports; the server
collects the listing when its first scan begins.  That process then stands
by as a describe worker (L{twistedpypi.describeworker}) already started,
for a first start that finds thousands of files to describe.

It runs as C{python -m twistedpypi.listing}.  It reads its directories and
link roots from stdin, writes the listing to stdout and closes it, then
reads from stdin the arguments a describe worker is given, or the end of
the input when there is nothing to describe; all with C{marshal}.

Blocking: call L{list_tree} and L{EarlyListing.result} in a thread.  This
module imports nothing of the server, so that the process starts fast.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys

SIGNATURE_SUFFIX = ".asc"


class Listing:
    """
    What a walk of the package directories found.

    @ivar files: for each directory walked, the directory and its regular
        files, as C{(name, size, mtime_ns)}.
    @ivar signed: paths of files that have a detached signature beside them.
    @ivar directories: every directory walked, the top ones included.
    @ivar unreadable: directories that could not be listed, with the
        reason: what is below them is unknown, not gone.
    """

    __slots__ = ("files", "signed", "directories", "unreadable")

    def __init__(
        self,
        files: list[tuple[str, list[tuple[str, int, int]]]],
        signed: set[str],
        directories: list[str],
        unreadable: dict[str, str],
    ) -> None:
        self.files = files
        self.signed = signed
        self.directories = directories
        self.unreadable = unreadable


def link_roots(directories: list[str], follow_symlinks: bool) -> list[str]:
    """
    Where symbolic links in C{directories} may lead: inside the directories
    themselves, or anywhere when the administrator allows it.
    """
    return [os.sep] if follow_symlinks else [os.path.realpath(d) for d in directories]


def inside(path: str, roots: list[str]) -> bool:
    """Whether C{path}, links resolved, is one of C{roots} or below one."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def list_tree(directories: list[str], roots: list[str]) -> Listing:
    """
    Walk C{directories} recursively.  Hidden files and directories are
    skipped, and so are symbolic links that lead outside C{roots}; links to
    directories are never walked.
    """
    files: list[tuple[str, list[tuple[str, int, int]]]] = []
    signed: set[str] = set()
    walked: list[str] = []
    unreadable: dict[str, str] = {}
    pending = list(directories)
    while pending:
        directory = pending.pop()
        here: list[tuple[str, int, int]] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    _list_entry(entry, roots, here, signed, pending)
        except OSError as error:
            unreadable[directory] = error.strerror or str(error)
            continue
        files.append((directory, here))
        walked.append(directory)
    return Listing(files, signed, walked, unreadable)


def _list_entry(entry: os.DirEntry, roots: list[str], here: list, signed: set[str], pending: list[str]) -> None:
    """Sort one directory entry for L{list_tree}."""
    name = entry.name
    if name.startswith("."):
        return
    try:
        if entry.is_symlink() and not inside(entry.path, roots):
            return
        if entry.is_dir():
            if not entry.is_symlink():
                pending.append(entry.path)
            return
        if name.endswith(SIGNATURE_SUFFIX):
            signed.add(entry.path[: -len(SIGNATURE_SUFFIX)])
            return
        if not entry.is_file():
            return
        status = entry.stat()
    except OSError:
        return
    here.append((name, status.st_size, status.st_mtime_ns))


class EarlyListing:
    """
    A listing taken by another process: start it with L{EarlyListing.start}
    as early as can be, collect it with L{result}, then give that process a
    share of files to describe (L{describe}) or L{dismiss} it.
    """

    def __init__(self, process: subprocess.Popen | None) -> None:
        self._process = process
        self._parent = os.getpid()
        self._collected = False
        self._listing: Listing | None = None

    @classmethod
    def start(cls, directories: list[str], roots: list[str]) -> EarlyListing:
        """
        Start listing C{directories} (see L{list_tree}) in another process.
        One that cannot start gives no result.
        """
        # It imports this very twistedpypi, wherever it was found.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
            )
        except OSError:
            return cls(None)
        listing = cls(process)
        try:
            # A few paths: far less than a pipe holds, so this never waits.
            process.stdin.write(marshal.dumps((directories, roots)))
            process.stdin.flush()
        except OSError:
            listing.dismiss()
        return listing

    def result(self) -> Listing | None:
        """
        Wait for the listing (the same one at every call).  L{None} if the
        process failed (it is then dismissed): the caller lists the
        directories itself.
        """
        if self._collected or self._process is None:
            return self._listing
        self._collected = True
        with self._process.stdout:
            data = self._process.stdout.read()
        try:
            self._listing = Listing(*marshal.loads(data))
        except (EOFError, ValueError, TypeError):
            self.dismiss()
        return self._listing

    def standing_by(self) -> bool:
        """
        Whether the process can be given files to describe: it listed, and
        this process can wait for it (twistd forks when it becomes a daemon,
        after the process was started).
        """
        return self._listing is not None and self._process is not None and os.getpid() == self._parent

    def describe(self, arguments: list[str]) -> subprocess.Popen | None:
        """
        Have the process, done listing, run as a describe worker given
        C{arguments}.

        @return: the process, to wait for; L{None} if it is gone.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            with process.stdin:
                process.stdin.write(marshal.dumps(arguments))
        except OSError:
            process.wait()
            return None
        return process

    def dismiss(self) -> None:
        """Tell the process there is nothing to describe, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:  # it is gone already
            pass
        process.stdout.close()
        process.wait()


def main() -> None:
    """
    List the directories named on stdin, to stdout; then describe what the
    server asks for, if anything.
    """
    directories, roots = marshal.load(sys.stdin.buffer)
    listing = list_tree(directories, roots)
    sys.stdout.buffer.write(
        marshal.dumps((listing.files, listing.signed, listing.directories, listing.unreadable))
    )
    sys.stdout.buffer.flush()
    # The server reads the listing to its end: close the pipe.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # Ready before the server decides.
    from twistedpypi import describeworker

    try:
        arguments = marshal.load(sys.stdin.buffer)
    except EOFError:  # nothing to describe
        return
    describeworker.main(arguments)


if __name__ == "__main__":
    main()
