"""
End to end, proxy mode: a real C{twistd -n pypi} in front of another one as
its upstream (with C{--disable-fallback}), driven by the real pip and uv.
Nothing goes beyond loopback.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clients import PIP, run, uv
from tests.distributions import sdist_bytes, wheel_bytes, write

UV_ENV = dict(os.environ, UV_NO_CACHE="1", UV_PYTHON_DOWNLOADS="never")


@pytest.fixture
def upstream_dir(tmp_path):
    directory = tmp_path / "upstream-packages"
    directory.mkdir()
    write(directory, wheel_bytes("remote-app", "1.0", requires=("remote-lib>=1",)))
    write(directory, sdist_bytes("remote-app", "1.0", requires=("remote-lib>=1",), metadata_version="2.2"))
    write(directory, wheel_bytes("remote-lib", "1.0"))
    write(directory, wheel_bytes("remote-lib", "2.0"))
    write(directory, wheel_bytes("shared", "2.0"))
    return directory


@pytest.fixture
def local_dir(packages):
    write(packages, wheel_bytes("shared", "1.0"))
    return packages


def proxy_arguments(upstream, local_dir, tmp_path, *more):
    return (
        "-P", ".", "-a", ".", "--fallback-mode", "proxy", "--fallback-url", upstream.url + "/simple/",
        "--cache-dir", str(tmp_path / "cache"), *more, str(local_dir),
    )


def get(url, timeout=10.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def installed(target):
    return sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info"))


def test_pip_and_uv_install_through_the_proxy_and_keep_working_with_the_upstream_stopped(
    upstream_dir, local_dir, start_server, tmp_path
):
    upstream = start_server("-P", ".", "-a", ".", "--disable-fallback", str(upstream_dir))
    proxy = start_server(*proxy_arguments(upstream, local_dir, tmp_path, "--upstream-ttl", "0"))
    index = proxy.url + "/simple/"
    run([*PIP, "install", "--no-cache-dir", "--index-url", index, "--target", str(tmp_path / "t1"), "remote-app", "shared"])
    assert installed(tmp_path / "t1") == ["remote_app-1.0.dist-info", "remote_lib-2.0.dist-info", "shared-1.0.dist-info"]
    venv = tmp_path / "venv"
    run([uv(), "venv", "--python", sys.executable, str(venv)], env=UV_ENV)
    run([uv(), "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url", index, "remote-app"], env=UV_ENV)
    assert "GET /upstream/remote-app/remote_app-1.0-py3-none-any.whl.metadata" in proxy.log()
    assert not list((local_dir).glob("remote*"))  # cached beside, never among the local files

    upstream.stop()
    # With a TTL of 0 every page is past its time: served stale, from cache.
    run([*PIP, "install", "--no-cache-dir", "--index-url", index, "--target", str(tmp_path / "t2"), "remote-app"])
    assert installed(tmp_path / "t2") == ["remote_app-1.0.dist-info", "remote_lib-2.0.dist-info"]
    venv2 = tmp_path / "venv2"
    run([uv(), "venv", "--python", sys.executable, str(venv2)], env=UV_ENV)
    run([uv(), "pip", "install", "--python", str(venv2 / "bin" / "python"), "--index-url", index, "remote-app"], env=UV_ENV)
    # What was never fetched is a clear error, not a hang.
    started = time.monotonic()
    status, body = get(index + "never-fetched/")
    assert status == 502 and b"upstream" in body
    assert time.monotonic() - started < 5


def test_a_local_project_is_never_taken_from_upstream(upstream_dir, local_dir, start_server, tmp_path):
    upstream = start_server("-P", ".", "-a", ".", "--disable-fallback", str(upstream_dir))
    proxy = start_server(*proxy_arguments(upstream, local_dir, tmp_path))
    run([*PIP, "install", "--no-cache-dir", "--index-url", proxy.url + "/simple/", "--target", str(tmp_path / "t"), "shared"])
    assert installed(tmp_path / "t") == ["shared-1.0.dist-info"]
    status, _ = get(proxy.url + "/upstream/shared/shared-2.0-py3-none-any.whl")
    assert status == 404
    assert "/simple/shared/" not in upstream.log()
    assert "shared-2.0" not in upstream.log()


def test_a_hanging_upstream_does_not_stall_local_requests(local_dir, start_server, tmp_path):
    # A socket that accepts connections (the kernel does) and never answers.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)
    try:
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/simple/"
        proxy = start_server(
            "-P", ".", "-a", ".", "--fallback-mode", "proxy", "--fallback-url", url,
            "--cache-dir", str(tmp_path / "cache"), "--upstream-timeout", "1", str(local_dir),
        )
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            waiting = [pool.submit(get, proxy.url + f"/simple/elsewhere-{i}/") for i in range(3)]
            time.sleep(0.1)
            local_started = time.monotonic()
            status, body = get(proxy.url + "/simple/shared/")
            local_time = time.monotonic() - local_started
            assert status == 200 and b"shared-1.0" in body
            assert local_time < 0.5
            for future in waiting:
                status, body = future.result()
                assert status == 504, body
            assert time.monotonic() - started < 4
    finally:
        hanging.close()


def test_fifty_concurrent_requests_for_one_uncached_file_make_one_upstream_request(tmp_path, local_dir, start_server):
    upstream_dir = tmp_path / "upstream-big"
    upstream_dir.mkdir()
    big = upstream_dir / "bigproject-1.0.tar.gz"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    upstream = start_server("-P", ".", "-a", ".", "--disable-fallback", str(upstream_dir))
    proxy = start_server(*proxy_arguments(upstream, local_dir, tmp_path))
    status, _ = get(proxy.url + "/simple/bigproject/")
    assert status == 200
    url = proxy.url + "/upstream/bigproject/bigproject-1.0.tar.gz"

    def fetch(_):
        status, body = get(url, timeout=60)
        return status, hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(fetch, range(50)))
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    assert results == [(200, expected)] * 50
    time.sleep(0.2)  # let the access log reach the file
    assert upstream.log().count("GET /packages/bigproject-1.0.tar.gz ") == 1
    assert upstream.log().count("GET /simple/bigproject/ ") == 1


def test_the_server_refuses_to_start_redirecting_with_credentials_in_the_fallback_url(local_dir, tmp_path):
    import subprocess

    from tests.server import REPO, twistd

    command = [
        twistd(), "-n", "--pidfile=", "pypi", "-p", "tcp:0:interface=127.0.0.1", "-P", ".", "-a", ".",
        "--fallback-url", "https://alice:s3cret@mirror.example/simple/", str(local_dir),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "use --fallback-mode proxy for an upstream that needs credentials" in output
    assert "s3cret" not in output
