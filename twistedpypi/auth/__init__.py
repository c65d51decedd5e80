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
import errno
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedpypi.auth.permissions import Permissions, parse_permissions
from twistedpypi.auth.tokens import TOKEN_USER, Token, Tokens, matches, parse_tokens
from twistedpypi.auth.watched import FileUnavailable, WatchedFile

if TYPE_CHECKING:
    from passlib.apache import HtpasswdFile

# passlib 1.7.4 reads bcrypt.__about__, which bcrypt 4.1+ dropped; it copes,
# but logs a traceback through the standard logging module on first use.
logging.getLogger("passlib.handlers.bcrypt").setLevel(logging.ERROR)

log = Logger()

REALM = "twistedpypi"
"""The realm in C{WWW-Authenticate}."""

UPDATE, DOWNLOAD, LIST = "update", "download", "list"


class PasswordFileUnavailable(Exception):
    """
    The password file cannot be read (it was removed, is broken, is not a
    regular file, or does not answer in time): no password can be checked,
    so every protected action is refused until it is back.
    """


READ_TIMEOUT = 5.0
"""
Seconds a request waits for the password file to be read before it is
refused as unavailable.  A local file takes well under a millisecond; a
network mount that takes this long is as good as down.
"""

MAX_HUNG_READS = 4
"""
Reads of the password file that may be hung at once (on a dead mount).
While that many are, requests are refused at once instead of starting
another; a hung read that ends frees its place.
"""

MAX_PASSWORD_FILE_SIZE = 16 * 1024 * 1024
"""Bytes of password file read at most: some 200,000 bcrypt entries."""

_READ_CHUNK = 1024 * 1024


def _stamp_of(status: os.stat_result) -> tuple[int, int, int]:
    """What tells a changed file: its modification time, size and inode."""
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def read_password_file(path: str) -> tuple[tuple[int, int, int], HtpasswdFile]:
    """
    Read and parse an htpasswd file.  Anything but a regular file is refused
    at once: a FIFO or device put in its place would block the read for
    ever.  Blocking, and on a dead network mount even a regular file's
    status or read can hang: L{HtpasswdChecker} calls it in a daemon thread
    of its own, with a timeout.

    @return: the file's stamp (modification time, size, inode) and entries.
    @raise OSError: the file is missing, not a regular file, unreadable or
        larger than L{MAX_PASSWORD_FILE_SIZE}.
    @raise ValueError: it is not an htpasswd file.
    """
    from passlib.apache import HtpasswdFile

    from twistedpypi.fs import open_regular_descriptor

    descriptor, _ = open_regular_descriptor(path)
    try:
        chunks, size = [], 0
        while chunk := os.read(descriptor, _READ_CHUNK):
            size += len(chunk)
            if size > MAX_PASSWORD_FILE_SIZE:
                raise OSError(errno.EFBIG, f"larger than {MAX_PASSWORD_FILE_SIZE} bytes", path)
            chunks.append(chunk)
        # After the read: a file changed meanwhile is read again next time.
        status = os.fstat(descriptor)
    finally:
        os.close(descriptor)
    return _stamp_of(status), HtpasswdFile.from_string(b"".join(chunks))


@dataclass(frozen=True)
class _Passwords:
    """One reading of the password file, never changed once made."""

    stamp: tuple[int, int, int]
    htpasswd: HtpasswdFile
    decoy: str | None
    """The hash a password for an unknown user is checked against."""


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


class _Read:
    """One read of the password file under way, and the requests waiting for it."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.waiters: list[Deferred[_Passwords]] = []
        self.deadline: IDelayedCall | None = None
        """Pending while requests wait; L{None} once the read is overdue or done."""


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

    For a request, the file is looked at (and read if it changed) in a
    daemon thread of its own, not the reactor's thread pool: a read that
    hangs on a dead mount would hold a pool thread for good, and the
    reactor joins its pool's threads when it stops, so the process would
    never exit.  A hung read is abandoned at its deadline (the requests
    waiting for it are refused), no lock is held while it hangs, and
    requests arriving meanwhile start another read, up to
    L{MAX_HUNG_READS}.  Passwords are then verified in the reactor's
    thread pool: bcrypt is slow, but never hangs.

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
        self._reactor = reactor
        self._passwords: _Passwords | None = None
        self._unavailable: str | None = None
        self._reads_started = 0
        self._newest_outcome = 0
        """The generation of the newest read whose outcome the checker took."""
        self._current: _Read | None = None
        self._hung = 0

    def _read_if_changed(self, known: tuple[int, int, int] | None) -> tuple | None:
        """
        The file's stamp and entries, or L{None} if its stamp is still
        C{known}.  Blocking, and can hang.
        """
        if known is not None and _stamp_of(os.stat(self.path)) == known:
            return None
        return read_password_file(self.path)

    def _known_stamp(self) -> tuple[int, int, int] | None:
        """The stamp of the file read last, if it is still good to use."""
        if self._passwords is None or self._unavailable is not None:
            return None
        return self._passwords.stamp

    def _took(self, outcome: tuple | None) -> None:
        """The file was read (C{outcome}), or found unchanged (L{None})."""
        if outcome is not None:
            stamp, htpasswd = outcome
            if self._passwords is not None:
                log.info("read the password file {path} again", path=self.path)
            users = htpasswd.users()
            decoy = htpasswd.get_hash(users[0]) if users else None
            self._passwords = _Passwords(stamp, htpasswd, decoy)
        self._unavailable = None

    def _lost(self, reason: str) -> None:
        """The file could not be read: refuse until it is read again."""
        if self._unavailable is None:
            log.error(
                "cannot read the password file {path}: {error}; refusing every"
                " protected action until it is back",
                path=self.path,
                error=reason,
            )
        self._unavailable = reason

    def load(self) -> None:
        """
        Read the file now if it changed since last read, in this thread.
        Blocking: for start-up, and for L{check_password}.

        @raise OSError: the file cannot be read, and never could be (a
            usage error at start-up).
        @raise ValueError: it is not an htpasswd file, and never was.
        @raise PasswordFileUnavailable: it cannot be read any more.
        """
        try:
            outcome = self._read_if_changed(self._known_stamp())
        except (OSError, ValueError) as error:
            if self._passwords is None:
                raise
            reason = getattr(error, "strerror", None) or str(error)
            self._lost(reason)
            raise PasswordFileUnavailable(reason) from None
        self._took(outcome)

    def check_password(self, username: str, password: str) -> bool:
        """
        Whether the password is right for the user, the file read again in
        this thread if it changed.  Blocking (bcrypt is slow on purpose):
        call it in a thread.  Requests go through L{requestAvatarId}, which
        bounds the time the file takes to read.

        @raise PasswordFileUnavailable: the file is gone or unreadable.
        """
        self.load()
        return _verify(self._passwords, username, password)

    def _fresh(self) -> Deferred[_Passwords]:
        """
        The entries of the file as it is now: the read under way (or a new
        one) when it ends, or L{PasswordFileUnavailable} when it does not
        end within C{read_timeout} seconds or cannot be read.
        """
        if self._current is None:
            if self._hung >= MAX_HUNG_READS:
                return fail(PasswordFileUnavailable(f"{self._hung} reads of it are hung"))
            self._current = self._start_read()
        waiter: Deferred[_Passwords] = Deferred()
        self._current.waiters.append(waiter)
        return waiter

    def _start_read(self) -> _Read:
        """Read the file if it changed, in a daemon thread."""
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        reactor = self._reactor
        self._reads_started += 1
        read = _Read(self._reads_started)
        known = self._known_stamp()
        read.deadline = reactor.callLater(self.read_timeout, self._overdue, read)

        def run() -> None:
            try:
                outcome = self._read_if_changed(known)
            except Exception:
                # Whatever went wrong, the waiting requests get their answer.
                outcome = Failure()
            reactor.callFromThread(self._finished, read, outcome)

        threading.Thread(target=run, name="password file reader", daemon=True).start()
        return read

    def _overdue(self, read: _Read) -> None:
        """The read did not end in time: refuse who waits, and let it hang."""
        read.deadline = None
        self._current = None
        self._hung += 1
        reason = f"no answer within {self.read_timeout:g} seconds"
        self._lost(reason)
        waiters, read.waiters = read.waiters, []
        for waiter in waiters:
            waiter.errback(PasswordFileUnavailable(reason))

    def _finished(self, read: _Read, outcome: tuple | None | Failure) -> None:
        """A read ended, in time or not: take its outcome unless a newer read's is in."""
        if read.deadline is None:
            self._hung -= 1
        else:
            read.deadline.cancel()
            read.deadline = None
            self._current = None
        if read.generation > self._newest_outcome:
            self._newest_outcome = read.generation
            if isinstance(outcome, Failure):
                error = outcome.value
                self._lost(getattr(error, "strerror", None) or str(error))
            else:
                self._took(outcome)
        waiters, read.waiters = read.waiters, []
        for waiter in waiters:
            if self._unavailable is None:
                waiter.callback(self._passwords)
            else:
                waiter.errback(PasswordFileUnavailable(self._unavailable))

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:
        """
        The user name, if the password is right: the file looked at in a
        daemon thread, within C{read_timeout} seconds, then the password
        checked in the reactor's thread pool.
        """
        username = credentials.username
        password = credentials.password
        if isinstance(username, bytes):
            username = username.decode("utf-8", "replace")
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")

        def check(passwords: _Passwords) -> Deferred[bool]:
            return deferToThread(_verify, passwords, username, password)

        def verdict(ok: bool) -> str:
            if not ok:
                raise UnauthorizedLogin()
            return username

        return self._fresh().addCallback(check).addCallback(verdict)


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
