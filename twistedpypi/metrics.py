"""
Counters of what the server has done, and their Prometheus text rendering.

Counting is on the hot path, so a counter is a plain integer in a dictionary
whose keys are constant strings: bumping one allocates nothing.  The text is
built only when C{/metrics} is scraped.  Pure: no reactor, no I/O.
"""

from __future__ import annotations

import time

from twistedpypi.index.model import PackageIndex

EVENTS = {
    "uploads": "Distribution files stored by uploads.",
    "removals": "Distribution files removed through the API.",
}
"""The event counters other parts of the server bump with L{Metrics.count}."""


class Metrics:
    """
    Everything C{/metrics} reports that the index itself does not know.

    @ivar requests: answered requests, by route, then by status code.
    @ivar response_bytes: response body bytes sent, by route.
    @ivar events: the counters named in L{EVENTS}.
    """

    def __init__(self) -> None:
        self.requests: dict[str, dict[int, int]] = {}
        self.response_bytes: dict[str, int] = {}
        self.events: dict[str, int] = dict.fromkeys(EVENTS, 0)
        self.started = time.time()

    def count(self, event: str, amount: int = 1) -> None:
        """
        Add to one of the L{EVENTS} counters, e.g. C{metrics.count("uploads")}.
        """
        self.events[event] += amount

    def request_answered(self, route: str, status: int, size: int) -> None:
        """
        Count one answered request of C{route} with its status and body size.
        """
        by_status = self.requests.get(route)
        if by_status is None:
            by_status = self.requests[route] = {}
        by_status[status] = by_status.get(status, 0) + 1
        self.response_bytes[route] = self.response_bytes.get(route, 0) + size


METRICS = Metrics()
"""
The process's counters.  One server runs per process, so code anywhere in it
counts with C{METRICS.count("upstream_fetches")} without being handed an
object; tests give the site a L{Metrics} of their own.
"""


def _line(name: str, labels: str, value: float) -> str:
    number = repr(value) if isinstance(value, float) else str(value)
    return f"{name}{{{labels}}} {number}\n" if labels else f"{name} {number}\n"


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


_UPSTREAM = (
    ("twistedpypi_upstream_fetches_total", "Requests sent to the upstream index, by what was fetched.",
     {"page": "page_fetches", "file": "file_fetches", "metadata": "metadata_fetches"}),
    ("twistedpypi_upstream_cache_hits_total", "Proxied answers served from the cache, by what was served.",
     {"page": "page_hits", "stale_page": "page_stale", "file": "file_hits", "metadata": "metadata_hits"}),
)


def render_prometheus(
    metrics: Metrics, index: PackageIndex, in_flight: int = 0, upstream=None
) -> bytes:
    """
    The Prometheus text exposition (format 0.0.4) of C{metrics}, of the
    index's size, of the number of requests C{in_flight}, and of the proxy's
    L{twistedpypi.proxy.upstream.UpstreamStats} C{upstream} (zeros when the
    server does not proxy).
    """
    out = [_header("twistedpypi_http_requests_total", "counter", "HTTP requests answered, by route and status.")]
    for route, by_status in sorted(metrics.requests.items()):
        for status, count in sorted(by_status.items()):
            out.append(_line("twistedpypi_http_requests_total", f'route="{route}",status="{status}"', count))
    out.append(_header("twistedpypi_http_response_bytes_total", "counter", "Response body bytes sent, by route."))
    for route, size in sorted(metrics.response_bytes.items()):
        out.append(_line("twistedpypi_http_response_bytes_total", f'route="{route}"', size))
    out.append(_header("twistedpypi_http_requests_in_flight", "gauge", "Requests received and not yet answered."))
    out.append(_line("twistedpypi_http_requests_in_flight", "", in_flight))
    for event, help_text in EVENTS.items():
        name = f"twistedpypi_{event}_total"
        out.append(_header(name, "counter", help_text))
        out.append(_line(name, "", metrics.events[event]))
    for name, help_text, counters in _UPSTREAM:
        out.append(_header(name, "counter", help_text))
        for kind, attribute in counters.items():
            out.append(_line(name, f'kind="{kind}"', getattr(upstream, attribute, 0)))
    out.append(_header("twistedpypi_upstream_errors_total", "counter", "Upstream requests that failed or timed out."))
    out.append(_line("twistedpypi_upstream_errors_total", "", getattr(upstream, "errors", 0)))
    for name, help_text, value in (
        ("twistedpypi_projects", "Projects in the index.", len(index.projects)),
        ("twistedpypi_files", "Distribution files in the index.", len(index.files_by_name)),
        ("twistedpypi_files_bytes", "Total size of the distribution files in the index.", index.total_size),
        ("twistedpypi_index_serial", "Changes applied to the index since start.", index.serial),
        ("twistedpypi_start_time_seconds", "When the server started, in seconds since the epoch.", metrics.started),
    ):
        out.append(_header(name, "gauge", help_text))
        out.append(_line(name, "", value))
    return "".join(out).encode("utf-8")
