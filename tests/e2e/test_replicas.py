"""
Three real nodes on one package directory, each C{twistd pypi} watching it
for the others' writes, behind the real nginx running the locations of
init/nginx-replicas.conf: uploads through any node are listed by all, one of
concurrent uploads of a name wins across nodes, a node killed under a
C{pip install} costs the install nothing, and the micro-cache never hands a
protected answer to someone without credentials.

(A node starting while another uploads is tested in test_shared_directory.py.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.clients import PIP, run
from tests.distributions import wheel_bytes, write
from tests.forms import auth_header, post, twine, upload_form
from tests.nginx import NGINX, REPLICAS_TEMPLATE, Nginx
from tests.passwords import HTPASSWD, PASSWORD, USER, make_htpasswd
from tests.server import REPO, ServerProcess
from tests.waiting import until

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"

CHAIN = 50

WATCH = ("--watch", "poll:0.3")


class Cluster:
    """Nodes on one package directory and the nginx in front of them."""

    def __init__(self, root, arguments: tuple[str, ...], protected_downloads: bool = False) -> None:
        self.packages = root / "packages"
        self.packages.mkdir()
        self.nodes = []
        for number in range(1, 4):
            # Each node has its own working directory, hence its own
            # description cache (XDG_CACHE_HOME), as on its own host.
            workdir = root / f"node{number}"
            workdir.mkdir()
            node = ServerProcess(
                [*WATCH, *arguments, "--disable-fallback", str(self.packages)],
                workdir,
                env={"TWISTEDPYPI_NODE_NAME": f"node{number}"},
            )
            self.nodes.append(node)
        self.root = root
        self.protected_downloads = protected_downloads

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        directory = self.root / "nginx"
        directory.mkdir()
        self.nginx = Nginx(
            directory, [node.port for node in self.nodes], self.packages,
            template=REPLICAS_TEMPLATE, protected_downloads=self.protected_downloads,
        )
        self.url = self.nginx.url + "/pypi"
        return self

    def stop(self) -> None:
        self.nginx.stop()
        for node in self.nodes:
            node.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A GET without urllib's redirect or error handling in the way."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def lists(url: str, filename: str) -> bool:
    """Whether the page at C{url} answers 200 and names C{filename}."""
    status, _, body = get(url)
    return status == 200 and filename.encode() in body


def chain_wheel(number: int) -> tuple[str, bytes]:
    """Link C{number} of a chain of C{CHAIN} wheels, each requiring the next."""
    requires = (f"chainlink-{number + 1:02d}",) if number + 1 < CHAIN else ()
    return wheel_bytes(f"chainlink-{number:02d}", "1.0", requires=requires)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three open nodes (uploads need any password) behind nginx, with a chain of 50 wheels."""
    cluster = Cluster(tmp_path_factory.mktemp("replicas"), ("-P", ".", "-a", "."))
    for number in range(CHAIN):
        write(cluster.packages, chain_wheel(number))
    write(cluster.packages, wheel_bytes("demo", "1.0"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def protected_cluster(tmp_path_factory):
    """Three nodes of an index whose pages and files need a password, behind nginx with auth_request."""
    root = tmp_path_factory.mktemp("protected")
    htpasswd = make_htpasswd(root / "htpasswd")
    cluster = Cluster(root, ("-P", str(htpasswd), "-a", "update,download,list"), protected_downloads=True)
    write(cluster.packages, wheel_bytes("secret", "1.0"))
    cluster.start()
    yield cluster
    cluster.stop()


def test_the_test_template_has_the_shipped_configuration(tmp_path):
    """
    The template the tests run is init/nginx-replicas.conf with its comments
    taken out and placeholders for the addresses and paths.
    """
    shipped = (REPO / "init" / "nginx-replicas.conf").read_text()
    template = (REPO / "init" / REPLICAS_TEMPLATE).read_text()

    def directives(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]

    expected = directives(shipped[shipped.index("upstream twistedpypi {"):])
    expected = [line for line in expected if not line.startswith("server 10.0.0.")]
    expected.insert(1, "@UPSTREAM_SERVERS@")
    expected = [
        line.replace("/var/cache/nginx/twistedpypi", "@TMP_DIR@/cache")
        .replace("root /srv/pypi/packages;", "root @PACKAGES_DIR@;")
        .replace("server_name pypi.example.org;", "server_name localhost;")
        for line in expected if not line.startswith("listen ")
    ]
    expected.insert(expected.index("server_name localhost;"), "listen 127.0.0.1:@LISTEN_PORT@;")
    auth = "auth_request /twistedpypi-download-check;"
    assert "#" + auth in shipped
    expected.insert(expected.index("error_page 500 = @twistedpypi;"), "@DOWNLOAD_AUTH@")
    body = directives(template[template.index("upstream twistedpypi {"):])
    assert body[:-1] == expected and body[-1] == "}"


@needs_nginx
def test_an_upload_through_nginx_is_listed_on_every_node_within_two_seconds(cluster, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    filename = os.path.basename(write(dist, wheel_bytes("fresh", "1.0")))
    twine("--repository-url", cluster.url + "/", "-u", "anyone", "-p", "anything", str(dist / filename))
    uploaded = time.monotonic()
    pending = {node.url + "/simple/fresh/" for node in cluster.nodes} | {cluster.url + "/simple/fresh/"}
    seen = {}
    while pending and time.monotonic() - uploaded < 5:
        for url in list(pending):
            if lists(url, filename):
                seen[url] = time.monotonic() - uploaded
                pending.discard(url)
        time.sleep(0.02)
    assert not pending, f"not listed within 5 s: {pending}"
    assert max(seen.values()) < 2.0, seen
    assert (cluster.packages / filename).read_bytes() == (dist / filename).read_bytes()


@needs_nginx
def test_a_new_version_of_a_cached_page_is_listed_through_nginx_within_two_seconds(cluster, tmp_path):
    """
    The nodes tell nginx to keep a page until the clock's next second
    (X-Micro-Cache, X-Accel-Expires): an upload is listed through it at most
    a second after every node lists it, about 1 s in all.  With nginx's own
    1 s it took 2 to 2.2 s.
    """
    page = cluster.url + "/simple/demo/"
    assert lists(page, "demo-1.0-py3-none-any.whl")
    # Cached (a request at the turn of a second may find the copy expired).
    assert until(lambda: get(page)[1]["X-Cache-Status"] == "HIT", 3)
    dist = tmp_path / "dist"
    dist.mkdir()
    filename = os.path.basename(write(dist, wheel_bytes("demo", "2.0")))
    twine("--repository-url", cluster.url + "/", "-u", "anyone", "-p", "anything", str(dist / filename))
    uploaded = time.monotonic()
    assert until(lambda: lists(page, filename), 6)
    assert time.monotonic() - uploaded < 2.0


def sleep_until_second_and(fraction):
    """Sleep until C{fraction} of a second past the wall clock's next second."""
    now = time.time()
    time.sleep(int(now) + 1 + fraction - now)


@needs_nginx
def test_the_nodes_have_nginx_keep_a_page_only_until_the_next_second(cluster):
    """
    nginx's own shortest time, 1 s, keeps a copy to the end of the second
    after next; told by the nodes, nginx keeps it to the end of this one.
    """
    # A URL nginx has no copy of (the query is part of its key).
    page = cluster.url + f"/simple/chainlink-01/?fresh={time.time_ns()}"
    sleep_until_second_and(0.1)
    assert get(page)[1]["X-Cache-Status"] == "MISS"  # the copy is made now
    time.sleep(0.3)
    assert get(page)[1]["X-Cache-Status"] == "HIT"
    sleep_until_second_and(0.3)
    assert get(page)[1]["X-Cache-Status"] != "HIT"


@needs_nginx
def test_concurrent_uploads_of_one_name_through_different_nodes_have_one_winner(cluster):
    filename = "contested-1.0.tar.gz"
    datas = [os.urandom(300_000) for _ in range(6)]
    results = [None] * len(datas)
    barrier = threading.Barrier(len(datas))

    def send(i):
        body = upload_form(filename, datas[i], name="contested")
        barrier.wait()
        results[i] = post(cluster.nodes[i % len(cluster.nodes)], body)[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(datas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [200] + [409] * (len(datas) - 1), results
    assert (cluster.packages / filename).read_bytes() == datas[results.index(200)]
    assert not [name for name in os.listdir(cluster.packages) if name.startswith(".upload-")]
    for node in cluster.nodes:
        assert until(lambda node=node: lists(node.url + "/simple/contested/", filename), 2), node.url


@needs_nginx
def test_cached_pages_keep_their_media_type_and_coding_per_request(cluster):
    page = cluster.url + "/simple/chainlink-00/"
    for _ in range(2):
        status, headers, body = get(page, {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip, deflate"})
        assert status == 200 and headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
        status, headers, body = get(page, {"Accept": "text/html", "Accept-Encoding": "identity"})
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "Content-Encoding" not in headers and body.startswith(b"<!DOCTYPE html>")
    # A request for the page within the second is nginx's copy.
    assert until(lambda: get(page, {"Accept": "text/html"})[1]["X-Cache-Status"] == "HIT", 3)
    etag = get(page, {"Accept": "text/html"})[1]["ETag"]
    assert get(page, {"Accept": "text/html", "If-None-Match": etag})[0] == 304


@needs_nginx
def test_a_node_killed_under_a_pip_install_through_nginx_fails_no_install(cluster, tmp_path):
    victim = cluster.nodes[1]
    target = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    install = subprocess.Popen(
        [*PIP, "install", "--no-cache-dir", "--index-url", cluster.url + "/simple/", "--target", str(target),
         "chainlink-00"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    # Killed once pip is well into the chain, with most of it still to come.
    assert until(lambda: len(re.findall(r"GET /pypi/simple/chainlink-", cluster.nginx.access_log())) >= 10, 60)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    output, _ = install.communicate(timeout=180)
    assert install.returncode == 0, output
    assert len(list(target.glob("chainlink_*.dist-info"))) == CHAIN
    # nginx did meet the dead node, and went on to another.
    assert re.search(rf"(connect\(\) failed|prematurely closed|reset by peer).*127\.0\.0\.1:{victim.port}",
                     cluster.nginx.error_log()), cluster.nginx.error_log()[-2000:]
    victim.start()
    assert lists(victim.url + "/simple/chainlink-49/", "chainlink_49-1.0-py3-none-any.whl")


@needs_nginx
@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd is not installed (apache2-utils)")
@pytest.mark.parametrize("path", [
    "/simple/secret/",
    "/simple/",
    "/pypi/secret/json",
    "/packages/secret-1.0-py3-none-any.whl",
])
def test_a_protected_index_stays_protected_through_the_cache(protected_cluster, path):
    url = protected_cluster.url + path
    for _ in range(3):
        status, _, body = get(url, {"Authorization": auth_header(), "Accept-Encoding": "gzip"})
        assert status == 200
        assert len(body) > 0
        status, headers, body = get(url, {"Accept-Encoding": "gzip"})
        assert status == 401, body
        assert headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
        assert b"secret" not in body
        assert get(url, {"Authorization": auth_header(USER, "wrong-" + PASSWORD)})[0] == 401


@needs_nginx
@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd is not installed (apache2-utils)")
def test_pip_installs_from_a_protected_index_with_files_sent_by_nginx(protected_cluster, tmp_path):
    index = protected_cluster.url.replace("http://", f"http://{USER}:{PASSWORD}@") + "/simple/"
    target = tmp_path / "target"
    run([*PIP, "install", "--no-cache-dir", "--index-url", index, "--target", str(target), "secret"])
    assert (target / "secret-1.0.dist-info").is_dir()
    assert re.search(r'"GET /pypi/packages/secret-1\.0-py3-none-any\.whl HTTP/1\.1" 200 ',
                     protected_cluster.nginx.access_log())
    logs = "".join(node.log() for node in protected_cluster.nodes)
    # A node checked the password for the file; nginx sent its bytes.
    assert re.search(rf'- {USER} \[.*"HEAD /packages/secret-1\.0-py3-none-any\.whl HTTP/1\.1" 200', logs)
    assert "GET /packages/secret-1.0-py3-none-any.whl " not in logs
