"""
The ceiling for any Twisted web application on this machine: a C{Site} whose one
resource answers every GET with the same 3 KB page.

It logs each request to stdout the way C{twistd -n} does, so that the only difference
from twistedpypi is the application itself; with C{--no-log} it logs nothing, to
compare with twistedpypi's C{--no-access-log}.

usage: python bench/bare_site.py PORT [--no-log]
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

PAGE = (b"<!DOCTYPE html>\n<html><body>\n" + b"<a href='x'>x</a><br>\n" * 140)[:3000] + b"\n</body></html>\n"


class ConstantPage(Resource):
    """Every path is this resource, and its body never changes."""

    isLeaf = True

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return PAGE


class SilentSite(Site):
    """A C{Site} that writes no access log."""

    def log(self, request) -> None:
        pass


def main(port: int, access_log: bool = True) -> None:
    """Serve L{ConstantPage} on 127.0.0.1:C{port} until killed."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    site = (Site if access_log else SilentSite)(ConstantPage())
    reactor.listenTCP(port, site, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]), access_log="--no-log" not in sys.argv[2:])
