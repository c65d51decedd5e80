"""
The Twisted Web site: the request class and the site that builds the
resource tree.
"""

from __future__ import annotations

from twisted.web.server import Request, Site

from twistedpypi.config import Config
from twistedpypi.index import PackageIndex
from twistedpypi.watch import PackageWatcher
from twistedpypi.web.root import Root


class IndexRequest(Request):
    """
    A request that is not answered before the first scan of the package
    directories is in the index, so nobody is told a package is missing
    just because the server started a moment ago.

    Bodies are not parsed into C{args}: uploads are read as a stream.
    """

    def __init__(self, channel, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)

    def process(self) -> None:
        watcher = self.channel.site.watcher
        if watcher.is_ready:
            super().process()
        else:
            watcher.ready.addCallback(lambda _: Request.process(self))


class IndexSite(Site):
    """
    The site of one index: its requests wait for the watcher's first scan.
    """

    requestFactory = IndexRequest
    displayTracebacks = False

    def __init__(self, resource, watcher: PackageWatcher, **kwargs) -> None:
        super().__init__(resource, **kwargs)
        self.watcher = watcher


def make_site(config: Config, index: PackageIndex, watcher: PackageWatcher, upstream=None) -> IndexSite:
    """
    The site serving C{index} with the settings in C{config}; C{upstream}
    is the L{twistedpypi.upstream.Upstream} to proxy, if any.
    """
    return IndexSite(Root(config, index, upstream=upstream), watcher)
