"""
The fallback index as a cache (C{--fallback-mode proxy}): project pages
fetched with treq and kept for a TTL, files downloaded once into the cache
directory, metadata files likewise; one upstream request per page or file
however many clients ask at once (single flight).

When the upstream is down, slow or failing, what was fetched before keeps
being served: pages past their TTL, files forever (a file never changes).
After a failure the upstream is left alone for L{RETRY_SECONDS}, so stale
pages are answered at once instead of after a timeout each.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import treq
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, RedirectAgent
from twisted.web.http_headers import Headers

from twistedpypi.config import DEFAULT_UPSTREAM_TIMEOUT, DEFAULT_UPSTREAM_TTL
from twistedpypi.fs import is_leftover, temporary_tag
from twistedpypi.index.model import Page
from twistedpypi.proxy.fetch import (
    FileDownload,
    UpstreamError,
    classify,
    error_for_status,
)
from twistedpypi.proxy.page import (
    ACCEPT,
    UnreadablePage,
    UpstreamFile,
    UpstreamProject,
    parse_json,
    parse_project_page,
)
from twistedpypi.proxy.singleflight import SingleFlight

log = Logger()

RETRY_SECONDS = 10.0
"""After the upstream failed, stale pages are served without asking it for this long."""

PAGE_FILE = ".project.json"
"""A project's last page from upstream, kept in its cache folder for restarts."""

METADATA_SUFFIX = ".metadata"

MAX_PROJECTS = 10_000
"""Project pages kept in memory; as many answers that upstream has no such project."""

_PROJECT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def is_normalized_project_name(name: str) -> bool:
    """
    Whether C{name} is a normalised PEP 508 project name: only those are
    asked of the upstream, and only those become folders in the cache.
    """
    return _PROJECT_NAME.match(name) is not None


def split_credentials(url: str) -> tuple[str, bytes | None]:
    """
    The URL without the C{user:password@} part, and the C{Authorization}
    header value that part stands for.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    secret = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(secret.encode("utf-8"))
    return urlunsplit(parts._replace(netloc=host)), b"Basic " + token


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


@dataclass
class UpstreamStats:
    """
    Counters for C{/metrics}: what was asked of the upstream and what the
    cache answered.
    """

    page_fetches: int = 0
    page_hits: int = 0
    page_stale: int = 0
    file_fetches: int = 0
    file_hits: int = 0
    metadata_fetches: int = 0
    metadata_hits: int = 0
    errors: int = 0


@dataclass
class ProxiedProject:
    """
    A project page from upstream as cached: C{project} is L{None} when the
    upstream said it has no such project.
    """

    name: str
    project: UpstreamProject | None
    fetched: float
    pages: dict[object, Page] = field(default_factory=dict)

    async def cached(self, key: object, render: Callable[[], Page]) -> Page:
        """
        The page rendered for C{key}, rendered once, in a thread: a project
        with thousands of files takes a while.
        """
        page = self.pages.get(key)
        if page is None:
            page = self.pages[key] = await deferToThread(render)
        return page


class RecentProjects:
    """
    The upstream's answers kept in memory, least recently used forgotten
    first: at most C{limit} projects it has and C{limit} it has not, the
    latter also forgotten (as new answers come) once older than the TTL.
    Kept apart, so that requests for any number of made-up names neither
    grow memory without bound nor push real projects out.  A forgotten page
    is still on disk.
    """

    def __init__(self, limit: int, ttl: float) -> None:
        self.limit = limit
        self.ttl = ttl
        self._found: OrderedDict[str, ProxiedProject] = OrderedDict()
        self._missing: OrderedDict[str, ProxiedProject] = OrderedDict()

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)

    def peek(self, name: str) -> ProxiedProject | None:
        """The entry for C{name}, if kept, without counting it as a use."""
        return self._found.get(name) or self._missing.get(name)

    def get(self, name: str) -> ProxiedProject | None:
        """The entry for C{name}, if kept, counted as a use."""
        for entries in (self._found, self._missing):
            entry = entries.get(name)
            if entry is not None:
                entries.move_to_end(name)
                return entry
        return None

    def add(self, entry: ProxiedProject, now: float) -> None:
        """Keep C{entry}, replacing any earlier one of its name."""
        self._found.pop(entry.name, None)
        self._missing.pop(entry.name, None)
        entries = self._found if entry.project is not None else self._missing
        entries[entry.name] = entry
        while len(entries) > self.limit:
            entries.popitem(last=False)
        # The least recently used misses are at the front: drop the stale ones.
        while self._missing:
            oldest = next(iter(self._missing.values()))
            if now - oldest.fetched < self.ttl:
                break
            self._missing.popitem(last=False)


def _write_atomically(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    directory, filename = os.path.split(path)
    # Named like a download's temporary file, so the start-up sweep removes
    # it if this process dies before the rename; by node and process, so
    # that no two writers on a shared cache write one temporary file.
    temporary = os.path.join(directory, f".{filename}.{temporary_tag()}.part")
    with open(temporary, "wb") as stream:
        stream.write(data)
    os.replace(temporary, path)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


class Upstream:
    """
    The fallback index, fetched and cached.

    @ivar index_url: the index URL without credentials, safe to log.
    @ivar stats: counters of fetches and cache hits.
    """

    def __init__(
        self,
        index_url: str,
        cache_dir: str,
        ttl: float = DEFAULT_UPSTREAM_TTL,
        timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        reactor=None,
        pool: HTTPConnectionPool | None = None,
        max_projects: int = MAX_PROJECTS,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.index_url, self._authorization = split_credentials(index_url)
        self._origin = _origin(self.index_url)
        self.cache_dir = cache_dir
        self.ttl = ttl
        self.timeout = timeout
        if pool is None:
            pool = HTTPConnectionPool(reactor, persistent=True)
            pool.maxPersistentPerHost = 8
        self.pool = pool
        agent = Agent(reactor, connectTimeout=timeout, pool=self.pool)
        self._client = treq.client.HTTPClient(agent)
        # Files go through a bare agent: treq would ask for and undo gzip
        # encoding, which turns a .tar.gz into a .tar that fails its hash.
        self._file_agent = RedirectAgent(agent)
        self._projects = RecentProjects(max_projects, ttl)
        self._flights = SingleFlight()
        self._downloads: dict[str, FileDownload] = {}
        # "project/file" of every complete file in the cache: the ones this
        # server stored, and those the start-up scan found.  Until that scan
        # is done, what is not known here is asked of the disk, in a thread.
        self._complete: set[str] = set()
        self._scanned = False
        self._down_until = float("-inf")
        self.stats = UpstreamStats()

    def close(self) -> Deferred:
        """Close the pooled connections (at shutdown)."""
        return self.pool.closeCachedConnections()

    def _headers(self, url: str, **more: bytes) -> Headers:
        headers = Headers({name.replace("_", "-").encode("ascii"): [value] for name, value in more.items()})
        headers.setRawHeaders(b"user-agent", [b"twistedpypi"])
        if self._authorization is not None and _origin(url) == self._origin:
            headers.setRawHeaders(b"authorization", [self._authorization])
        return headers

    def _project_dir(self, name: str) -> str:
        return os.path.join(self.cache_dir, name)

    def _upstream_failed(self) -> None:
        self.stats.errors += 1
        self._down_until = self._reactor.seconds() + min(RETRY_SECONDS, max(self.ttl, 1.0))

    # Pages

    def project(self, name: str) -> Deferred:
        """
        The L{ProxiedProject} for the normalised C{name}: from the cache
        while fresh, else from upstream, else (upstream failing) from the
        cache however old; fails with L{UpstreamError}.
        """
        return Deferred.fromCoroutine(self._project(name))

    async def _project(self, name: str) -> ProxiedProject:
        if not is_normalized_project_name(name):
            raise UpstreamError(404, f"{name!r} is not a project name")
        cached = self._projects.get(name)
        if cached is None:
            cached = await self._load(name)
        now = self._reactor.seconds()
        if cached is not None and now - cached.fetched < self.ttl:
            self.stats.page_hits += 1
            return cached
        if cached is not None and cached.project is not None and now < self._down_until:
            self.stats.page_stale += 1
            return cached
        try:
            return await self._flights.run(("page", name), lambda: self._fetch_page(name))
        except UpstreamError as error:
            if cached is None or cached.project is None or error.code == 404:
                raise
            log.warn(
                "serving the cached page of {project}: {reason}", project=name, reason=error.reason
            )
            self.stats.page_stale += 1
            return cached

    def _fetch_page(self, name: str) -> Deferred:
        fetching = Deferred.fromCoroutine(self._fetch_page_now(name))
        # One limit for connecting, the headers and the body together.
        fetching.addTimeout(self.timeout, self._reactor)

        def failed(failure: Failure) -> None:
            error = classify(failure, f"the page of {name}", self.timeout)
            if error.code != 404:
                self._upstream_failed()
                log.warn("upstream page of {project}: {reason}", project=name, reason=error.reason)
            raise error

        return fetching.addErrback(failed)

    async def _fetch_page_now(self, name: str) -> ProxiedProject:
        url = f"{self.index_url}{quote(name)}/"
        self.stats.page_fetches += 1
        response = await self._client.get(url, headers=self._headers(url, accept=ACCEPT))
        if response.code in (404, 410):
            await response.content()
            entry = ProxiedProject(name, None, self._reactor.seconds())
            self._projects.add(entry, entry.fetched)
            return entry
        if response.code != 200:
            await response.content()
            raise error_for_status(response.code, f"the page of {name}")
        body = await response.content()
        final_url = getattr(getattr(response, "request", None), "absoluteURI", None)
        base = final_url.decode("ascii") if isinstance(final_url, bytes) else url
        content_type = (response.headers.getRawHeaders(b"content-type") or [b"text/html"])[0]
        try:
            # Thousands of files take a second to read: not on the reactor.
            project = await deferToThread(parse_project_page, body, content_type.decode("latin-1"), base, name)
        except UnreadablePage as error:
            raise UpstreamError(502, f"the upstream page of {name} is unreadable: {error}") from None
        log.info(
            "fetched the page of {project} from {index} ({count} files)",
            project=name, index=self.index_url, count=len(project.files),
        )
        entry = ProxiedProject(name, project, self._reactor.seconds())
        self._projects.add(entry, entry.fetched)
        path = os.path.join(self._project_dir(name), PAGE_FILE)
        saving = deferToThread(lambda: _write_atomically(path, project.to_json()))
        saving.addErrback(lambda f: log.failure("could not keep the page of {project}", f, project=name))
        return entry

    async def _load(self, name: str) -> ProxiedProject | None:
        """The page kept on disk by an earlier run, as stale."""
        body = await deferToThread(_read, os.path.join(self._project_dir(name), PAGE_FILE))
        kept = self._projects.peek(name)
        if body is None or kept is not None:
            return kept
        try:
            project = await deferToThread(parse_json, body, self.index_url, name)
        except UnreadablePage:
            return None
        entry = ProxiedProject(name, project, float("-inf"))
        self._projects.add(entry, self._reactor.seconds())
        return entry

    async def _entry(self, name: str, filename: str) -> UpstreamFile:
        proxied = await self._project(name)
        entry = proxied.project.file(filename) if proxied.project is not None else None
        if entry is None:
            raise UpstreamError(404, f"{filename!r} is not on the upstream index")
        return entry

    # Files

    def cache_scanned(self, complete: set[str]) -> None:
        """
        The start-up scan found the files C{complete} (C{"project/file"}) in
        the cache: from now on, what is in the cache is known without asking
        the disk.
        """
        self._complete |= complete
        self._scanned = True

    def cached_file(self, name: str, filename: str) -> Deferred:
        """
        The path of C{filename} (a distribution or its metadata file) in the
        cache, or L{None} if it is not there yet.
        """
        return Deferred.fromCoroutine(self._cached_file(name, filename))

    async def _cached_file(self, name: str, filename: str) -> str | None:
        path = os.path.join(self._project_dir(name), filename)
        key = f"{name}/{filename}"
        if key in self._complete:
            return path
        if self._scanned:
            return None
        if await deferToThread(os.path.isfile, path):
            self._complete.add(key)
            return path
        return None

    def forget_file(self, name: str, filename: str) -> None:
        """
        C{filename} is gone from the cache (someone deleted it to reclaim
        space): fetch it again when it is asked for.
        """
        self._complete.discard(f"{name}/{filename}")

    def known_sha256(self, name: str, filename: str) -> str | None:
        """The file's sha256 if upstream's page (in memory) gives it."""
        proxied = self._projects.peek(name)
        entry = proxied.project.file(filename) if proxied and proxied.project else None
        return entry.hashes.get("sha256") if entry else None

    def download(self, name: str, filename: str) -> Deferred:
        """
        The L{FileDownload} of C{filename}: the one in progress, or a new
        one; L{None} when the file reached the cache meanwhile; fails with
        L{UpstreamError} when upstream does not list it.
        """
        return Deferred.fromCoroutine(self._download(name, filename))

    async def _download(self, name: str, filename: str) -> FileDownload | None:
        key = f"{name}/{filename}"
        running = self._downloads.get(key)
        if running is not None:
            return running
        entry = await self._entry(name, filename)
        if await self.cached_file(name, filename) is not None:
            return None
        running = self._downloads.get(key)
        if running is not None:
            return running
        download = FileDownload(
            self._file_agent,
            entry.url,
            self._headers(entry.url),
            os.path.join(self._project_dir(name), filename),
            entry.hashes,
            self.timeout,
            self._reactor,
        )
        self._downloads[key] = download
        self.stats.file_fetches += 1
        log.info("fetching {filename} from upstream", filename=filename)

        def over(_: object) -> None:
            del self._downloads[key]
            if not isinstance(download.result, Failure):
                self._complete.add(key)
            elif download.result.value.code != 404:
                self._upstream_failed()

        download.start().addCallback(over)
        return download

    def metadata(self, name: str, filename: str) -> Deferred:
        """
        The path of the cached PEP 658 metadata of C{filename}, fetched from
        upstream the first time; fails with L{UpstreamError}.
        """
        return Deferred.fromCoroutine(self._metadata(name, filename))

    async def _metadata(self, name: str, filename: str) -> str:
        cached = await self.cached_file(name, filename + METADATA_SUFFIX)
        if cached is not None:
            self.stats.metadata_hits += 1
            return cached
        path = os.path.join(self._project_dir(name), filename + METADATA_SUFFIX)
        return await self._flights.run(
            ("metadata", path), lambda: Deferred.fromCoroutine(self._fetch_metadata(name, filename, path))
        )

    async def _fetch_metadata(self, name: str, filename: str, path: str) -> str:
        entry = await self._entry(name, filename)
        if entry.core_metadata is False:
            raise UpstreamError(404, f"the upstream index offers no metadata file for {filename}")
        self.stats.metadata_fetches += 1
        url = entry.metadata_url
        what = filename + METADATA_SUFFIX

        async def get() -> bytes:
            response = await self._client.get(url, headers=self._headers(url))
            body = await response.content()
            if response.code != 200:
                raise error_for_status(response.code, what)
            return body

        try:
            body = await Deferred.fromCoroutine(get()).addTimeout(self.timeout, self._reactor)
        except Exception:
            error = classify(Failure(), what, self.timeout)
            if error.code != 404:
                self._upstream_failed()
            raise error from None
        # A metadata file is a few kilobytes: hashing it here costs less than
        # a trip to a thread.
        if isinstance(entry.core_metadata, dict):
            for algorithm, digest in entry.core_metadata.items():
                if algorithm in hashlib.algorithms_available and hashlib.new(algorithm, body).hexdigest() != digest.lower():
                    raise UpstreamError(502, f"the metadata of {filename} from upstream does not match its {algorithm}")
        await deferToThread(_write_atomically, path, body)
        self._complete.add(f"{name}/{filename}{METADATA_SUFFIX}")
        return path


def sweep_temporaries(cache_dir: str, before: float = float("inf")) -> int:
    """
    Remove the temporary files of downloads a previous run did not finish
    (last written before C{before}, so not this run's, and left by this
    node: see L{twistedpypi.fs.is_leftover}; nodes may share the cache);
    return how many.  Blocks: call it in a thread.
    """
    return scan_cache(cache_dir, before)[0]


def scan_cache(cache_dir: str, before: float = float("inf")) -> tuple[int, set[str]]:
    """
    Remove the temporary files of unfinished downloads (see
    L{sweep_temporaries}) and list the complete files, as
    C{"project/file"}: how many were removed, and that list.  Blocks: call
    it in a thread.
    """
    removed = 0
    complete: set[str] = set()
    for directory, _, filenames in os.walk(cache_dir):
        project = os.path.relpath(directory, cache_dir)
        for filename in filenames:
            path = os.path.join(directory, filename)
            if filename.startswith(".") and filename.endswith(".part"):
                try:
                    if os.stat(path).st_mtime < before and _unfinished_here(filename, path):
                        os.unlink(path)
                        removed += 1
                except OSError:
                    pass
            elif not filename.startswith(".") and is_normalized_project_name(project):
                complete.add(f"{project}/{filename}")
    return removed, complete


def _unfinished_here(filename: str, path: str) -> bool:
    """
    Whether the temporary file C{filename} (C{.FILE[.RANDOM].TAG.part}, TAG
    naming its node and process) is a leftover this process may delete.
    Names without a tag, from before nodes were named, were this node's.
    """
    tag = filename[: -len(".part")].rpartition(".")[2]
    _, separator, pid = tag.rpartition("_")
    if not (separator and pid.isdigit()):
        return True
    return is_leftover(tag, path, at_start=True)


class UpstreamService(Service):
    """
    Sweeps away unfinished downloads at start, and closes the upstream's
    pooled connections when the server stops.
    """

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def startService(self) -> None:
        super().startService()
        log.info(
            "proxying projects not found here from {index}, cached in {cache_dir}",
            index=self.upstream.index_url, cache_dir=self.upstream.cache_dir,
        )
        scanning = deferToThread(scan_cache, self.upstream.cache_dir, time.time())

        def scanned(result: tuple[int, set[str]]) -> None:
            removed, complete = result
            self.upstream.cache_scanned(complete)
            if removed:
                log.info("removed {count} unfinished downloads", count=removed)

        scanning.addCallback(scanned)
        scanning.addErrback(lambda f: log.failure("scanning the upstream cache", f))

    def stopService(self) -> Deferred:
        super().stopService()
        return self.upstream.close()
