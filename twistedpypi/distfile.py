"""
Distribution file names: which files are packages, and which project and
version each one holds.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
"""Archive suffixes an sdist may carry, longest first where they overlap."""

_NORMALIZE = re.compile(r"[-_.]+")
# Names as PEP 508 allows them, and versions without anything a page, a URL
# or a header would need to escape.
_EGG = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[A-Za-z0-9._+!]+)"
    r"(-py\d+(\.\d+)?)?(-[A-Za-z0-9._-]+)?\.egg$",
    re.ASCII,
)
_LEGACY_SDIST = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*?[A-Za-z0-9])?)-(?P<version>\d[A-Za-z0-9._+!-]*)$",
    re.ASCII,
)
_NORMALIZED_PROJECT = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", re.ASCII)
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$", re.ASCII)
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9._+!-]+$", re.ASCII)
"""Every character a valid distribution file name needs, and no others."""


@dataclass(frozen=True, slots=True)
class DistributionName:
    """
    What a distribution's file name says about it.

    @ivar project: the PEP 503 normalised project name.
    @ivar version: the version exactly as written in the file name.
    @ivar kind: C{"bdist_wheel"}, C{"sdist"} or C{"bdist_egg"}, the
        C{packagetype} PyPI's APIs use.
    """

    project: str
    version: str
    kind: str


def normalize_name(name: str) -> str:
    """
    Normalise a project name as PEP 503 says: lower case, runs of C{-_.}
    become one C{-}.
    """
    return _NORMALIZE.sub("-", name).lower()


def is_project_name(name: str) -> bool:
    """
    Whether C{name} is a project name as PEP 508 allows it (ASCII letters
    and digits, with C{._-} inside), so it may go into a URL or a header
    as it is.
    """
    return _PROJECT_NAME.match(name) is not None


def version_sort_key(version: str) -> tuple:
    """
    A key that sorts versions by PEP 440, putting versions PEP 440 cannot
    parse (legacy eggs) before every valid one, in string order.
    """
    try:
        return (1, Version(version), version)
    except InvalidVersion:
        return (0, Version("0"), version)


def is_hidden_or_temporary(filename: str) -> bool:
    """
    Whether a file is one the index must never show: hidden files (which is
    also how in-progress uploads are named) and editors' or copy tools'
    temporaries.
    """
    return (
        filename.startswith((".", "~", "#"))
        or filename.endswith(("~", ".tmp", ".part", ".partial", ".swp"))
    )


def parse_filename(filename: str) -> DistributionName | None:
    """
    Read project, version and kind out of a distribution file's name.

    @return: L{None} for anything that is not a wheel, an sdist or an egg
        (signatures, metadata, notes, temporaries), and for names with
        characters no valid distribution needs or whose project is not a
        PEP 508 name: file names become URLs, page text and log lines.
    """
    if not _SAFE_FILENAME.match(filename):
        return None
    dist = _parse_filename(filename)
    if dist is None or not _NORMALIZED_PROJECT.match(dist.project):
        return None
    return dist


def _parse_filename(filename: str) -> DistributionName | None:
    if is_hidden_or_temporary(filename) or "/" in filename or "\\" in filename:
        return None
    if filename.endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return DistributionName(canonicalize_name(name), str(version), "bdist_wheel")
    if filename.endswith(".egg"):
        match = _EGG.match(filename)
        if match is None:
            return None
        return DistributionName(
            normalize_name(match["name"]), match["version"], "bdist_egg"
        )
    suffix = next((s for s in SDIST_SUFFIXES if filename.endswith(s)), None)
    if suffix is None:
        return None
    try:
        name, version = parse_sdist_filename(filename[: -len(suffix)] + ".tar.gz")
        return DistributionName(canonicalize_name(name), str(version), "sdist")
    except (InvalidSdistFilename, InvalidVersion):
        pass
    # Old sdists put dashes in the project name ("my-pkg-1.0.tar.gz") or use
    # versions PEP 440 cannot parse; split at the first dash before a digit.
    match = _LEGACY_SDIST.match(filename[: -len(suffix)])
    if match is None:
        return None
    return DistributionName(normalize_name(match["name"]), match["version"], "sdist")


def version_from_filename_matches(dist: DistributionName, version: str) -> bool:
    """
    Whether a version given by a client (an upload form, say) names the same
    release as the one in a file name, comparing PEP 440 versions where both
    parse and the strings otherwise.
    """
    try:
        return Version(dist.version) == Version(version)
    except InvalidVersion:
        return dist.version == version
