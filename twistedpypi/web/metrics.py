"""
C{/metrics} in Prometheus text format, and the route names requests are
counted under.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import Metrics, render_prometheus

PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"

_ROUTES = {
    b"simple": "simple",
    b"packages": "packages",
    b"pypi": "json",
    b"project": "browse",
    b"metrics": "metrics",
    b"RPC2": "xmlrpc",
    b"upstream": "upstream",
}


class RouteNames:
    """
    Names the route of a request by its first path segment, from a fixed
    set, so the metrics stay small whatever paths clients send.
    """

    def __init__(self, health_path: bytes = b"/health") -> None:
        self.health_path = health_path

    def __call__(self, request: Request) -> str:
        path = request.path
        if path == self.health_path:
            return "health"
        if path == b"/":
            if request.method == b"POST":
                content_type = request.getHeader(b"content-type") or b""
                return "xmlrpc" if content_type.startswith(b"text/xml") else "upload"
            return "welcome"
        if not path.startswith(b"/"):
            # "*", or a target refused with 400.
            return "other"
        first = path.split(b"/", 2)[1]
        route = _ROUTES.get(first)
        if route is not None:
            return route
        # /<project>/, pypiserver's shortcut, or nothing at all.
        return "shortcut" if path.count(b"/") <= 2 else "other"


class MetricsPage(Resource):
    """
    C{/metrics}: counters and index sizes for Prometheus to scrape.
    """

    isLeaf = True

    def __init__(self, metrics: Metrics, index: PackageIndex, upstream_stats=None) -> None:
        super().__init__()
        self.metrics = metrics
        self.index = index
        self.upstream_stats = upstream_stats

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", PROMETHEUS_TEXT)
        request.setHeader(b"cache-control", b"no-store")
        # The site that received the request knows what is in flight (a
        # test's plain Site does not).
        site = getattr(request.channel, "site", None)
        in_flight = getattr(site, "in_flight", None)
        return render_prometheus(
            self.metrics, self.index, in_flight.count if in_flight else 0, self.upstream_stats
        )
