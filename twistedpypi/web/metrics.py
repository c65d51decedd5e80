"""
C{/metrics} in Prometheus text format.  The route names requests are
counted under are the route table's (L{twistedpypi.web.root.RouteNames}).
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.index.model import PackageIndex
from twistedpypi.metrics import Metrics, render_prometheus

PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
"""The text format C{prometheus_client}'s C{generate_latest} writes."""


class MetricsPage(Resource):
    """
    C{/metrics}: counters and index sizes for Prometheus to scrape, in the
    text exposition C{prometheus_client} renders
    (L{twistedpypi.metrics.render_prometheus}).
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
