"""
Shared fixtures: package directories with distributions in them, and a real
C{twistd pypi} server started as a subprocess.
"""

from __future__ import annotations

import pytest

from tests.server import ServerProcess


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

    def start(*arguments: str, env: dict | None = None) -> ServerProcess:
        server = ServerProcess(list(arguments), tmp_path, env=env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
