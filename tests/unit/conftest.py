"""
Fixtures shared by the in-process tests.
"""


import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from tests.distributions import core_metadata, wheel_bytes
from tests.inmemory import Loopback
from tests.upstream import Servers


@pytest.fixture
def root_server():
    servers = []

    def serve(root):
        servers.append(Loopback(root))
        return servers[-1]

    yield serve
    for server in servers:
        pytest_twisted.blockon(server.close())


@pytest.fixture
def servers(tmp_path):
    made = Servers(tmp_path)
    yield made
    pytest_twisted.blockon(Deferred.fromCoroutine(made.close()))


@pytest.fixture
def upstream_project():
    """The files of an upstream-only project, 'remote'."""
    filename, data = wheel_bytes("remote", "1.0", requires_python=">=3.8")
    old_name, old_data = wheel_bytes("remote", "0.9")
    return {
        "wheel": (filename, data, core_metadata("remote", "1.0", requires_python=">=3.8")),
        "yanked": (old_name, old_data),
    }
