"""
The welcome page at C{/}: what this server is and how to use it, or the
administrator's own page (C{--welcome}).
"""

from __future__ import annotations

from html import escape

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi import __version__
from twistedpypi.index.model import PackageIndex
from twistedpypi.web.respond import base_url

_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>twistedpypi</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}
pre{{background:#f4f4f4;padding:.6em;overflow-x:auto}}</style></head>
<body>
<h1>Welcome to twistedpypi</h1>
<p>A private Python package index serving {projects} projects in {files} files.</p>
<form method="get" action="project/"><input type="search" name="q" placeholder="Find a project" aria-label="Find a project"> <button>Find</button></form>
<ul><li><a href="project/">Browse projects</a></li>
<li><a href="simple/">Simple index</a> (PEP 503 / PEP 691)</li>
<li><a href="packages/">All files</a></li></ul>
<h2>Install with pip or uv</h2>
<pre>pip install --index-url {url}/simple/ PACKAGE
pip install --extra-index-url {url}/simple/ PACKAGE
uv pip install --index-url {url}/simple/ PACKAGE</pre>
<h2>Upload with twine</h2>
<pre>twine upload --repository-url {url}/ dist/*</pre>
<p>Or in <code>~/.pypirc</code>:</p>
<pre>[distutils]
index-servers = local

[local]
repository: {url}/
username: USER
password: PASSWORD</pre>
<p><small>twistedpypi {version}</small></p>
</body></html>
"""


class Welcome(Resource):
    """
    C{/}.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, custom_html: bytes | None = None) -> None:
        super().__init__()
        self.index = index
        self.custom_html = custom_html

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if self.custom_html is not None:
            return self.custom_html
        return _TEMPLATE.format(
            projects=len(self.index.projects),
            files=self.index.file_count,
            url=escape(base_url(request)),
            version=escape(__version__),
        ).encode("utf-8")
