"""
pypiserver's C{--server-base-url}: every route under a path, for a proxy
that passes the path on (nginx's C{proxy_pass http://node;} under
C{/pypi/}), against the real C{twistd -n pypi}, pip and twine.
"""

import json
import urllib.error
import urllib.request
from urllib.parse import urljoin

import pytest

from tests.clients import PIP, run
from tests.distributions import wheel_bytes, write
from tests.forms import twine


@pytest.fixture
def prefixed(start_server, packages):
    write(packages, wheel_bytes("demo", "1.0"))
    return start_server(
        "-P", ".", "-a", ".", "--disable-fallback", "--server-base-url", "/pypi/", str(packages), health="/pypi/health"
    )


def fetch(url):
    """Status, headers and body, without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_every_route_is_served_under_the_base_path_and_nothing_outside_it(prefixed):
    base = prefixed.url + "/pypi"
    assert fetch(base + "/simple/demo/")[0] == 200
    assert fetch(base + "/packages/demo-1.0-py3-none-any.whl")[0] == 200
    assert fetch(base + "/health")[0] == 200
    status, _, body = fetch(prefixed.url + "/simple/demo/")
    assert status == 404 and b"served under /pypi/" in body
    assert fetch(prefixed.url + "/health")[0] == 404
    # The path itself is sent on to the path with its slash, where the
    # pages' relative links work; so is a page under another spelling.
    status, headers, _ = fetch(base)
    assert (status, urljoin(base, headers["Location"])) == (301, base + "/")
    status, headers, _ = fetch(base + "/simple/Demo/")
    assert (status, urljoin(base + "/simple/Demo/", headers["Location"])) == (301, base + "/simple/demo/")
    # Absolute URLs carry the path.
    document = json.loads(fetch(base + "/pypi/demo/json")[2])
    assert document["urls"][0]["url"] == base + "/packages/demo-1.0-py3-none-any.whl"
    assert base + "/simple/" in fetch(base + "/")[2].decode()
    # The log has the targets as sent.
    assert '"GET /pypi/simple/demo/ HTTP/1.1" 200' in prefixed.log()


def test_pip_installs_and_twine_uploads_through_the_base_path(prefixed, packages, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    # .pypirc files written for pypiserver name the path with or without
    # its slash: twine takes a redirect as a failure, so both are uploads.
    first = write(dist, wheel_bytes("fresh", "1.0"))
    second = write(dist, wheel_bytes("fresh", "2.0"))
    twine("--repository-url", prefixed.url + "/pypi", "-u", "a", "-p", "b", first)
    twine("--repository-url", prefixed.url + "/pypi/", "-u", "a", "-p", "b", second)
    assert (packages / "fresh-1.0-py3-none-any.whl").exists() and (packages / "fresh-2.0-py3-none-any.whl").exists()
    target = tmp_path / "target"
    run([*PIP, "install", "--no-deps", "--target", str(target), "--index-url", prefixed.url + "/pypi/simple/", "fresh==2.0"])
    assert (target / "fresh-2.0.dist-info").is_dir()
