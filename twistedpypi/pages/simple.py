"""
The simple repository API's pages (PEP 503 HTML, PEP 691 JSON) and the
file listing of C{/packages/}.  Pure functions from index objects to bytes.

Every link is relative to the page it is on, so the same bytes are right
behind a reverse proxy at any path prefix.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

from twistedpypi.index.markers import ProjectStatus
from twistedpypi.index.model import (
    DistributionFile,
    PackageIndex,
    Project,
)

API_VERSION = "1.4"
"""
The simple API's version (PEP 629): 1.4 brings PEP 792's project status.
Its 1.2 (PEP 708's tracks and alternate locations, never accepted for
serving) and 1.3 (PEP 740's provenance, optional) add keys this index does
not need to serve.
"""
HTML = b"text/html; charset=utf-8"
SIMPLE_HTML = b"application/vnd.pypi.simple.v1+html"
SIMPLE_JSON = b"application/vnd.pypi.simple.v1+json"
JSON = b"application/json"


def upload_time(dist: DistributionFile) -> str:
    """
    The file's upload time (its modification time) as PEP 700 writes it.
    """
    moment = datetime.fromtimestamp(dist.mtime_ns / 1e9, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_url(dist: DistributionFile, to_packages: str) -> str:
    """
    The URL of a file, relative to a page whose path to C{/packages/} is
    C{to_packages}.
    """
    return to_packages + quote(dist.filename)


def json_document(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def status_meta(status: ProjectStatus) -> str:
    """
    PEP 792's C{<meta>} elements for a project's status: the status always
    (Warehouse serves C{active} too), and the reason when there is one.
    """
    meta = f'<meta name="pypi:project-status" content="{escape(status.status)}">'
    if status.reason:
        meta += f'<meta name="pypi:project-status-reason" content="{escape(status.reason)}">'
    return meta


def status_json(status: ProjectStatus) -> dict:
    """
    PEP 792's C{project-status} object.  The specification's prose once
    described a bare string while its examples show an object; Warehouse
    serves the object, C{{"status": ..., "reason": ...}}, with C{reason}
    left out when there is none: so does this index.
    """
    document = {"status": status.status}
    if status.reason:
        document["reason"] = status.reason
    return document


def simple_page(title: str, links: str, head: str = "") -> bytes:
    """
    A page of the PEP 503 simple API: the PEP 629 version, C{head}'s
    further C{<meta>} elements, C{title} as title and heading, then
    C{links}, already HTML.
    """
    title = escape(title)
    return (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">{head}'
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
        f"{links}</body></html>\n"
    ).encode("utf-8")


def simple_root_html(index: PackageIndex) -> bytes:
    """
    The PEP 503 list of every project.
    """
    links = "".join(
        f'<a href="{quote(name)}/">{escape(project.display_name)}</a><br>\n'
        for name, project in sorted(index.projects.items())
    )
    return simple_page("Simple index", links)


def simple_root_json(index: PackageIndex) -> bytes:
    """
    The PEP 691 list of every project.
    """
    return json_document(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": index.serial},
            "projects": [
                {"name": project.display_name}
                for _, project in sorted(index.projects.items())
            ],
        }
    )


def _hash_fragment(dist: DistributionFile, hash_algo: str | None) -> str:
    if hash_algo is None or hash_algo not in dist.hashes:
        return ""
    return f"#{hash_algo}={dist.hashes[hash_algo]}"


def simple_project_html(project: Project, hash_algo: str | None) -> bytes:
    """
    The PEP 503 page of one project, with PEP 658/714 metadata, PEP 592
    yanks and PEP 792 status, for a page at C{/simple/<project>/}.  A
    quarantined project lists no files.
    """
    lines = []
    for dist in project.offered_files():
        attributes = [f'href="{escape(file_url(dist, "../../packages/"))}{_hash_fragment(dist, hash_algo)}"']
        if dist.requires_python:
            attributes.append(f'data-requires-python="{escape(dist.requires_python)}"')
        metadata_sha256 = dist.metadata_sha256
        if metadata_sha256 is not None:
            attributes.append(f'data-core-metadata="sha256={metadata_sha256}"')
            attributes.append(f'data-dist-info-metadata="sha256={metadata_sha256}"')
        if dist.signature:
            attributes.append('data-gpg-sig="true"')
        if dist.yanked is not None:
            attributes.append(f'data-yanked="{escape(dist.yanked)}"')
        lines.append(f"<a {' '.join(attributes)}>{escape(dist.filename)}</a><br>\n")
    return simple_page(f"Links for {project.display_name}", "".join(lines), status_meta(project.status))


def simple_project_json(project: Project, hash_algo: str | None, serial: int = 0) -> bytes:
    """
    The PEP 691 page of one project, with PEP 700's versions, sizes and
    upload times.

    @param serial: the index's serial when the page is rendered, which is
        that of the project's last change or later (the page is rendered
        again on the next one).
    """
    files = []
    for dist in project.offered_files():
        hashes = {"sha256": dist.sha256}
        if hash_algo is not None and hash_algo in dist.hashes:
            hashes[hash_algo] = dist.hashes[hash_algo]
        metadata_sha256 = dist.metadata_sha256
        metadata = {"sha256": metadata_sha256} if metadata_sha256 else False
        entry = {
            "filename": dist.filename,
            "url": file_url(dist, "../../packages/"),
            "hashes": hashes,
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
            "gpg-sig": dist.signature,
            # PEP 592: the reason, or true when there is none.
            "yanked": (dist.yanked or True) if dist.yanked is not None else False,
            "size": dist.size,
            "upload-time": upload_time(dist),
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        files.append(entry)
    return json_document(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "name": project.name,
            "project-status": status_json(project.status),
            "versions": project.versions() if project.status.offers_files else [],
            "files": files,
        }
    )


def packages_listing_html(index: PackageIndex) -> bytes:
    """
    The C{/packages/} page: every file, linked, as pypiserver lists them
    (but those of quarantined projects).
    """
    links = "".join(
        f'<a href="{escape(quote(filename))}">{escape(filename)}</a><br>\n'
        for filename, dist in sorted(index.files_by_name.items())
        if dist.project not in index.statuses or index.status_of(dist.project).offers_files
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>Index of packages</title></head>\n"
        f"<body>\n<h1>Index of packages</h1>\n{links}</body></html>\n"
    ).encode("utf-8")



