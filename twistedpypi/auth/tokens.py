"""
Upload tokens: random secrets with the prefix C{tpypi-}, sent as PyPI
tokens are (Basic auth with the user C{__token__}, or C{Authorization:
Bearer}).  The tokens file (JSON) holds only each token's SHA-256, with its
id, name, projects, actions, expiry and creation time: a 256-bit random
secret needs no slow hash.

Pure functions, but for L{write_tokens_file} and L{change_tokens_file}
(blocking, for the C{twistedpypi token} command).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

TOKEN_PREFIX = "tpypi-"
"""Every token's start: ours, never PyPI's C{pypi-}, so secret scanners do
not report our tokens to PyPI."""

TOKEN_USER = "__token__"
"""The user name a client sends with a token as its password."""

TOKEN_ACTIONS = ("update", "download", "list")

_SEPARATORS = re.compile(r"[-_.]+")


def normalize_pattern(name: str) -> str:
    """A project name or C{fnmatch} pattern normalised as PEP 503 names are."""
    return _SEPARATORS.sub("-", name.strip()).lower()


def matches(patterns: tuple[str, ...], project: str) -> bool:
    """Whether the project (any spelling) is one of the names or patterns."""
    project = normalize_pattern(project)
    return any(fnmatch.fnmatchcase(project, pattern) for pattern in patterns)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as the file keeps it."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    """A new secret: the prefix and 256 random bits."""
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Token:
    """One token's entry in the file (never its secret)."""

    id: str
    name: str
    sha256: str
    projects: tuple[str, ...]
    actions: frozenset[str]
    created: datetime
    expires: datetime | None = None
    revoked: datetime | None = None

    @property
    def label(self) -> str:
        """How the log names it."""
        return f"token {self.id}" + (f" ({self.name})" if self.name else "")

    def state(self, now: datetime) -> str:
        """C{active}, C{expired} or C{revoked}."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "sha256": self.sha256,
            "projects": list(self.projects),
            "actions": sorted(self.actions),
            "created": _time_text(self.created),
            "expires": _time_text(self.expires),
            "revoked": _time_text(self.revoked),
        }

    @classmethod
    def from_json(cls, entry: dict) -> "Token":
        actions = frozenset(entry["actions"])
        if not actions <= set(TOKEN_ACTIONS):
            raise ValueError(f"token {entry['id']}: unknown actions {sorted(actions - set(TOKEN_ACTIONS))}")
        digest = str(entry["sha256"])
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"token {entry['id']}: sha256 is not 64 hex digits")
        return cls(
            id=str(entry["id"]),
            name=str(entry.get("name") or ""),
            sha256=digest,
            projects=tuple(normalize_pattern(p) for p in entry["projects"]),
            actions=actions,
            created=_parse_time(entry["created"]),
            expires=_parse_time(entry.get("expires")),
            revoked=_parse_time(entry.get("revoked")),
        )


@dataclass(frozen=True)
class Tokens:
    """One reading of the tokens file: the entries, and by hash."""

    entries: tuple[Token, ...]
    by_sha256: dict[str, Token]

    def find(self, token: str, now: datetime) -> Token | None:
        """
        The active entry of a token, or L{None}: unknown, expired or
        revoked.  One dictionary lookup, then a constant-time comparison.
        """
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = hash_token(token)
        entry = self.by_sha256.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            return None
        return entry if entry.state(now) == "active" else None


def parse_tokens(data: bytes) -> Tokens:
    """
    The tokens file's contents; an empty file holds no tokens.

    @raise ValueError: it is not a tokens file.
    """
    if not data.strip():
        return Tokens((), {})
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ValueError(f"not a tokens file (not JSON: {error})") from None
    try:
        entries = tuple(Token.from_json(entry) for entry in document["tokens"])
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a tokens file (missing {error})") from None
    return Tokens(entries, {entry.sha256: entry for entry in entries})


def tokens_text(entries: tuple[Token, ...] | list[Token]) -> bytes:
    """The file's contents for these entries."""
    document = {"version": 1, "tokens": [entry.as_json() for entry in entries]}
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def write_tokens_file(path: str, data: bytes) -> None:
    """
    Replace the file atomically (a temporary file beside it, fsynced, then
    renamed over it), readable by its owner only.  Blocking.
    """
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".tokens-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    from twistedpypi.fs import fsync_directory

    fsync_directory(directory)


def read_tokens_file(path: str, missing_ok: bool = False) -> Tokens:
    """
    The file's tokens.  Blocking.

    @raise OSError: it cannot be read (and is not merely missing, with
        C{missing_ok}).
    @raise ValueError: it is not a tokens file.
    """
    from twistedpypi.auth.watched import read_watched_file

    try:
        _, data = read_watched_file(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
        data = b""
    return parse_tokens(data)


def change_tokens_file(path: str, change: Callable[[list[Token]], list[Token]]) -> None:
    """Read the file, change its entries, write it back atomically.  Blocking."""
    entries = list(read_tokens_file(path, missing_ok=True).entries)
    write_tokens_file(path, tokens_text(change(entries)))


_DURATION = re.compile(r"(\d+)\s*([dhmw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_expiry(text: str, now: datetime) -> datetime | None:
    """
    When a token given C{--expires TEXT} expires: C{90d}, C{12h}, C{30m},
    C{2w}, a date or time (C{2027-01-31}, UTC), or C{never}.

    @raise ValueError: none of these.
    """
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match:
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    try:
        return _parse_time(text.upper())
    except ValueError:
        raise ValueError(
            f"--expires {text!r}: give a duration (90d, 12h, 30m, 2w), a date (2027-01-31) or 'never'"
        ) from None


def create_token(
    name: str, projects: list[str], actions: list[str], expires: datetime | None, now: datetime
) -> tuple[str, Token]:
    """A new secret and its entry."""
    secret = new_token()
    entry = Token(
        id=secrets.token_hex(4),
        name=name,
        sha256=hash_token(secret),
        projects=tuple(normalize_pattern(p) for p in projects),
        actions=frozenset(actions),
        created=now.replace(microsecond=0),
        expires=expires.replace(microsecond=0) if expires is not None else None,
    )
    return secret, entry
