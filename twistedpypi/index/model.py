"""
The in-memory index: which projects and files exist, with everything known
about each file, and the pages rendered from them.

Pages are rendered the first time they are asked for after a change and kept
until the next change touches them, so answering a request is a dictionary
lookup whatever the number of files.  No reactor; the only I/O is reading
core metadata back from the L{MetadataStore} an index may be given.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Callable, Iterable, Iterator, Mapping

from packaging.version import InvalidVersion, Version

from twistedpypi.index.distfile import (
    DistributionName,
    spells_project,
    version_sort_key,
)
from twistedpypi.index.markers import ACTIVE_STATUS, ProjectStatus
from twistedpypi.index.metadatastore import MetadataStore


@dataclass(slots=True)
class DistributionFile:
    """
    One distribution file in a package directory, described once when it
    appeared.  Never changed afterwards: a change is a new one, made with
    L{dataclasses.replace}.  (Not frozen only because a frozen dataclass
    takes seven times longer to make, and a restart makes one per file.)

    Digests are raw bytes, not hex, and the sha256 stands alone rather
    than in a mapping: a large index holds one of these per file.

    @ivar filename: its base name, which is also its URL under C{/packages/}.
    @ivar directory: the absolute path of the directory it is in (one
        string shared by all its files: see L{path}).
    @ivar mtime_ns: its modification time, which is also its upload time.
    @ivar sha256_digest: its raw sha256.
    @ivar extra_digests: raw digests of the other algorithms it was hashed
        with, as C{(algorithm, digest)} pairs.
    @ivar metadata: its core metadata file, if one could be read: the bytes
        themselves, or where the index's L{MetadataStore} keeps them (see
        L{PackageIndex.metadata_of}).
    @ivar metadata_digest: the raw sha256 of C{metadata} when it may be
        served as the PEP 658 metadata file, else L{None}.
    @ivar display_name: the project name as the metadata spells it.
    @ivar signature: whether a detached signature C{<filename>.asc} sits
        beside it.
    @ivar yanked: the reason it was yanked (PEP 592), possibly empty, or
        L{None} when it is not: kept by the index (L{PackageIndex.mark}),
        never by its description.
    """

    filename: str
    directory: str
    dist: DistributionName
    size: int
    mtime_ns: int
    sha256_digest: bytes
    extra_digests: tuple[tuple[str, bytes], ...] = ()
    metadata: bytes | int | None = None
    metadata_digest: bytes | None = None
    requires_python: str | None = None
    display_name: str | None = None
    signature: bool = False
    yanked: str | None = None

    @property
    def path(self) -> str:
        """Its absolute path on disk."""
        return self.directory + os.sep + self.filename

    @property
    def project(self) -> str:
        """The normalised project name."""
        return self.dist.project

    @property
    def version(self) -> str:
        """The version, as in the file name."""
        return self.dist.version

    @property
    def sha256(self) -> str:
        """The file's sha256, hex."""
        return self.sha256_digest.hex()

    @property
    def hashes(self) -> dict[str, str]:
        """Hex digests by algorithm name; always has C{sha256}."""
        hashes = {"sha256": self.sha256_digest.hex()}
        hashes.update((name, digest.hex()) for name, digest in self.extra_digests)
        return hashes

    @property
    def metadata_sha256(self) -> str | None:
        """The hex sha256 of the servable metadata file, or L{None}."""
        return None if self.metadata_digest is None else self.metadata_digest.hex()


MetadataReader = Callable[[DistributionFile], "bytes | None"]
"""Reads a file's core metadata: L{PackageIndex.metadata_of}."""


def split_path(path: str) -> tuple[str, str]:
    """
    A file's path as the L{DistributionFile.directory} and
    L{DistributionFile.filename} that make it up again.
    """
    directory, _, filename = path.rpartition(os.sep)
    return directory, filename


class FilesByPath:
    """
    Files by absolute path, kept by directory, then by file name: the path
    strings themselves are not kept (100,000 of them would take 11 MB),
    only made when iterated over.
    """

    def __init__(self) -> None:
        self._directories: dict[str, dict[str, DistributionFile]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for directory, files in list(self._directories.items()):
            prefix = directory + os.sep
            for filename in list(files):
                yield prefix + filename

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path) is not None

    def __getitem__(self, path: str) -> DistributionFile:
        dist = self.get(path)
        if dist is None:
            raise KeyError(path)
        return dist

    def get(self, path: str, default: DistributionFile | None = None) -> DistributionFile | None:
        """The file at C{path}, or C{default}."""
        directory, filename = split_path(path)
        files = self._directories.get(directory)
        return default if files is None else files.get(filename, default)

    def in_directory(self, directory: str) -> Mapping[str, DistributionFile]:
        """The files in one directory (not below it), by name; read only."""
        return self._directories.get(directory, _NO_FILES)

    def add(self, dist: DistributionFile) -> DistributionFile | None:
        """
        Put C{dist} at its path.

        @return: the file it replaces there, if any.
        """
        files = self._directories.get(dist.directory)
        if files is None:
            files = self._directories[sys.intern(dist.directory)] = {}
        old = files.get(dist.filename)
        files[dist.filename] = dist
        self._count += old is None
        return old

    def pop(self, path: str, default: DistributionFile | None = None) -> DistributionFile | None:
        """Take the file at C{path} out, if there is one."""
        directory, filename = split_path(path)
        files = self._directories.get(directory)
        if files is None or filename not in files:
            return default
        self._count -= 1
        dist = files.pop(filename)
        if not files:
            del self._directories[directory]
        return dist

    def values(self) -> Iterator[DistributionFile]:
        """Every file."""
        for files in list(self._directories.values()):
            yield from list(files.values())

    def items(self) -> Iterator[tuple[str, DistributionFile]]:
        """Every file with its path."""
        for dist in self.values():
            yield dist.path, dist


_NO_FILES: Mapping[str, DistributionFile] = MappingProxyType({})

GZIP_FROM = 1024
"""Pages at least this long are kept gzip-compressed."""


@dataclass(frozen=True, slots=True)
class Page:
    """
    A rendered response body with its media type and ETag.

    Pages of some size are kept gzip-compressed, a third or less of their
    size (a large index keeps thousands of them), and sent so to the
    clients that accept it: pip, uv and browsers all do.

    @ivar gzipped: the body, gzip-compressed, or L{None} for a page kept
        as it is.
    """

    content_type: bytes
    etag: bytes
    plain: bytes | None
    gzipped: bytes | None

    @classmethod
    def of(cls, body: bytes, content_type: bytes) -> "Page":
        """
        Wrap a body, deriving a strong ETag from its bytes and its media
        type: the same bytes as C{text/html} and as the simple API's HTML
        type are two representations, which caches must tell apart.
        """
        hasher = hashlib.blake2b(content_type, digest_size=16)
        hasher.update(b"\n")
        hasher.update(body)
        etag = b'"' + hasher.hexdigest().encode("ascii") + b'"'
        if len(body) >= GZIP_FROM:
            return cls(content_type, etag, None, gzip.compress(body, compresslevel=6, mtime=0))
        return cls(content_type, etag, body, None)

    @property
    def body(self) -> bytes:
        """The body, uncompressed."""
        # zlib reads the gzip header itself: gzip.decompress parses it in
        # Python first.
        return self.plain if self.gzipped is None else zlib.decompress(self.gzipped, wbits=31)

    @property
    def gzip_etag(self) -> bytes:
        """The ETag of the gzip-compressed representation."""
        return self.etag[:-1] + b'-gzip"'


@dataclass(slots=True)
class Project:
    """
    One project: its files and what is derived from them (sorted files,
    display name, rendered pages), kept until the files change.

    @ivar pages: the simple API's pages, one per representation.
    @ivar api_pages: the JSON API's pages, which hold absolute URLs and so
        are rendered per public base URL: kept apart, and bounded by their
        user, so that many host names cannot evict the simple pages.
    @ivar summaries: the releases' summaries by version, as far as they
        were asked for (they are read out of metadata kept on disk).
    @ivar status: its PEP 792 status.
    """

    name: str
    files: dict[str, DistributionFile] = field(default_factory=dict)
    pages: dict[object, Page] = field(default_factory=dict)
    api_pages: dict[object, Page] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)
    status: ProjectStatus = ACTIVE_STATUS
    _sorted: list[DistributionFile] | None = None
    _display_name: str | None = None

    def changed(self) -> None:
        """Forget everything derived from the files: they changed."""
        self.pages.clear()
        self.api_pages.clear()
        self.summaries.clear()
        self._sorted = None
        self._display_name = None

    @property
    def display_name(self) -> str:
        """
        The name as the newest file's metadata spells it, or the normalised
        name.  Only an ASCII spelling of this very name is taken (see
        L{spells_project}), whatever a file's description, cached by an
        older version perhaps, holds: never a look-alike.
        """
        if self._display_name is None:
            self._display_name = next(
                (
                    dist.display_name
                    for dist in reversed(self.sorted_files())
                    if dist.display_name and spells_project(dist.display_name, self.name)
                ),
                self.name,
            )
        return self._display_name

    def sorted_files(self) -> list[DistributionFile]:
        """
        The files, oldest version first, then by file name.
        """
        if self._sorted is None:
            self._sorted = sorted(
                self.files.values(),
                key=lambda dist: (version_sort_key(dist.version), dist.filename),
            )
        return self._sorted

    def offered_files(self) -> list[DistributionFile]:
        """
        The files offered for download, oldest version first: none while
        the project is quarantined.
        """
        return self.sorted_files() if self.status.offers_files else []

    def versions(self) -> list[str]:
        """
        The distinct versions, oldest first.
        """
        return sorted({dist.version for dist in self.files.values()}, key=version_sort_key)

    def latest_version(self) -> str:
        """
        The newest final release, or the newest version when there are only
        pre-releases.
        """
        versions = self.versions()
        for version in reversed(versions):
            try:
                if not Version(version).is_prerelease:
                    return version
            except InvalidVersion:
                continue
        return versions[-1]

    def cached(self, key: object, render: Callable[[], Page]) -> Page:
        """
        The page under C{key}, rendered by C{render} if the project changed
        since it was last rendered.
        """
        page = self.pages.get(key)
        if page is None:
            page = self.pages[key] = render()
        return page


class PackageIndex:
    """
    Every project and file being served, and the index-wide pages.

    Changes arrive in batches through L{update}; each batch invalidates just
    the pages that can have changed.

    @ivar metadata_store: where files' core metadata is kept off the heap,
        if anywhere: a file's C{metadata} is then a place in it.
    @ivar yanks: the reasons of the yanked files, by the file's path (a
        file may come after its marker: it is yanked as it arrives).
    @ivar statuses: the projects' statuses other than active, by
        normalised name (a project may have one before it has files).
    """

    def __init__(self, metadata_store: MetadataStore | None = None) -> None:
        self.metadata_store = metadata_store
        self.projects: dict[str, Project] = {}
        self.files_by_path = FilesByPath()
        self.files_by_name: dict[str, DistributionFile] = {}
        self._shadowed: dict[str, list[DistributionFile]] = {}
        self.serial = 0
        self.total_size = 0
        self._pages: dict[object, Page] = {}
        self._listeners: list[Callable[[], None]] = []
        self.yanks: dict[str, str] = {}
        self.statuses: dict[str, ProjectStatus] = {}

    @property
    def file_count(self) -> int:
        """How many files are served."""
        return len(self.files_by_path)

    def project(self, name: str) -> Project | None:
        """The project of that normalised name, if any."""
        return self.projects.get(name)

    def file(self, filename: str) -> DistributionFile | None:
        """The file served under that name, if any."""
        return self.files_by_name.get(filename)

    def offered_file(self, filename: str) -> DistributionFile | None:
        """
        The file served under that name, if any and if its project offers
        its files for download (not while quarantined, PEP 792).
        """
        dist = self.files_by_name.get(filename)
        if dist is None or not self.statuses or self.status_of(dist.project).offers_files:
            return dist
        return None

    def metadata_of(self, dist: DistributionFile) -> bytes | None:
        """
        The core metadata file of C{dist}, if it has one: read back from the
        metadata store when it is kept there (a few KB read from a file the
        page cache holds).

        @raise OSError: the store cannot be read.
        """
        metadata = dist.metadata
        if metadata is None or isinstance(metadata, bytes):
            return metadata
        return self.metadata_store.read(metadata)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call C{listener} after every batch of changes."""
        self._listeners.append(listener)

    def update(
        self,
        added: Iterable[DistributionFile] = (),
        removed: Iterable[str] = (),
    ) -> None:
        """
        Apply a batch of changes: files that appeared or changed, and paths
        that disappeared.
        """
        touched: set[str] = set()
        for path in removed:
            old = self.files_by_path.pop(path, None)
            if old is not None:
                self._unlink(old)
                touched.add(old.project)
        add = self.files_by_path.add
        yanks = self.yanks
        for dist in added:
            reason = yanks.get(dist.path) if yanks else None
            if dist.yanked != reason:
                dist = replace(dist, yanked=reason)
            old = add(dist)
            if old is None:
                self._link(dist)
            else:
                self._replace(old, dist)
            touched.add(dist.dist.project)
        self._changed(touched)

    def _changed(self, touched: set[str]) -> None:
        """The projects named in C{touched} changed: forget their pages."""
        if not touched:
            return
        for name in touched:
            project = self.projects.get(name)
            if project is not None:
                project.changed()
        self.serial += 1
        self._pages.clear()
        for listener in self._listeners:
            listener()

    def set_signature(self, path: str, present: bool) -> None:
        """
        Record that the detached signature of the file at C{path} appeared
        or disappeared.
        """
        dist = self.files_by_path.get(path)
        if dist is not None and dist.signature != present:
            self.update(added=[replace(dist, signature=present)])

    def status_of(self, name: str) -> ProjectStatus:
        """The PEP 792 status of the project of that normalised name."""
        return self.statuses.get(name, ACTIVE_STATUS)

    def mark(
        self,
        yanks: Mapping[str, str | None] = MappingProxyType({}),
        statuses: Mapping[str, ProjectStatus | None] = MappingProxyType({}),
    ) -> None:
        """
        Apply a batch of marker changes: files yanked (with the reason) or
        unyanked (L{None}), by path, and projects whose status was set or
        cleared (L{None}), by normalised name.  Pages change with them, and
        so do their ETags.
        """
        touched: set[str] = set()
        for path, reason in yanks.items():
            if reason is None:
                self.yanks.pop(path, None)
            else:
                self.yanks[path] = reason
            dist = self.files_by_path.get(path)
            if dist is not None and dist.yanked != reason:
                new = replace(dist, yanked=reason)
                self.files_by_path.add(new)
                self._replace(dist, new)
                touched.add(dist.project)
        for name, status in statuses.items():
            if status is None or status == ACTIVE_STATUS:
                self.statuses.pop(name, None)
                status = ACTIVE_STATUS
            else:
                self.statuses[name] = status
            project = self.projects.get(name)
            if project is not None and project.status != status:
                project.status = status
                touched.add(name)
        self._changed(touched)

    def _link(self, dist: DistributionFile) -> None:
        # With the same file name in several directories, the one seen first
        # is served; the others wait behind it in case it goes away.
        if dist.filename in self.files_by_name:
            self._shadowed.setdefault(dist.filename, []).append(dist)
            return
        self._serve(dist)

    def _serve(self, dist: DistributionFile) -> None:
        self.files_by_name[dist.filename] = dist
        self.total_size += dist.size
        name = dist.dist.project
        project = self.projects.get(name)
        if project is None:
            project = self.projects[name] = Project(name, status=self.status_of(name))
        project.files[dist.filename] = dist

    def _replace(self, old: DistributionFile, new: DistributionFile) -> None:
        # The same path, so the same file name and project: the new
        # description takes the old one's place, served or waiting, rather
        # than queueing behind a copy of the same name elsewhere.
        if self.files_by_name.get(old.filename) is old:
            self.files_by_name[new.filename] = new
            self.projects[new.project].files[new.filename] = new
            self.total_size += new.size - old.size
        else:
            waiting = self._shadowed[old.filename]
            waiting[next(i for i, dist in enumerate(waiting) if dist is old)] = new

    def _unlink(self, dist: DistributionFile) -> None:
        waiting = self._shadowed.get(dist.filename)
        if self.files_by_name.get(dist.filename) is not dist:
            waiting.remove(dist)
        else:
            project = self.projects[dist.project]
            del project.files[dist.filename]
            del self.files_by_name[dist.filename]
            self.total_size -= dist.size
            if not project.files:
                del self.projects[dist.project]
            if waiting:
                self._serve(waiting.pop(0))
        if waiting == []:
            del self._shadowed[dist.filename]

    def cached(self, key: object, render: Callable[[], Page]) -> Page:
        """
        An index-wide page (root listings, welcome page), rendered by
        C{render} if anything changed since it was last rendered.
        """
        page = self._pages.get(key)
        if page is None:
            page = self._pages[key] = render()
        return page
