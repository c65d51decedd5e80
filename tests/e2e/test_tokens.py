"""
End to end: upload tokens (C{--tokens}) and per-project permissions
(C{--permissions}) against the real C{twistd -n pypi}, with the real twine,
uv and pip, and tokens made by the real C{twistedpypi token} command.
Loopback only.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.clients import PIP, run, uv
from tests.distributions import wheel_bytes
from tests.forms import auth_header, fetch, post, twine, upload_form
from tests.passwords import HTPASSWD, PASSWORD, make_htpasswd, request

pytestmark = pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) is not installed")


def token_command(*arguments, check=True):
    """C{python -m twistedpypi token ...}, as the administrator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "twistedpypi", "token", *arguments], capture_output=True, text=True, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def create_token(tokens, *arguments):
    """A new token's secret and id."""
    result = token_command("create", "--tokens", str(tokens), *arguments)
    secret = result.stdout.strip()
    identity = json.loads(tokens.read_text())["tokens"][-1]["id"]
    return secret, identity


def dist(tmp_path, project, version="1.0"):
    """A wheel of the project, written to a file for the clients."""
    filename, data = wheel_bytes(project, version)
    path = tmp_path / "dist" / filename
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def poll(condition, timeout=20.0):
    """Poll until C{condition()} is true; whether it became so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def tokens(tmp_path):
    return tmp_path / "tokens.json"


def test_twine_uploads_with_a_token_for_its_project_and_gets_403_for_another(start_server, packages, tmp_path, tokens):
    secret, identity = create_token(tokens, "--project", "Demo", "--project", "acme-*", "--name", "ci")
    server = start_server("--tokens", str(tokens), "--disable-fallback", str(packages))
    assert b"Uploads are off" not in fetch(server.url + "/")[1]
    credentials = ("--repository-url", server.url + "/", "-u", "__token__", "-p", secret)
    twine(*credentials, str(dist(tmp_path, "demo")), str(dist(tmp_path, "acme_tools")))
    assert sorted(os.listdir(packages)) == ["acme_tools-1.0-py3-none-any.whl", "demo-1.0-py3-none-any.whl"]
    refused = twine(*credentials, str(dist(tmp_path, "other")), check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    assert "other-1.0-py3-none-any.whl" not in os.listdir(packages)
    # The 403's status line is fixed; its body names the project.
    status, reason, body, _ = post(
        server, upload_form(*wheel_bytes("other", "2.0"), name="other", version="2.0"),
        headers={"Authorization": f"Bearer {secret}"}, auth=False,
    )
    assert (status, reason) == (403, "Forbidden")
    assert b"'other'" in body and identity.encode() in body
    assert poll(lambda: f"stored demo-1.0-py3-none-any.whl (by token {identity} (ci))" in server.log())
    # The tokens file holds no token.
    assert secret not in tokens.read_text()
    assert secret.split("-", 1)[1] not in tokens.read_text()


def test_uv_publish_with_a_token_for_its_project_and_gets_403_for_another(start_server, packages, tmp_path, tokens):
    secret, _ = create_token(tokens, "--project", "demo")
    server = start_server("--tokens", str(tokens), "--disable-fallback", str(packages))
    env = dict(os.environ, UV_NO_CACHE="1")
    command = [uv(), "publish", "--publish-url", server.url + "/", "--token", secret]
    run([*command, str(dist(tmp_path, "demo"))], env=env)
    assert os.listdir(packages) == ["demo-1.0-py3-none-any.whl"]
    refused = run([*command, str(dist(tmp_path, "other"))], check=False, env=env)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    assert os.listdir(packages) == ["demo-1.0-py3-none-any.whl"]


def test_revoked_and_expired_tokens_get_401_with_a_challenge_without_a_restart(start_server, packages, tmp_path, tokens):
    secret, identity = create_token(tokens, "--project", "demo", "--expires", "90d")
    expired, _ = create_token(tokens, "--project", "demo", "--expires", "2020-01-01")
    later, later_id = create_token(tokens, "--project", "demo")
    server = start_server("--tokens", str(tokens), "--disable-fallback", str(packages))
    credentials = ("--repository-url", server.url + "/", "-u", "__token__")
    twine(*credentials, "-p", secret, str(dist(tmp_path, "demo", "1.0")))

    def upload(token, version):
        return post(
            server, upload_form(*wheel_bytes("demo", version), version=version),
            headers={"Authorization": auth_header("__token__", token)}, auth=False,
        )

    status, reason, body, headers = upload(expired, "1.1")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="twistedpypi"'
    assert b"unknown, expired or revoked token" in body
    token_command("revoke", "--tokens", str(tokens), identity)
    assert poll(lambda: upload(secret, "1.2")[0] == 401)
    refused = twine(*credentials, "-p", secret, str(dist(tmp_path, "demo", "1.3")), check=False)
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    # A token whose expiry passes while the server runs (its entry edited, as the clock would).
    document = json.loads(tokens.read_text())
    for entry in document["tokens"]:
        if entry["id"] == later_id:
            entry["expires"] = "2021-01-01T00:00:00Z"
    replacement = tokens.with_name("tokens.new")
    replacement.write_text(json.dumps(document))
    assert upload(later, "1.4")[0] == 200
    os.replace(replacement, tokens)
    assert poll(lambda: upload(later, "1.5")[0] == 401)
    assert sorted(os.listdir(packages)) == ["demo-1.0-py3-none-any.whl", "demo-1.4-py3-none-any.whl"]


def test_a_missing_tokens_file_refuses_and_never_opens_up(start_server, packages, tmp_path, tokens):
    secret, _ = create_token(tokens, "--project", "demo")
    server = start_server("--tokens", str(tokens), "--disable-fallback", str(packages))
    tokens.rename(tmp_path / "elsewhere")
    status, _, body, _ = post(
        server, upload_form(*wheel_bytes("demo", "1.0")), headers={"Authorization": f"Bearer {secret}"}, auth=False
    )
    assert status == 503 and b"tokens file" in body
    assert os.listdir(packages) == []
    (tmp_path / "elsewhere").rename(tokens)
    assert poll(
        lambda: post(
            server, upload_form(*wheel_bytes("demo", "1.0")), headers={"Authorization": f"Bearer {secret}"}, auth=False
        )[0] == 200
    )


def test_pip_installs_with_a_download_token_in_the_index_url(start_server, packages, tmp_path, tokens):
    (packages / "demo-1.0-py3-none-any.whl").write_bytes(wheel_bytes("demo", "1.0")[1])
    reader, _ = create_token(tokens, "--project", "*", "-a", "download,list", "--name", "pip")
    uploader, _ = create_token(tokens, "--project", "demo")
    server = start_server("--tokens", str(tokens), "-a", "update,download,list", "--disable-fallback", str(packages))
    index = f"http://__token__:{reader}@127.0.0.1:{server.port}/simple/"
    run([*PIP, "install", "--no-cache-dir", "--index-url", index, "--target", str(tmp_path / "t"), "demo"])
    assert (tmp_path / "t" / "demo-1.0.dist-info").is_dir()
    assert request(server, "GET", "/simple/demo/")[0] == 401
    # The upload-only token may not list; the download token may not upload.
    status, _, body = request(server, "GET", "/simple/demo/", auth=("__token__", uploader))
    assert status == 403 and b"may not list" in body
    status, _, _, _ = post(
        server, upload_form(*wheel_bytes("demo", "2.0"), version="2.0"),
        headers={"Authorization": f"Bearer {reader}"}, auth=False,
    )
    assert status == 403
    # A token for one project downloads and lists that project only.
    (packages / "other-1.0-py3-none-any.whl").write_bytes(wheel_bytes("other", "1.0")[1])
    scoped, _ = create_token(tokens, "--project", "demo", "-a", "download,list")
    assert poll(lambda: request(server, "GET", "/simple/other/", auth=("__token__", reader))[0] == 200)
    for path in ("/simple/demo/", "/packages/demo-1.0-py3-none-any.whl", "/pypi/demo/json", "/demo/json"):
        assert request(server, "GET", path, auth=("__token__", scoped))[0] == 200, path
    for path in ("/simple/other/", "/packages/other-1.0-py3-none-any.whl", "/pypi/Other/json", "/other/json", "/Other/json"):
        status, headers, body = request(server, "GET", path, auth=("__token__", scoped))
        assert status == 403 and (b"'other'" in body or b"'Other'" in body), path
    # A file name longer than 200 characters (many platform tags) is
    # checked by its whole name: a cut one named no project the rules know.
    tags = ".".join(f"manylinux_2_{minor}_x86_64" for minor in range(17, 27))
    long_name = f"other-3.0-cp312-cp312-{tags}.whl"
    assert len(long_name) > 200
    (packages / long_name).write_bytes(wheel_bytes("other", "3.0")[1])
    assert poll(lambda: request(server, "GET", f"/packages/{long_name}", auth=("__token__", reader))[0] == 200)
    for path in (f"/packages/{long_name}", f"/packages/{long_name}.metadata"):
        assert request(server, "GET", path, auth=("__token__", scoped))[0] == 403, path
    # pip search's XML-RPC names no project the token may not list.
    import xmlrpc.client

    rpc = xmlrpc.client.ServerProxy(f"http://__token__:{scoped}@127.0.0.1:{server.port}/RPC2")
    assert rpc.package_releases("other", True) == []
    assert rpc.package_releases("demo", True) == ["1.0"]
    assert rpc.list_packages() == ["demo"]
    assert [hit["name"] for hit in rpc.search({"name": ["o"]})] == ["demo"]
    wide = xmlrpc.client.ServerProxy(f"http://__token__:{reader}@127.0.0.1:{server.port}/RPC2")
    assert sorted(wide.list_packages()) == ["demo", "other"]


def test_a_permissions_file_lets_alice_upload_demo_refuses_bob_and_is_read_again_when_edited(
    start_server, packages, tmp_path
):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-B")
    make_htpasswd(htpasswd, "-B", user="bob", password=PASSWORD)
    permissions = tmp_path / "permissions.toml"
    permissions.write_text('[groups]\nmaintainers = ["alice"]\n\n[projects]\ndemo = { update = ["@maintainers"] }\n')
    server = start_server("-P", str(htpasswd), "--permissions", str(permissions), "--disable-fallback", str(packages))
    url = ("--repository-url", server.url + "/")
    twine(*url, "-u", "alice", "-p", PASSWORD, str(dist(tmp_path, "demo", "1.0")))
    refused = twine(*url, "-u", "bob", "-p", PASSWORD, str(dist(tmp_path, "demo", "1.1")), check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    # Projects no rule names keep today's behaviour: any user.
    twine(*url, "-u", "bob", "-p", PASSWORD, str(dist(tmp_path, "other", "1.0")))
    status, reason, body, _ = post(
        server, upload_form(*wheel_bytes("demo", "1.1"), version="1.1"), headers={"Authorization": auth_header("bob")},
        auth=False,
    )
    assert (status, reason) == (403, "Forbidden") and b"user bob" in body and b"'demo'" in body
    # A wrong password is still 401, never 403.
    assert post(
        server, upload_form(*wheel_bytes("demo", "1.1"), version="1.1"),
        headers={"Authorization": auth_header("bob", "wrong")}, auth=False,
    )[0] == 401
    permissions.write_text(permissions.read_text().replace('["alice"]', '["alice", "bob"]'))
    assert poll(
        lambda: post(
            server, upload_form(*wheel_bytes("demo", "1.1"), version="1.1"),
            headers={"Authorization": auth_header("bob")}, auth=False,
        )[0] == 200
    )
    assert "demo-1.1-py3-none-any.whl" in os.listdir(packages)
    assert "(by user bob)" in server.log()


def test_the_token_command_says_what_it_did_and_what_was_wrong(tmp_path, tokens):
    missing = token_command("list", "--tokens", str(tokens), check=False)
    assert missing.returncode == 2
    assert "does not exist yet" in missing.stderr and "twistedpypi token create" in missing.stderr
    created = token_command("create", "--tokens", str(tokens), "--project", "Acme_*", "--expires", "90d", "--name", "ci-acme")
    secret = created.stdout.strip()
    assert secret.startswith("tpypi-") and len(secret) > 40 and "\n" not in secret
    assert "shown this once" in created.stderr and "acme-*" in created.stderr
    assert oct(tokens.stat().st_mode & 0o777) == "0o600"
    listing = token_command("list", "--tokens", str(tokens))
    header, row = listing.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATE", "ACTIONS", "PROJECTS", "EXPIRES", "CREATED"]
    assert "ci-acme" in row and "active" in row and "acme-*" in row and secret not in listing.stdout
    identity = row.split()[0]
    revoked = token_command("revoke", "--tokens", str(tokens), identity)
    assert f"revoked token {identity} (ci-acme)" in revoked.stdout
    assert "revoked" in token_command("list", "--tokens", str(tokens)).stdout.splitlines()[1]
    unknown = token_command("revoke", "--tokens", str(tokens), "nope", check=False)
    assert unknown.returncode == 2 and "no token 'nope'" in unknown.stderr and "token list" in unknown.stderr
    bad = token_command("create", "--tokens", str(tokens), "--project", "x", "--action", "delete", check=False)
    assert bad.returncode == 2 and "--action 'delete'" in bad.stderr
    bad = token_command("create", "--tokens", str(tokens), "--project", "x", "--expires", "soon", check=False)
    assert bad.returncode == 2 and "--expires 'soon'" in bad.stderr
    no_project = token_command("create", "--tokens", str(tokens), check=False)
    assert no_project.returncode == 2 and "--project" in no_project.stderr
    tokens.write_text("not json")
    broken = token_command("list", "--tokens", str(tokens), check=False)
    assert broken.returncode == 1 and str(tokens) in broken.stderr and "Traceback" not in broken.stderr
    usage = subprocess.run([sys.executable, "-m", "twistedpypi"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "token" in usage.stderr
