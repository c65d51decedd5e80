"""
The soft limit on open files is raised to the hard one, except for a
select() reactor.
"""

import resource

import pytest
from twisted.internet import reactor
from twisted.internet.selectreactor import SelectReactor

from twistedpypi.process.openfiles import raise_open_file_limit

LOW = 256


@pytest.fixture
def low_limit():
    """The soft limit at L{LOW} for the test, then as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= LOW:
        pytest.skip(f"the hard limit on open files is only {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_the_soft_limit_is_raised_to_the_hard_one(low_limit, logged):
    raised = raise_open_file_limit(reactor)
    wanted = low_limit if low_limit != resource.RLIM_INFINITY else 1 << 20
    assert raised == (LOW, wanted)
    assert soft_limit() == wanted
    assert f"raised the limit on open files from {LOW} to {wanted}" in logged


def test_a_soft_limit_already_at_the_hard_one_is_left(low_limit):
    raise_open_file_limit(reactor)
    assert raise_open_file_limit(reactor) is None


def test_a_select_reactor_keeps_the_limit_select_can_watch(low_limit):
    assert raise_open_file_limit(SelectReactor.__new__(SelectReactor)) is None
    assert soft_limit() == LOW


def test_the_server_raises_its_limit(low_limit, start_server, packages):
    # Set here, the low limit is what the server process inherits.
    server = start_server(str(packages))
    limits = open(f"/proc/{server.process.pid}/limits").read()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard != str(LOW)
