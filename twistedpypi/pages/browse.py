"""
The pages a person reads in a browser: the project list with its filter
box, and a project's page with versions, files, the install command and the
description.  Pure functions from index objects to bytes, like L{render}.

Plain HTML with a little inline CSS and one inline script (named by its hash
in L{CONTENT_SECURITY_POLICY}); no external assets, every text escaped.
Links are relative, so the pages work behind a proxy at any prefix.

Descriptions are shown as the text they are, escaped, in a C{<pre>} that
wraps: Markdown and reStructuredText are both made to read well as plain
text, while rendering them safely would take a Markdown and a reST renderer
and an HTML sanitiser (PyPI's readme_renderer stack) for little gain on a
private index.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote, urlsplit

from twistedpypi.index.markers import ACTIVE, ARCHIVED, DEPRECATED, QUARANTINED
from twistedpypi.index.coremetadata import CoreMetadata
from twistedpypi.index.model import (
    DistributionFile,
    MetadataReader,
    PackageIndex,
    Project,
)
from twistedpypi.pages.simple import upload_time

_FILTER_SCRIPT = (
    "(function(){var i=document.getElementById('q'),c=document.getElementById('count'),"
    "r=document.querySelectorAll('#projects tbody tr');"
    "function f(){var q=i.value.trim().toLowerCase(),n=0;"
    "for(var k=0;k<r.length;k++){var s=r[k].getAttribute('data-k').indexOf(q)>=0;"
    "r[k].hidden=!s;if(s)n++}c.textContent=n}"
    "i.addEventListener('input',f);f()})();"
)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; script-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_FILTER_SCRIPT.encode("ascii")).digest()).decode("ascii")
    + "'"
).encode("ascii")
"""Only this module's own inline style and filter script may run."""

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#222;max-width:64em;margin:1.5em auto;padding:0 1em}
a{color:#0b57a4}h1{margin:.2em 0}h1 small{color:#666;font-weight:normal}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#f4f4f4}.n{text-align:right;white-space:nowrap}tr[hidden]{display:none}
input[type=search]{font-size:1.05em;padding:.35em .5em;width:22em;max-width:100%}
pre,code.cmd{background:#f4f4f4;padding:.6em .8em;border-radius:4px}
pre.description{white-space:pre-wrap;overflow-wrap:anywhere}
.badge{font-size:.8em;padding:.1em .45em;border-radius:3px;background:#fde2c4;color:#7a3b00;margin-left:.4em}
p.status{background:#fff3e0;border-left:4px solid #e08a00;padding:.5em .8em}
code.cmd{display:block;margin:.3em 0;user-select:all;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:#666}nav a{margin-right:1em}h2{margin:1.2em 0 .4em;font-size:1.2em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#666}dd{margin:0}
"""

_KINDS = {"bdist_wheel": "wheel", "sdist": "sdist", "bdist_egg": "egg"}

_SUMMARY = re.compile(rb"^summary:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def summary_of(metadata: bytes) -> str:
    """
    The C{Summary} field of a core metadata file, read from its headers
    alone.
    """
    end = metadata.find(b"\n\n")
    crlf_end = metadata.find(b"\r\n\r\n")
    if crlf_end >= 0 and (end < 0 or crlf_end < end):
        end = crlf_end
    match = _SUMMARY.search(metadata, 0, end if end >= 0 else len(metadata))
    if match is None:
        return ""
    return " ".join(match.group(1).decode("utf-8", "replace").split())


def release_file(project: Project, version: str) -> DistributionFile | None:
    """
    The file whose metadata speaks for a release: a wheel if there is one,
    else any file with metadata.
    """
    best = None
    for dist in project.files.values():
        if dist.version != version or dist.metadata is None:
            continue
        if dist.dist.kind == "bdist_wheel":
            return dist
        best = best or dist
    return best


def release_summary(project: Project, version: str, metadata_of: MetadataReader) -> str:
    """
    The summary of one release, or an empty string; kept in the project
    until it changes (searches and the project list ask for all of them).

    @param metadata_of: reads a file's metadata (L{PackageIndex.metadata_of}).
    """
    summary = project.summaries.get(version)
    if summary is None:
        dist = release_file(project, version)
        metadata = None if dist is None else metadata_of(dist)
        summary = project.summaries[version] = "" if metadata is None else summary_of(metadata)
    return summary


def human_size(size: int) -> str:
    """A size as people read it: C{950 B}, C{12.3 kB}, C{4.0 MB}."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _when(dist: DistributionFile) -> str:
    moment = datetime.fromtimestamp(dist.mtime_ns / 1e9, timezone.utc)
    return f'<time datetime="{upload_time(dist)}">{moment:%Y-%m-%d %H:%M} UTC</time>'


def page_html(title: str, body: str) -> bytes:
    """
    A whole page of this site: C{body} under C{title}, in the style every
    page a person reads here shares (the welcome page too).
    """
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    ).encode("utf-8")


def project_list_html(index: PackageIndex, query: str = "") -> bytes:
    """
    C{/project/}: every project with its newest version, summary and last
    upload, and a filter box.  Rows not matching C{query} are hidden, so
    the filter works without the script; the script filters as one types.
    """
    needle = query.strip().lower()
    rows = []
    shown = 0
    for name, project in sorted(index.projects.items()):
        latest = project.latest_version()
        summary = release_summary(project, latest, index.metadata_of)
        newest = max(project.files.values(), key=lambda dist: dist.mtime_ns)
        key = f"{name} {project.display_name.lower()} {summary.lower()}"
        visible = not needle or needle in key
        shown += visible
        rows.append(
            f'<tr data-k="{escape(key)}"{"" if visible else " hidden"}>'
            f'<td><a href="{quote(name)}/">{escape(project.display_name)}</a>{_status_badge(project)}</td>'
            f"<td>{escape(latest)}</td><td>{escape(summary)}</td>"
            f'<td class="n">{len(project.files)}</td><td class="n">{_when(newest)}</td></tr>\n'
        )
    body = (
        '<nav><a href="../">Home</a><a href="../simple/">Simple index</a>'
        '<a href="../packages/">All files</a></nav>\n'
        "<h1>Projects</h1>\n"
        '<form method="get" action="./" role="search">'
        f'<input type="search" id="q" name="q" value="{escape(query)}" placeholder="Filter by name or summary"'
        ' autofocus aria-label="Filter projects"> '
        f'<span class="muted"><span id="count">{shown}</span> of {len(index.projects)} projects</span></form>\n'
        '<table id="projects"><thead><tr><th>Project</th><th>Latest</th><th>Summary</th>'
        '<th class="n">Files</th><th class="n">Last upload</th></tr></thead>\n<tbody>\n'
        f"{''.join(rows)}</tbody></table>\n"
        f"<script>{_FILTER_SCRIPT}</script>\n"
    )
    return page_html("Projects", body)


def _safe_link(url: str) -> str:
    """A link to an http(s) URL from metadata, or the URL as plain text."""
    text = escape(url)
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return text
    if scheme not in ("http", "https"):
        return text
    return f'<a href="{escape(url.strip())}" rel="nofollow noopener noreferrer">{text}</a>'


def _details(fields: dict, requires_python: str | None) -> str:
    rows = []

    def add(label: str, value: str | None, html: str | None = None) -> None:
        if value:
            rows.append(f"<dt>{escape(label)}</dt><dd>{html or escape(value)}</dd>")

    def text(key: str) -> str | None:
        value = fields.get(key)
        return ", ".join(value) if isinstance(value, list) else value

    add("Requires Python", requires_python)
    add("License", text("license-expression") or text("license"))
    add("Author", text("author") or text("author-email"))
    add("Maintainer", text("maintainer") or text("maintainer-email"))
    home = text("home-page")
    add("Home page", home, _safe_link(home) if home else None)
    for item in fields.get("project-url", []) or []:
        label, _, url = item.partition(",")
        if url.strip():
            add(label.strip(), url.strip(), _safe_link(url.strip()))
    requires = fields.get("requires-dist") or []
    add("Requires", ", ".join(requires) if requires else None)
    return f"<dl>{''.join(rows)}</dl>\n" if rows else ""


def project_page_html(project: Project, base_url: str, metadata_of: MetadataReader) -> bytes:
    """
    C{/project/<name>/}: the newest release's summary, details and
    description, the command that installs it, and every version's files
    with sizes and upload times.

    @param base_url: this server's public URL, for the install command.
    @param metadata_of: reads a file's metadata (L{PackageIndex.metadata_of}).
    """
    latest = project.latest_version()
    dist = release_file(project, latest)
    metadata = None if dist is None else metadata_of(dist)
    fields = CoreMetadata(metadata, True).fields() if metadata else {}
    summary = release_summary(project, latest, metadata_of)
    requires_python = next(
        (d.requires_python for d in project.files.values() if d.version == latest and d.requires_python),
        None,
    )
    name = project.display_name
    simple_url = f"{base_url}/simple/"
    by_version: dict[str, list[DistributionFile]] = {}
    for each in project.offered_files():
        by_version.setdefault(each.version, []).append(each)
    rows = []
    for version in reversed(list(by_version)):
        files = by_version[version]
        for position, each in enumerate(files):
            version_cell = (
                f'<td rowspan="{len(files)}" id="v{escape(version)}"><b>{escape(version)}</b></td>'
                if position == 0
                else ""
            )
            rows.append(
                f"<tr>{version_cell}"
                f'<td><a href="../../packages/{escape(quote(each.filename))}">{escape(each.filename)}</a>'
                f"{_yank_badge(each)}</td>"
                f"<td>{_KINDS.get(each.dist.kind, escape(each.dist.kind))}</td>"
                f'<td class="n" title="{each.size} bytes">{human_size(each.size)}</td>'
                f'<td class="n">{_when(each)}</td></tr>\n'
            )
    description = fields.get("description")
    description_html = (
        f'<h2>Description</h2>\n<pre class="description">{escape(description.strip())}</pre>\n'
        if isinstance(description, str) and description.strip()
        else ""
    )
    body = (
        '<nav><a href="../../">Home</a><a href="../">All projects</a>'
        f'<a href="../../simple/{quote(project.name)}/">Simple page</a>'
        f'<a href="../../pypi/{quote(project.name)}/json">JSON</a></nav>\n'
        f"<h1>{escape(name)} <small>{escape(latest)}</small></h1>\n"
        + _status_notice(project)
        + (f"<p>{escape(summary)}</p>\n" if summary else "")
        + "<h2>Install</h2>\n"
        f'<code class="cmd">pip install --index-url {escape(simple_url)} {escape(name)}</code>\n'
        f"<p class=\"muted\">or <code>uv pip install --index-url {escape(simple_url)} {escape(name)}</code></p>\n"
        + _details(fields, requires_python)
        + f"<h2>Files</h2>\n<table><thead><tr><th>Version</th><th>File</th><th>Type</th>"
        '<th class="n">Size</th><th class="n">Uploaded</th></tr></thead>\n<tbody>\n'
        f"{''.join(rows)}</tbody></table>\n"
        + description_html
    )
    return page_html(f"{name} {latest}", body)


def _yank_badge(dist: DistributionFile) -> str:
    """The badge of a yanked file, its reason in the tooltip."""
    if dist.yanked is None:
        return ""
    return f' <span class="badge" title="{escape(dist.yanked)}">yanked</span>' + (
        f' <span class="muted">{escape(dist.yanked)}</span>' if dist.yanked else ""
    )


def _status_badge(project: Project) -> str:
    """The project's status as a badge in the list, when not active."""
    if project.status.status == ACTIVE:
        return ""
    return f' <span class="badge">{escape(project.status.status)}</span>'


def _status_notice(project: Project) -> str:
    """The project's PEP 792 status, said above its page when not active."""
    status = project.status
    if status.status == ACTIVE:
        return ""
    what = {
        ARCHIVED: "archived: no new files are accepted",
        QUARANTINED: "quarantined: its files are not offered for download",
        DEPRECATED: "deprecated",
    }.get(status.status, escape(status.status))
    reason = f" ({escape(status.reason)})" if status.reason else ""
    return f'<p class="status"><span class="badge">{escape(status.status)}</span> This project is {what}{reason}.</p>\n'


def not_found_html(name: str) -> bytes:
    """The page for a project this index does not have."""
    body = (
        '<nav><a href="../../">Home</a><a href="../">All projects</a></nav>\n'
        f"<h1>Not found</h1>\n<p>There is no project {escape(name)} on this index.</p>\n"
    )
    return page_html("Not found", body)
