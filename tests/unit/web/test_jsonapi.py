"""
The PyPI JSON API and the PEP 691 project pages: versions, serials, and
their caches.
"""

import json

import pytest_twisted
from treq.testing import StubTreq

from tests.indexing import config_for, index_directory
from tests.inmemory import PEP691_JSON, client, get
from twistedpypi.web.root import Root


@pytest_twisted.ensureDeferred
async def test_a_release_is_found_under_any_spelling_of_its_version(demo):
    treq = client(demo)
    for spelling in ["1.0", "1.0.0", "1.0.0.0", "1"]:
        response, body = await get(treq, f"/pypi/demo-pkg/{spelling}/json")
        assert (spelling, response.code) == (spelling, 200)
        assert json.loads(body)["info"]["version"] == "1.0"
    response, _ = await get(treq, "/pypi/demo-pkg/1.0.1/json")
    assert response.code == 404
    response, _ = await get(treq, "/pypi/demo-pkg/not-a-version/json")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_project_documents_carry_the_serial_the_root_carries(demo):
    index = index_directory(demo)
    treq = StubTreq(Root(config_for(demo), index))
    _, root = await get(treq, "/simple/", headers={"Accept": PEP691_JSON})
    serial = json.loads(root)["meta"]["_last-serial"]
    assert serial > 0
    _, project = await get(treq, "/simple/demo-pkg/", headers={"Accept": PEP691_JSON})
    assert json.loads(project)["meta"]["_last-serial"] == serial
    _, document = await get(treq, "/pypi/demo-pkg/json")
    assert json.loads(document)["last_serial"] == serial
    _, release = await get(treq, "/pypi/demo-pkg/1.0/json")
    assert json.loads(release)["last_serial"] == serial


@pytest_twisted.ensureDeferred
async def test_json_api_pages_for_many_hosts_leave_the_simple_pages_cached(demo):
    index = index_directory(demo)
    treq = StubTreq(Root(config_for(demo), index))
    project = index.project("demo-pkg")
    _, _ = await get(treq, "/simple/demo-pkg/")
    simple_pages = dict(project.pages)
    assert simple_pages
    for n in range(20):
        response, body = await get(treq, "/pypi/demo-pkg/json", headers={"X-Forwarded-Host": f"host{n}.example"})
        assert f"http://host{n}.example/packages/" in body.decode()
    for key, page in simple_pages.items():
        assert project.pages[key] is page
    assert len(project.api_pages) <= 8
    # A change to the project forgets them all.
    project.changed()
    assert not project.api_pages
