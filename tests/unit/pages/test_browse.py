"""
The pages a person browses, in memory: the project list with its filter and
a project's page.
"""

import pytest
import pytest_twisted
from treq.testing import StubTreq

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.indexing import config_for, index_directory
from twistedpypi.pages.browse import human_size, summary_of
from twistedpypi.web.root import Root


@pytest.fixture
def shop(packages):
    write(packages, wheel_bytes("Demo_Pkg", "1.0", requires=("dep>=1",), requires_python=">=3.8", summary="A <b>demo</b> & more"))
    write(packages, sdist_bytes("Demo_Pkg", "1.0", summary="A <b>demo</b> & more"))
    write(packages, wheel_bytes("Demo_Pkg", "2.0b1", summary="A <b>demo</b> & more"))
    write(packages, wheel_bytes("lib", "1.0", summary="Library of things"))
    return packages


async def get(treq, url, **kwargs):
    response = await treq.get("http://example.test" + url, allow_redirects=False, **kwargs)
    return response, (await response.content()).decode("utf-8")


def client(directory):
    return StubTreq(Root(config_for(directory), index_directory(directory)))


@pytest_twisted.ensureDeferred
async def test_project_list_links_every_project_with_its_summary_escaped(shop):
    response, body = await get(client(shop), "/project/")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    assert "script-src 'sha256-" in response.headers.getRawHeaders("content-security-policy")[0]
    assert '<a href="demo-pkg/">Demo_Pkg</a>' in body
    assert '<a href="lib/">lib</a>' in body
    assert "A &lt;b&gt;demo&lt;/b&gt; &amp; more" in body
    assert "<b>demo</b>" not in body
    assert '<span id="count">2</span> of 2 projects' in body


@pytest_twisted.ensureDeferred
async def test_filter_hides_projects_that_do_not_match_even_without_script(shop):
    _, body = await get(client(shop), "/project/?q=THINGS")
    rows = [line for line in body.splitlines() if line.startswith("<tr data-k")]
    assert [("hidden" in row, "lib/" in row) for row in rows] == [(True, False), (False, True)]
    assert 'value="THINGS"' in body
    assert '<span id="count">1</span> of 2 projects' in body
    _, body = await get(client(shop), '/project/?q="><script>')
    assert "<script>alert" not in body and 'value="&quot;&gt;&lt;script&gt;"' in body


@pytest_twisted.ensureDeferred
async def test_project_page_shows_versions_files_sizes_install_command_and_description(shop):
    treq = client(shop)
    response, body = await get(
        treq, "/project/demo-pkg/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.example.com", "X-Forwarded-Prefix": "/pypi"}
    )
    assert response.code == 200
    assert "<h1>Demo_Pkg <small>1.0</small></h1>" in body
    assert "pip install --index-url https://pypi.example.com/pypi/simple/ Demo_Pkg" in body
    # Newest version first, each file linked relative to the page.
    assert body.index('id="v2.0b1"') < body.index('id="v1.0"')
    size = (shop / "Demo_Pkg-1.0-py3-none-any.whl").stat().st_size
    assert '<a href="../../packages/Demo_Pkg-1.0-py3-none-any.whl">' in body
    assert f'title="{size} bytes">{human_size(size)}</td>' in body
    assert "<time datetime=" in body and " UTC</time>" in body
    assert ">=3.8" not in body and "&gt;=3.8" in body
    assert '<pre class="description">Demo_Pkg long description</pre>' in body
    # Another public address gets its own install command.
    _, body = await get(treq, "/project/demo-pkg/")
    assert "pip install --index-url http://example.test/simple/ Demo_Pkg" in body


@pytest_twisted.ensureDeferred
async def test_project_pages_redirect_to_the_normalized_name_and_404_for_unknown(shop):
    treq = client(shop)
    response, _ = await get(treq, "/project/Demo.Pkg/")
    assert response.code == 301
    assert response.headers.getRawHeaders("location") == ["../../project/demo-pkg/"]
    response, _ = await get(treq, "/project/lib")
    assert response.headers.getRawHeaders("location") == ["../project/lib/"]
    response, body = await get(treq, "/project/<nope>/")
    assert response.code == 404
    assert "&lt;nope&gt;" in body and "<nope>" not in body


@pytest_twisted.ensureDeferred
async def test_browse_pages_are_cached_with_etags(shop):
    treq = client(shop)
    response, _ = await get(treq, "/project/lib/")
    again, body = await get(treq, "/project/lib/", headers={"If-None-Match": response.headers.getRawHeaders("etag")[0]})
    assert again.code == 304 and body == ""


@pytest_twisted.ensureDeferred
async def test_welcome_page_links_the_project_list(shop):
    _, body = await get(client(shop), "/")
    assert 'href="project/"' in body


def test_summary_is_read_from_the_headers_only():
    assert summary_of(b"Name: x\nSummary: short\n  and folded\n\nSummary: not this\n") == "short and folded"
    assert summary_of(b"Name: x\r\n\r\nSummary: body\r\n") == ""
    assert summary_of(b"Name: x\n") == ""


def test_human_sizes():
    assert [human_size(n) for n in (0, 999, 1000, 12_345_678, 5 * 10**9)] == ["0 B", "999 B", "1.0 kB", "12.3 MB", "5.0 GB"]
