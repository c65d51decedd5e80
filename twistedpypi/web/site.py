"""
The Twisted Web site: the request class and the site that builds the
resource tree.
"""

from __future__ import annotations

from time import monotonic
from weakref import WeakSet

from twisted.python.failure import Failure
from twisted.web.server import Request, Site

from twistedpypi.config import Config
from twistedpypi.drain import InFlight
from twistedpypi.index import PackageIndex
from twistedpypi.metrics import METRICS, Metrics
from twistedpypi.watch import PackageWatcher
from twistedpypi.web.accesslog import log_access
from twistedpypi.web.metrics import RouteNames
from twistedpypi.web.root import Root


class IndexRequest(Request):
    """
    A request that is not answered before the first scan of the package
    directories is in the index, so nobody is told a package is missing
    just because the server started a moment ago.

    Bodies are not parsed into C{args}: uploads are read as a stream.

    @ivar started: when its request line arrived (L{time.monotonic}), for
        the access log's duration.
    """

    def __init__(self, channel, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)
        self.started = monotonic()
        site = getattr(channel, "site", None)
        if isinstance(site, IndexSite):
            site.request_started(self)

    def process(self) -> None:
        watcher = self.channel.site.watcher
        if watcher.is_ready:
            super().process()
        else:
            watcher.ready.addCallback(lambda _: Request.process(self))


class IndexSite(Site):
    """
    The site of one index: its requests wait for the watcher's first scan,
    are counted in L{Metrics} and the access log, and are tracked while in
    flight so a stop can wait for them.
    """

    requestFactory = IndexRequest
    displayTracebacks = False

    def __init__(
        self,
        resource,
        watcher: PackageWatcher,
        metrics: Metrics | None = None,
        access_log: bool = True,
        health_path: bytes = b"/health",
        **kwargs,
    ) -> None:
        super().__init__(resource, **kwargs)
        self.watcher = watcher
        self.metrics = METRICS if metrics is None else metrics
        self.access_log = access_log
        self.in_flight = InFlight()
        self._route = RouteNames(health_path)
        self._channels: WeakSet = WeakSet()

    def request_started(self, request: IndexRequest) -> None:
        """
        Track C{request} from its request line until it is answered or its
        client goes away.
        """
        self.in_flight.started()
        channel = request.channel
        # Remembered once per connection, not per request.
        if not getattr(channel, "_twistedpypi_seen", False):
            channel._twistedpypi_seen = True
            self._channels.add(channel)
        request.notifyFinish().addBoth(self._request_done, request)

    def _request_done(self, result: None | Failure, request: IndexRequest) -> None:
        # A request whose connection broke before it was even received
        # (no method yet) has nothing worth counting or logging.
        if "method" in request.__dict__:
            status = request.code
            if result is not None and not request.startedWriting:
                status = 499
            self.metrics.request_answered(self._route(request), status, request.sentLength)
            if self.access_log:
                log_access(request, status, monotonic() - request.started)
        self.in_flight.finished()

    def open_connections(self) -> list:
        """
        The transports of the connections that have carried a request and
        are still open.
        """
        return [
            channel.transport
            for channel in list(self._channels)
            if channel.transport is not None and channel.transport.connected
        ]

    def log(self, request: Request) -> None:
        # Twisted's own access log is replaced by _request_done, which also
        # sees requests whose client went away.
        pass


def make_site(
    config: Config, index: PackageIndex, watcher: PackageWatcher, metrics: Metrics | None = None
) -> IndexSite:
    """
    The site serving C{index} with the settings in C{config}, counting in
    C{metrics} (the process's L{METRICS} by default).
    """
    metrics = METRICS if metrics is None else metrics
    return IndexSite(
        Root(config, index, metrics=metrics),
        watcher,
        metrics=metrics,
        access_log=config.access_log,
        health_path=config.health_endpoint.encode("utf-8"),
    )
