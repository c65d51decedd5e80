"""
Fixtures of the web resources' tests: a demo index, and sites over loopback.
"""

import pytest
import pytest_twisted

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.inmemory import LoopbackClient


@pytest.fixture
def demo(packages):
    write(packages, wheel_bytes("Demo_Pkg", "1.0", requires=("dep>=1",), requires_python=">=3.8"))
    write(packages, sdist_bytes("Demo_Pkg", "1.0"))
    write(packages, wheel_bytes("Demo_Pkg", "2.0b1"))
    write(packages, sdist_bytes("dep", "1.5", metadata_version="2.2"))
    (packages / "dep-1.5.tar.gz.asc").write_bytes(b"-----BEGIN PGP SIGNATURE-----\n")
    return packages


@pytest.fixture
def loopback():
    clients = []

    def make(directory, **settings):
        clients.append(LoopbackClient(directory, **settings))
        return clients[-1]

    yield make
    for c in clients:
        pytest_twisted.blockon(c.port.stopListening())
