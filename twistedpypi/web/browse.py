"""
C{/project/} and C{/project/<name>/}: the pages a person browses, from the
index's page cache.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index.distfile import normalize_name
from twistedpypi.index.model import PackageIndex, Page, Project
from twistedpypi.pages.browse import (
    CONTENT_SECURITY_POLICY,
    not_found_html,
    project_list_html,
    project_page_html,
)
from twistedpypi.pages.simple import HTML
from twistedpypi.web.respond import base_url, relative_redirect, send_page

_MAX_CACHED_BASES = 8
"""Project pages cached per project for this many distinct public URLs."""


def _browse_key(key: object) -> bool:
    return isinstance(key, tuple) and key[:1] == ("browse",)


class Browse(Resource):
    """
    The project list with a filter box, and one page per project.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex) -> None:
        super().__init__()
        self.index = index

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"x-content-type-options", b"nosniff")
        postpath = request.postpath
        if not postpath:
            return relative_redirect(request, "/project/")
        if postpath == [b""]:
            return self._list(request)
        name = postpath[0].decode("utf-8", "replace")
        if len(postpath) > 2 or (len(postpath) == 2 and postpath[1] != b""):
            return self._not_found(request, name)
        normalized = normalize_name(name)
        project = self.index.project(normalized)
        if project is None:
            return self._not_found(request, name)
        if normalized != name or len(postpath) == 1:
            return relative_redirect(request, f"/project/{normalized}/")
        return send_page(request, self._project_page(project, base_url(request)))

    def _list(self, request: Request) -> bytes:
        query = request.args.get(b"q", [b""])[0].decode("utf-8", "replace")
        if query.strip():
            # Filtered lists are rendered per request: one pass over the
            # projects, and people type many different filters.
            page = Page.of(project_list_html(self.index, query), HTML)
        else:
            page = self.index.cached(("browse",), lambda: Page.of(project_list_html(self.index), HTML))
        return send_page(request, page)

    def _project_page(self, project: Project, base: str) -> Page:
        # The install command names the server's public URL, so pages are
        # cached per URL; a client sending ever new Host headers must not
        # fill the memory.
        key = ("browse", base)
        if key not in project.pages and sum(1 for k in project.pages if _browse_key(k)) >= _MAX_CACHED_BASES:
            for old in [k for k in project.pages if _browse_key(k)]:
                del project.pages[old]
        return project.cached(key, lambda: Page.of(project_page_html(project, base, self.index.metadata_of), HTML))

    def _not_found(self, request: Request, name: str) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", HTML)
        return not_found_html(name)
