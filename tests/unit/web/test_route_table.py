"""
The route table (L{twistedpypi.web.root.ROUTES}) is the only place a route
is written: every route in it is served by the real L{Root}, guarded for
the action it names, and counted in C{/metrics} under the name it names.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from tests.indexing import config_for, index_directory
from twistedpypi.auth import AccessPolicy
from twistedpypi.config import ACTIONS
from twistedpypi.metrics import Metrics
from twistedpypi.proxy.upstream import Upstream
from twistedpypi.web.root import ROUTES, Root, Route
from twistedpypi.web.site import IndexSite


class ReadyWatcher:
    """A watcher whose first scan is done."""

    is_ready = True


def test_a_route_without_an_action_or_a_metrics_name_is_refused():
    with pytest.raises(ValueError, match="action"):
        Route(b"new", lambda root: None, "", "new")
    with pytest.raises(ValueError, match="action"):
        Route(b"new", lambda root: None, "list", "new", listing_action="browse")
    with pytest.raises(ValueError, match="metrics"):
        Route(b"new", lambda root: None, "list", "")


def test_each_route_has_its_own_segment_and_metrics_name():
    segments = [route.segment for route in ROUTES]
    names = [route.metrics_name for route in ROUTES]
    assert len(set(segments)) == len(segments)
    assert len(set(names)) == len(names)
    # The names Root's own pages are counted under are not taken.
    assert not set(names) & {"health", "welcome", "upload", "shortcut", "other"}
    assert all(route.action in ACTIONS for route in ROUTES)


@pytest.fixture
def serve(packages, tmp_path):
    """
    Start a site over a loopback port serving every route (proxy mode, so
    C{/upstream/} too, its upstream a closed port that is never asked),
    with C{protected} the actions that need a password (and no password
    file, so they are refused with 403).
    """
    ports = []
    upstreams = []

    def start(protected: frozenset[str]) -> tuple[str, Root]:
        upstream = Upstream("http://127.0.0.1:9/simple/", str(tmp_path / "cache"), timeout=5.0)
        upstreams.append(upstream)
        metrics = Metrics()
        config = config_for(packages, fallback_mode="proxy")
        root = Root(
            config, index_directory(packages), metrics=metrics, upstream=upstream, policy=AccessPolicy(protected, None)
        )
        port = reactor.listenTCP(0, IndexSite(root, ReadyWatcher(), metrics=metrics), interface="127.0.0.1")
        ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}", root

    yield start
    for upstream in upstreams:
        pytest_twisted.blockon(upstream.close())
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


async def get(url: str) -> tuple[int, bytes, bytes | None]:
    response = await Agent(reactor).request(b"GET", url.encode("ascii"))
    location = response.headers.getRawHeaders(b"location", [None])[0]
    return response.code, await readBody(response), location


def paths_below(route: Route) -> list[str]:
    """The route's own page, and a path below it."""
    segment = route.segment.decode("ascii")
    return [f"/{segment}/", f"/{segment}/demo/demo-1.0.tar.gz"]


@pytest_twisted.ensureDeferred
async def test_every_route_in_the_table_is_served_and_counted_under_its_name(serve):
    base, _ = serve(frozenset())
    for route in ROUTES:
        for path in paths_below(route):
            status, body, location = await get(base + path)
            # A segment that is not a route is taken for a project: a 301
            # to its simple page.  (502: the upstream, a closed port, was
            # asked for a project missing here.)
            shortcut = status == 301 and b"simple/" + route.segment in (location or b"")
            assert not shortcut and status != 500, (path, status, location, body)
    _, body, _ = await get(base + "/metrics")
    counted = set(re.findall(r'^twistedpypi_http_requests_total\{route="([^"]+)"', body.decode(), re.MULTILINE))
    assert {route.metrics_name for route in ROUTES} - {"metrics"} <= counted


@pytest_twisted.ensureDeferred
async def test_every_route_is_guarded_for_the_action_it_names_and_no_other(serve):
    for route in ROUTES:
        for path in paths_below(route):
            # The action this path performs: the listing's for the route's
            # own page, where the route names one.
            page = path.endswith(f"/{route.segment.decode('ascii')}/")
            action = route.listing_action if page and route.listing_action else route.action
            base, _ = serve(frozenset({action}))
            status, body, _ = await get(base + path)
            assert status == 403, (path, action, status, body)
            base, _ = serve(frozenset(ACTIONS) - {action})
            status, body, _ = await get(base + path)
            assert status not in (401, 403), (path, action, status, body)
