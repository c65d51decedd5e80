"""
Waiting for a condition in tests, without a fixed sleep.
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
