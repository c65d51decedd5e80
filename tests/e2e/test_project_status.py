"""
End to end: project status markers (PEP 792) with the real server, twine,
uv and pip: set by a form post, by hand or by C{twistedpypi status};
archived refuses uploads, quarantined offers no files; every page says
the simple API's version 1.4.
"""

import json
import os
import sys
import time
import urllib.parse

import pytest

from tests.clients import PIP, run, uv
from tests.distributions import wheel_bytes, write
from tests.forms import fetch, post, twine
from tests.passwords import HTPASSWD, PASSWORD, USER, make_htpasswd

OPEN = ("-P", ".", "-a", ".", "--disable-fallback")
FORM = "application/x-www-form-urlencoded"
SIMPLE_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def demo(packages):
    write(packages, wheel_bytes("demo", "1.0"))
    return packages


def act(server, **fields):
    body = urllib.parse.urlencode({":action": fields.pop("action"), **fields}).encode()
    status, phrase, answer, _ = post(server, body, content_type=FORM)
    return status, phrase, answer.decode()


def simple_html(server):
    return fetch(server.url + "/simple/demo/")[1].decode()


def simple_json(server):
    return json.loads(fetch(server.url + "/simple/demo/", SIMPLE_JSON)[1])


def wait_until(condition, timeout=10.0):
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.02)


def test_every_simple_page_says_version_1_4_and_the_status(demo, start_server):
    server = start_server(*OPEN, str(demo))
    for path in ("/simple/", "/simple/demo/"):
        assert '<meta name="pypi:repository-version" content="1.4">' in fetch(server.url + path)[1].decode()
        assert json.loads(fetch(server.url + path, SIMPLE_JSON)[1])["meta"]["api-version"] == "1.4"
    assert '<meta name="pypi:project-status" content="active">' in simple_html(server)
    assert simple_json(server)["project-status"] == {"status": "active"}
    status, _, answer = act(server, action="set_status", name="Demo", status="deprecated", reason="use demo2")
    assert status == 200 and answer == "Demo is now deprecated\n"
    page = simple_html(server)
    assert '<meta name="pypi:project-status" content="deprecated">' in page
    assert '<meta name="pypi:project-status-reason" content="use demo2">' in page
    assert simple_json(server)["project-status"] == {"status": "deprecated", "reason": "use demo2"}
    assert "demo-1.0-py3-none-any.whl" in page
    assert act(server, action="set_status", name="demo", status="sleeping")[0] == 400
    assert act(server, action="set_status", name="nothing", status="archived")[0] == 404


@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) is not installed")
def test_an_archived_project_refuses_twine_and_uv_uploads_with_a_readable_message(demo, start_server, tmp_path):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-B")
    server = start_server("-P", str(htpasswd), "--disable-fallback", str(demo))
    status, _, body, _ = post(server, urllib.parse.urlencode(
        {":action": "set_status", "name": "demo", "status": "archived", "reason": "moved to demo2"}).encode(), content_type=FORM)
    assert status == 200, body
    staging = tmp_path / "staging"
    staging.mkdir()
    new = write(staging, wheel_bytes("demo", "2.0"))
    refused = twine("--repository-url", server.url + "/", "-u", USER, "-p", PASSWORD, str(new), check=False)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "400 Bad Request" in output and "Project archived: it takes no new files" in output, output
    env = dict(os.environ, UV_NO_CACHE="1")
    refused = run([uv(), "publish", "--publish-url", server.url + "/", "-u", USER, "-p", PASSWORD, str(new)], check=False, env=env)
    assert refused.returncode != 0
    assert "demo is archived on this index (moved to demo2): it takes no new files" in refused.stderr, refused.stderr
    assert sorted(os.listdir(demo)) == ["demo-1.0-py3-none-any.whl", "demo.status"]
    # Back to active, uploads are taken again.
    post(server, urllib.parse.urlencode({":action": "set_status", "name": "demo", "status": "active"}).encode(), content_type=FORM)
    assert not (demo / "demo.status").exists()
    twine("--repository-url", server.url + "/", "-u", USER, "-p", PASSWORD, str(new))
    assert (demo / os.path.basename(new)).exists()


def test_a_quarantined_project_offers_no_files(demo, start_server, tmp_path):
    server = start_server(*OPEN, str(demo))
    assert fetch(server.url + "/packages/demo-1.0-py3-none-any.whl")[0] == 200
    assert act(server, action="set_status", name="demo", status="quarantined", reason="malware")[0] == 200
    page = simple_html(server)
    assert "<a " not in page and '<meta name="pypi:project-status" content="quarantined">' in page
    assert simple_json(server)["files"] == []
    assert fetch(server.url + "/packages/demo-1.0-py3-none-any.whl")[0] == 404
    assert fetch(server.url + "/packages/demo-1.0-py3-none-any.whl.metadata")[0] == 404
    assert "demo-1.0" not in fetch(server.url + "/packages/")[1].decode()
    failed = run([*PIP, "install", "--no-cache-dir", "--index-url", server.url + "/simple/", "--target", str(tmp_path / "t"), "demo"], check=False)
    assert failed.returncode != 0
    assert sorted(os.listdir(demo)) == ["demo-1.0-py3-none-any.whl", "demo.status"]


def test_a_status_survives_a_restart_and_can_be_edited_by_hand(demo, start_server):
    server = start_server(*OPEN, str(demo))
    act(server, action="set_status", name="demo", status="archived", reason="done")
    assert (demo / "demo.status").read_text() == "archived\ndone\n"
    server.stop()
    server.start()
    assert simple_json(server)["project-status"] == {"status": "archived", "reason": "done"}
    (demo / "demo.status").write_text("quarantined\nfound malware\n")
    wait_until(lambda: simple_json(server)["project-status"] == {"status": "quarantined", "reason": "found malware"})
    run([sys.executable, "-m", "twistedpypi", "status", str(demo), "demo", "active"])
    wait_until(lambda: simple_json(server)["project-status"] == {"status": "active"})
    assert not (demo / "demo.status").exists()
    server.stop()
    server.start()
    assert simple_json(server)["project-status"] == {"status": "active"}
    assert "demo-1.0-py3-none-any.whl" in simple_html(server)
