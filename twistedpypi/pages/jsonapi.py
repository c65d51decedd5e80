"""
The PyPI JSON API's documents (C{/pypi/<project>/json}).  Pure functions.
"""

from __future__ import annotations

from urllib.parse import quote

from twistedpypi.index.coremetadata import CoreMetadata
from twistedpypi.index.model import (
    DistributionFile,
    MetadataReader,
    Project,
)
from twistedpypi.pages.simple import json_document, status_json, upload_time

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
    # PyPI yanks whole releases: a release counts as yanked when all its
    # files are, and gives the first reason it finds.
    yanked = bool(files) and all(dist.yanked is not None for dist in files)
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
        yanked=yanked,
        yanked_reason=next((d.yanked for d in files if d.yanked), None) if yanked else None,
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
        "yanked": dist.yanked is not None,
        "yanked_reason": dist.yanked or None,
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
    offered = project.offered_files()
    document = {
        "info": _release_info(project, release, base_url, metadata_of),
        "last_serial": serial,
        # PEP 792's object as the simple API's JSON serves it (PyPI's JSON API
        # documents no such key), so that both say the same.
        "project-status": status_json(project.status),
        "urls": [_json_api_file(dist, base_url) for dist in offered if dist.version == release],
        "vulnerabilities": [],
    }
    if version is None:
        releases: dict[str, list] = {v: [] for v in project.versions()}
        for dist in offered:
            releases[dist.version].append(_json_api_file(dist, base_url))
        document["releases"] = releases
    return json_document(document)
