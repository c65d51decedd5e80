"""The bounded memo the web layer keeps parsed header values and paths in."""

from twistedpypi.web.memo import BoundedMemo


def test_a_memo_keeps_answers_up_to_its_size_then_starts_again():
    memo = BoundedMemo(3)
    assert memo.remember(b"a", 1) == 1
    memo.remember(b"b", 2)
    memo.remember(b"c", 3)
    assert dict(memo) == {b"a": 1, b"b": 2, b"c": 3}
    # Full: emptied before the next one is kept.
    memo.remember(b"d", 4)
    assert dict(memo) == {b"d": 4}
    assert memo.get(b"a") is None and memo[b"d"] == 4
    for n in range(1000):
        memo.remember(n, n)
    assert len(memo) <= 3
