"""
Proxy mode in process: our resources on a loopback port in front of a small
fake upstream index on another (file downloads stream through producers,
which want real connections).  No network beyond loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Protocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for, index_directory
from tests.upstream import FakeUpstream, publish
from twistedpypi.proxy import fetch as download_module
from twistedpypi.proxy.page import parse_html, parse_json
from twistedpypi.proxy.upstream import Upstream, split_credentials
from twistedpypi.tap import Options
from twistedpypi.web.root import Root

PEP691_JSON = "application/vnd.pypi.simple.v1+json"
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The pure parts.


def test_html_pages_are_read_with_their_attributes_and_bad_names_dropped():
    body = b"""<html><body>
    <a href="../../files/good-1.0-py3-none-any.whl#sha256=AB12" data-requires-python="&gt;=3.8"
       data-yanked="" data-dist-info-metadata="sha256=cd34">good-1.0-py3-none-any.whl</a>
    <a href="https://files.example/x/good-1.1.tar.gz#md5=ef">good-1.1.tar.gz</a>
    <a href="../../files/..%2F..%2Fetc%2Fpasswd">../../etc/passwd</a>
    <a href="../../files/.hidden-1.0.tar.gz">.hidden-1.0.tar.gz</a>
    <a href="file:///etc/good-1.2.tar.gz">good-1.2.tar.gz</a>
    </body></html>"""
    project = parse_html(body, "https://up.example/simple/good/", "good")
    assert [f.filename for f in project.files] == ["good-1.0-py3-none-any.whl", "good-1.1.tar.gz"]
    first, second = project.files
    assert first.url == "https://up.example/files/good-1.0-py3-none-any.whl"
    assert first.hashes == {"sha256": "ab12"}
    assert first.requires_python == ">=3.8"
    assert first.yanked is True
    assert first.core_metadata == {"sha256": "cd34"}
    assert second.hashes == {"md5": "ef"} and second.yanked is False and second.core_metadata is False


def test_json_pages_round_trip_through_the_form_kept_on_disk():
    document = {
        "name": "good",
        "files": [
            {"filename": "good-1.0.tar.gz", "url": "/f/good-1.0.tar.gz", "hashes": {"sha256": "aa"},
             "yanked": "bad", "core-metadata": True, "requires-python": ">=3", "size": 5},
            {"filename": "../evil-1.0.tar.gz", "url": "/f/x", "hashes": {}},
        ],
    }
    project = parse_json(json.dumps(document).encode(), "https://up.example/simple/good/", "good")
    assert [f.filename for f in project.files] == ["good-1.0.tar.gz"]
    assert project.files[0].url == "https://up.example/f/good-1.0.tar.gz"
    assert parse_json(project.to_json(), "", "good") == project


def test_file_urls_outside_ascii_are_percent_encoded_and_reserved_characters_kept():
    document = {
        "files": [
            {"filename": "demo-1.0.tar.gz", "url": "/pkgs/é/demo-1.0.tar.gz"},
            {"filename": "demo-1.1.tar.gz", "url": "https://bücher.example/a%2Fb/c+d;e/demo-1.1.tar.gz?sig=x y&t=é"},
        ]
    }
    project = parse_json(json.dumps(document).encode(), "https://up.example/simple/demo/", "demo")
    assert [f.url for f in project.files] == [
        "https://up.example/pkgs/%C3%A9/demo-1.0.tar.gz",
        "https://xn--bcher-kva.example/a%2Fb/c+d;e/demo-1.1.tar.gz?sig=x%20y&t=%C3%A9",
    ]
    html = '<a href="../../pkgs/é/demo-1.0.tar.gz#sha256=ab">demo-1.0.tar.gz</a>'.encode()
    (entry,) = parse_html(html, "https://up.example/simple/demo/", "demo").files
    assert entry.url == "https://up.example/pkgs/%C3%A9/demo-1.0.tar.gz" and entry.hashes == {"sha256": "ab"}


def test_credentials_in_the_url_become_a_basic_auth_header():
    url, header = split_credentials("https://al%40ice:s3cret@mirror.example:8443/simple/")
    assert url == "https://mirror.example:8443/simple/"
    assert header == b"Basic YWxAaWNlOnMzY3JldA=="
    assert split_credentials("https://pypi.org/simple/") == ("https://pypi.org/simple/", None)


# Options.


def test_proxy_options_and_the_default_cache_beside_the_packages(tmp_path):
    options = Options()
    options.parseOptions(["--fallback-mode", "proxy", "--upstream-ttl", "60", "--upstream-timeout", "2.5", str(tmp_path / "pkgs")])
    config = options.config()
    assert config.fallback_mode == "proxy"
    assert config.cache_dir == str(tmp_path / "pkgs-upstream-cache")
    assert os.path.isdir(config.cache_dir)
    assert (config.upstream_ttl, config.upstream_timeout) == (60.0, 2.5)
    plain = Options()
    plain.parseOptions([str(tmp_path / "pkgs")])
    assert plain.config().fallback_mode == "redirect"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--fallback-mode", "mirror"], "--fallback-mode"),
        (["--fallback-mode", "proxy", "--upstream-ttl", "soon"], "--upstream-ttl"),
        (["--fallback-mode", "proxy", "--upstream-timeout", "0"], "--upstream-timeout"),
        (["--fallback-mode", "proxy", "--cache-dir", "{packages}/cache"], "overlaps the package directory"),
        (["--fallback-url", "https://alice:s3cret@mirror.example/simple/"], "--fallback-mode proxy"),
        (["--fallback-mode", "redirect", "--fallback-url", "https://token@mirror.example/simple/"], "--fallback-mode proxy"),
    ],
)
def test_bad_proxy_options_stop_it_with_one_clear_line(tmp_path, arguments, message):
    packages = tmp_path / "packages"
    with pytest.raises(usage.UsageError, match=message) as raised:
        Options().parseOptions([a.format(packages=packages) for a in arguments] + [str(packages)])
    assert "\n" not in str(raised.value) and "s3cret" not in str(raised.value)


def test_credentials_in_the_fallback_url_are_fine_where_no_client_is_redirected(tmp_path):
    for mode in (["--fallback-mode", "proxy"], ["--disable-fallback"]):
        options = Options()
        options.parseOptions([*mode, "--fallback-url", "https://alice:s3cret@mirror.example/simple/", str(tmp_path / "p")])


@pytest_twisted.ensureDeferred
async def test_a_redirect_never_carries_the_fallback_urls_credentials(packages):
    from treq.testing import StubTreq

    root = Root(config_for(packages, fallback_url="https://alice:s3cret@mirror.example/simple/"), index_directory(packages))
    response = await StubTreq(root).get("http://localhost/simple/requests/", allow_redirects=False)
    assert response.code == 303
    assert response.headers.getRawHeaders("location") == ["https://mirror.example/simple/requests/"]


# The proxy.


@pytest_twisted.ensureDeferred
async def test_proxied_page_is_ours_in_the_format_asked_with_everything_carried(servers, packages, upstream_project):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    proxy = servers.proxy(packages, url)
    filename, data, metadata = upstream_project["wheel"]
    response, body = await proxy.get("/simple/remote/", {"Accept": PEP691_JSON})
    assert response.code == 200
    document = json.loads(body)
    entry = next(f for f in document["files"] if f["filename"] == filename)
    assert entry["url"] == f"../../upstream/remote/{filename}"
    assert entry["hashes"] == {"sha256": sha256(data)}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": sha256(metadata)}
    yanked = next(f for f in document["files"] if f["filename"] == upstream_project["yanked"][0])
    assert yanked["yanked"] == "broken build"
    response, body = await proxy.get("/simple/remote/")
    page = body.decode()
    assert response.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    assert f'href="../../upstream/remote/{filename}#sha256={sha256(data)}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page
    assert 'data-yanked="broken build"' in page
    assert fake.count("/simple/remote/") == 1  # both formats from one fetch


@pytest_twisted.ensureDeferred
async def test_an_html_only_upstream_is_read_too(servers, packages, upstream_project):
    fake, url = servers.fake_upstream()
    fake.html = True
    publish(fake, upstream_project)
    proxy = servers.proxy(packages, url)
    filename, data, metadata = upstream_project["wheel"]
    _, body = await proxy.get("/simple/remote/", {"Accept": PEP691_JSON})
    files = {f["filename"]: f for f in json.loads(body)["files"]}
    assert files[filename]["hashes"] == {"sha256": sha256(data)}
    assert files[filename]["requires-python"] == ">=3.8"
    assert files[filename]["core-metadata"] == {"sha256": sha256(metadata)}
    assert files[upstream_project["yanked"][0]]["yanked"] == "broken build"


@pytest_twisted.ensureDeferred
async def test_a_file_is_fetched_once_verified_cached_and_then_served_from_disk(servers, packages, upstream_project, tmp_path):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    proxy = servers.proxy(packages, url)
    filename, data, metadata = upstream_project["wheel"]
    for _ in range(3):
        response, body = await proxy.get(f"/upstream/remote/{filename}")
        assert response.code == 200
        assert body == data
    assert response.headers.getRawHeaders("etag") == [f'"{sha256(data)}"']
    assert fake.count(f"/files/{filename}") == 1
    assert (tmp_path / "cache" / "remote" / filename).read_bytes() == data
    assert os.listdir(packages) == []  # never in a package directory
    response, body = await proxy.get(f"/upstream/remote/{filename}.metadata")
    assert body == metadata
    await proxy.get(f"/upstream/remote/{filename}.metadata")
    assert fake.count(f"/files/{filename}.metadata") == 1
    assert proxy.upstream.stats.file_fetches == 1 and proxy.upstream.stats.file_hits == 2


@pytest_twisted.ensureDeferred
async def test_a_file_that_does_not_match_its_hash_is_refused_and_not_cached(servers, packages, upstream_project, tmp_path):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename = upstream_project["wheel"][0]
    fake.corrupt.add(filename)
    proxy = servers.proxy(packages, url)
    response, body = await proxy.get(f"/upstream/remote/{filename}")
    assert response.code == 502
    assert b"does not match its sha256" in body
    assert os.listdir(tmp_path / "cache" / "remote") == [".project.json"]


@pytest_twisted.ensureDeferred
async def test_large_files_stream_through_a_bounded_backlog_intact(servers, packages, monkeypatch, tmp_path):
    monkeypatch.setattr(download_module, "MAX_BACKLOG", 64 * 1024)
    monkeypatch.setattr(download_module, "WRITE_SIZE", 16 * 1024)
    fake, url = servers.fake_upstream()
    data = os.urandom(6 * 1024 * 1024)
    fake.add("big", "big-1.0.tar.gz", data)
    proxy = servers.proxy(packages, url)
    response, body = await proxy.get("/upstream/big/big-1.0.tar.gz")
    assert response.code == 200
    assert response.length == len(data)  # Content-Length, passed on from upstream
    assert sha256(body) == sha256(data)
    assert sha256((tmp_path / "cache" / "big" / "big-1.0.tar.gz").read_bytes()) == sha256(data)


@pytest_twisted.ensureDeferred
async def test_fifty_concurrent_requests_make_one_upstream_request(servers, packages):
    fake, url = servers.fake_upstream()
    data = os.urandom(2 * 1024 * 1024)
    fake.add("popular", "popular-1.0.tar.gz", data)
    proxy = servers.proxy(packages, url)
    pages = await DeferredList([Deferred.fromCoroutine(proxy.get("/simple/popular/")) for _ in range(50)], consumeErrors=True)
    assert all(ok and result[0].code == 200 for ok, result in pages)
    files = await DeferredList(
        [Deferred.fromCoroutine(proxy.get("/upstream/popular/popular-1.0.tar.gz")) for _ in range(50)],
        consumeErrors=True,
    )
    assert all(ok and result[0].code == 200 and result[1] == data for ok, result in files)
    assert fake.count("/simple/popular/") == 1
    assert fake.count("/files/popular-1.0.tar.gz") == 1


@pytest_twisted.ensureDeferred
async def test_a_local_project_shadows_the_upstream_one_of_the_same_name(servers, packages):
    write(packages, wheel_bytes("shared", "1.0"))
    fake, url = servers.fake_upstream()
    evil_name, evil = wheel_bytes("shared", "99.0")
    fake.add("shared", evil_name, evil)
    proxy = servers.proxy(packages, url)
    _, body = await proxy.get("/simple/shared/")
    assert b"shared-1.0-py3-none-any.whl" in body
    assert b"99.0" not in body and b"upstream" not in body
    response, _ = await proxy.get(f"/upstream/shared/{evil_name}")
    assert response.code == 404
    assert fake.requests == []


@pytest_twisted.ensureDeferred
async def test_pages_are_kept_for_the_ttl_then_refetched_and_served_stale_when_upstream_fails(servers, packages, upstream_project):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    fresh = servers.proxy(packages, url, ttl=300)
    await fresh.get("/simple/remote/")
    await fresh.get("/simple/remote/")
    assert fake.count("/simple/remote/") == 1
    assert fresh.upstream.stats.page_hits == 1

    fake.requests.clear()
    expiring = servers.proxy(packages, url, ttl=0, cache=servers.tmp_path / "cache2")
    _, before = await expiring.get("/simple/remote/")
    fake.status = 503
    response, body = await expiring.get("/simple/remote/")
    assert response.code == 200 and body == before
    assert fake.count("/simple/remote/") == 2
    # Having just failed, the upstream is left alone for a while.
    response, body = await expiring.get("/simple/remote/")
    assert response.code == 200 and body == before
    assert fake.count("/simple/remote/") == 2
    assert expiring.upstream.stats.page_stale == 2
    response, body = await expiring.get("/simple/never-seen/")
    assert response.code == 502
    assert b"answered 503" in body


@pytest_twisted.ensureDeferred
async def test_a_restarted_proxy_serves_what_it_cached_with_the_upstream_gone(servers, packages, upstream_project, tmp_path):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename, data, _ = upstream_project["wheel"]
    first = servers.proxy(packages, url)
    _, page = await first.get("/simple/remote/")
    await first.get(f"/upstream/remote/{filename}")
    await first.get(f"/upstream/remote/{filename}.metadata")
    gone = servers.hanging_upstream()
    second = servers.proxy(packages, gone, timeout=0.5)
    response, body = await second.get("/simple/remote/")
    assert response.code == 200 and body == page
    response, body = await second.get(f"/upstream/remote/{filename}")
    assert body == data
    response, body = await second.get(f"/upstream/remote/{filename}.metadata")
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_a_hanging_upstream_gives_504_in_time_and_never_stalls_local_requests(servers, packages):
    write(packages, wheel_bytes("mine", "1.0"))
    proxy = servers.proxy(packages, servers.hanging_upstream(), timeout=1.0)
    started = time.monotonic()
    pending = Deferred.fromCoroutine(proxy.get("/simple/somewhere-else/"))
    response, _ = await proxy.get("/simple/mine/")
    assert response.code == 200
    assert time.monotonic() - started < 0.5
    response, body = await pending
    elapsed = time.monotonic() - started
    assert response.code == 504
    assert b"did not answer" in body
    assert 0.9 < elapsed < 3


@pytest_twisted.ensureDeferred
async def test_credentials_in_the_fallback_url_are_sent_and_never_logged(servers, packages, upstream_project):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    fake.authorization = b"Basic " + base64.b64encode(b"alice:s3cret")
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        proxy = servers.proxy(packages, url.replace("http://", "http://alice:s3cret@"))
        response, _ = await proxy.get("/simple/remote/")
        assert response.code == 200
        response, _ = await proxy.get(f"/upstream/remote/{upstream_project['wheel'][0]}")
        assert response.code == 200
        wrong = servers.proxy(packages, url.replace("http://", "http://alice:wrong@"), cache=servers.tmp_path / "c2")
        response, body = await wrong.get("/simple/remote/")
        assert response.code == 502 and b"credentials" in body
    finally:
        globalLogPublisher.removeObserver(events.append)
    text = " ".join(formatEvent(e) + repr(e) for e in events)
    assert "s3cret" not in text and "alice:wrong" not in text


class SlowFile(Resource):
    """Sends the first half of a file, then waits for C{release} to fire."""

    isLeaf = True

    def __init__(self, data: bytes, corrupt: bool = False) -> None:
        super().__init__()
        self.data = data
        self.corrupt = corrupt
        self.release = Deferred()
        self.requests = 0

    def render_GET(self, request):
        self.requests += 1
        if request.path.startswith(b"/simple/"):
            request.setHeader(b"content-type", PEP691_JSON.encode())
            return json.dumps(
                {"name": "slow", "files": [{"filename": "slow-1.0.tar.gz", "url": "/files/slow-1.0.tar.gz", "hashes": {"sha256": sha256(self.data)}}]}
            ).encode()
        half = len(self.data) // 2
        request.setHeader(b"content-length", str(len(self.data)).encode())
        request.write(self.data[:half])

        def rest(_):
            if request._disconnected:  # the proxy gave up on us first
                return
            tail = self.data[half:]
            request.write(tail[:-1] + (b"!" if self.corrupt else tail[-1:]))
            request.finish()

        self.release.addCallback(rest)
        return NOT_DONE_YET


class Collect(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.done = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason) -> None:
        self.done.callback((reason,))  # a Failure itself would errback


async def wait_until(condition, seconds: float = 5.0) -> None:
    from twisted.internet.task import deferLater

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await deferLater(reactor, 0.01, lambda: None)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("corrupt", [False, True])
async def test_a_file_is_streamed_while_it_downloads_and_a_bad_one_never_arrives_whole(servers, packages, corrupt, tmp_path):
    data = os.urandom(4 * 1024 * 1024)
    slow = SlowFile(data, corrupt)
    proxy = servers.proxy(packages, servers.listen(slow) + "/simple/")
    response = await proxy.agent.request(b"GET", (proxy.base + "/upstream/slow/slow-1.0.tar.gz").encode())
    assert response.code == 200
    body = Collect()
    response.deliverBody(body)
    await wait_until(lambda: len(body.received) > 0)
    assert not body.done.called  # bytes arrived before the upstream finished
    slow.release.callback(None)
    (reason,) = await body.done
    cached = tmp_path / "cache" / "slow" / "slow-1.0.tar.gz"
    if corrupt:
        assert len(body.received) < len(data)
        assert not reason.check(download_module.ResponseDone)
        assert not cached.exists()
    else:
        assert body.received == data
        assert cached.read_bytes() == data


@pytest_twisted.ensureDeferred
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Twisted's self-signed certificate helper
async def test_https_upstreams_are_verified(servers, packages, upstream_project):
    from twisted.internet import ssl

    fake = FakeUpstream()
    publish(fake, upstream_project)
    key = ssl.KeyPair.generate(size=2048)
    certificate = key.selfSignedCert(1, CN="127.0.0.1")
    port = reactor.listenSSL(0, Site(fake), certificate.options(), interface="127.0.0.1")
    servers.ports.append(port)
    proxy = servers.proxy(packages, f"https://127.0.0.1:{port.getHost().port}/simple/")
    response, body = await proxy.get("/simple/remote/")
    assert response.code == 502
    assert b"certificate" in body.lower(), body
    assert fake.requests == []  # never talked to an unverified server


@pytest_twisted.ensureDeferred
async def test_a_download_that_stalls_is_cut_off_after_the_timeout_and_leaves_nothing(servers, packages, tmp_path):
    data = os.urandom(1024 * 1024)
    slow = SlowFile(data)
    proxy = servers.proxy(packages, servers.listen(slow) + "/simple/", timeout=0.5)
    started = time.monotonic()
    response = await proxy.agent.request(b"GET", (proxy.base + "/upstream/slow/slow-1.0.tar.gz").encode())
    body = Collect()
    response.deliverBody(body)
    (reason,) = await body.done
    assert 0.4 < time.monotonic() - started < 3
    assert len(body.received) < len(data)
    assert os.listdir(tmp_path / "cache" / "slow") == [".project.json"]
    slow.release.callback(None)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("path", ["/upstream//x-1.0.tar.gz", "/upstream/%2Fetc/x-1.0.tar.gz", "/upstream/a%2Fb/x-1.0.tar.gz", "/upstream/-x/x-1.0.tar.gz", "/upstream/Remote/remote-1.0.tar.gz", "/upstream/remote/x%00-1.0.tar.gz", "/upstream/remote/..%2f..%2fetc%2fpasswd", "/upstream/remote/notes.txt", "/upstream/remote"])
async def test_only_plain_file_names_of_normalised_projects_are_served(servers, packages, path):
    fake, url = servers.fake_upstream()
    proxy = servers.proxy(packages, url)
    response, _ = await proxy.get(path)
    assert response.code == 404
    assert fake.requests == []


def test_unfinished_downloads_are_swept_away(tmp_path):
    from twistedpypi.proxy.upstream import sweep_temporaries

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / ".p-1.0.tar.gz.abc.part").write_bytes(b"half")
    (tmp_path / "p" / "p-1.0.tar.gz").write_bytes(b"whole")
    assert sweep_temporaries(str(tmp_path)) == 1
    assert os.listdir(tmp_path / "p") == ["p-1.0.tar.gz"]


def test_a_page_or_metadata_file_left_unfinished_by_a_crash_is_swept_away(tmp_path, monkeypatch):
    from twistedpypi.fs import temporary_tag
    from twistedpypi.proxy.upstream import _write_atomically, sweep_temporaries

    def crash(source, destination):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    for name in ("p-1.0.tar.gz.metadata", ".project.json"):
        with pytest.raises(KeyboardInterrupt):
            _write_atomically(str(tmp_path / "p" / name), b"data")
    monkeypatch.undo()
    # Named by node and process: no two servers on one cache write one file.
    tag = temporary_tag()
    assert sorted(os.listdir(tmp_path / "p")) == [f"..project.json.{tag}.part", f".p-1.0.tar.gz.metadata.{tag}.part"]
    assert sweep_temporaries(str(tmp_path)) == 2
    assert os.listdir(tmp_path / "p") == []


def test_the_start_up_scan_lists_complete_files_and_spares_this_runs_downloads(tmp_path):
    from twistedpypi.proxy.upstream import scan_cache

    (tmp_path / "p").mkdir()
    old = tmp_path / "p" / ".p-1.0.tar.gz.abc.part"
    old.write_bytes(b"half")
    os.utime(old, (1000, 1000))
    (tmp_path / "p" / ".p-1.1.tar.gz.def.part").write_bytes(b"being written now")
    (tmp_path / "p" / "p-1.0.tar.gz").write_bytes(b"whole")
    (tmp_path / "p" / "p-1.0.tar.gz.metadata").write_bytes(b"Name: p")
    (tmp_path / "p" / ".project.json").write_bytes(b"{}")
    assert scan_cache(str(tmp_path), time.time() - 60) == (1, {"p/p-1.0.tar.gz", "p/p-1.0.tar.gz.metadata"})
    assert sorted(os.listdir(tmp_path / "p")) == [".p-1.1.tar.gz.def.part", ".project.json", "p-1.0.tar.gz", "p-1.0.tar.gz.metadata"]


def test_a_start_up_sweep_spares_other_nodes_downloads_on_a_shared_cache(tmp_path, monkeypatch):
    from twistedpypi.proxy.fetch import _open_temporary
    from twistedpypi.proxy.upstream import sweep_temporaries

    monkeypatch.setenv("TWISTEDPYPI_NODE_NAME", "node-a")
    path, stream = _open_temporary(str(tmp_path / "p"), "p-1.0.tar.gz")
    stream.close()
    assert path.endswith(f".node-a_{os.getpid()}.part")
    dead = subprocess.Popen(["true"])
    dead.wait()
    others = [tmp_path / "p" / f".p-2.0.tar.gz.x1.node-b_{pid}.part" for pid in (dead.pid, 1)]
    ours = tmp_path / "p" / f".p-3.0.tar.gz.x2.node-a_{dead.pid}.part"
    an_hour_ago = time.time() - 3600  # before this run, not abandoned
    for temporary in [*others, ours]:
        temporary.write_bytes(b"half")
    for temporary in [*others, ours, path]:
        os.utime(temporary, (an_hour_ago, an_hour_ago))
    # This process's own name at start: a container restarted as the same pid.
    assert sweep_temporaries(str(tmp_path), time.time() - 60) == 2
    assert sorted(os.listdir(tmp_path / "p")) == sorted(other.name for other in others)


def test_the_service_has_an_upstream_only_in_proxy_mode_with_fallback_enabled(tmp_path):
    from twistedpypi.proxy.upstream import UpstreamService
    from twistedpypi.tap import makeService

    def upstreams(*arguments):
        options = Options()
        options.parseOptions(["-P", ".", "-a", ".", *arguments, str(tmp_path / "packages")])
        return [s for s in makeService(options) if isinstance(s, UpstreamService)]

    (proxying,) = upstreams("--fallback-mode", "proxy", "--fallback-url", "https://u:p@mirror.example/simple")
    assert proxying.upstream.index_url == "https://mirror.example/simple/"
    assert proxying.upstream.cache_dir == str(tmp_path / "packages-upstream-cache")
    assert upstreams("--fallback-mode", "proxy", "--disable-fallback") == []
    assert upstreams() == []


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("name", ["%2Fetc", "a%2Fb", "caf%C3%A9"])
async def test_names_that_are_not_project_names_are_never_asked_of_the_upstream(servers, packages, name, tmp_path):
    fake, url = servers.fake_upstream()
    proxy = servers.proxy(packages, url)
    response, _ = await proxy.get(f"/simple/{name}/")
    assert response.code == 404
    assert fake.requests == []
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []


@pytest_twisted.ensureDeferred
async def test_a_file_at_a_url_outside_ascii_is_fetched(servers, packages):
    fake, url = servers.fake_upstream()
    data = b"demo sdist"
    fake.add("demo", "demo-1.0.tar.gz", data, url="/files/é/demo-1.0.tar.gz")
    proxy = servers.proxy(packages, url)
    response, body = await Deferred.fromCoroutine(proxy.get("/upstream/demo/demo-1.0.tar.gz")).addTimeout(5, reactor)
    assert response.code == 200 and body == data
    assert fake.count("/files/%C3%A9/demo-1.0.tar.gz") == 1


class FailingAgent:
    """An agent whose request raises before it returns a Deferred, until told otherwise."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.broken = True

    def request(self, method, uri, headers=None, bodyProducer=None):
        if self.broken:
            raise ValueError("cannot even start")
        return self.agent.request(method, uri, headers, bodyProducer)


@pytest_twisted.ensureDeferred
async def test_a_download_that_cannot_start_answers_502_and_the_next_request_tries_again(servers, packages):
    fake, url = servers.fake_upstream()
    data = b"demo sdist"
    fake.add("demo", "demo-1.0.tar.gz", data)
    proxy = servers.proxy(packages, url)
    failing = proxy.upstream._file_agent = FailingAgent(proxy.upstream._file_agent)
    for _ in range(2):
        response, body = await Deferred.fromCoroutine(proxy.get("/upstream/demo/demo-1.0.tar.gz")).addTimeout(5, reactor)
        assert response.code == 502 and b"cannot even start" in body
    failing.broken = False
    response, body = await Deferred.fromCoroutine(proxy.get("/upstream/demo/demo-1.0.tar.gz")).addTimeout(5, reactor)
    assert response.code == 200 and body == data


@pytest_twisted.ensureDeferred
async def test_many_names_missing_upstream_keep_memory_bounded_and_real_projects_cached(servers, upstream_project, tmp_path):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    upstream = Upstream(url, str(tmp_path / "cache"), ttl=300, max_projects=20)
    servers.upstreams.append(upstream)
    assert (await upstream.project("remote")).project is not None
    for number in range(100):
        assert (await upstream.project(f"missing-{number}")).project is None
    assert len(upstream._projects) <= 21
    assert (await upstream.project("remote")).project is not None
    assert fake.count("/simple/remote/") == 1  # the flood pushed no real project out


@pytest_twisted.ensureDeferred
async def test_answers_that_upstream_has_no_such_project_are_forgotten_after_the_ttl(servers, tmp_path):
    fake, url = servers.fake_upstream()
    upstream = Upstream(url, str(tmp_path / "cache"), ttl=0)
    servers.upstreams.append(upstream)
    for number in range(30):
        assert (await upstream.project(f"missing-{number}")).project is None
    assert len(upstream._projects) <= 1


class DiskOnTheReactor:
    """
    Records the opens and stats of paths under C{root} made on the reactor
    (main) thread.
    """

    hooked: list = []
    installed = False

    def __init__(self, root, monkeypatch) -> None:
        import threading

        from twisted.python import filepath

        self.root = str(root)
        self.calls: list[tuple[str, str]] = []
        self.main = threading.main_thread()
        self.current = threading.current_thread
        if not DiskOnTheReactor.installed:  # an audit hook stays for good: installed once
            DiskOnTheReactor.installed = True
            sys.addaudithook(DiskOnTheReactor._audit)
        for module in (os, filepath):
            real = module.stat
            monkeypatch.setattr(module, "stat", lambda path, *a, _real=real, **k: (self._note("stat", path), _real(path, *a, **k))[1])

    @staticmethod
    def _audit(event: str, arguments: tuple) -> None:
        if event == "open":
            for watcher in DiskOnTheReactor.hooked:
                watcher._note(event, arguments[0])

    def _note(self, event: str, path) -> None:
        if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(self.root) and self.current() is self.main:
            self.calls.append((event, os.fsdecode(path)))

    def __enter__(self) -> "DiskOnTheReactor":
        DiskOnTheReactor.hooked.append(self)
        return self

    def __exit__(self, *exception) -> None:
        DiskOnTheReactor.hooked.remove(self)


@pytest_twisted.ensureDeferred
async def test_cached_files_and_metadata_are_sent_without_touching_the_disk_on_the_reactor(servers, packages, upstream_project, tmp_path, monkeypatch):
    from twistedpypi.proxy.upstream import UpstreamService

    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename, data, metadata = upstream_project["wheel"]
    first = servers.proxy(packages, url)
    await first.get(f"/upstream/remote/{filename}")
    await first.get(f"/upstream/remote/{filename}.metadata")
    restarted = servers.proxy(packages, url)
    service = UpstreamService(restarted.upstream)
    service.startService()
    await wait_until(lambda: restarted.upstream._scanned)
    await restarted.get("/simple/remote/")  # upstream's hashes give the ETag
    for proxy in (first, restarted):
        with DiskOnTheReactor(tmp_path / "cache", monkeypatch) as disk:
            response, body = await proxy.get(f"/upstream/remote/{filename}")
            assert response.code == 200 and body == data
            response, body = await proxy.get(f"/upstream/remote/{filename}", {"Range": "bytes=0-9"})
            assert response.code == 206 and body == data[:10]
            response, body = await proxy.get(f"/upstream/remote/{filename}", {"If-None-Match": f'"{sha256(data)}"'})
            assert response.code == 304
            response, body = await proxy.get(f"/upstream/remote/{filename}.metadata")
            assert response.code == 200 and body == metadata
        assert disk.calls == []
    assert fake.count(f"/files/{filename}") == 1 and fake.count(f"/files/{filename}.metadata") == 1


@pytest_twisted.ensureDeferred
async def test_a_file_deleted_from_the_cache_is_fetched_again(servers, packages, upstream_project, tmp_path):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename, data, metadata = upstream_project["wheel"]
    proxy = servers.proxy(packages, url)
    proxy.upstream.cache_scanned(set())  # what is in the cache is known from memory only
    for _ in range(2):
        response, body = await proxy.get(f"/upstream/remote/{filename}")
        assert response.code == 200 and body == data
        response, body = await proxy.get(f"/upstream/remote/{filename}.metadata")
        assert response.code == 200 and body == metadata
        (tmp_path / "cache" / "remote" / filename).unlink()
        (tmp_path / "cache" / "remote" / f"{filename}.metadata").unlink()
    assert fake.count(f"/files/{filename}") == 2 and fake.count(f"/files/{filename}.metadata") == 2


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("headers", [{"Range": "bytes=0-3"}, {}])
async def test_a_client_that_waits_for_a_download_gets_the_cached_file(servers, packages, upstream_project, headers):
    fake, url = servers.fake_upstream()
    publish(fake, upstream_project)
    filename, data, _ = upstream_project["wheel"]
    proxy = servers.proxy(packages, url)
    proxy.upstream.cache_scanned(set())  # what is in the cache is known from memory only
    streamed = Deferred.fromCoroutine(proxy.get(f"/upstream/remote/{filename}"))
    response, body = await proxy.get(f"/upstream/remote/{filename}", headers)
    assert response.code == (206 if headers else 200)
    assert body == (data[:4] if headers else data)
    response, body = await streamed
    assert response.code == 200 and body == data
