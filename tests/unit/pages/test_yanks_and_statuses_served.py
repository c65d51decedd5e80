"""
Yanks (PEP 592) and project statuses (PEP 792) as every page serves them:
the simple API's HTML and JSON at version 1.4, the JSON API, the browse
pages and the downloads.
"""

import json

import pytest
import pytest_twisted
from treq.testing import StubTreq

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.indexing import config_for, index_directory
from twistedpypi.index.markers import ProjectStatus
from twistedpypi.web.root import Root

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def served(packages):
    wheel = write(packages, wheel_bytes("demo", "1.0"))
    write(packages, sdist_bytes("demo", "1.0"))
    write(packages, wheel_bytes("demo", "2.0"))
    index = index_directory(packages)
    return index, wheel, StubTreq(Root(config_for(packages), index))


async def get(treq, url, accept=None):
    headers = {"accept": accept} if accept else {}
    response = await treq.get("http://example.test" + url, headers=headers, allow_redirects=False)
    return response, await response.content()


@pytest_twisted.ensureDeferred
async def test_a_yanked_file_carries_its_reason_escaped_in_html_and_json_and_the_etag_changes(served):
    index, wheel, treq = served
    before, _ = await get(treq, "/simple/demo/")
    index.mark(yanks={str(wheel): 'broken <on> "3.12"'})
    response, body = await get(treq, "/simple/demo/")
    page = body.decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in page
    assert 'data-yanked="broken &lt;on&gt; &quot;3.12&quot;">demo-1.0-py3-none-any.whl</a>' in page
    assert page.count("data-yanked") == 1
    assert response.headers.getRawHeaders("etag") != before.headers.getRawHeaders("etag")
    _, body = await get(treq, "/simple/demo/", SIMPLE_JSON)
    document = json.loads(body)
    assert document["meta"]["api-version"] == "1.4"
    yanked = {entry["filename"]: entry["yanked"] for entry in document["files"]}
    assert yanked == {"demo-1.0-py3-none-any.whl": 'broken <on> "3.12"', "demo-1.0.tar.gz": False, "demo-2.0-py3-none-any.whl": False}
    index.mark(yanks={str(wheel): ""})
    _, body = await get(treq, "/simple/demo/")
    assert 'data-yanked="">demo-1.0-py3-none-any.whl' in body.decode()
    _, body = await get(treq, "/simple/demo/", SIMPLE_JSON)
    assert json.loads(body)["files"][0]["yanked"] is True


@pytest_twisted.ensureDeferred
async def test_the_json_api_yanks_files_and_a_release_whose_files_all_are(served, packages):
    index, wheel, treq = served
    index.mark(yanks={str(wheel): "bad wheel"})
    _, body = await get(treq, "/pypi/demo/1.0/json")
    document = json.loads(body)
    assert document["info"]["yanked"] is False
    files = {f["filename"]: (f["yanked"], f["yanked_reason"]) for f in document["urls"]}
    assert files["demo-1.0-py3-none-any.whl"] == (True, "bad wheel")
    assert files["demo-1.0.tar.gz"] == (False, None)
    index.mark(yanks={str(packages / "demo-1.0.tar.gz"): ""})
    _, body = await get(treq, "/pypi/demo/json")
    document = json.loads(body)
    assert [f["yanked"] for f in document["releases"]["1.0"]] == [True, True]
    _, body = await get(treq, "/pypi/demo/1.0/json")
    assert json.loads(body)["info"]["yanked"] is True
    assert json.loads(body)["info"]["yanked_reason"] == "bad wheel"
    _, body = await get(treq, "/project/demo/")
    assert 'class="badge" title="bad wheel">yanked</span>' in body.decode()


@pytest_twisted.ensureDeferred
async def test_the_status_is_served_and_a_quarantined_project_offers_no_file(served):
    index, wheel, treq = served
    _, body = await get(treq, "/simple/demo/")
    assert '<meta name="pypi:project-status" content="active">' in body.decode()
    _, body = await get(treq, "/simple/demo/", SIMPLE_JSON)
    assert json.loads(body)["project-status"] == {"status": "active"}
    index.mark(statuses={"demo": ProjectStatus("quarantined", "malware & <worse>")})
    _, body = await get(treq, "/simple/demo/")
    page = body.decode()
    assert '<meta name="pypi:project-status" content="quarantined">' in page
    assert '<meta name="pypi:project-status-reason" content="malware &amp; &lt;worse&gt;">' in page
    assert "<a " not in page
    _, body = await get(treq, "/simple/demo/", SIMPLE_JSON)
    document = json.loads(body)
    assert document["project-status"] == {"status": "quarantined", "reason": "malware & <worse>"}
    assert document["files"] == [] and document["versions"] == []
    response, _ = await get(treq, "/packages/demo-1.0-py3-none-any.whl")
    assert response.code == 404
    _, body = await get(treq, "/packages/")
    assert "demo-1.0" not in body.decode()
    _, body = await get(treq, "/pypi/demo/json")
    document = json.loads(body)
    assert document["urls"] == [] and document["project-status"]["status"] == "quarantined"
    _, body = await get(treq, "/project/demo/")
    assert "quarantined" in body.decode() and "demo-1.0-py3-none-any.whl" not in body.decode()
    index.mark(statuses={"demo": ProjectStatus("archived")})
    response, _ = await get(treq, "/packages/demo-1.0-py3-none-any.whl")
    assert response.code == 200
    _, body = await get(treq, "/project/")
    assert '<span class="badge">archived</span>' in body.decode()
