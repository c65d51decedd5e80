"""
End to end: yanking (PEP 592) with the real server, pip and uv.  A yank is
a form post (C{:action=yank}, as curl or a script sends it), a marker file
made by hand, or C{twistedpypi yank}; installers skip a yanked release
unless it is pinned.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from tests.clients import PIP, run, uv
from tests.distributions import wheel_bytes, write
from tests.forms import fetch, form_body, post, upload_form
from tests.server import WITH_TWO_WORKERS, listening_sockets

OPEN = ("-P", ".", "-a", ".", "--disable-fallback")
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def releases(packages):
    write(packages, wheel_bytes("demo", "1.0"))
    write(packages, wheel_bytes("demo", "2.0"))
    return packages


def act(server, **fields):
    """Post an C{:action} form as curl -d would; the status, phrase and body."""
    body = urllib.parse.urlencode({":action": fields.pop("action"), **fields}).encode()
    status, phrase, answer, _ = post(server, body, content_type=FORM)
    return status, phrase, answer.decode()


def simple_page(server, project="demo"):
    return fetch(server.url + f"/simple/{project}/")[1].decode()


def wait_until(condition, timeout=10.0):
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.02)
    return time.monotonic() - started


def pip_install(server, requirement, target):
    return run([*PIP, "install", "--no-cache-dir", "--no-deps", "--index-url", server.url + "/simple/", "--target", str(target), requirement])


def installed(target):
    return sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info"))


def test_pip_skips_a_yanked_release_unless_it_is_pinned(releases, start_server, tmp_path):
    server = start_server(*OPEN, str(releases))
    status, _, answer = act(server, action="yank", name="demo", version="2.0", reason="broken on 3.12")
    assert status == 200, answer
    assert "yanked 1 file(s) of demo 2.0: demo-2.0-py3-none-any.whl" in answer
    assert (releases / "demo-2.0-py3-none-any.whl.yanked").read_text() == "broken on 3.12"
    assert 'data-yanked="broken on 3.12">demo-2.0-py3-none-any.whl' in simple_page(server)

    pip_install(server, "demo", tmp_path / "latest")
    assert installed(tmp_path / "latest") == ["demo-1.0.dist-info"]
    pinned = pip_install(server, "demo==2.0", tmp_path / "pinned")
    assert installed(tmp_path / "pinned") == ["demo-2.0.dist-info"]
    assert "yanked" in pinned.stderr and "broken on 3.12" in pinned.stderr


def test_uv_skips_a_yanked_release_unless_it_is_pinned(releases, start_server, tmp_path):
    server = start_server(*OPEN, str(releases))
    assert act(server, action="yank", name="demo", version="2.0")[0] == 200
    environment = dict(os.environ, UV_NO_CACHE="1", UV_PYTHON_DOWNLOADS="never")
    for requirement, version in (("demo", "1.0"), ("demo==2.0", "2.0")):
        venv = tmp_path / f"venv-{version}"
        run([uv(), "venv", "--python", sys.executable, str(venv)], env=environment)
        run([uv(), "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url", server.url + "/simple/", requirement], env=environment)
        listing = run([uv(), "pip", "list", "--python", str(venv / "bin" / "python")], env=environment).stdout
        assert f"demo {version}" in " ".join(listing.split()), listing


def test_one_file_is_yanked_then_unyanked_and_every_page_says_so(releases, start_server, tmp_path):
    write(releases, ("demo-2.0-py2-none-any.whl", wheel_bytes("demo", "2.0")[1]))
    server = start_server(*OPEN, str(releases))
    before = fetch(server.url + "/simple/demo/")
    status, _, answer = act(server, action="yank", name="demo", version="2.0", filename="demo-2.0-py3-none-any.whl", reason="bad <tag>")
    assert status == 200, answer
    page = simple_page(server)
    assert page.count("data-yanked") == 1
    assert 'data-yanked="bad &lt;tag&gt;">demo-2.0-py3-none-any.whl' in page
    document = json.loads(fetch(server.url + "/pypi/demo/2.0/json")[1])
    assert {f["filename"]: f["yanked_reason"] for f in document["urls"]} == {
        "demo-2.0-py2-none-any.whl": None,
        "demo-2.0-py3-none-any.whl": "bad <tag>",
    }
    simple_json = json.loads(fetch(server.url + "/simple/demo/", {"Accept": "application/vnd.pypi.simple.v1+json"})[1])
    assert [f["yanked"] for f in simple_json["files"]] == [False, False, "bad <tag>"]
    assert "yanked</span>" in fetch(server.url + "/project/demo/")[1].decode()

    status, _, answer = act(server, action="unyank", name="demo", version="2.0", filename="demo-2.0-py3-none-any.whl")
    assert status == 200 and "unyanked 1 file(s)" in answer
    assert "data-yanked" not in simple_page(server)
    assert not (releases / "demo-2.0-py3-none-any.whl.yanked").exists()
    assert fetch(server.url + "/simple/demo/")[1] == before[1]
    pip_install(server, "demo", tmp_path / "t")
    assert installed(tmp_path / "t") == ["demo-2.0.dist-info"]


def test_unknown_projects_releases_and_files_are_404_and_a_yanked_file_name_is_no_upload(releases, start_server):
    server = start_server(*OPEN, str(releases))
    assert act(server, action="yank", name="nothing", version="1.0")[:2] == (404, "No such project on this index")
    assert act(server, action="yank", name="demo", version="9.0")[:2] == (404, "No such release on this index")
    assert act(server, action="unyank", name="demo", version="1.0", filename="demo-1.0.tar.gz")[:2] == (404, "No such file in this release")
    assert act(server, action="yank", name="demo")[0] == 400
    status, _, body, _ = post(server, upload_form("demo-3.0-py3-none-any.whl.yanked", b"reason"))
    assert status == 400, body
    assert not (releases / "demo-3.0-py3-none-any.whl.yanked").exists()
    assert "data-yanked" not in simple_page(server)


def test_a_yank_made_in_the_shell_is_served_within_a_second_and_undone_by_deleting_it(releases, start_server):
    server = start_server(*OPEN, str(releases))
    marker = releases / "demo-2.0-py3-none-any.whl.yanked"
    subprocess.run(["sh", "-c", f"echo 'broken on 3.12' > {marker}"], check=True)
    took = wait_until(lambda: 'data-yanked="broken on 3.12"' in simple_page(server))
    assert took < 1.0
    subprocess.run(["rm", str(marker)], check=True)
    assert wait_until(lambda: "data-yanked" not in simple_page(server)) < 1.0
    # The host's command writes the same marker.
    run([sys.executable, "-m", "twistedpypi", "yank", str(releases), "demo", "1.0", "--reason", "old"])
    wait_until(lambda: 'data-yanked="old">demo-1.0' in simple_page(server))
    run([sys.executable, "-m", "twistedpypi", "unyank", str(releases), "demo", "1.0"])
    wait_until(lambda: "data-yanked" not in simple_page(server))


def test_a_yank_survives_a_restart_and_remove_pkg_removes_its_marker(releases, start_server):
    server = start_server(*OPEN, str(releases))
    act(server, action="yank", name="demo", version="2.0", reason="kept")
    server.stop()
    server.start()
    assert 'data-yanked="kept">demo-2.0' in simple_page(server)
    status, _, answer = act(server, action="remove_pkg", name="demo", version="2.0")
    assert status == 200, answer
    assert sorted(os.listdir(releases)) == ["demo-1.0-py3-none-any.whl"]


def test_every_worker_serves_a_yank_within_a_second(releases, start_server):
    server = start_server(*WITH_TWO_WORKERS, str(releases))
    deadline = time.monotonic() + 20
    while len(listening_sockets(server.port)) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert act(server, action="yank", name="demo", version="2.0", reason="everywhere")[0] == 200
    answered = time.monotonic()
    # Forty answers in a row, on new connections spread over both
    # processes, all showing the yank.
    in_a_row = 0
    while in_a_row < 40:
        in_a_row = in_a_row + 1 if 'data-yanked="everywhere"' in simple_page(server) else 0
        if in_a_row == 0:
            assert time.monotonic() - answered < 1.0, "a process did not serve the yank within a second"
