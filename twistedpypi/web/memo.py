"""
A bounded memo for answers worked out from what clients send (a header's
value, a path): reactor code, pure.
"""

from __future__ import annotations

from typing import TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


class BoundedMemo(dict[Key, Value]):
    """
    Answers worked out once per key, at most C{size} of them: once full it
    is emptied, so the memory stays bounded whatever keys clients send, and
    the few keys real clients send are worked out again at once.  Being a
    C{dict}, a lookup costs what a dictionary's does.
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Key, value: Value) -> Value:
        """Keep C{value} for C{key}, emptying the memo first when full."""
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value
