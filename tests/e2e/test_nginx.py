"""
The real nginx in front of the real twistedpypi at the path prefix /pypi/,
with init/nginx-test.conf.template (the locations of
init/nginx-twistedpypi.conf): pip installs through it, nginx serves the
package files from disk, every absolute URL names the public address.
"""

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.nginx import NGINX, Nginx
from tests.pipsearch import pip_search

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")


@pytest.fixture
def behind_nginx(packages, start_server, tmp_path):
    """twistedpypi (open, no fallback) serving C{packages}, behind nginx."""
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    directory = tmp_path / "nginx"
    directory.mkdir()
    proxy = Nginx(directory, server.port, packages)
    yield server, proxy
    proxy.stop()


@pytest.fixture
def app_and_lib(packages):
    write(packages, wheel_bytes("app", "1.0", requires=("lib>=1",), summary="The application"))
    write(packages, sdist_bytes("app", "1.0", requires=("lib>=1",)))
    write(packages, wheel_bytes("lib", "1.0", summary="A library"))
    return packages


def test_pip_installs_through_nginx_and_nginx_serves_the_files_from_disk(app_and_lib, behind_nginx, tmp_path):
    server, proxy = behind_nginx
    target = tmp_path / "target"
    result = subprocess.run(
        [*PIP, "install", "--no-cache-dir", "--index-url", proxy.url + "/pypi/simple/", "--target", str(target), "app"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info")) == ["app-1.0.dist-info", "lib-1.0.dist-info"]
    access = proxy.access_log()
    assert re.search(r'"GET /pypi/packages/app-1\.0-py3-none-any\.whl HTTP/1\.1" 200 ', access), access
    log = server.log()
    # The wheel came from disk through nginx; its PEP 658 metadata, which is
    # no file, from twistedpypi.
    assert "GET /packages/app-1.0-py3-none-any.whl " not in log
    assert "GET /packages/app-1.0-py3-none-any.whl.metadata " in log
    assert "GET /simple/app/ " in log


def test_absolute_urls_through_nginx_name_the_public_address_and_prefix(app_and_lib, behind_nginx):
    _, proxy = behind_nginx
    public = proxy.url + "/pypi"
    with urllib.request.urlopen(public + "/pypi/lib/json") as response:
        document = json.load(response)
    assert [f["url"] for f in document["urls"]] == [public + "/packages/lib-1.0-py3-none-any.whl"]
    assert document["info"]["project_url"] == public + "/simple/lib/"
    # Redirects are relative, so they stay under the prefix.
    with urllib.request.urlopen(public + "/simple/LIB/") as response:
        assert response.url == public + "/simple/lib/"
    with urllib.request.urlopen(public + "/Lib/") as response:
        assert response.url == public + "/simple/lib/"
    with urllib.request.urlopen(public + "/project/Lib/") as response:
        assert response.url == public + "/project/lib/"
        assert f"pip install --index-url {public}/simple/ lib" in response.read().decode()
    with urllib.request.urlopen(public + "/") as response:
        assert f"{public}/simple/" in response.read().decode()
    # pip search, through the prefix.
    assert re.search(r"^lib \(1\.0\)\s+- A library$", pip_search(public + "/RPC2", "librar"), re.M)


def test_twine_uploads_through_nginx_and_pip_installs_the_upload(packages, behind_nginx, tmp_path):
    _, proxy = behind_nginx
    dist = tmp_path / "dist"
    dist.mkdir()
    write(dist, wheel_bytes("uploaded", "1.0", summary="Came through nginx"))
    write(dist, sdist_bytes("uploaded", "1.0"))
    result = subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", proxy.url + "/pypi/", "-u", "anyone", "-p", "anything", *map(str, sorted(dist.iterdir()))],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (packages / "uploaded-1.0-py3-none-any.whl").read_bytes() == (dist / "uploaded-1.0-py3-none-any.whl").read_bytes()
    target = tmp_path / "target"
    deadline = time.monotonic() + 5
    while True:
        result = subprocess.run(
            [*PIP, "install", "--no-cache-dir", "--index-url", proxy.url + "/pypi/simple/", "--target", str(target), "uploaded"],
            capture_output=True, text=True, timeout=180,
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "uploaded-1.0.dist-info").is_dir()
