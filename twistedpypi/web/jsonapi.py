"""
The PyPI JSON API: C{/pypi/<project>/json} and
C{/pypi/<project>/<version>/json}.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.distfile import is_project_name, normalize_name, version_sort_key
from twistedpypi.index import PackageIndex, Page
from twistedpypi.render import JSON, json_api
from twistedpypi.web.respond import base_url, error_page, relative_redirect, send_page

_MAX_CACHED_BASES = 8
"""JSON API pages cached per project for this many distinct public URLs."""


class JsonApi(Resource):
    """
    C{/pypi/...}: project and release documents with absolute URLs.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex) -> None:
        super().__init__()
        self.index = index

    def render_GET(self, request: Request) -> bytes:
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        if parts and parts[-1] == "":
            parts.pop()
        if len(parts) not in (2, 3) or parts[-1] != "json":
            return error_page(request, 404, "use /pypi/<project>/json or /pypi/<project>/<version>/json")
        name = parts[0]
        if not is_project_name(name):
            return error_page(request, 404, "not a project name")
        normalized = normalize_name(name)
        project = self.index.project(normalized)
        if project is None:
            return error_page(request, 404, f"project {name!r} is not on this index")
        if normalized != name:
            return relative_redirect(request, "/pypi/" + "/".join([normalized, *parts[1:]]))
        version = None
        if len(parts) == 3:
            wanted = version_sort_key(parts[1])
            version = next((v for v in project.versions() if version_sort_key(v) == wanted), None)
            if version is None:
                return error_page(request, 404, f"{project.name} has no version {parts[1]!r}")
        base = base_url(request)
        key = ("json-api", version, base)
        if key not in project.pages and sum(1 for k in project.pages if k[0] == "json-api") >= _MAX_CACHED_BASES:
            project.pages.clear()
        page = project.cached(key, lambda: Page.of(json_api(project, version, base), JSON))
        return send_page(request, page)
