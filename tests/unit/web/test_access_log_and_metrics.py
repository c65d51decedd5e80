"""
Counting, logging and draining requests: the site over a loopback port, its
metrics page and access log, and the stop that waits for requests in
flight.
"""

import base64
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from tests.distributions import wheel_bytes, write
from tests.indexing import ReadyWatcher, config_for, index_directory
from tests.metrics_text import parse_metrics
from twistedpypi.metrics import Metrics, render_prometheus
from twistedpypi.process.drain import DrainService, InFlight
from twistedpypi.web.root import Root
from twistedpypi.web.site import IndexSite


@pytest.fixture
def site(packages):
    write(packages, wheel_bytes("lib", "1.0"))
    metrics = Metrics()
    index = index_directory(packages)
    site = IndexSite(Root(config_for(packages), index, metrics=metrics), ReadyWatcher(), metrics=metrics)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    site.base = f"http://127.0.0.1:{port.getHost().port}"
    yield site
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def access_lines():
    events = []

    def observe(event):
        if event.get("log_namespace") == "twistedpypi.access":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


async def fetch(site, path, headers=None, method=b"GET"):
    agent = Agent(reactor)
    response = await agent.request(method, (site.base + path).encode(), Headers(headers or {}))
    return response, await readBody(response)


@pytest_twisted.ensureDeferred
async def test_metrics_count_requests_by_route_and_status_and_bytes(site):
    _, page = await fetch(site, "/simple/lib/")
    await fetch(site, "/simple/lib/")
    await fetch(site, "/packages/lib-1.0-py3-none-any.whl")
    await fetch(site, "/packages/nothing.whl")
    await fetch(site, "/health")
    response, body = await fetch(site, "/metrics")
    assert response.headers.getRawHeaders("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
    values = parse_metrics(body.decode())
    assert values['twistedpypi_http_requests_total{route="simple",status="200"}'] == 2
    assert values['twistedpypi_http_requests_total{route="packages",status="200"}'] == 1
    assert values['twistedpypi_http_requests_total{route="packages",status="404"}'] == 1
    assert values['twistedpypi_http_requests_total{route="health",status="200"}'] == 1
    wheel = site.resource.children[b"packages"].index.file("lib-1.0-py3-none-any.whl")
    assert values['twistedpypi_http_response_bytes_total{route="packages"}'] >= wheel.size
    assert values['twistedpypi_http_response_bytes_total{route="simple"}'] == 2 * len(page)
    assert values["twistedpypi_projects"] == 1
    assert values["twistedpypi_files"] == 1
    # Uploads are counted where they are stored: tests/test_upload_metrics.py.
    assert values["twistedpypi_uploads_total"] == 0
    assert values['twistedpypi_upstream_fetches_total{kind="file"}'] == 0
    # The scrape itself is in flight while it is rendered.
    assert values["twistedpypi_http_requests_in_flight"] == 1


def test_prometheus_text_has_help_and_type_for_every_metric(packages):
    text = render_prometheus(Metrics(), index_directory(packages)).decode()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP")}
    assert names == helped
    assert {"twistedpypi_http_requests_total", "twistedpypi_uploads_total", "twistedpypi_upstream_cache_hits_total", "twistedpypi_files"} <= names


def test_the_metrics_text_reads_back_with_the_same_names_labels_and_values(packages):
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    metrics.request_answered("simple", 200, 120)
    metrics.request_answered("simple", 404, 7)
    metrics.count("uploads", 3)
    families = {
        family.name: family
        for family in text_string_to_metric_families(render_prometheus(metrics, index_directory(packages), 2).decode())
    }
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for family in families.values() for sample in family.samples}
    assert samples[("twistedpypi_http_requests_total", (("route", "simple"), ("status", "404")))] == 1
    assert samples[("twistedpypi_http_response_bytes_total", (("route", "simple"),))] == 127
    assert samples[("twistedpypi_uploads_total", ())] == 3
    assert samples[("twistedpypi_removals_total", ())] == 0
    assert samples[("twistedpypi_http_requests_in_flight", ())] == 2
    assert families["twistedpypi_http_requests"].type == "counter"
    assert families["twistedpypi_files"].type == "gauge"


def test_the_proxys_counters_are_reported(packages):
    from twistedpypi.proxy.upstream import UpstreamStats

    stats = UpstreamStats(page_fetches=2, file_hits=3, errors=1)
    values = parse_metrics(render_prometheus(Metrics(), index_directory(packages), upstream=stats).decode())
    assert values['twistedpypi_upstream_fetches_total{kind="page"}'] == 2
    assert values['twistedpypi_upstream_cache_hits_total{kind="file"}'] == 3
    assert values["twistedpypi_upstream_errors_total"] == 1


@pytest_twisted.ensureDeferred
async def test_access_log_has_one_combined_line_per_request_with_user_and_duration(site, access_lines):
    credentials = base64.b64encode(b"alice:secret").decode()
    await fetch(site, '/simple/lib/?x="y"', {"Authorization": [f"Basic {credentials}"], "User-Agent": ["pip/24"], "Referer": ["http://r/"]})
    assert len(access_lines) == 1
    event = access_lines[0]
    assert event["user"] == "alice" and event["status"] == 200 and event["method"] == "GET"
    assert 0 <= event["duration"] < 5
    from twisted.logger import formatEvent

    line = formatEvent(event)
    assert line.startswith('127.0.0.1 - alice [')
    assert '"GET /simple/lib/?x=\\"y\\" HTTP/1.1" 200 ' in line
    assert line.endswith(f'"http://r/" "pip/24" {event["duration"]:.3f}')


@pytest_twisted.ensureDeferred
async def test_access_log_escapes_what_clients_send_and_names_no_user_without_credentials(site, access_lines):
    await fetch(site, "/packages/lib-1.0-py3-none-any.whl", {"User-Agent": ['pip "x" \x1b[31m\\']})
    event = access_lines[0]
    assert event["user"] == "-" and event["status"] == 200
    from twisted.logger import formatEvent

    line = formatEvent(event)
    assert line.startswith('127.0.0.1 - - [')
    assert '"GET /packages/lib-1.0-py3-none-any.whl HTTP/1.1" 200 ' in line
    assert '"-" "pip \\"x\\" \\x1b[31m\\\\" ' in line
    assert event["size"] == site.resource.children[b"packages"].index.file("lib-1.0-py3-none-any.whl").size


@pytest_twisted.ensureDeferred
async def test_a_client_gone_before_the_answer_is_logged_as_499(site, access_lines):
    watcher = site.watcher
    # Requests wait for the first scan: hold them there, then hang up.
    site.watcher = type("Scanning", (), {"is_ready": False, "ready": defer.Deferred()})()
    try:
        client = socket.create_connection(("127.0.0.1", int(site.base.rsplit(":", 1)[1])))
        client.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(100):
            if site.in_flight.count:
                break
            await deferLater(0.01)
        assert site.in_flight.count == 1
        client.close()
        for _ in range(100):
            if access_lines:
                break
            await deferLater(0.01)
    finally:
        site.watcher = watcher
    assert access_lines[0]["status"] == 499
    assert site.in_flight.count == 0
    assert site.metrics.requests["simple"] == {499: 1}


REFUSALS = [
    # Sent, then the status, the logged request line and the route counted.
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 414, "-", "other"),
    (b"GET /simple/ HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "GET /simple/ HTTP/1.1", "simple"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400, "POST / HTTP/1.1", "upload"),
    (b"PUT /simple/ HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413, "PUT /simple/ HTTP/1.1", "simple"),
    (b"NOT A REQUEST LINE\r\n\r\n", 400, "-", "other"),
    (b"GET /simple/ HTTP/1.1\r\nHost: x\r\n", 408, "GET /simple/ HTTP/1.1", "simple"),
    (b"GE", 408, "-", "other"),
]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("sent, status, line, route", REFUSALS)
async def test_answers_given_before_a_request_is_whole_are_logged_and_counted(site, access_lines, sent, status, line, route):
    site.header_timeout = 0.3
    client = socket.create_connection(("127.0.0.1", int(site.base.rsplit(":", 1)[1])))
    client.setblocking(False)
    client.sendall(sent)
    answer = b""
    for _ in range(300):
        await deferLater(0.01)
        try:
            chunk = client.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:80]
    (event,) = access_lines
    assert event["status"] == status
    assert f'"{line}" {status} ' in event["log_line"]
    assert event["log_line"].startswith("127.0.0.1 - - [")
    assert site.metrics.requests[route] == {status: 1}
    assert site.in_flight.count == 0


def deferLater(seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


def test_stop_waits_for_requests_in_flight():
    clock = Clock()
    in_flight = InFlight()
    in_flight.started()
    in_flight.started()
    drain = DrainService(in_flight, timeout=25, reactor=clock)
    drain.startService()
    stopped = drain.stopService()
    results = []
    stopped.addBoth(results.append)
    in_flight.finished()
    clock.advance(10)
    assert results == []
    in_flight.finished()
    assert results == [None]


def test_stop_gives_up_waiting_after_the_bound_without_failing():
    clock = Clock()
    in_flight = InFlight()
    in_flight.started()
    drain = DrainService(in_flight, timeout=25, reactor=clock)
    drain.startService()
    results = []
    drain.stopService().addBoth(results.append)
    clock.advance(24.9)
    assert results == []
    clock.advance(0.2)
    assert results == [None]


def test_stop_with_nothing_in_flight_is_immediate():
    drain = DrainService(InFlight(), reactor=Clock())
    drain.startService()
    results = []
    drain.stopService().addBoth(results.append)
    assert results == [None]
