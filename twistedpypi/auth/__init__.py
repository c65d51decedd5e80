"""
Who may do what: the htpasswd file (through passlib), a twisted.cred
checker over it, upload tokens (L{twistedpypi.auth.tokens}), per-project
permissions (L{twistedpypi.auth.permissions}), and the C{-a} policy saying
which actions need credentials.

Passwords are verified in a thread: bcrypt is slow on purpose, and the
reactor must keep serving meanwhile.  The password file is read in a daemon
thread of its own, with a deadline, since a read on a dead mount can hang
for good (see L{HtpasswdChecker}).  Credentials are never logged.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from twistedpypi.auth.permissions import Permissions, parse_permissions
from twistedpypi.auth.tokens import TOKEN_USER, Token, Tokens, matches, parse_tokens
from twistedpypi.auth.watched import (  # the limits are the password file's too
    MAX_HUNG_READS,
    READ_TIMEOUT,
    FileUnavailable,
    WatchedFile,
    read_watched_file,
)

if TYPE_CHECKING:
    from passlib.apache import HtpasswdFile

# passlib 1.7.4 reads bcrypt.__about__, which bcrypt 4.1+ dropped; it copes,
# but logs a traceback through the standard logging module on first use.
logging.getLogger("passlib.handlers.bcrypt").setLevel(logging.ERROR)

log = Logger()

REALM = "twistedpypi"
"""The realm in C{WWW-Authenticate}."""

UPDATE, DOWNLOAD, LIST = "update", "download", "list"


class PasswordFileUnavailable(FileUnavailable):
    """
    The password file cannot be read (it was removed, is broken, is not a
    regular file, or does not answer in time): no password can be checked,
    so every protected action is refused until it is back.
    """


def read_password_file(path: str) -> tuple[tuple[int, int, int], HtpasswdFile]:
    """
    Read and parse an htpasswd file (see L{read_watched_file}: anything but
    a regular file is refused at once).  Blocking, and can hang on a dead
    network mount: L{HtpasswdChecker} calls it in a daemon thread of its
    own, with a timeout.

    @return: the file's stamp (modification time, size, inode) and entries.
    @raise OSError: the file is missing, not a regular file, unreadable or
        too large.
    @raise ValueError: it is not an htpasswd file.
    """
    from passlib.apache import HtpasswdFile

    stamp, data = read_watched_file(path)
    return stamp, HtpasswdFile.from_string(data)


MAX_REMEMBERED_LOGINS = 1024
"""Right passwords one reading of the password file remembers at most."""

_LOGIN_KEY = os.urandom(32)
"""This process's key for the digests of remembered logins."""


def _login_digest(username: str, password: str) -> bytes:
    """
    A keyed digest of a user name and password, which is all a remembered
    login keeps: never the password itself.  Pure.
    """
    name = username.encode("utf-8", "surrogatepass")
    secret = password.encode("utf-8", "surrogatepass")
    return hmac.new(_LOGIN_KEY, len(name).to_bytes(4, "big") + name + secret, hashlib.sha256).digest()


@dataclass(frozen=True)
class _Passwords:
    """
    One reading of the password file, and the logins found right against
    it.  A reading is never changed once made; a changed file is a new
    reading, which remembers nothing.
    """

    htpasswd: HtpasswdFile
    decoy: str | None
    """The hash a password for an unknown user is checked against."""
    remembered: dict[bytes, None] = field(default_factory=dict, compare=False, repr=False)
    """
    Digests (L{_login_digest}) of the logins verified right, oldest first,
    at most L{MAX_REMEMBERED_LOGINS}: a client that logs in again is let in
    without hashing its password again (Apache's C{mod_authn_socache} does
    the same).  A wrong password is never remembered, so each guess costs
    its whole hash.
    """

    def remember(self, digest: bytes) -> None:
        """Remember a login found right, forgetting the oldest past the bound."""
        if digest in self.remembered:
            return  # verified twice at once: already kept
        if len(self.remembered) >= MAX_REMEMBERED_LOGINS:
            del self.remembered[next(iter(self.remembered))]
        self.remembered[digest] = None


def _verify(passwords: _Passwords, username: str, password: str) -> bool:
    """
    Whether the password is right for the user.  Blocking (bcrypt is slow
    on purpose), and as slow for a user the file does not know.
    """
    htpasswd = passwords.htpasswd
    try:
        known = htpasswd.get_hash(username) is not None
    except ValueError:
        known = False  # a name htpasswd could not hold (a colon, a newline)
    if not known:
        # As slow as a wrong password; the answer is no either way.
        if passwords.decoy is not None:
            try:
                htpasswd.context.verify(password, passwords.decoy)
            except ValueError:
                pass
        return False
    try:
        return bool(htpasswd.check_password(username, password))
    except ValueError:
        # An entry passlib cannot read (a hash scheme it does not know).
        log.warn("the password file has an unreadable entry for {user!r}", user=username)
        return False


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """
    Checks user names and passwords against an Apache htpasswd file, in
    every scheme C{htpasswd} writes: apr1-MD5 (its default), bcrypt
    (C{-B}), SHA-1 (C{-s}), crypt (C{-d}) and plain text (C{-p}).

    The file is read again when its modification time, size or inode
    changes, so users can be added, and the file replaced, without a
    restart.  If it goes missing, cannot be read, is not a regular file or
    does not answer within C{read_timeout} seconds, every check fails with
    L{PasswordFileUnavailable} until it is back: a server never becomes
    open by losing its password file.

    The file is a L{WatchedFile}: looked at, and read if it changed, in a
    daemon thread of its own with a deadline, never in the reactor's
    thread pool (a read hung on a dead mount would keep the process from
    exiting).  Passwords are then verified in the reactor's thread pool:
    bcrypt is slow, but never hangs.  A login found right is remembered
    (a keyed digest, never the password) until the file changes, so the
    many requests of one C{pip install} hash the password once.

    A user name the file does not know costs the same time as a wrong
    password (a password is verified against the file's first entry), so
    timing does not tell which users exist.

    @param reactor: what times reads and takes their results; the global
        reactor when not given (looked up on first use, so that making a
        checker while parsing options installs none).
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, path: str, reactor=None, read_timeout: float = READ_TIMEOUT) -> None:
        self.path = path
        self.read_timeout = read_timeout
        self._file: WatchedFile[_Passwords] = WatchedFile(
            path,
            "password file",
            read=_read_passwords,
            reactor=reactor,
            read_timeout=read_timeout,
            unavailable=PasswordFileUnavailable,
        )

    def load(self) -> None:
        """
        Read the file now if it changed since last read, in this thread.
        Blocking: for start-up, and for L{check_password}.

        @raise OSError: the file cannot be read, and never could be (a
            usage error at start-up).
        @raise ValueError: it is not an htpasswd file, and never was.
        @raise PasswordFileUnavailable: it cannot be read any more.
        """
        self._file.load()

    def check_password(self, username: str, password: str) -> bool:
        """
        Whether the password is right for the user, the file read again in
        this thread if it changed.  Blocking (bcrypt is slow on purpose):
        call it in a thread.  Requests go through L{requestAvatarId}, which
        bounds the time the file takes to read.

        @raise PasswordFileUnavailable: the file is gone or unreadable.
        """
        return _verify(self._file.load(), username, password)

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:
        """
        The user name, if the password is right: the file looked at in a
        daemon thread, within C{read_timeout} seconds, then the password
        checked in the reactor's thread pool, unless this reading of the
        file already found this login right (L{_Passwords.remembered}).
        """
        username = credentials.username
        password = credentials.password
        if isinstance(username, bytes):
            username = username.decode("utf-8", "replace")
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")

        def check(passwords: _Passwords) -> Deferred[bool]:
            digest = _login_digest(username, password)
            if digest in passwords.remembered:
                return succeed(True)

            def remember(ok: bool) -> bool:
                if ok:
                    passwords.remember(digest)
                return ok

            return deferToThread(_verify, passwords, username, password).addCallback(remember)

        def verdict(ok: bool) -> str:
            if not ok:
                raise UnauthorizedLogin()
            return username

        return self._file.fresh().addCallback(check).addCallback(verdict)


def _read_passwords(path: str) -> tuple[tuple[int, int, int], _Passwords]:
    """
    L{read_password_file}, with the hash a password for an unknown user is
    checked against.  Blocking, and can hang.
    """
    stamp, htpasswd = read_password_file(path)
    users = htpasswd.users()
    return stamp, _Passwords(htpasswd, htpasswd.get_hash(users[0]) if users else None)


def basic_credentials(authorization: bytes | None) -> UsernamePassword | None:
    """
    The user name and password of an C{Authorization: Basic} header, or
    L{None} when the header is missing or is not Basic.
    """
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return UsernamePassword(username.decode("utf-8"), password.decode("utf-8"))
    except UnicodeDecodeError:
        return UsernamePassword(username.decode("latin-1"), password.decode("latin-1"))


def token_of(authorization: bytes | None) -> str | None:
    """
    The token an C{Authorization} header sends, as PyPI's clients send one:
    C{Bearer TOKEN}, or Basic with the user C{__token__}; L{None} otherwise.
    """
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(b" ")
    if scheme.lower() == b"bearer":
        return rest.strip().decode("latin-1") or None
    credentials = basic_credentials(authorization)
    if credentials is not None and credentials.username == TOKEN_USER:
        return credentials.password
    return None


_VERBS = {UPDATE: "upload to or change", DOWNLOAD: "download files of", LIST: "list"}


@dataclass(frozen=True)
class Principal:
    """
    Who a request authenticated as: a user of the password file (with the
    permissions file as it was read for the request), or a token.
    """

    user: str | None = None
    token: Token | None = None
    permissions: Permissions | None = None

    @property
    def label(self) -> str:
        """How the log names it: the user, or the token's id and name."""
        return self.token.label if self.token is not None else f"user {self.user}"

    def refusal(self, action: str, project: str) -> str | None:
        """
        Why this principal may not do C{action} to C{project}, or L{None}
        when it may.  The reason names the project, for the body of a 403.
        """
        verb = _VERBS.get(action, action)
        if self.token is not None:
            if action in self.token.actions and matches(self.token.projects, project):
                return None
            return f"{self.label} may not {verb} the project {project!r}: it is for {', '.join(self.token.projects)}" + (
                "" if action in self.token.actions else f" and {', '.join(sorted(self.token.actions))}"
            )
        if self.permissions is None or self.permissions.may(self.user, action, project):
            return None
        return f"{self.label} may not {verb} the project {project!r} (the server's permissions file says who may)"


class Verdict(enum.Enum):
    """What the policy says about a request."""

    ALLOWED = "allowed"
    NO_CREDENTIALS = "no credentials"
    WRONG_CREDENTIALS = "wrong credentials"
    DISABLED = "disabled"
    UNAVAILABLE = "password file unavailable"
    FORBIDDEN = "forbidden"
    """Authenticated, by a token that may not do this action."""


class AccessPolicy:
    """
    The C{-a} policy: which actions need credentials, checked against the
    password file's checker, the tokens file, or both; and for users, the
    permissions file's per-project rules (asked by L{Principal.refusal}).

    With pypiserver's defaults (C{-a update}, no password file) uploads are
    not open to all: they are L{Verdict.DISABLED} until the server is
    started with C{-P htpasswd} (or C{--tokens}), or C{-P . -a .} for an
    open server.
    """

    def __init__(
        self,
        protected: frozenset[str],
        checker: ICredentialsChecker | None,
        tokens: WatchedFile[Tokens] | None = None,
        permissions: WatchedFile[Permissions] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.protected = frozenset(protected)
        self.checker = checker
        self.tokens = tokens
        self.permissions = permissions
        self._now = now

    @classmethod
    def from_config(cls, config) -> "AccessPolicy":
        """The policy of a L{twistedpypi.config.Config}."""
        checker = tokens = permissions = None
        if config.passwords:
            checker = HtpasswdChecker(config.passwords)
            # Read it now, at start-up: a broken file shows at once, and the
            # first request does not pay for importing passlib.
            checker.load()
        if config.tokens:
            tokens = WatchedFile(config.tokens, "tokens file", parse_tokens)
            tokens.load()
        if config.permissions:
            permissions = WatchedFile(config.permissions, "permissions file", parse_permissions)
            permissions.load()
        return cls(config.authenticate, checker, tokens, permissions)

    def needs_password(self, action: str) -> bool:
        """Whether C{action} is protected."""
        return action in self.protected

    def authorize(self, action: str, authorization: bytes | None) -> Deferred[Verdict]:
        """
        Decide whether a request with that C{Authorization} header may do
        C{action}.  The password is checked off the reactor thread.
        """
        return self.identify(action, authorization).addCallback(lambda outcome: outcome[0])

    def identify(self, action: str, authorization: bytes | None) -> Deferred[tuple[Verdict, Principal | None]]:
        """
        L{authorize}'s verdict, and who the request authenticated as (when
        it did).  Files are read, and passwords checked, off the reactor.
        """
        if action not in self.protected:
            return succeed((Verdict.ALLOWED, None))
        if self.checker is None and self.tokens is None:
            return succeed((Verdict.DISABLED, None))
        token = token_of(authorization)
        if token is not None:
            return self._identify_token(action, token)
        credentials = basic_credentials(authorization)
        if credentials is None:
            return succeed((Verdict.NO_CREDENTIALS, None))
        if self.checker is None:
            return succeed((Verdict.WRONG_CREDENTIALS, None))
        d = self.checker.requestAvatarId(credentials)

        def allowed(user: str) -> Deferred | tuple[Verdict, Principal]:
            if self.permissions is None:
                return (Verdict.ALLOWED, Principal(user=user))
            return self.permissions.fresh().addCallback(
                lambda permissions: (Verdict.ALLOWED, Principal(user=user, permissions=permissions))
            )

        def refused(failure) -> tuple[Verdict, None]:
            if failure.check(PasswordFileUnavailable, FileUnavailable):
                return (Verdict.UNAVAILABLE, None)
            failure.trap(UnauthorizedLogin)
            return (Verdict.WRONG_CREDENTIALS, None)

        return d.addCallback(allowed).addErrback(refused)

    def _identify_token(self, action: str, token: str) -> Deferred[tuple[Verdict, Principal | None]]:
        """A token's verdict: unknown, expired and revoked ones are wrong credentials."""
        if self.tokens is None:
            return succeed((Verdict.WRONG_CREDENTIALS, None))

        def found(tokens: Tokens) -> tuple[Verdict, Principal | None]:
            entry = tokens.find(token, self._now())
            if entry is None:
                return (Verdict.WRONG_CREDENTIALS, None)
            principal = Principal(token=entry)
            return (Verdict.ALLOWED if action in entry.actions else Verdict.FORBIDDEN, principal)

        def unavailable(failure) -> tuple[Verdict, None]:
            failure.trap(FileUnavailable)
            return (Verdict.UNAVAILABLE, None)

        return self.tokens.fresh().addCallbacks(found, unavailable)
