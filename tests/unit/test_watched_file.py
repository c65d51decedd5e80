"""
A watched file (the password, tokens and permissions files) looked at for
each request in a daemon thread that is kept while there is work, and that
ends when idle.  The hung-read cases are in
C{tests/e2e/test_password_file_faults.py}.
"""

import threading

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from twistedpypi.auth.watched import WatchedFile, read_watched_file


@pytest_twisted.ensureDeferred
async def test_looks_share_one_thread_while_there_is_work_and_it_ends_when_idle(tmp_path):
    path = tmp_path / "watched"
    path.write_text("one")
    threads = []

    def read(name):
        threads.append(threading.current_thread())
        stamp, data = read_watched_file(name)
        return stamp, data.decode()

    watched = WatchedFile(str(path), "test file", read=read, looker_idle=0.3)
    assert await watched.fresh() == "one"
    path.write_text("two!")
    assert await watched.fresh() == "two!"
    assert await watched.fresh() == "two!"  # unchanged: looked at, not read
    assert len(threads) == 2
    assert threads[0] is threads[1]
    assert threads[0] is not threading.current_thread() and threads[0].daemon

    for _ in range(40):
        await deferLater(reactor, 0.05, lambda: None)
        if not threads[0].is_alive():
            break
    assert not threads[0].is_alive()
    path.write_text("three")
    assert await watched.fresh() == "three"
    assert threads[2] is not threads[0]
