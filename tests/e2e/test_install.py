"""
End to end: the real C{twistd -n pypi} serving a directory to the real pip
and uv.  No network beyond loopback: fallback is disabled, caches are off.
"""

import os
import shutil
import sys
import time
import urllib.request

import pytest

from tests.clients import PIP, run, uv
from tests.distributions import sdist_bytes, wheel_bytes, write


@pytest.fixture
def app_and_lib(packages):
    write(packages, wheel_bytes("app", "1.0", requires=("lib>=1",)))
    write(packages, sdist_bytes("app", "1.0", requires=("lib>=1",)))
    write(packages, wheel_bytes("lib", "1.0"))
    write(packages, wheel_bytes("lib", "2.0"))
    write(packages, wheel_bytes("lib", "3.0", requires_python=">=4"))
    return packages


def test_pip_installs_a_package_and_resolves_its_dependency_from_metadata(app_and_lib, start_server, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(app_and_lib))
    target = tmp_path / "target"
    run([*PIP, "install", "--no-cache-dir", "--index-url", server.url + "/simple/", "--target", str(target), "app"])
    installed = sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info"))
    # lib 3.0 requires Python 4: data-requires-python keeps pip off it.
    assert installed == ["app-1.0.dist-info", "lib-2.0.dist-info"]
    log = server.log()
    assert "GET /packages/app-1.0-py3-none-any.whl.metadata" in log
    assert "GET /packages/lib-3.0-py3-none-any.whl " not in log


def test_pip_install_with_the_root_url_as_pypiserver_allows(app_and_lib, start_server, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(app_and_lib))
    run([*PIP, "install", "--no-cache-dir", "-i", server.url, "--target", str(tmp_path / "t"), "lib==1.0"])
    assert (tmp_path / "t" / "lib-1.0.dist-info").is_dir()


def test_pip_download_gets_the_very_bytes_on_disk(app_and_lib, start_server, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(app_and_lib))
    destination = tmp_path / "downloads"
    run([*PIP, "download", "--no-cache-dir", "--no-deps", "--index-url", server.url + "/simple/", "-d", str(destination), "app"])
    run(
        [*PIP, "download", "--no-cache-dir", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
         "--index-url", server.url + "/simple/", "-d", str(destination), "app"]
    )
    for name in ("app-1.0-py3-none-any.whl", "app-1.0.tar.gz"):
        assert (destination / name).read_bytes() == (app_and_lib / name).read_bytes()


def test_uv_resolves_through_pep_658_and_installs(app_and_lib, start_server, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(app_and_lib))
    venv = tmp_path / "venv"
    environment = dict(os.environ, UV_NO_CACHE="1", UV_PYTHON_DOWNLOADS="never")
    run([uv(), "venv", "--python", sys.executable, str(venv)], env=environment)
    run(
        [uv(), "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url", server.url + "/simple/", "app"],
        env=environment,
    )
    listing = run([uv(), "pip", "list", "--python", str(venv / "bin" / "python")], env=environment).stdout
    assert "app" in listing and "2.0" in listing
    assert "GET /packages/app-1.0-py3-none-any.whl.metadata" in server.log()


def test_a_file_copied_in_is_installable_within_a_second(packages, start_server, tmp_path):
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy(write(staging, wheel_bytes("late", "1.0")), packages)
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(server.url + "/simple/late/") as response:
                if b"late-1.0-py3-none-any.whl" in response.read():
                    break
        except OSError:
            pass
        assert time.monotonic() - started < 1.0, "not served within a second"
        time.sleep(0.02)
    run([*PIP, "install", "--no-cache-dir", "--index-url", server.url + "/simple/", "--target", str(tmp_path / "t"), "late"])


def test_bad_options_stop_the_server_before_it_listens(start_server):
    with pytest.raises(RuntimeError, match="unknown action"):
        start_server("-a", "nonsense")
