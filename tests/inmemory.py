"""
Sites served in this process over loopback, for fast tests through real HTTP.
"""

import base64

import treq
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Site

from tests.indexing import config_for, index_directory
from twistedpypi.web.root import Root

PEP691_JSON = "application/vnd.pypi.simple.v1+json"


def client(directory, **settings):
    root = Root(config_for(directory, **settings), index_directory(directory))
    return StubTreq(root)


async def get(treq, url, **kwargs):
    response = await treq.get("http://example.test" + url, allow_redirects=False, **kwargs)
    return response, await response.content()


class LoopbackClient:
    """
    File downloads go through producers, which want a real connection: this
    serves the resources on a loopback port and talks to it with treq.
    """

    def __init__(self, directory, **settings) -> None:
        root = Root(config_for(directory, **settings), index_directory(directory))
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        # A bare Agent: treq rewrites Content-Encoding, which these tests
        # check.
        self.agent = Agent(reactor)

    async def get(self, url, headers=None):
        response = await self.agent.request(
            b"GET", (self.base + url).encode(), Headers({k: [v] for k, v in (headers or {}).items()})
        )
        return response, await readBody(response)

    def head(self, url):
        return self.agent.request(b"HEAD", (self.base + url).encode())


def basic(user, password):
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class Loopback:
    """
    The resources on a root_server port: the guard checks passwords in a
    thread, which wants a real reactor rather than StubTreq's memory.
    """

    def __init__(self, root):
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    def get(self, url, **kwargs):
        return treq.get(self.base + url.removeprefix("http://example.test"), persistent=False, **kwargs)

    def close(self):
        return self.port.stopListening()
