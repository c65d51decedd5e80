"""
PyPI's legacy XML-RPC API at /RPC2, in memory, as pip search calls it.
"""

import xmlrpc.client

import pytest
import pytest_twisted
from treq.testing import StubTreq

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for, index_directory
from twistedpypi.web.root import Root


@pytest.fixture
def rpc(packages):
    write(packages, wheel_bytes("Demo_Pkg", "1.0", summary="Demonstrates things"))
    write(packages, wheel_bytes("Demo_Pkg", "2.0", summary="Demonstrates more things"))
    write(packages, wheel_bytes("lib", "1.0", summary="A library"))
    treq = StubTreq(Root(config_for(packages), index_directory(packages)))

    async def call(method, *params):
        response = await treq.post(
            "http://example.test/RPC2",
            data=xmlrpc.client.dumps(params, method).encode(),
            headers={"Content-Type": "text/xml"},
        )
        assert response.code == 200
        (result,), _ = xmlrpc.client.loads(await response.content())
        return result

    return call


@pytest_twisted.ensureDeferred
async def test_search_as_pip_search_asks(rpc):
    hits = await rpc("search", {"name": ["demo"], "summary": ["demo"]}, "or")
    assert [(h["name"], h["version"], h["summary"]) for h in hits] == [
        ("Demo_Pkg", "1.0", "Demonstrates things"),
        ("Demo_Pkg", "2.0", "Demonstrates more things"),
    ]
    hits = await rpc("search", {"name": ["library"], "summary": ["library"]}, "or")
    assert [h["name"] for h in hits] == ["lib"]
    assert await rpc("search", {"name": "demo_pkg"}) != []


@pytest_twisted.ensureDeferred
async def test_search_with_and_needs_every_field_to_match(rpc):
    hits = await rpc("search", {"name": "demo", "summary": "more"}, "and")
    assert [h["version"] for h in hits] == ["2.0"]
    assert await rpc("search", {"name": "nothing-like-it"}) == []


@pytest_twisted.ensureDeferred
async def test_list_packages_and_package_releases(rpc):
    assert await rpc("list_packages") == ["Demo_Pkg", "lib"]
    assert await rpc("package_releases", "demo.pkg") == ["2.0"]
    assert await rpc("package_releases", "Demo_Pkg", True) == ["2.0", "1.0"]
    assert await rpc("package_releases", "unknown") == []


@pytest_twisted.ensureDeferred
async def test_bad_calls_are_faults_not_crashes(rpc):
    with pytest.raises(xmlrpc.client.Fault):
        await rpc("search", "not a dict")
    with pytest.raises(xmlrpc.client.Fault):
        await rpc("no_such_method")


@pytest_twisted.ensureDeferred
async def test_oversized_calls_are_refused_unread(packages):
    treq = StubTreq(Root(config_for(packages), index_directory(packages)))
    response = await treq.post(
        "http://example.test/RPC2", data=b"<" * (65 * 1024), headers={"Content-Type": "text/xml"}
    )
    assert response.code == 413
