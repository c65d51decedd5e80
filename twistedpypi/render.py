"""
Rendering of the index's pages: the PEP 503 / 691 simple API, the PyPI JSON
API and the file listing.  Pure functions from index objects to bytes.

Every link is relative to the page it is on, so the same bytes are right
behind a reverse proxy at any path prefix.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

from twistedpypi.index import DistributionFile, MetadataReader, PackageIndex, Project
from twistedpypi.metadata import CoreMetadata
from twistedpypi.upstreampage import UpstreamFile, UpstreamProject

API_VERSION = "1.1"
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


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _simple_page(title: str, links: str) -> bytes:
    """
    A page of the PEP 503 simple API: the PEP 629 version, C{title} as
    title and heading, then C{links}, already HTML.
    """
    title = escape(title)
    return (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
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
    return _simple_page("Simple index", links)


def simple_root_json(index: PackageIndex) -> bytes:
    """
    The PEP 691 list of every project.
    """
    return _json(
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
    The PEP 503 page of one project, with PEP 658/714 metadata and PEP 592
    attributes, for a page at C{/simple/<project>/}.
    """
    lines = []
    for dist in project.sorted_files():
        attributes = [f'href="{escape(file_url(dist, "../../packages/"))}{_hash_fragment(dist, hash_algo)}"']
        if dist.requires_python:
            attributes.append(f'data-requires-python="{escape(dist.requires_python)}"')
        metadata_sha256 = dist.metadata_sha256
        if metadata_sha256 is not None:
            attributes.append(f'data-core-metadata="sha256={metadata_sha256}"')
            attributes.append(f'data-dist-info-metadata="sha256={metadata_sha256}"')
        if dist.signature:
            attributes.append('data-gpg-sig="true"')
        lines.append(f"<a {' '.join(attributes)}>{escape(dist.filename)}</a><br>\n")
    return _simple_page(f"Links for {project.display_name}", "".join(lines))


def simple_project_json(project: Project, hash_algo: str | None, serial: int = 0) -> bytes:
    """
    The PEP 691 page of one project, with PEP 700's versions, sizes and
    upload times.

    @param serial: the index's serial when the page is rendered, which is
        that of the project's last change or later (the page is rendered
        again on the next one).
    """
    files = []
    for dist in project.sorted_files():
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
            "yanked": False,
            "size": dist.size,
            "upload-time": upload_time(dist),
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        files.append(entry)
    return _json(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "name": project.name,
            "versions": project.versions(),
            "files": files,
        }
    )


def packages_listing_html(index: PackageIndex) -> bytes:
    """
    The C{/packages/} page: every file, linked, as pypiserver lists them.
    """
    links = "".join(
        f'<a href="{escape(quote(filename))}">{escape(filename)}</a><br>\n'
        for filename in sorted(index.files_by_name)
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>Index of packages</title></head>\n"
        f"<body>\n<h1>Index of packages</h1>\n{links}</body></html>\n"
    ).encode("utf-8")


_INFO_FIELDS = {
    "author": "author",
    "author_email": "author-email",
    "maintainer": "maintainer",
    "maintainer_email": "maintainer-email",
    "license": "license",
    "license_expression": "license-expression",
    "home_page": "home-page",
    "download_url": "download-url",
    "keywords": "keywords",
    "summary": "summary",
    "description": "description",
    "description_content_type": "description-content-type",
    "platform": "platform",
}


def _release_info(project: Project, version: str, base_url: str, metadata_of: MetadataReader) -> dict:
    files = [dist for dist in project.sorted_files() if dist.version == version]
    fields: dict = {}
    for dist in files:
        metadata = metadata_of(dist)
        if metadata is not None:
            fields = CoreMetadata(metadata, dist.metadata_sha256 is not None).fields()
            if dist.dist.kind == "bdist_wheel":
                break
    info = {key: None for key in _INFO_FIELDS}
    for key, field_name in _INFO_FIELDS.items():
        value = fields.get(field_name)
        info[key] = ", ".join(value) if isinstance(value, list) else value
    project_url = f"{base_url}/simple/{project.name}/"
    info.update(
        name=project.display_name,
        version=version,
        classifiers=fields.get("classifier", []),
        requires_dist=fields.get("requires-dist") or None,
        provides_extra=fields.get("provides-extra") or None,
        requires_python=next((d.requires_python for d in files if d.requires_python), None),
        project_urls=dict(
            tuple(part.strip() for part in item.split(",", 1))
            for item in fields.get("project-url", [])
            if "," in item
        )
        or None,
        package_url=project_url,
        project_url=project_url,
        release_url=f"{base_url}/pypi/{project.name}/{version}/json",
        yanked=False,
        yanked_reason=None,
    )
    return info


def _json_api_file(dist: DistributionFile, base_url: str) -> dict:
    time = upload_time(dist)
    digests = dict(dist.hashes)
    return {
        "filename": dist.filename,
        "url": f"{base_url}/packages/{quote(dist.filename)}",
        "digests": digests,
        "md5_digest": digests.get("md5"),
        "packagetype": dist.dist.kind,
        "python_version": "source" if dist.dist.kind == "sdist" else _python_tag(dist),
        "requires_python": dist.requires_python,
        "size": dist.size,
        "upload_time": time[:19],
        "upload_time_iso_8601": time,
        "has_sig": dist.signature,
        "comment_text": "",
        "yanked": False,
        "yanked_reason": None,
    }


def _python_tag(dist: DistributionFile) -> str:
    if dist.dist.kind == "bdist_wheel":
        return dist.filename[:-4].split("-")[-3]
    return "any"


def json_api(
    project: Project, version: str | None, base_url: str, metadata_of: MetadataReader, serial: int = 0
) -> bytes:
    """
    The PyPI JSON API document of a project (C{version} L{None}) or of one
    of its releases, with absolute URLs under C{base_url}.

    @param metadata_of: reads a file's metadata (L{PackageIndex.metadata_of}).
    @param serial: as for L{simple_project_json}.
    """
    release = version or project.latest_version()
    document = {
        "info": _release_info(project, release, base_url, metadata_of),
        "last_serial": serial,
        "urls": [
            _json_api_file(dist, base_url)
            for dist in project.sorted_files()
            if dist.version == release
        ],
        "vulnerabilities": [],
    }
    if version is None:
        releases: dict[str, list] = {v: [] for v in project.versions()}
        for dist in project.sorted_files():
            releases[dist.version].append(_json_api_file(dist, base_url))
        document["releases"] = releases
    return _json(document)


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
    return _simple_page(f"Links for {project.name}", "".join(lines))


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
    return _json(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": 0},
            "name": project.name,
            "versions": project.versions(),
            "files": files,
        }
    )
