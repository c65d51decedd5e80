"""
Shared fixtures: package directories with distributions in them, and a real
C{twistd pypi} server started as a subprocess.
"""

from __future__ import annotations

import os

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from tests.server import ServerProcess


def pytest_configure(config):
    """
    The pip and uv the tests run ask only the servers the tests start: no
    configured extra index, find-links or constraints of this machine, which
    could answer for a test's package names in their stead.
    """
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    os.environ["UV_NO_CONFIG"] = "1"
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT",
                 "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX", "UV_DEFAULT_INDEX"):
        os.environ.pop(name, None)


@pytest.fixture
def packages(tmp_path):
    """An empty package directory."""
    directory = tmp_path / "packages"
    directory.mkdir()
    return directory


@pytest.fixture
def start_server(tmp_path):
    """
    Start C{twistd -n pypi} with the given arguments; stopped after the test.
    """
    servers: list[ServerProcess] = []

    def start(*arguments: str, env: dict | None = None, health: str = "/health") -> ServerProcess:
        server = ServerProcess(list(arguments), tmp_path, env=env, health=health)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def logged():
    """The text of every event logged during the test."""
    lines = []

    def observe(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)
