"""
The browse pages in a real browser: headless Chromium (Debian's
C{chromium}) renders them from the real server, runs their script under
their Content-Security-Policy, and takes screenshots.
"""


import pytest

from tests.browser import CHROMIUM, chromium, console_messages, png_size
from tests.distributions import sdist_bytes, wheel_bytes, write

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


@pytest.fixture
def server(packages, start_server):
    write(packages, wheel_bytes("Demo_Pkg", "1.0", requires=("lib>=1",), requires_python=">=3.8", summary="Shows <how> it works"))
    write(packages, sdist_bytes("Demo_Pkg", "1.0", summary="Shows <how> it works"))
    write(packages, wheel_bytes("Demo_Pkg", "2.0b1", summary="Shows <how> it works"))
    for number in range(8):
        write(packages, wheel_bytes(f"lib{number}", f"1.{number}", summary=f"Library number {number}"))
    return start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))


def test_project_list_renders_with_its_filter_and_no_console_errors(server, tmp_path):
    shot = tmp_path / "projects.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", server.url + "/project/")
    assert console_messages(result) == []
    assert png_size(shot) == (1200, 900)
    assert shot.stat().st_size > 10_000  # a page, not a blank
    dom = chromium(tmp_path, "--dump-dom", server.url + "/project/?q=number+3")
    assert console_messages(dom) == []
    rows = [line for line in dom.stdout.splitlines() if line.startswith("<tr data-k")]
    assert len(rows) == 9
    assert [row for row in rows if "hidden" not in row] == [next(row for row in rows if "lib3/" in row)]
    assert "Shows &lt;how&gt; it works" in dom.stdout


def test_project_page_renders_with_install_command_files_and_description(server, tmp_path):
    shot = tmp_path / "project.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", server.url + "/project/demo-pkg/")
    assert console_messages(result) == []
    assert png_size(shot) == (1200, 900)
    dom = chromium(tmp_path, "--dump-dom", server.url + "/project/demo-pkg/").stdout
    assert f"pip install --index-url {server.url}/simple/ Demo_Pkg" in dom
    assert "Demo_Pkg-2.0b1-py3-none-any.whl" in dom and "demo_pkg-1.0.tar.gz" in dom
    assert "Demo_Pkg long description" in dom
