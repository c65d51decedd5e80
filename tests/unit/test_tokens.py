"""
Upload tokens: what the tokens file keeps, how a token is found (its hash,
its expiry, its revocation, its projects), and the policy's verdict on a
request carrying one, the file read in a thread and again when it changes.
"""

import base64
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted

from twistedpypi.auth import AccessPolicy, Verdict, token_of
from twistedpypi.auth.tokens import (
    create_token,
    parse_expiry,
    parse_tokens,
    tokens_text,
    write_tokens_file,
)
from twistedpypi.auth.watched import WatchedFile

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


def test_the_file_keeps_the_tokens_hash_and_never_the_token():
    secret, entry = create_token("ci", ["Acme_*"], ["update"], NOW + timedelta(days=90), NOW)
    text = tokens_text([entry]).decode()
    assert secret.startswith("tpypi-") and len(base64.urlsafe_b64decode(secret[6:] + "=")) == 32
    assert secret not in text and secret[6:] not in text
    found = parse_tokens(text.encode()).find(secret, NOW)
    assert found == entry and found.projects == ("acme-*",)


def test_unknown_expired_revoked_and_foreign_tokens_are_not_found():
    secret, entry = create_token("", ["demo"], ["update"], NOW + timedelta(hours=1), NOW)
    revoked_secret, revoked = create_token("", ["demo"], ["update"], None, NOW)
    revoked = replace(revoked, revoked=NOW)
    tokens = parse_tokens(tokens_text([entry, revoked]))
    assert tokens.find(secret, NOW) is not None
    assert tokens.find(secret, NOW + timedelta(hours=1)) is None
    assert tokens.find(revoked_secret, NOW) is None
    assert tokens.find(secret[:-1] + "x", NOW) is None
    assert tokens.find("pypi-" + secret[6:], NOW) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("90d", NOW + timedelta(days=90)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        ("never", None),
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=timezone.utc)),
    ],
)
def test_expiry_is_a_duration_a_date_or_never(text, expected):
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"tokens": [{"id": "x"}]}', b'{"tokens": 3}'])
def test_a_broken_tokens_file_is_a_value_error(data):
    with pytest.raises(ValueError):
        parse_tokens(data)


@pytest.mark.parametrize(
    "header, token",
    [
        (b"Bearer tpypi-abc", "tpypi-abc"),
        (b"Basic " + base64.b64encode(b"__token__:tpypi-abc"), "tpypi-abc"),
        (b"Basic " + base64.b64encode(b"alice:tpypi-abc"), None),
        (None, None),
    ],
)
def test_a_token_comes_as_bearer_or_as_the_password_of_token_user(header, token):
    assert token_of(header) == token


@pytest_twisted.ensureDeferred
async def test_the_policy_reads_the_tokens_file_again_when_it_changes(tmp_path):
    path = str(tmp_path / "tokens.json")
    secret, entry = create_token("ci", ["demo"], ["update"], None, datetime.now(timezone.utc))
    write_tokens_file(path, tokens_text([entry]))
    tokens = WatchedFile(path, "tokens file", parse_tokens)
    policy = AccessPolicy(frozenset({"update", "download"}), None, tokens)
    bearer = b"Bearer " + secret.encode()
    verdict, principal = await policy.identify("update", bearer)
    assert verdict is Verdict.ALLOWED and principal.refusal("update", "Demo") is None
    assert "'other'" in principal.refusal("update", "other")
    assert await policy.authorize("download", bearer) is Verdict.FORBIDDEN
    assert await policy.authorize("update", b"Basic " + base64.b64encode(b"alice:pw")) is Verdict.WRONG_CREDENTIALS
    write_tokens_file(path, tokens_text([replace(entry, revoked=datetime.now(timezone.utc))]))
    assert await policy.authorize("update", bearer) is Verdict.WRONG_CREDENTIALS
    (tmp_path / "tokens.json").unlink()
    assert await policy.authorize("update", bearer) is Verdict.UNAVAILABLE
    write_tokens_file(path, json.dumps({"tokens": [entry.as_json()]}).encode())
    assert await policy.authorize("update", bearer) is Verdict.ALLOWED
