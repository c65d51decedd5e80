"""
Builds an in-memory index from a directory synchronously, for tests that
need no reactor.
"""

from __future__ import annotations

from twistedpypi.config import Config
from twistedpypi.index.model import PackageIndex
from twistedpypi.scan.describe import describe, scan


def index_directory(directory, algorithms: tuple[str, ...] = ("sha256",)) -> PackageIndex:
    """An index of every distribution in C{directory}."""
    index = PackageIndex()
    found = scan([str(directory)])
    index.update(added=[describe(state, algorithms, state.path in found.signed) for state in found.files.values()])
    return index


def config_for(directory, **settings) -> Config:
    """Settings serving C{directory}."""
    return Config(directories=[str(directory)], **settings)


class ReadyWatcher:
    """A watcher whose first scan is done."""

    is_ready = True
