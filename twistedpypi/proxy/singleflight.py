"""
Single flight: while one piece of work for a key is in progress, every other
caller asking for the same key waits for its result instead of starting
another.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class SingleFlight:
    """
    At most one call in progress per key; callers arriving meanwhile share
    its result (or its failure).

    Each caller gets a Deferred of its own, so a caller cancelling (a client
    going away) does not cancel the work the others are waiting for.
    """

    def __init__(self) -> None:
        self._waiting: dict[object, list[Deferred]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._waiting

    def run(self, key: object, start: Callable[[], Deferred]) -> Deferred:
        """
        The result of C{start()}, called only if no call for C{key} is in
        progress already.
        """
        mine: Deferred = Deferred()
        waiters = self._waiting.get(key)
        if waiters is not None:
            waiters.append(mine)
            return mine
        waiters = self._waiting[key] = [mine]

        def done(result: object) -> None:
            del self._waiting[key]
            for waiter in waiters:
                if waiter.called:  # cancelled by its caller
                    continue
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        try:
            work = start()
        except Exception:
            done(Failure())
        else:
            work.addBoth(done)
        return mine
