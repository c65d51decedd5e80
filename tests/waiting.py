"""
Waiting for a condition in tests, without a fixed sleep: L{wait_for} in a
test that runs the reactor, L{until} in one that watches another process.
"""

import time

from twisted.internet import reactor, task


async def wait_for(condition, timeout=1.0):
    """Wait until C{condition()} holds; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        await task.deferLater(reactor, 0.01)
    return time.monotonic() - started


def until(condition, timeout=10.0):
    """
    Poll C{condition()} without a reactor (for servers in other processes);
    whether it held within C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
