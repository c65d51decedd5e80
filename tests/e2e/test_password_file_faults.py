"""
A password file that cannot be read in time: a FIFO put in its place (as a
hung network mount would behave) against the real C{twistd -n pypi}, and a
read that never returns, in process.  Authenticated requests are refused
promptly with 503, never let through; everything else keeps being served;
the server recovers once the file is back and still stops on SIGTERM.
"""

import http.client
import os
import signal
import threading
import time

import pytest
import pytest_twisted
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.distributions import wheel_bytes, write
from tests.passwords import PASSWORD, USER, request, sha1_entry
from twistedpypi import auth
from twistedpypi.auth import MAX_HUNG_READS, HtpasswdChecker, PasswordFileUnavailable

WHEEL = "demo-1.0-py3-none-any.whl"


def timed_request(server, path, auth=None):
    """A request and the seconds its answer took; a hung server shows as a timeout."""
    start = time.monotonic()
    try:
        status, headers, body = request(server, "GET", path, auth=auth)
    except (TimeoutError, http.client.HTTPException, OSError) as error:
        pytest.fail(f"GET {path} got no answer: {error!r}")
    return status, dict(headers), body, time.monotonic() - start


def test_a_fifo_in_place_of_the_password_file_is_refused_at_once_and_the_server_recovers_and_stops(
    start_server, packages, tmp_path
):
    write(packages, wheel_bytes("demo", "1.0"))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(sha1_entry(USER, PASSWORD))
    server = start_server("-P", str(htpasswd), "-a", "list", "--disable-fallback", str(packages))
    alice = (USER, PASSWORD)
    assert request(server, "GET", "/simple/", auth=alice)[0] == 200

    saved = htpasswd.read_text()
    htpasswd.unlink()
    os.mkfifo(htpasswd)
    for _ in range(2):
        status, headers, body, seconds = timed_request(server, "/simple/", auth=alice)
        assert status == 503, (status, body)
        assert seconds < 5, seconds
        assert headers.get("Retry-After")
        assert b"password file" in body and b"demo" not in body
        # Without credentials: the usual challenge, nothing listed.
        status, _, body, _ = timed_request(server, "/simple/")
        assert status == 401 and b"demo" not in body
    # What needs no password is still served.
    assert timed_request(server, "/health")[0] == 200
    assert timed_request(server, f"/packages/{WHEEL}")[0] == 200
    assert "cannot read the password file" in server.log()

    htpasswd.unlink()
    replacement = htpasswd.with_name("htpasswd.new")
    replacement.write_text(saved)
    os.replace(replacement, htpasswd)
    status, _, body, _ = timed_request(server, "/simple/", auth=alice)
    assert status == 200 and b"demo" in body
    assert timed_request(server, "/simple/", auth=(USER, "wrong"))[0] == 401

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(20) == 0


@pytest.fixture
def hung_reads(monkeypatch):
    """
    Reads of the password file that hang, once armed, until released, as on
    a dead network mount (which a test cannot make): the real reading
    function, held up first.
    """
    armed = threading.Event()
    release = threading.Event()
    read = auth.read_password_file
    readers = []

    def hung(path):
        if armed.is_set():
            readers.append(threading.current_thread())
            release.wait()
        return read(path)

    monkeypatch.setattr(auth, "read_password_file", hung)
    hung.armed = armed
    hung.release = release
    hung.readers = readers
    yield hung
    release.set()


@pytest_twisted.ensureDeferred
async def test_a_read_that_hangs_refuses_in_bounded_time_without_holding_up_shutdown(tmp_path, hung_reads):
    path = tmp_path / "htpasswd"
    path.write_text(sha1_entry(USER, PASSWORD))
    checker = HtpasswdChecker(str(path), read_timeout=0.5)
    checker.load()
    hung_reads.armed.set()
    # A changed file must be read again: the read hangs.
    path.write_text(sha1_entry(USER, PASSWORD) + sha1_entry("bob", "b0b-pass"))
    os.utime(path, ns=(1, 1))
    credentials = UsernamePassword(USER.encode(), PASSWORD.encode())
    # Requests that arrive together wait for one read, and are refused at
    # its deadline.
    start = time.monotonic()
    waiting = [checker.requestAvatarId(credentials) for _ in range(3)]
    for answer in waiting:
        with pytest.raises(PasswordFileUnavailable):
            await answer
    assert time.monotonic() - start < 5
    assert len(hung_reads.readers) == 1
    # Later ones try again, up to a bound of hung reads; past it they are
    # refused at once, starting none.
    while len(hung_reads.readers) < MAX_HUNG_READS:
        with pytest.raises(PasswordFileUnavailable):
            await checker.requestAvatarId(credentials)
    start = time.monotonic()
    with pytest.raises(PasswordFileUnavailable):
        await checker.requestAvatarId(credentials)
    assert time.monotonic() - start < 0.4
    assert len(hung_reads.readers) == MAX_HUNG_READS
    # They hang in daemon threads, which do not hold up the process's exit
    # (the reactor's pool joins its threads when it stops).
    assert all(reader.daemon for reader in hung_reads.readers)

    hung_reads.release.set()
    deadline = time.monotonic() + 20
    while True:
        try:
            assert await checker.requestAvatarId(UsernamePassword(b"bob", b"b0b-pass")) == "bob"
            break
        except PasswordFileUnavailable:
            # The released read may not have reported back yet.
            assert time.monotonic() < deadline, "never recovered"
            await deferLater(reactor, 0.05, lambda: None)
    with pytest.raises(UnauthorizedLogin):
        await checker.requestAvatarId(UsernamePassword(b"bob", b"wrong"))
