"""
The browse pages in a real browser: headless Chromium (Debian's
C{chromium}) renders them from the real server, runs their script under
their Content-Security-Policy, and takes screenshots.
"""

import shutil
import struct
import subprocess

import pytest

from tests.distributions import sdist_bytes, wheel_bytes, write

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def console_messages(result: subprocess.CompletedProcess) -> list[str]:
    """What the pages wrote to the console: script errors, CSP violations."""
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


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
