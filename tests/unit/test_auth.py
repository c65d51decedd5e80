"""
Passwords and the C{-a} policy: the htpasswd checker (every scheme Apache's
C{htpasswd} writes), Basic credentials, and the guard Root puts in front of
protected pages, in memory.
"""

import base64
import os
import shutil
import subprocess

import pytest
import pytest_twisted
import treq
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin

from tests.distributions import wheel_bytes, write
from tests.indexing import config_for, index_directory
from tests.inmemory import basic
from twistedpypi.auth import AccessPolicy, HtpasswdChecker, Verdict, basic_credentials
from twistedpypi.web.root import Root

HTPASSWD = shutil.which("htpasswd")
needs_htpasswd = pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) is not installed")

SCHEMES = {"apr1-md5": "-m", "bcrypt": "-B", "sha1": "-s", "crypt": "-d", "plain": "-p"}


def htpasswd(path, user, password, scheme_flag="-m"):
    """Add a user with Apache's own htpasswd."""
    create = [] if os.path.exists(path) else ["-c"]
    subprocess.run([HTPASSWD, *create, "-b", scheme_flag, str(path), user, password], check=True, capture_output=True)


@needs_htpasswd
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_htpasswd_scheme_is_verified(tmp_path, scheme):
    path = tmp_path / "htpasswd"
    htpasswd(path, "alice", "s3cret pass", SCHEMES[scheme])
    checker = HtpasswdChecker(str(path))
    assert checker.check_password("alice", "s3cret pass")
    assert not checker.check_password("alice", "wrong")
    assert not checker.check_password("bob", "s3cret pass")


@needs_htpasswd
def test_the_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "htpasswd"
    htpasswd(path, "alice", "one")
    checker = HtpasswdChecker(str(path))
    assert checker.check_password("alice", "one")
    htpasswd(path, "bob", "two", "-B")
    htpasswd(path, "alice", "three")
    assert checker.check_password("bob", "two")
    assert checker.check_password("alice", "three")
    assert not checker.check_password("alice", "one")


@pytest_twisted.ensureDeferred
async def test_the_checker_answers_with_the_user_or_unauthorized_login(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("alice:{SHA}" + base64.b64encode(__import__("hashlib").sha1(b"pw").digest()).decode() + "\n")
    checker = HtpasswdChecker(str(path))
    assert await checker.requestAvatarId(UsernamePassword(b"alice", b"pw")) == "alice"
    with pytest.raises(UnauthorizedLogin):
        await checker.requestAvatarId(UsernamePassword(b"alice", b"nope"))


@pytest_twisted.ensureDeferred
async def test_a_right_login_is_hashed_once_until_the_file_changes_and_a_wrong_one_every_time(tmp_path, monkeypatch):
    from passlib.apache import HtpasswdFile

    hashed = []
    check_password = HtpasswdFile.check_password

    def counted(self, user, password):
        hashed.append((user, password))
        return check_password(self, user, password)

    monkeypatch.setattr(HtpasswdFile, "check_password", counted)
    path = tmp_path / "htpasswd"
    path.write_text("alice:plain-pw\nbob:other-pw\n")
    checker = HtpasswdChecker(str(path))

    async def login(user, password):
        try:
            return await checker.requestAvatarId(UsernamePassword(user.encode(), password.encode()))
        except UnauthorizedLogin:
            return None

    assert [await login("alice", "plain-pw") for _ in range(3)] == ["alice"] * 3
    assert [await login("alice", "wrong") for _ in range(2)] == [None, None]
    assert await login("bob", "other-pw") == "bob"
    assert hashed == [("alice", "plain-pw"), ("alice", "wrong"), ("alice", "wrong"), ("bob", "other-pw")]
    # A user name and password split elsewhere is another login.
    assert await login("alice", "plain-p") is None
    # A changed file forgets every login: alice's password changed.
    path.write_text("alice:new-pw\nbob:other-pw\n")
    assert await login("alice", "plain-pw") is None
    assert await login("alice", "new-pw") == "alice"
    assert await login("alice", "new-pw") == "alice"
    assert hashed[-2:] == [("alice", "plain-pw"), ("alice", "new-pw")]


def test_remembered_logins_are_bounded_and_the_oldest_is_forgotten():
    from twistedpypi.auth import MAX_REMEMBERED_LOGINS, _login_digest, _Passwords

    passwords = _Passwords(htpasswd=None, decoy=None)
    digests = [_login_digest(f"user{n}", "pw") for n in range(MAX_REMEMBERED_LOGINS + 1)]
    for digest in digests:
        passwords.remember(digest)
    assert len(passwords.remembered) == MAX_REMEMBERED_LOGINS
    assert digests[0] not in passwords.remembered
    assert digests[1] in passwords.remembered and digests[-1] in passwords.remembered
    # The name's length is part of what is digested: no split collides.
    assert _login_digest("ab", "c") != _login_digest("a", "bc")


def test_basic_credentials_are_read_and_anything_else_ignored():
    credentials = basic_credentials(basic("alice", "pa:ss"))
    assert (credentials.username, credentials.password) == ("alice", "pa:ss")
    assert basic_credentials(None) is None
    assert basic_credentials(b"Bearer abc") is None
    assert basic_credentials(b"Basic !!!notbase64") is None
    assert basic_credentials(b"Basic " + base64.b64encode(b"nocolon")) is None


@pytest_twisted.ensureDeferred
async def test_the_policy_verdicts(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("alice:plain-pw\n")
    policy = AccessPolicy(frozenset({"update"}), HtpasswdChecker(str(path)))
    assert await policy.authorize("list", None) is Verdict.ALLOWED
    assert await policy.authorize("update", None) is Verdict.NO_CREDENTIALS
    assert await policy.authorize("update", basic("alice", "no")) is Verdict.WRONG_CREDENTIALS
    assert await policy.authorize("update", basic("alice", "plain-pw")) is Verdict.ALLOWED
    # pypiserver's defaults: -a update without a password file.
    assert await AccessPolicy(frozenset({"update"}), None).authorize("update", basic("a", "b")) is Verdict.DISABLED


@pytest.fixture
def protected(packages, tmp_path, root_server):
    write(packages, wheel_bytes("demo", "1.0"))
    path = tmp_path / "htpasswd"
    path.write_text("alice:plain-pw\n")
    config = config_for(packages, passwords=str(path), authenticate=frozenset({"list", "download"}))
    return root_server(Root(config, index_directory(packages)))


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "url",
    ["/simple/", "/simple/demo/", "/pypi/demo/json", "/packages/", "/packages/demo-1.0-py3-none-any.whl",
     "/packages/demo-1.0-py3-none-any.whl.metadata"],
)
async def test_protected_pages_want_a_password(protected, url):
    response = await protected.get("http://example.test" + url, allow_redirects=False)
    assert response.code == 401
    assert response.headers.getRawHeaders(b"www-authenticate") == [b'Basic realm="twistedpypi"']
    response = await protected.get(
        "http://example.test" + url, headers={b"authorization": basic("alice", "wrong")}, allow_redirects=False
    )
    assert response.code == 401
    assert b"wrong user name or password" in await response.content()
    response = await protected.get(
        "http://example.test" + url, headers={b"authorization": basic("alice", "plain-pw")}, allow_redirects=False
    )
    assert response.code == 200


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("url", ["/", "/health"])
async def test_the_welcome_page_and_health_stay_open(protected, url):
    response = await protected.get("http://example.test" + url)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_only_the_protected_actions_are_guarded(packages, tmp_path, root_server):
    write(packages, wheel_bytes("demo", "1.0"))
    path = tmp_path / "htpasswd"
    path.write_text("alice:plain-pw\n")
    config = config_for(packages, passwords=str(path), authenticate=frozenset({"download"}))
    server = root_server(Root(config, index_directory(packages)))
    assert (await server.get("/simple/demo/")).code == 200
    assert (await server.get("/packages/")).code == 200
    assert (await server.get("/packages/demo-1.0-py3-none-any.whl")).code == 401


@pytest_twisted.ensureDeferred
async def test_xmlrpc_posted_to_the_root_reaches_rpc2_behind_the_list_guard(packages, tmp_path, root_server):
    from twisted.web import xmlrpc

    class Search(xmlrpc.XMLRPC):
        def xmlrpc_search(self, spec, operator="and"):
            return [{"name": "demo", "version": "1.0", "summary": ""}]

    path = tmp_path / "htpasswd"
    path.write_text("alice:plain-pw\n")
    config = config_for(packages, passwords=str(path), authenticate=frozenset({"update", "list"}))
    root = Root(config, index_directory(packages))
    root.putChild(b"RPC2", Search())
    server = root_server(root)
    call = b"<?xml version='1.0'?><methodCall><methodName>search</methodName><params><param><value><struct></struct></value></param></params></methodCall>"
    headers = {b"content-type": [b"text/xml"]}
    response = await treq.post(server.base + "/", data=call, headers=headers, persistent=False)
    assert response.code == 401
    headers[b"authorization"] = [basic("alice", "plain-pw")]
    response = await treq.post(server.base + "/", data=call, headers=headers, persistent=False)
    assert response.code == 200
    assert b"<string>demo</string>" in await response.content()
