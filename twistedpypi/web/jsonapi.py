"""
The PyPI JSON API: C{/pypi/<project>/json} and
C{/pypi/<project>/<version>/json}, and pypiserver's C{/<project>/json}.
"""

from __future__ import annotations

from collections.abc import Callable

from packaging.version import InvalidVersion, Version
from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index.distfile import is_project_name, normalize_name
from twistedpypi.index.model import PackageIndex, Page, Project
from twistedpypi.pages.jsonapi import json_api
from twistedpypi.pages.simple import JSON
from twistedpypi.web.respond import base_url, error_page, relative_redirect, send_page

_MAX_CACHED_PAGES = 8
"""JSON API pages cached per project (one per release and public URL)."""


def find_release(project: Project, wanted: str) -> str | None:
    """
    The project's version equal to C{wanted} by PEP 440 (C{1.0.0} is
    C{1.0}), or, for versions PEP 440 cannot parse, spelled the same.
    """
    try:
        parsed = Version(wanted)
    except InvalidVersion:
        return wanted if wanted in project.versions() else None
    for version in project.versions():
        try:
            if Version(version) == parsed:
                return version
        except InvalidVersion:
            continue
    return None


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
        wanted = parts[1] if len(parts) == 3 else None
        return self.render_document(
            request, parts[0], wanted, lambda normalized: "/pypi/" + "/".join([normalized, *parts[1:]])
        )

    def render_document(
        self, request: Request, name: str, wanted: str | None, normal_path: Callable[[str], str]
    ) -> bytes:
        """
        Answer with the project document of C{name} (the release C{wanted},
        if given), or redirect to C{normal_path(normalized name)} when the
        name is not in its normal form.
        """
        if not is_project_name(name):
            return error_page(request, 404, "not a project name")
        normalized = normalize_name(name)
        project = self.index.project(normalized)
        if project is None:
            return error_page(request, 404, "No such project on this index", f"project {name!r} is not on this index")
        if normalized != name:
            return relative_redirect(request, normal_path(normalized))
        version = None
        if wanted is not None:
            version = find_release(project, wanted)
            if version is None:
                return error_page(
                    request, 404, "No such version of this project", f"{project.name} has no version {wanted!r}"
                )
        base = base_url(request)
        key = (version, base)
        pages = project.api_pages
        page = pages.get(key)
        if page is None:
            if len(pages) >= _MAX_CACHED_PAGES:
                del pages[next(iter(pages))]  # the oldest
            page = pages[key] = Page.of(json_api(project, version, base, self.index.metadata_of, self.index.serial), JSON)
        return send_page(request, page)
