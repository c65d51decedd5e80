"""
The simple pages of a project found upstream, rendered as our own.  Pure
functions.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from twistedpypi.pages.simple import API_VERSION, json_document, simple_page
from twistedpypi.proxy.page import UpstreamFile, UpstreamProject


def _upstream_fragment(entry: UpstreamFile) -> str:
    if "sha256" in entry.hashes:
        return f"#sha256={entry.hashes['sha256']}"
    for algorithm, digest in entry.hashes.items():
        return f"#{algorithm}={digest}"
    return ""


def simple_upstream_html(project: UpstreamProject, path_name: str) -> bytes:
    """
    The PEP 503 page this server shows for a project proxied from upstream,
    at C{/simple/<path_name>/}, with upstream's hashes, requires-python,
    yanked status and metadata carried through.
    """
    lines = []
    for entry in project.files:
        href = f"../../upstream/{quote(path_name)}/{quote(entry.filename)}{_upstream_fragment(entry)}"
        attributes = [f'href="{escape(href)}"']
        if entry.requires_python:
            attributes.append(f'data-requires-python="{escape(entry.requires_python)}"')
        if entry.yanked is not False:
            reason = entry.yanked if isinstance(entry.yanked, str) else ""
            attributes.append(f'data-yanked="{escape(reason)}"')
        if isinstance(entry.core_metadata, dict):
            algorithm, digest = next(iter(entry.core_metadata.items()))
            value = escape(f"{algorithm}={digest}")
            attributes.append(f'data-core-metadata="{value}" data-dist-info-metadata="{value}"')
        elif entry.core_metadata:
            attributes.append('data-core-metadata="true" data-dist-info-metadata="true"')
        lines.append(f"<a {' '.join(attributes)}>{escape(entry.filename)}</a><br>\n")
    return simple_page(f"Links for {project.name}", "".join(lines))


def simple_upstream_json(project: UpstreamProject, path_name: str) -> bytes:
    """
    The PEP 691 page this server shows for a project proxied from upstream.
    """
    files = []
    for entry in project.files:
        document = entry.pep691(f"../../upstream/{quote(path_name)}/{quote(entry.filename)}")
        document["dist-info-metadata"] = entry.core_metadata
        document["gpg-sig"] = False
        files.append(document)
    return json_document(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": 0},
            "name": project.name,
            "versions": project.versions(),
            "files": files,
        }
    )
