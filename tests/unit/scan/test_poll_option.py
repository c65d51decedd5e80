"""
C{--watch}: inotify (the default) or poll[:INTERVAL], and what a wrong one
is told.
"""

import pytest
from twisted.python import usage

from twistedpypi.config import DEFAULT_POLL_INTERVAL
from twistedpypi.tap import Options


def poll_interval(tmp_path, *arguments):
    options = Options()
    options.parseOptions([*arguments, "--disable-fallback", str(tmp_path / "packages")])
    return options.config().poll_interval


def test_inotify_is_the_default(tmp_path):
    assert poll_interval(tmp_path) is None
    assert poll_interval(tmp_path, "--watch", "inotify") is None


def test_poll_looks_every_half_second_unless_told(tmp_path):
    assert DEFAULT_POLL_INTERVAL == 0.5
    assert poll_interval(tmp_path, "--watch", "poll") == 0.5
    assert poll_interval(tmp_path, "--watch", "poll:0.3") == 0.3
    assert poll_interval(tmp_path, "--watch=poll:2") == 2.0


@pytest.mark.parametrize(
    "value, message",
    [
        ("poll:0", "INTERVAL is a positive number of seconds"),
        ("poll:-1", "INTERVAL is a positive number of seconds"),
        ("poll:soon", "INTERVAL is a positive number of seconds"),
        ("poll:inf", "INTERVAL is a positive number of seconds"),
        ("poll:", "INTERVAL is a positive number of seconds"),
        ("nfs", "choose inotify, poll or poll:INTERVAL"),
        ("inotify:1", "choose inotify, poll or poll:INTERVAL"),
    ],
)
def test_a_wrong_watch_mode_is_a_usage_error(tmp_path, value, message):
    with pytest.raises(usage.UsageError, match=message):
        poll_interval(tmp_path, "--watch", value)
