"""
A fake upstream index, and proxies in front of it, served in this process.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.indexing import config_for, index_directory
from tests.inmemory import PEP691_JSON
from twistedpypi.proxy.upstream import Upstream
from twistedpypi.web.root import Root


class FakeUpstream(Resource):
    """
    A PEP 691 (or PEP 503) index with files under C{/files/}, counting what
    it is asked.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, list[dict]] = {}
        self.requests: list[str] = []
        self.html = False
        self.status: int | None = None
        self.corrupt: set[str] = set()
        self.authorization: bytes | None = None

    def add(self, project: str, filename: str, data: bytes, metadata: bytes | None = None, **attributes) -> None:
        self.files.setdefault(project, []).append(dict(filename=filename, data=data, metadata=metadata, **attributes))

    def count(self, path: str) -> int:
        return sum(1 for p in self.requests if p == path)

    def render_GET(self, request):
        path = request.path.decode()
        self.requests.append(path)
        if self.authorization is not None and request.getHeader(b"authorization") != self.authorization:
            request.setResponseCode(401)
            return b"who are you?"
        if self.status is not None:
            request.setResponseCode(self.status)
            return b"upstream trouble"
        parts = path.strip("/").split("/")
        if parts[0] == "simple" and len(parts) == 2 and parts[1] in self.files:
            return self._page(request, parts[1])
        if parts[0] == "files" and len(parts) >= 2:
            for entries in self.files.values():
                for entry in entries:
                    if entry.get("url") and unquote(path) not in (entry["url"], entry["url"] + ".metadata"):
                        continue
                    if parts[-1] == entry["filename"]:
                        data = entry["data"]
                        return data[:-1] + b"!" if entry["filename"] in self.corrupt else data
                    if parts[-1] == entry["filename"] + ".metadata" and entry["metadata"]:
                        return entry["metadata"]
        request.setResponseCode(404)
        return b"not here"

    def _page(self, request, project):
        entries = self.files[project]
        if self.html:
            links = []
            for e in entries:
                attributes = f' data-requires-python="{e["requires_python"].replace(">", "&gt;")}"' if e.get("requires_python") else ""
                if e.get("yanked"):
                    attributes += f' data-yanked="{e["yanked"] if isinstance(e["yanked"], str) else ""}"'
                if e["metadata"]:
                    attributes += f' data-core-metadata="sha256={hashlib.sha256(e["metadata"]).hexdigest()}"'
                sha = hashlib.sha256(e["data"]).hexdigest()
                links.append(f'<a href="../../files/{e["filename"]}#sha256={sha}"{attributes}>{e["filename"]}</a><br>')
            request.setHeader(b"content-type", b"text/html")
            return f"<html><body>{''.join(links)}</body></html>".encode()
        files = []
        for e in entries:
            document = {
                "filename": e["filename"],
                "url": e.get("url", f"../../files/{e['filename']}"),
                "hashes": {"sha256": hashlib.sha256(e["data"]).hexdigest()},
                "yanked": e.get("yanked", False),
                "size": len(e["data"]),
            }
            if e.get("requires_python"):
                document["requires-python"] = e["requires_python"]
            if e["metadata"]:
                document["core-metadata"] = {"sha256": hashlib.sha256(e["metadata"]).hexdigest()}
            files.append(document)
        request.setHeader(b"content-type", PEP691_JSON.encode())
        return json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": files}).encode()


class Hanging(Protocol):
    """Accepts a connection and never answers."""

    def connectionMade(self) -> None:
        self.factory.connections.append(self.transport)


class Servers:
    """The fake upstream and our proxy, on loopback ports."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.ports = []
        self.upstreams: list[Upstream] = []
        self.hanging: list = []
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)

    def listen(self, resource) -> str:
        port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
        self.ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}"

    def fake_upstream(self) -> tuple[FakeUpstream, str]:
        fake = FakeUpstream()
        return fake, self.listen(fake) + "/simple/"

    def hanging_upstream(self) -> str:
        factory = Factory.forProtocol(Hanging)
        factory.connections = self.hanging
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}/simple/"

    def proxy(self, packages, upstream_url: str, ttl: float = 300.0, timeout: float = 5.0, cache=None) -> "Proxy":
        upstream = Upstream(upstream_url, str(cache or self.tmp_path / "cache"), ttl=ttl, timeout=timeout)
        self.upstreams.append(upstream)
        root = Root(config_for(packages, fallback_mode="proxy"), index_directory(packages), upstream=upstream)
        return Proxy(self.listen(root), upstream, self.agent)

    async def close(self) -> None:
        for transport in self.hanging:
            transport.abortConnection()
        for upstream in self.upstreams:
            await upstream.close()
        await self.pool.closeCachedConnections()
        for port in self.ports:
            await port.stopListening()


class Proxy:
    def __init__(self, base: str, upstream: Upstream, agent: Agent) -> None:
        self.base = base
        self.upstream = upstream
        self.agent = agent

    async def get(self, path: str, headers: dict | None = None):
        response = await self.agent.request(
            b"GET", (self.base + path).encode(), Headers({k: [v] for k, v in (headers or {}).items()})
        )
        return response, await readBody(response)


def publish(fake: FakeUpstream, upstream_project) -> None:
    filename, data, metadata = upstream_project["wheel"]
    fake.add("remote", filename, data, metadata, requires_python=">=3.8")
    old_name, old_data = upstream_project["yanked"]
    fake.add("remote", old_name, old_data, yanked="broken build")
