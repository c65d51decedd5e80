"""
The program the server runs in other processes, to use more than one core:
C{python -m twistedpypi.scan.offcore} lists the package directories named
on its standard input to its standard output, then stands by to describe
the files the server hands it (L{twistedpypi.scan.listing.EarlyListing});
C{python -m twistedpypi.scan.offcore LIST CACHE ALGORITHM...} only
describes (L{twistedpypi.scan.workers.DescribeWorker}).

Blocking: this is a process of its own, with no reactor.
"""

from __future__ import annotations

import marshal
import os
import sys

from twistedpypi.index.distfile import distribution_name
from twistedpypi.scan import describecache
from twistedpypi.scan.describe import FileState, describe
from twistedpypi.scan.listing import list_tree, write_listing


def describe_listed(arguments: list[str]) -> None:
    """Describe the files listed in C{arguments[0]} into the cache C{arguments[1]}."""
    list_path, cache_path, *algorithms = arguments
    with open(list_path, "rb") as stream:
        listed = marshal.load(stream)
    described = []
    for path, project, version, kind, size, mtime_ns, signed in listed:
        state = FileState(path, distribution_name(project, version, kind), size, mtime_ns)
        try:
            dist = describe(state, tuple(algorithms), signed)
        except Exception:
            # Left for the server, which reports it.
            continue
        if dist is not None:
            described.append(dist)
    describecache.save(cache_path, described, lambda dist: dist.metadata)


def list_then_describe() -> None:
    """
    List the directories named on stdin, to stdout; then describe what the
    server asks for, if anything.
    """
    directories, roots = marshal.load(sys.stdin.buffer)
    write_listing(list_tree(directories, roots), sys.stdout.buffer)
    sys.stdout.buffer.flush()
    # The server reads the listing to its end: close the pipe.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    try:
        arguments = marshal.load(sys.stdin.buffer)
    except EOFError:  # nothing to describe
        return
    describe_listed(arguments)


if __name__ == "__main__":
    if sys.argv[1:]:
        describe_listed(sys.argv[1:])
    else:
        list_then_describe()
