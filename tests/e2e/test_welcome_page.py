"""
The welcome page in headless Chromium, from the real server: it tells the
truth about how this server is set up (uploads off, open or with a
password; listing and downloads protected or not) and about the URL the
client reached it at, nginx's C{/pypi/} prefix included.
"""

import html

import pytest

from tests.browser import CHROMIUM, chromium, console_messages, png_size
from tests.distributions import wheel_bytes, write
from tests.nginx import NGINX, Nginx

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

SCREENSHOTS = "/tmp"


def welcome(tmp_path, url: str, name: str) -> str:
    """The welcome page's text as Chromium shows it, after a screenshot to /tmp."""
    shot = f"{SCREENSHOTS}/welcome-{name}.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,1100", url)
    assert console_messages(result) == []
    assert png_size(__import__("pathlib").Path(shot)) == (1100, 1100)
    dom = chromium(tmp_path, "--dump-dom", url)
    assert console_messages(dom) == []
    return html.unescape(dom.stdout)


def test_an_open_server_says_anyone_may_upload_without_credentials(packages, start_server, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    page = welcome(tmp_path, server.url + "/", "open")
    assert "Serving 1 project in 1 file." in page
    assert f"pip install --index-url {server.url}/simple/ PACKAGE" in page
    assert f"uv pip install --index-url {server.url}/simple/ PACKAGE" in page
    assert f"twine upload --repository-url {server.url}/ dist/*" in page
    assert "Anyone may upload" in page
    assert "USER" not in page and "PASSWORD" not in page and "[local]" not in page


def test_uploads_are_said_to_be_off_without_a_password_file(packages, start_server, tmp_path):
    for number in range(3):
        write(packages, wheel_bytes(f"lib{number}", "1.0"))
    server = start_server("--disable-fallback", str(packages))
    page = welcome(tmp_path, server.url + "/", "no-uploads")
    assert "Serving 3 projects in 3 files." in page
    assert "Uploads are off" in page
    assert "twine" not in page and ".pypirc" not in page


def test_a_protected_server_shows_placeholder_credentials_where_they_are_needed(packages, start_server, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    server = start_server("-P", str(htpasswd), "-a", "update,download,list", "--disable-fallback", str(packages))
    page = welcome(tmp_path, server.url + "/", "protected")
    authority = server.url.removeprefix("http://")
    assert "Serving 0 projects in 0 files." in page
    assert "Listing and downloads need a password" in page
    assert f"pip install --index-url http://USER:PASSWORD@{authority}/simple/ PACKAGE" in page
    assert f"twine upload --repository-url {server.url}/ -u USER -p PASSWORD dist/*" in page
    assert f"[private]\nrepository = {server.url}/\nusername = USER\npassword = PASSWORD" in page
    assert "index-servers = private" in page


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
def test_behind_nginx_at_pypi_every_url_is_the_public_one(packages, start_server, tmp_path):
    write(packages, wheel_bytes("demo", "1.0"))
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))
    directory = tmp_path / "nginx"
    directory.mkdir()
    proxy = Nginx(directory, server.port, packages)
    try:
        page = welcome(tmp_path, proxy.url + "/pypi/", "prefix")
        projects = chromium(tmp_path, "--dump-dom", proxy.url + "/pypi/project/").stdout
    finally:
        proxy.stop()
    assert f"pip install --index-url {proxy.url}/pypi/simple/ PACKAGE" in page
    assert f"twine upload --repository-url {proxy.url}/pypi/ dist/*" in page
    assert str(server.port) not in page
    assert 'href="project/"' in page and "demo" in projects  # relative links reach /pypi/project/
