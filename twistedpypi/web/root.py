"""
The site's root: routes each request to the resource for its first path
segment.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.auth import DOWNLOAD, LIST, UPDATE, AccessPolicy
from twistedpypi.config import Config
from twistedpypi.index.distfile import is_project_name, normalize_name
from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import METRICS, Metrics
from twistedpypi.web.browse import Browse
from twistedpypi.web.files import Packages
from twistedpypi.web.guard import Guard
from twistedpypi.web.jsonapi import JsonApi
from twistedpypi.web.metrics import MetricsPage
from twistedpypi.web.respond import error_page, relative_redirect
from twistedpypi.web.simple import (
    FallbackRedirect,
    MissingProject,
    NotFound,
    SimpleIndex,
)
from twistedpypi.web.upload import Uploads
from twistedpypi.web.welcome import Welcome
from twistedpypi.web.xmlrpc import PackageSearch


class Health(Resource):
    """
    The health endpoint: 200 while the server is serving.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return b"ok\n"


class ProjectShortcut(Resource):
    """
    C{/<project>/}: pypiserver sends it on to C{/simple/<project>/}, so
    C{pip install -i http://host:8080 demo} works.
    """

    isLeaf = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def render_GET(self, request: Request) -> bytes:
        return relative_redirect(request, f"/simple/{normalize_name(self.name)}/")


class Root(Resource):
    """
    C{/}: the welcome page, uploads (C{POST /}), and the parent of every
    route.

    The C{-a} policy is applied here, in one place: each child is wrapped
    in a L{Guard} for the action it serves (see L{CHILD_ACTIONS}).
    """

    CHILD_ACTIONS: dict[bytes, str] = {
        b"simple": LIST,
        b"pypi": LIST,
        b"RPC2": LIST,
        b"project": LIST,
        b"metrics": LIST,
        b"upstream": DOWNLOAD,
    }
    """The action each child serves; C{packages} depends on the path."""

    def __init__(
        self,
        config: Config,
        index: PackageIndex,
        missing: MissingProject | None = None,
        metrics: Metrics | None = None,
        upstream=None,
        policy: AccessPolicy | None = None,
        uploads: Uploads | None = None,
    ) -> None:
        super().__init__()
        cache_control = (
            f"public, max-age={config.cache_control}".encode("ascii")
            if config.cache_control is not None
            else None
        )
        if upstream is not None:
            # Proxy mode (twistedpypi.proxy.upstream): pages and /upstream/ files.
            from twistedpypi.web.proxy import UpstreamFiles, UpstreamProxy

            missing = UpstreamProxy(upstream, cache_control)
            self.putChild(b"upstream", UpstreamFiles(upstream, index, cache_control))
        if missing is None:
            missing = FallbackRedirect(config.fallback_url) if config.fallback_url else NotFound()
        self.policy = policy if policy is not None else AccessPolicy.from_config(config)
        self.uploads = uploads
        self.welcome = Welcome(index, config.welcome_html, self.policy)
        self.health = Health()
        self.health_path = config.health_endpoint.encode("utf-8")
        self.putChild(b"simple", SimpleIndex(index, missing, config.hash_algo, cache_control))
        self.putChild(b"packages", Packages(index, cache_control, config.file_cache_size))
        self.putChild(b"pypi", JsonApi(index))
        # Operations: the browsable pages, pip search's XML-RPC and the
        # Prometheus metrics (children here, so the auth guard covers them).
        self.putChild(b"project", Browse(index))
        self.putChild(b"RPC2", PackageSearch(index))
        self.putChild(
            b"metrics",
            MetricsPage(
                METRICS if metrics is None else metrics,
                index,
                upstream.stats if upstream is not None else None,
            ),
        )

    def getChildWithDefault(self, name: bytes, request: Request) -> Resource:
        if request.path == self.health_path:
            return self.health
        if name == b"" and not request.postpath and request.method not in (b"GET", b"HEAD"):
            # POST / is an upload (or pip search): render_POST below; the
            # root answers other methods with the ones "/" serves.
            return self
        child = super().getChildWithDefault(name, request)
        return self.guarded(child, self.action_for(name, request))

    def action_for(self, name: bytes, request: Request) -> str | None:
        """
        The action a request for the child C{name} performs, or L{None} for
        the pages that are always open (welcome page, health).
        """
        if name == b"packages":
            return LIST if request.postpath in ([], [b""]) else DOWNLOAD
        return self.CHILD_ACTIONS.get(name)

    def guarded(self, resource: Resource, action: str | None) -> Resource:
        """C{resource}, behind the password check when C{action} needs one."""
        if action is None or not self.policy.needs_password(action):
            return resource
        return Guard(resource, action, self.policy)

    def getChild(self, name: bytes, request: Request) -> Resource:
        if name == b"":
            return self.welcome
        try:
            project = name.decode("utf-8")
        except UnicodeDecodeError:
            return _NoSuchPage()
        return ProjectShortcut(project) if is_project_name(project) else _NoSuchPage()

    def render_GET(self, request: Request) -> bytes:
        # "http://host:8080" without the slash.
        return self.welcome.render_GET(request)

    def render_POST(self, request: Request) -> bytes | int:
        """
        Uploads and removals (C{multipart/form-data} or a URL-encoded form),
        or pip search's XML-RPC (C{text/xml}), told apart by content type.
        Never redirected: twine and poetry take a 3xx as a failure.
        """
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type in (b"text/xml", b"application/xml"):
            rpc = self.children.get(b"RPC2")
            if rpc is None:
                return error_page(request, 501, "this server does not offer XML-RPC search")
            return self.guarded(rpc, LIST).render(request)
        if self.uploads is None:
            request.setHeader(b"allow", b"GET, HEAD, OPTIONS")
            return error_page(request, 405, "this server does not take uploads")
        return self.guarded(self.uploads, UPDATE).render(request)


class _NoSuchPage(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return error_page(request, 404, "no such page")
