"""
The site's root: routes each request to the resource for its first path
segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.auth import DOWNLOAD, LIST, UPDATE, AccessPolicy
from twistedpypi.config import ACTIONS, DEFAULT_HEALTH_ENDPOINT, Config
from twistedpypi.index.distfile import is_project_name, normalize_name
from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import METRICS, Metrics
from twistedpypi.web.browse import Browse
from twistedpypi.web.files import Packages
from twistedpypi.web.guard import Guard
from twistedpypi.web.jsonapi import JsonApi
from twistedpypi.web.memo import BoundedMemo
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


class ProjectDocument(Resource):
    """
    C{/<project>/json}: pypiserver's project document, answered here with
    the PyPI JSON API's (C{/pypi/<project>/json}), which holds everything
    pypiserver's has (C{info.version}, C{releases} with each file's C{url})
    and more.  Listed behind C{list}, as in pypiserver.
    """

    isLeaf = True

    def __init__(self, documents: JsonApi, project: str) -> None:
        super().__init__()
        self.documents = documents
        self.project = project
        """The project's name as the path spells it (what the guard checks)."""

    def render_GET(self, request: Request) -> bytes:
        return self.documents.render_document(request, self.project, None, lambda normalized: f"/{normalized}/json")


@dataclass(frozen=True)
class Route:
    """
    One first path segment the site serves: the resource behind it, the
    C{-a} action a request there performs, and the name its requests are
    counted under in C{/metrics}.

    @ivar segment: the first path segment, C{b"simple"} for C{/simple/...}.
    @ivar build: makes the resource from the L{Root}, or gives L{None} when
        this server does not serve the route (C{/upstream/} outside proxy
        mode).
    @ivar action: the action of L{ACTIONS} a request below the route
        performs, which the password guard asks the policy about.
    @ivar metrics_name: the C{route} label of its requests in C{/metrics}.
    @ivar listing_action: the action of the route's own page
        (C{/packages/}, a listing) when it differs from L{action}.
    """

    segment: bytes
    build: Callable[[Root], Resource | None]
    action: str
    metrics_name: str
    listing_action: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS or self.listing_action not in (None, *ACTIONS):
            raise ValueError(f"route {self.segment!r}: its action must be one of {ACTIONS}")
        if not self.metrics_name:
            raise ValueError(f"route {self.segment!r}: it needs a name to be counted under in /metrics")

    def action_for(self, request: Request) -> str:
        """The action C{request}, below this route, performs."""
        if self.listing_action is not None and request.postpath in ([], [b""]):
            return self.listing_action
        return self.action


def _upstream_files(root: Root) -> Resource | None:
    if root.upstream is None:
        return None
    # Proxy mode only: twistedpypi.web.proxy is imported when it is used.
    from twistedpypi.web.proxy import UpstreamFiles

    return UpstreamFiles(root.upstream, root.index, root.cache_control)


ROUTES: tuple[Route, ...] = (
    Route(
        b"simple",
        lambda root: SimpleIndex(root.index, root.missing, root.config.hash_algo, root.cache_control),
        LIST,
        "simple",
    ),
    Route(
        b"packages",
        lambda root: Packages(root.index, root.cache_control, root.config.file_cache_size),
        DOWNLOAD,
        "packages",
        listing_action=LIST,
    ),
    Route(b"pypi", lambda root: JsonApi(root.index), LIST, "json"),
    # Operations: the browsable pages, pip search's XML-RPC and the
    # Prometheus metrics (routes here, so the password guard covers them).
    Route(b"project", lambda root: Browse(root.index), LIST, "browse"),
    Route(b"RPC2", lambda root: PackageSearch(root.index), LIST, "xmlrpc"),
    Route(
        b"metrics",
        lambda root: MetricsPage(
            root.metrics, root.index, root.upstream.stats if root.upstream is not None else None
        ),
        LIST,
        "metrics",
    ),
    Route(b"upstream", _upstream_files, DOWNLOAD, "upstream"),
)
"""
Every route below C{/}, once: L{Root} builds its children from it and
guards each with its action, and L{RouteNames} counts requests under its
names.  C{/} itself (welcome page, uploads), the health endpoint and the
C{/<project>/} shortcut are L{Root}'s own.
"""

_ROUTE_BY_SEGMENT = {route.segment: route for route in ROUTES}


def posts_xml(request: Request) -> bool:
    """Whether a C{POST /} is XML (pip search's XML-RPC), not a form."""
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    return content_type in (b"text/xml", b"application/xml")


_NAMED_PATHS = 4096
"""The most request paths L{RouteNames} remembers the route of."""


class RouteNames:
    """
    Names the route of a request by its first path segment, from a fixed
    set (the L{ROUTES}' names, and C{health}, C{welcome}, C{upload},
    C{xmlrpc}, C{shortcut} and C{other}), so the metrics stay small
    whatever paths clients send.
    """

    def __init__(self, health_path: bytes = DEFAULT_HEALTH_ENDPOINT.encode("ascii")) -> None:
        self.health_path = health_path
        self._by_path: BoundedMemo[bytes, str] = BoundedMemo(_NAMED_PATHS)

    def __call__(self, request: Request) -> str:
        path = request.path
        # Every path but "/" names its route alone: each is worked out once
        # (and the memory of them bounded, whatever paths clients send).
        name = self._by_path.get(path)
        if name is None:
            name = self._name(request)
            if path != b"/":
                self._by_path.remember(path, name)
        return name

    def _name(self, request: Request) -> str:
        path = request.path
        if path == self.health_path:
            return "health"
        if path == b"/":
            if request.method == b"POST":
                return "xmlrpc" if posts_xml(request) else "upload"
            return "welcome"
        if not path.startswith(b"/"):
            # "*", or a target refused with 400.
            return "other"
        route = _ROUTE_BY_SEGMENT.get(path.split(b"/", 2)[1])
        if route is not None:
            return route.metrics_name
        # /<project>/, pypiserver's shortcut, /<project>/json, its JSON
        # document, or nothing at all.
        slashes = path.count(b"/")
        if slashes > 2:
            return "other"
        return "json" if slashes == 2 and path.endswith(b"/json") else "shortcut"


class Root(Resource):
    """
    C{/}: the welcome page, uploads (C{POST /}), and the parent of every
    route in L{ROUTES}.

    The C{-a} policy is applied here, in one place: each child is wrapped
    in a L{Guard} for the action its route says it serves.
    """

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
        self.config = config
        self.index = index
        self.metrics = METRICS if metrics is None else metrics
        self.upstream = upstream
        self.cache_control = (
            f"public, max-age={config.cache_control}".encode("ascii")
            if config.cache_control is not None
            else None
        )
        if upstream is not None:
            # Proxy mode (twistedpypi.proxy.upstream): pages from upstream.
            from twistedpypi.web.proxy import UpstreamProxy

            missing = UpstreamProxy(upstream, self.cache_control)
        if missing is None:
            missing = FallbackRedirect(config.fallback_url) if config.fallback_url else NotFound()
        self.missing = missing
        self.policy = policy if policy is not None else AccessPolicy.from_config(config)
        self.uploads = uploads
        self.welcome = Welcome(index, config.welcome_html, self.policy)
        self.health = Health()
        self.health_path = config.health_endpoint.encode("utf-8")
        for route in ROUTES:
            resource = route.build(self)
            if resource is not None:
                self.putChild(route.segment, resource)

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
        the pages that are always open (welcome page, health, the
        C{/<project>/} shortcut; C{/<project>/json} lists).
        """
        route = _ROUTE_BY_SEGMENT.get(name)
        if route is not None:
            return route.action_for(request)
        return LIST if request.postpath == [b"json"] else None

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
        if not is_project_name(project):
            return _NoSuchPage()
        if request.postpath == [b"json"]:
            return ProjectDocument(self.children[b"pypi"], project)
        return ProjectShortcut(project)

    def render_GET(self, request: Request) -> bytes:
        # "http://host:8080" without the slash.
        return self.welcome.render_GET(request)

    def render_POST(self, request: Request) -> bytes | int:
        """
        Uploads and removals (C{multipart/form-data} or a URL-encoded form),
        or pip search's XML-RPC (C{text/xml}), told apart by content type.
        Never redirected: twine and poetry take a 3xx as a failure.
        """
        if posts_xml(request):
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
