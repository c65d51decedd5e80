"""
PyPI's legacy XML-RPC API at C{/RPC2} (and C{POST /} with C{text/xml}):
C{search}, which C{pip search} calls, C{list_packages} and
C{package_releases}.
"""

from __future__ import annotations

from typing import Callable

from twisted.web import xmlrpc
from twisted.web.server import Request

from twistedpypi.auth import LIST
from twistedpypi.index.distfile import normalize_name, version_sort_key
from twistedpypi.index.model import PackageIndex
from twistedpypi.pages.browse import release_summary
from twistedpypi.web.guard import principal_of
from twistedpypi.web.respond import error_page

MAX_REQUEST_SIZE = 64 * 1024
"""XML-RPC calls are small; a bigger body is refused before it is parsed."""

_SEARCHABLE = ("name", "version", "summary")


def _matches(row: dict[str, str], field: str, terms: list[str]) -> bool:
    value = row[field].lower()
    if field == "name":
        # "demo_pkg" finds "Demo.Pkg" too.
        return any(term in value or normalize_name(term) in row["normalized"] for term in terms)
    return any(term in value for term in terms)


class PackageSearch(xmlrpc.XMLRPC):
    """
    The XML-RPC methods, answered from the in-memory index.
    """

    def __init__(self, index: PackageIndex) -> None:
        super().__init__(allowNone=True)
        self.index = index
        self._rows: list[dict[str, str]] = []
        self._rows_serial = -1
        xmlrpc.addIntrospection(self)

    def render_POST(self, request: Request):
        # The body is in request.content by now (a chunked one too): its
        # size is known without reading it.
        content = request.content
        content.seek(0, 2)
        size = content.tell()
        content.seek(0)
        if size > MAX_REQUEST_SIZE:
            return error_page(
                request, 413, "XML-RPC request too large", f"an XML-RPC call may be at most {MAX_REQUEST_SIZE} bytes"
            )
        return super().render_POST(request)

    def _releases(self) -> list[dict[str, str]]:
        """
        One row per release, rebuilt only after the index changed.
        """
        if self._rows_serial != self.index.serial:
            rows = []
            for _, project in sorted(self.index.projects.items()):
                for version in project.versions():
                    rows.append(
                        {
                            "name": project.display_name,
                            "normalized": project.name,
                            "version": version,
                            "summary": release_summary(project, version, self.index.metadata_of),
                        }
                    )
            self._rows, self._rows_serial = rows, self.index.serial
        return self._rows

    @staticmethod
    def _listable(request: Request) -> Callable[[str], bool]:
        """
        Whether the requester may list a project (by its normal name): a
        user or token refused a project's pages is not told of it here
        either.
        """
        principal = principal_of(request)
        if principal is None:
            return lambda name: True
        return lambda name: principal.refusal(LIST, name) is None

    @xmlrpc.withRequest
    def xmlrpc_search(self, request: Request, spec: dict, operator: str = "and") -> list[dict]:
        """
        Releases whose fields contain the terms, case-insensitively, as
        PyPI's C{search} did: C{spec} maps C{name}, C{version} or
        C{summary} to a term or a list of terms (any term matches);
        C{operator} C{"and"} needs every field to match, C{"or"} one.
        """
        if not isinstance(spec, dict):
            raise xmlrpc.Fault(1, "search takes a dictionary such as {'name': ['term']}")
        if str(operator).lower() not in ("and", "or"):
            raise xmlrpc.Fault(1, "operator must be 'and' or 'or'")
        wanted = []
        for field, terms in spec.items():
            if field not in _SEARCHABLE:
                continue
            if not isinstance(terms, list):
                terms = [terms]
            terms = [str(term).lower() for term in terms if str(term)]
            if terms:
                wanted.append((field, terms))
        if not wanted:
            return []
        combine = all if str(operator).lower() == "and" else any
        listable = self._listable(request)
        hits = []
        for row in self._releases():
            if combine(_matches(row, field, terms) for field, terms in wanted) and listable(row["normalized"]):
                hits.append(
                    {
                        "name": row["name"],
                        "version": row["version"],
                        "summary": row["summary"],
                        "_pypi_ordering": 0,
                    }
                )
        return hits

    @xmlrpc.withRequest
    def xmlrpc_list_packages(self, request: Request) -> list[str]:
        """Every project's name the requester may list."""
        listable = self._listable(request)
        return [project.display_name for name, project in sorted(self.index.projects.items()) if listable(name)]

    @xmlrpc.withRequest
    def xmlrpc_package_releases(self, request: Request, name: str, show_hidden: bool = False) -> list[str]:
        """
        A project's versions, newest first, as PyPI answers: all of them
        with C{show_hidden}, else just the newest release.
        """
        project = self.index.project(normalize_name(str(name)))
        if project is None or not self._listable(request)(project.name):
            return []
        if not show_hidden:
            return [project.latest_version()]
        return sorted(project.versions(), key=version_sort_key, reverse=True)
