"""
The name a project is shown under: its metadata's spelling only when that
is an ASCII project name normalising to the file's, so that a look-alike
such as C{\\u212aelvin} (KELVIN SIGN, which C{str.lower} folds onto C{k})
is never shown for C{kelvin}.
"""

import json
import urllib.request

import pytest

from tests.distributions import KELVIN, wheel_named_in_metadata, write
from twistedpypi.index.distfile import spells_project

JSON = "application/vnd.pypi.simple.v1+json"


def get(server, path, accept=None):
    request = urllib.request.Request(server.url + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.read().decode("utf-8")


@pytest.mark.parametrize(
    "name, project, shown",
    [
        ("Demo_Pkg", "demo-pkg", True),
        ("demo.pkg", "demo-pkg", True),
        ("DEMO--pkg", "demo-pkg", True),
        (KELVIN, "kelvin", False),
        ("kelvın", "kelvin", False),  # dotless i
        ("ﬁle", "file", False),  # the fi ligature
        ("demo pkg", "demo-pkg", False),
        ("-demo-pkg", "demo-pkg", False),
        ("other", "demo-pkg", False),
        ("", "demo-pkg", False),
    ],
)
def test_only_an_ascii_name_that_normalises_to_the_project_spells_it(name, project, shown):
    assert spells_project(name, project) is shown


def test_a_look_alike_name_in_metadata_is_not_shown_anywhere(start_server, packages):
    write(packages, wheel_named_in_metadata("kelvin", "1.0", KELVIN))
    write(packages, wheel_named_in_metadata("demo_pkg", "1.0", "Demo_Pkg"))
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", str(packages))

    pages = {
        "/simple/": get(server, "/simple/"),
        "/simple/ JSON": get(server, "/simple/", JSON),
        "/simple/kelvin/": get(server, "/simple/kelvin/"),
        "/simple/kelvin/ JSON": get(server, "/simple/kelvin/", JSON),
        "/pypi/kelvin/json": get(server, "/pypi/kelvin/json"),
        "/pypi/kelvin/1.0/json": get(server, "/pypi/kelvin/1.0/json"),
    }
    for page, text in pages.items():
        assert KELVIN not in text and "\\u212a" not in text.lower(), page
    assert ">kelvin</a>" in pages["/simple/"]
    assert {"name": "kelvin"} in json.loads(pages["/simple/ JSON"])["projects"]
    assert "<title>Links for kelvin</title>" in pages["/simple/kelvin/"]
    assert json.loads(pages["/simple/kelvin/ JSON"])["name"] == "kelvin"
    assert json.loads(pages["/pypi/kelvin/json"])["info"]["name"] == "kelvin"
    assert json.loads(pages["/pypi/kelvin/1.0/json"])["info"]["name"] == "kelvin"
    # An ASCII spelling of the same name is still shown as the metadata has it.
    assert ">Demo_Pkg</a>" in pages["/simple/"]
    assert {"name": "Demo_Pkg"} in json.loads(pages["/simple/ JSON"])["projects"]
    assert json.loads(get(server, "/pypi/demo-pkg/json"))["info"]["name"] == "Demo_Pkg"
