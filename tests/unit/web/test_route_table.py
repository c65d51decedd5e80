"""
The route table (L{twistedpypi.web.root.ROUTES}) is the only place a route
is written: every route in it is served by the real L{Root}, guarded for
the action it names, and counted in C{/metrics} under the name it names.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from tests.indexing import config_for, index_directory
from twistedpypi.auth import AccessPolicy
from twistedpypi.config import ACTIONS
from twistedpypi.metrics import Metrics
from twistedpypi.proxy.upstream import Upstream
from twistedpypi.web.root import ROUTES, Root, Route, RouteNames
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


@pytest_twisted.ensureDeferred
async def test_pypiservers_project_document_is_served_counted_and_guarded_for_listing(serve, packages):
    from tests.distributions import wheel_bytes, write

    write(packages, wheel_bytes("demo", "1.0"))
    base, _ = serve(frozenset())
    status, body, _ = await get(base + "/demo/json")
    assert status == 200
    document = json.loads(body)
    assert document["info"]["version"] == "1.0"
    assert document["releases"]["1.0"][0]["url"] == base + "/packages/demo-1.0-py3-none-any.whl"
    assert (await get(base + "/pypi/demo/json"))[1] == body
    # As pypiserver: another spelling is sent to the normal one; the
    # shortcut below it is still the simple page.
    status, _, location = await get(base + "/Demo/json")
    assert (status, urljoin(base + "/Demo/json", location.decode())) == (301, base + "/demo/json")
    assert (await get(base + "/nothing-here/json"))[0] == 404
    status, _, location = await get(base + "/demo/")
    assert (status, urljoin(base + "/demo/", location.decode())) == (301, base + "/simple/demo/")
    _, metrics, _ = await get(base + "/metrics")
    assert 'route="json",status="200"' in metrics.decode()
    protected, _ = serve(frozenset({"list"}))
    assert (await get(protected + "/demo/json"))[0] == 403
    assert (await get(protected + "/demo/"))[0] == 301


@pytest.mark.parametrize(
    "method, path, content_type, name",
    [
        (b"POST", b"/", b"text/xml", "xmlrpc"),
        (b"POST", b"/", b"Application/XML; charset=utf-8", "xmlrpc"),
        (b"POST", b"/", b"multipart/form-data; boundary=x", "upload"),
        (b"GET", b"/", None, "welcome"),
        (b"GET", b"/demo/", None, "shortcut"),
        (b"GET", b"/demo/json", None, "json"),
        (b"GET", b"/json", None, "shortcut"),
        (b"GET", b"/demo/x/y", None, "other"),
    ],
)
def test_requests_are_counted_under_the_route_root_sends_them_to(method, path, content_type, name):
    from twisted.web.test.requesthelper import DummyRequest

    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    request.method = method
    request.path = path
    if content_type is not None:
        request.requestHeaders.setRawHeaders(b"content-type", [content_type])
    assert RouteNames()(request) == name
