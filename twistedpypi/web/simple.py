"""
The simple repository API under C{/simple/}: PEP 503 HTML and PEP 691 JSON,
negotiated, from pages the index keeps rendered.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index.distfile import is_project_name, normalize_name
from twistedpypi.index.model import PackageIndex, Page, Project
from twistedpypi.pages.simple import (
    SIMPLE_JSON,
    simple_project_html,
    simple_project_json,
    simple_root_html,
    simple_root_json,
)
from twistedpypi.web.memo import BoundedMemo
from twistedpypi.web.negotiate import choose_media_type
from twistedpypi.web.respond import (
    absolute_redirect,
    error_page,
    relative_redirect,
    send_page,
)


class MissingProject(Protocol):
    """
    What to answer for a project this server does not have.
    """

    def render_missing(self, request: Request, project: str, media_type: bytes) -> bytes | int:
        """
        Answer a request for the simple page of C{project}, which is not in
        the local index; may return C{NOT_DONE_YET}.
        """


class NotFound:
    """
    Unknown projects are 404 (C{--disable-fallback}).
    """

    def render_missing(self, request: Request, project: str, media_type: bytes) -> bytes:
        return error_page(request, 404, "No such project on this index", f"project {project!r} is not on this index")


class FallbackRedirect:
    """
    Unknown projects are redirected to another index, as pypiserver does.

    A C{user:password@} in C{fallback_url} is left out of the redirects:
    they go to anonymous clients (the command line refuses such a URL in
    this mode; this guards a L{Config} built some other way).
    """

    def __init__(self, fallback_url: str) -> None:
        parts = urlsplit(fallback_url)
        host = parts.netloc.rpartition("@")[2]
        self.fallback_url = urlunsplit(parts._replace(netloc=host))

    def render_missing(self, request: Request, project: str, media_type: bytes) -> bytes:
        return absolute_redirect(request, f"{self.fallback_url}{project}/")


def render_project_page(
    project: Project, media_type: bytes, hash_algo: str | None, serial: int = 0
) -> Page:
    """
    A project's page in one of the simple API's representations, from the
    project's cache; C{serial} is the index's, for the JSON page's meta.
    """
    def render() -> Page:
        if media_type == SIMPLE_JSON:
            return Page.of(simple_project_json(project, hash_algo, serial), media_type)
        return Page.of(simple_project_html(project, hash_algo), media_type)

    return project.cached(media_type, render)


_served_names: BoundedMemo[bytes, str] = BoundedMemo(4096)
"""Path segments already found to be project names as the index spells
them (valid and normalised), with their text: what L{SimpleIndex} need not
check again."""


class SimpleIndex(Resource):
    """
    C{/simple/} and C{/simple/<project>/}.
    """

    isLeaf = True

    def __init__(
        self,
        index: PackageIndex,
        missing: MissingProject,
        hash_algo: str | None = "sha256",
        cache_control: bytes | None = None,
    ) -> None:
        super().__init__()
        self.index = index
        self.missing = missing
        self.hash_algo = hash_algo
        self.cache_control = cache_control

    def render_GET(self, request: Request) -> bytes | int:
        postpath = request.postpath
        format_values = request.args.get(b"format")
        media_type = choose_media_type(
            request.getHeader(b"accept"), format_values[0] if format_values else None
        )
        if len(postpath) == 2 and postpath[1] == b"" and media_type is not None:
            # The common request, /simple/<name>/ with the name as served:
            # checked once per name.
            name = _served_names.get(postpath[0])
            project = None if name is None else self.index.project(name)
            if project is not None:
                page = project.pages.get(media_type) or render_project_page(
                    project, media_type, self.hash_algo, self.index.serial
                )
                return send_page(request, page, cache_control=self.cache_control, vary=b"Accept")
        request.setHeader(b"vary", b"Accept")
        if not postpath:
            return relative_redirect(request, "/simple/")
        if media_type is None:
            return error_page(
                request,
                406,
                "Not Acceptable: none of the media types in Accept is offered",
                "none of the media types in Accept is offered: use text/html,"
                " application/vnd.pypi.simple.v1+html or application/vnd.pypi.simple.v1+json",
            )
        if postpath == [b""]:
            return self._root(request, media_type)
        try:
            name = postpath[0].decode("utf-8")
        except UnicodeDecodeError:
            return error_page(request, 404, "not a project name")
        if not is_project_name(name):
            return error_page(request, 404, "not a project name")
        if len(postpath) > 2 or (len(postpath) == 2 and postpath[1] != b""):
            return error_page(request, 404, "no such page")
        normalized = normalize_name(name)
        if normalized != name or len(postpath) == 1:
            return relative_redirect(request, f"/simple/{normalized}/")
        project = self.index.project(normalized)
        if project is None:
            return self.missing.render_missing(request, normalized, media_type)
        _served_names.remember(postpath[0], normalized)
        page = render_project_page(project, media_type, self.hash_algo, self.index.serial)
        return send_page(request, page, cache_control=self.cache_control, vary=b"Accept")

    def _root(self, request: Request, media_type: bytes) -> bytes:
        def render() -> Page:
            if media_type == SIMPLE_JSON:
                return Page.of(simple_root_json(self.index), media_type)
            return Page.of(simple_root_html(self.index), media_type)

        page = self.index.cached(("simple", media_type), render)
        return send_page(request, page, cache_control=self.cache_control, vary=b"Accept")
