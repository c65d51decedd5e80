"""
Distribution file names: which files are packages, and which project and
version each one holds.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache

from packaging.version import InvalidVersion, Version

SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
"""Archive suffixes an sdist may carry, longest first where they overlap."""

SIGNATURE_SUFFIX = ".asc"
"""What a detached signature's name adds to its distribution file's."""

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


@dataclass(slots=True, unsafe_hash=True)
class DistributionName:
    """
    What a distribution's file name says about it.  Never changed once
    made, but not frozen: a frozen dataclass takes three times longer to
    make, and every file has one (made again for each on a restart).

    @ivar project: the PEP 503 normalised project name.
    @ivar version: the version exactly as written in the file name.
    @ivar kind: C{"bdist_wheel"}, C{"sdist"} or C{"bdist_egg"}, the
        C{packagetype} PyPI's APIs use.
    """

    project: str
    version: str
    kind: str


@lru_cache(maxsize=65536)
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


def spells_project(name: str, project: str) -> bool:
    """
    Whether C{name} (a project's name as its metadata gives it) may be
    shown for the normalised C{project}: a project name as the core
    metadata spec allows (ASCII letters and digits, with C{._-} inside)
    that PEP 503 normalisation turns into C{project}.  Checked as ASCII
    first, since C{str.lower} also folds look-alikes onto ASCII letters
    (the KELVIN SIGN onto C{k}).
    """
    return is_project_name(name) and normalize_name(name) == project


@lru_cache(maxsize=65536)
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


_WHEEL_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$", re.ASCII)


def distribution_name(project: str, version: str, kind: str) -> DistributionName:
    """
    A L{DistributionName} whose strings are shared with every other file of
    the project and version.  (The names themselves are not shared: most
    releases have one file of each kind, and a cache of them would cost
    three times what it saves.)
    """
    return DistributionName(sys.intern(project), sys.intern(version), sys.intern(kind))


@lru_cache(maxsize=65536)
def _normalize_version(version: str) -> str | None:
    """A version in PEP 440's normal form, or L{None}; cached, as versions repeat."""
    try:
        return str(Version(version))
    except InvalidVersion:
        return None


def _parse_wheel(stem: str) -> DistributionName | None:
    # name-version(-build)?-python-abi-platform, as the wheel spec says.
    parts = stem.split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return None
    if len(parts) == 6 and not parts[2][:1].isdigit():
        return None
    if not _WHEEL_NAME.match(parts[0]):
        return None
    version = _normalize_version(parts[1])
    if version is None:
        return None
    return distribution_name(normalize_name(parts[0]), version, "bdist_wheel")


def _parse_sdist(stem: str) -> DistributionName | None:
    # name-version, where old sdists put dashes in the name
    # ("my-pkg-1.0"): the version is what follows the last dash that is
    # followed by a valid version, and failing that by a digit.
    name, dash, version = stem.rpartition("-")
    if dash and _PROJECT_NAME.match(name):
        normalized = _normalize_version(version)
        if normalized is not None:
            return distribution_name(normalize_name(name), normalized, "sdist")
    match = _LEGACY_SDIST.match(stem)
    if match is None or not _PROJECT_NAME.match(match["name"]):
        return None
    return distribution_name(normalize_name(match["name"]), match["version"], "sdist")


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
    if is_hidden_or_temporary(filename):
        return None
    if filename.endswith(".whl"):
        return _parse_wheel(filename[:-4])
    if filename.endswith(".egg"):
        match = _EGG.match(filename)
        if match is None:
            return None
        return distribution_name(normalize_name(match["name"]), match["version"], "bdist_egg")
    suffix = next((s for s in SDIST_SUFFIXES if filename.endswith(s)), None)
    if suffix is None:
        return None
    return _parse_sdist(filename[: -len(suffix)])


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
