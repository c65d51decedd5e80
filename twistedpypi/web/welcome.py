"""
The welcome page at C{/}: what this server is and how to use it, as it is
configured and as the client reaches it (behind a proxy's prefix too), or
the administrator's own page (C{--welcome}).
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi import __version__
from twistedpypi.auth import AccessPolicy
from twistedpypi.index.model import PackageIndex
from twistedpypi.pages.browse import CONTENT_SECURITY_POLICY, page_html
from twistedpypi.web.respond import base_url


def _count(number: int, noun: str) -> str:
    """C{1 project}, C{2 projects}, C{1,234 files}."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _with_placeholder_credentials(url: str) -> str:
    """C{url} with C{USER:PASSWORD@} before its host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://USER:PASSWORD@{parts.netloc}{parts.path}"


def _commands(*lines: str) -> str:
    return "".join(f'<code class="cmd">{escape(line)}</code>\n' for line in lines)


def welcome_html(url: str, projects: int, files: int, policy: AccessPolicy | None) -> bytes:
    """
    The built-in welcome page of a server reached at C{url} (no trailing
    slash), serving C{projects} projects in C{files} files, whose C{-a}
    policy is C{policy} (L{None}: pypiserver's default, uploads off).
    """
    protected = policy.protected if policy is not None else frozenset({"update"})
    has_passwords = policy is not None and (policy.checker is not None or policy.tokens is not None)
    reading = {"list", "download"} & protected
    index_url = (_with_placeholder_credentials(url) if reading else url) + "/simple/"
    if reading:
        what = " and ".join(name for action, name in (("list", "Listing"), ("download", "downloads")) if action in reading)
        access = (
            f"<p>{what[:1].upper()}{what[1:]} need a password: replace USER and PASSWORD with yours"
            " (from the server's password file), or let pip ask for them.</p>\n"
        )
    else:
        access = ""
    body = (
        '<nav><a href="project/">Projects</a><a href="simple/">Simple index</a><a href="packages/">All files</a></nav>\n'
        "<h1>Private Python package index</h1>\n"
        f'<p>Serving {_count(projects, "project")} in {_count(files, "file")}.</p>\n'
        '<form method="get" action="project/" role="search"><input type="search" name="q" placeholder="Find a project"'
        ' aria-label="Find a project"> <button>Find</button></form>\n'
        "<h2>Install</h2>\n"
        f"{access}"
        + _commands(
            f"pip install --index-url {index_url} PACKAGE",
            f"pip install --extra-index-url {index_url} PACKAGE",
            f"uv pip install --index-url {index_url} PACKAGE",
        )
        + "<p>Or for good, in <code>~/.config/pip/pip.conf</code>:</p>\n"
        + f"<pre>[global]\nindex-url = {escape(index_url)}</pre>\n"
        + "<h2>Upload</h2>\n"
        + _uploads(url, "update" in protected, has_passwords)
        + f'<p class="muted"><small>twistedpypi {escape(__version__)}</small></p>\n'
    )
    return page_html("twistedpypi", body)


def _uploads(url: str, protected: bool, has_passwords: bool) -> str:
    """How to upload here: off, open to all, or with a password."""
    if protected and not has_passwords:
        return "<p>Uploads are off: this server runs without a password file (<code>-P</code>).</p>\n"
    if not protected:
        return (
            "<p>Anyone may upload: twine asks for a user name and password, and any will do.</p>\n"
            + _commands(f"twine upload --repository-url {url}/ dist/*")
        )
    return (
        "<p>Uploads need a password: replace USER and PASSWORD with yours.</p>\n"
        + _commands(
            f"twine upload --repository-url {url}/ -u USER -p PASSWORD dist/*",
            f"uv publish --publish-url {url}/ -u USER -p PASSWORD dist/*",
        )
        + "<p>Or in <code>~/.pypirc</code>, then <code>twine upload -r private dist/*</code>:</p>\n"
        + "<pre>[distutils]\nindex-servers = private\n\n[private]\n"
        + f"repository = {escape(url)}/\nusername = USER\npassword = PASSWORD</pre>\n"
    )


class Welcome(Resource):
    """
    C{/}.

    @param policy: the server's C{-a} policy, which the page's instructions
        follow.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, custom_html: bytes | None = None, policy: AccessPolicy | None = None) -> None:
        super().__init__()
        self.index = index
        self.custom_html = custom_html
        self.policy = policy

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if self.custom_html is not None:
            return self.custom_html
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        return welcome_html(base_url(request), len(self.index.projects), self.index.file_count, self.policy)
