"""
Passwords under attack and under maintenance, in process: no user
enumeration through timing or messages, failed attempts logged with the
client's address and never the password, and a password file replaced,
removed or restored while the server runs.
"""

import os
import statistics
import time

import pytest
import pytest_twisted
from passlib.hash import bcrypt

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for, index_directory
from tests.inmemory import basic
from twistedpypi.auth import HtpasswdChecker
from twistedpypi.web.root import Root

URL = "/simple/demo/"


def bcrypt_line(user, password, rounds=8):
    return f"{user}:{bcrypt.using(rounds=rounds).hash(password)}\n"


@pytest.fixture
def protected(packages, tmp_path, root_server):  # noqa: F811
    write(packages, wheel_bytes("demo", "1.0"))
    path = tmp_path / "htpasswd"
    path.write_text(bcrypt_line("alice", "right-pw", rounds=4))
    config = config_for(packages, passwords=str(path), authenticate=frozenset({"update", "list", "download"}))
    server = root_server(Root(config, index_directory(packages)))
    server.htpasswd = path
    return server


def test_an_unknown_user_costs_as_much_time_as_a_wrong_password(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(bcrypt_line("alice", "right-pw", rounds=9) + "bob:{SHA}x\n")
    checker = HtpasswdChecker(str(path))

    def timed(user):
        start = time.perf_counter()
        assert not checker.check_password(user, "guess")
        return time.perf_counter() - start

    timed("alice")  # warm up: the file is read on first use
    wrong = statistics.median(timed("alice") for _ in range(7))
    unknown = statistics.median(timed("mallory") for _ in range(7))
    impossible = statistics.median(timed("a:b\n") for _ in range(7))
    # Without a decoy verification an unknown name answers in microseconds,
    # a bcrypt check in tens of milliseconds.
    assert unknown > wrong / 2, (wrong, unknown)
    assert impossible > wrong / 2, (wrong, impossible)
    assert checker.check_password("alice", "right-pw")


@pytest_twisted.ensureDeferred
async def test_unknown_user_and_wrong_password_get_the_same_answer_and_are_logged_without_the_password(
    protected, logged
):
    answers = []
    for user, password in [("mallory", "pw-one-XYZ"), ("alice", "pw-two-XYZ")]:
        response = await protected.get(URL, headers={b"authorization": basic(user, password)})
        answers.append((response.code, response.phrase, await response.content()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    refusals = [line for line in logged if "refused" in line and "wrong user name or password" in line]
    assert len(refusals) == 2
    assert all("127.0.0.1" in line for line in refusals)
    assert "'mallory'" in refusals[0] and "'alice'" in refusals[1]
    assert not any("XYZ" in line for line in logged)


@pytest_twisted.ensureDeferred
async def test_a_password_file_replaced_atomically_takes_effect_on_the_next_request(protected):
    alice = {b"authorization": basic("alice", "right-pw")}
    bob = {b"authorization": basic("bob", "new-pw")}
    assert (await protected.get(URL, headers=alice)).code == 200
    # As a deployment tool does it: a new file beside, renamed over.
    replacement = protected.htpasswd.with_name("htpasswd.new")
    replacement.write_text(bcrypt_line("bob", "new-pw", rounds=4))
    os.replace(replacement, protected.htpasswd)
    assert (await protected.get(URL, headers=bob)).code == 200
    assert (await protected.get(URL, headers=alice)).code == 401


@pytest_twisted.ensureDeferred
async def test_a_removed_password_file_refuses_every_protected_action_until_it_is_back(protected, logged):
    alice = {b"authorization": basic("alice", "right-pw")}
    assert (await protected.get(URL, headers=alice)).code == 200
    saved = protected.htpasswd.read_text()
    protected.htpasswd.unlink()
    for url in [URL, "/simple/", "/packages/demo-1.0-py3-none-any.whl", "/pypi/demo/json"]:
        response = await protected.get(url, headers=alice)
        body = await response.content()
        assert response.code == 503, url
        assert b"password file" in body and b"demo" not in body
        # Without credentials: the usual challenge, still nothing served.
        assert (await protected.get(url)).code == 401
    assert (await protected.get("/health")).code == 200
    errors = [line for line in logged if "cannot read the password file" in line]
    assert len(errors) == 1 and str(protected.htpasswd) in errors[0]
    # A broken file is no better than none.
    protected.htpasswd.write_bytes(b"\xff\xfe not an htpasswd file\n" * 3)
    assert (await protected.get(URL, headers=alice)).code in (401, 503)
    protected.htpasswd.write_text(saved)
    assert (await protected.get(URL, headers=alice)).code == 200
    assert (await protected.get(URL, headers={b"authorization": basic("alice", "wrong")})).code == 401
