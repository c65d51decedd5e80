"""
Release management from the host, without HTTP: C{twistedpypi
yank|unyank|status ...} (or C{python -m twistedpypi ...}) writes the same marker files the upload API's
C{yank}, C{unyank} and C{set_status} actions write (see
L{twistedpypi.index.markers}); a running server's watcher picks them up
like any other change.

Blocking: a command-line program, no reactor.
"""

from __future__ import annotations

import argparse
import os
import sys

from twistedpypi.index.distfile import normalize_name, parse_filename, version_from_filename_matches
from twistedpypi.index.markers import (
    ACTIVE,
    PROJECT_STATUSES,
    STATUS_SUFFIX,
    YANKED_SUFFIX,
    ProjectStatus,
    clean_reason,
    format_status,
)
from twistedpypi.scan.listing import list_tree
from twistedpypi.uploads.store import remove_marker, write_marker


def release_paths(directory: str, project: str, version: str, filename: str | None = None) -> list[str]:
    """
    The paths of a release's distribution files below C{directory} (or
    of its one file named C{filename}).
    """
    listing = list_tree([directory], [os.path.realpath(directory)])
    found = []
    for here, entries in listing.files:
        for name, _size, _mtime in entries:
            dist = parse_filename(name)
            if (
                dist is not None
                and dist.project == project
                and version_from_filename_matches(dist, version)
                and (filename is None or name == filename)
            ):
                found.append(os.path.join(here, name))
    return sorted(found)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"twistedpypi {command}", description=COMMAND_SUMMARIES[command])
    if command == "status":
        parser.add_argument("directory", help="the package directory (the server's upload directory)")
        parser.add_argument("project")
        parser.add_argument("status", choices=PROJECT_STATUSES)
        parser.add_argument("--reason", default="", help="why, shown to installers")
        return parser
    parser.add_argument("directory", help="the package directory")
    parser.add_argument("project")
    parser.add_argument("version")
    parser.add_argument("--file", dest="filename", help="only this file of the release")
    if command == "yank":
        parser.add_argument("--reason", default="", help="why it is yanked, shown to installers")
    return parser


COMMAND_SUMMARIES = {
    "yank": "yank a release, or one of its files (PEP 592): DIRECTORY PROJECT VERSION [--file F] [--reason R]",
    "unyank": "undo a yank: DIRECTORY PROJECT VERSION [--file F]",
    "status": "set a project's status (PEP 792): DIRECTORY PROJECT {active,archived,quarantined,deprecated}",
}
"""The commands of this module, with what each does."""


def run(command: str, arguments: list[str]) -> int:
    """
    Run C{command} (one of L{COMMAND_SUMMARIES}) with C{arguments}.

    @return: the exit status: 0 done, 1 nothing of that name, 2 a usage error.
    """
    options = _parser(command).parse_args(arguments)
    directory = options.directory
    if not os.path.isdir(directory):
        print(f"{directory} is not a directory", file=sys.stderr)
        return 2
    project = normalize_name(options.project)
    if command == "status":
        status = ProjectStatus(options.status, clean_reason(options.reason) or None)
        path = os.path.join(directory, project + STATUS_SUFFIX)
        if status.status == ACTIVE and status.reason is None:
            remove_marker(path)
        else:
            write_marker(path, format_status(status))
        print(f"{project} is now {status.status}")
        return 0
    paths = release_paths(directory, project, options.version, options.filename)
    if not paths:
        what = options.filename or f"{options.project} {options.version}"
        print(f"{what}: no such release or file below {directory}", file=sys.stderr)
        return 1
    for path in paths:
        if command == "yank":
            write_marker(path + YANKED_SUFFIX, clean_reason(options.reason).encode("utf-8"))
        else:
            remove_marker(path + YANKED_SUFFIX)
        print(f"{command}ed {os.path.basename(path)}")
    return 0
