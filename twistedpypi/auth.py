"""
Who may do what: the htpasswd file (through passlib), a twisted.cred
checker over it, and the C{-a} policy saying which actions need a password.

Passwords are verified in a thread: bcrypt is slow on purpose, and the
reactor must keep serving meanwhile.  Credentials are never logged.
"""

from __future__ import annotations

import base64
import enum
import logging
import os
import threading

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

# passlib 1.7.4 reads bcrypt.__about__, which bcrypt 4.1+ dropped; it copes,
# but logs a traceback through the standard logging module on first use.
logging.getLogger("passlib.handlers.bcrypt").setLevel(logging.ERROR)

log = Logger()

REALM = "twistedpypi"
"""The realm in C{WWW-Authenticate}."""

UPDATE, DOWNLOAD, LIST = "update", "download", "list"


class PasswordFileUnavailable(Exception):
    """
    The password file cannot be read (it was removed, or is broken): no
    password can be checked, so every protected action is refused until it
    is back.
    """


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """
    Checks user names and passwords against an Apache htpasswd file, in
    every scheme C{htpasswd} writes: apr1-MD5 (its default), bcrypt
    (C{-B}), SHA-1 (C{-s}), crypt (C{-d}) and plain text (C{-p}).

    The file is read again when its modification time, size or inode
    changes, so users can be added, and the file replaced, without a
    restart.  If it goes missing or cannot be read, every check fails with
    L{PasswordFileUnavailable} until it is back: a server never becomes
    open by losing its password file.

    A user name the file does not know costs the same time as a wrong
    password (a password is verified against the file's first entry), so
    timing does not tell which users exist.
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._file = None
        self._decoy: str | None = None
        self._unavailable: str | None = None

    def _current(self):
        """The parsed file, read again if it changed.  Blocking."""
        from passlib.apache import HtpasswdFile

        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                htpasswd = HtpasswdFile(self.path)
        except (OSError, ValueError) as error:
            if self._file is None:
                raise  # at start-up: a usage error
            self._stamp = None
            reason = getattr(error, "strerror", None) or str(error)
            if self._unavailable is None:
                log.error(
                    "cannot read the password file {path}: {error}; refusing every"
                    " protected action until it is back",
                    path=self.path,
                    error=reason,
                )
            self._unavailable = reason
            raise PasswordFileUnavailable(reason) from None
        if stamp != self._stamp:
            if self._file is not None:
                log.info("read the password file {path} again", path=self.path)
            users = htpasswd.users()
            self._decoy = htpasswd.get_hash(users[0]) if users else None
            self._file, self._stamp, self._unavailable = htpasswd, stamp, None
        return self._file

    def load(self) -> None:
        """Read the file now if it changed since last read.  Blocking."""
        with self._lock:
            self._current()

    def check_password(self, username: str, password: str) -> bool:
        """
        Whether the password is right for the user.  Blocking (bcrypt is
        slow on purpose): call it in a thread.

        @raise PasswordFileUnavailable: the file is gone or unreadable.
        """
        with self._lock:
            htpasswd = self._current()
            decoy = self._decoy
        try:
            known = htpasswd.get_hash(username) is not None
        except ValueError:
            known = False  # a name htpasswd could not hold (a colon, a newline)
        if not known:
            # As slow as a wrong password; the answer is no either way.
            if decoy is not None:
                try:
                    htpasswd.context.verify(password, decoy)
                except ValueError:
                    pass
            return False
        try:
            return bool(htpasswd.check_password(username, password))
        except ValueError:
            # An entry passlib cannot read (a hash scheme it does not know).
            log.warn("the password file has an unreadable entry for {user!r}", user=username)
            return False

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:
        """
        The user name, if the password is right (checked in a thread).
        """
        username = credentials.username
        password = credentials.password
        if isinstance(username, bytes):
            username = username.decode("utf-8", "replace")
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")

        def verdict(ok: bool) -> str:
            if not ok:
                raise UnauthorizedLogin()
            return username

        return deferToThread(self.check_password, username, password).addCallback(verdict)


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


class Verdict(enum.Enum):
    """What the policy says about a request."""

    ALLOWED = "allowed"
    NO_CREDENTIALS = "no credentials"
    WRONG_CREDENTIALS = "wrong credentials"
    DISABLED = "disabled"
    UNAVAILABLE = "password file unavailable"


class AccessPolicy:
    """
    The C{-a} policy: which actions need a password, checked against one
    checker.

    With pypiserver's defaults (C{-a update}, no password file) uploads are
    not open to all: they are L{Verdict.DISABLED} until the server is
    started with C{-P htpasswd}, or C{-P . -a .} for an open server.
    """

    def __init__(self, protected: frozenset[str], checker: ICredentialsChecker | None) -> None:
        self.protected = frozenset(protected)
        self.checker = checker

    @classmethod
    def from_config(cls, config) -> "AccessPolicy":
        """The policy of a L{twistedpypi.config.Config}."""
        checker = None
        if config.passwords:
            checker = HtpasswdChecker(config.passwords)
            # Read it now, at start-up: a broken file shows at once, and the
            # first request does not pay for importing passlib.
            checker.load()
        return cls(config.authenticate, checker)

    def needs_password(self, action: str) -> bool:
        """Whether C{action} is protected."""
        return action in self.protected

    def authorize(self, action: str, authorization: bytes | None) -> Deferred[Verdict]:
        """
        Decide whether a request with that C{Authorization} header may do
        C{action}.  The password is checked off the reactor thread.
        """
        if action not in self.protected:
            return succeed(Verdict.ALLOWED)
        if self.checker is None:
            return succeed(Verdict.DISABLED)
        credentials = basic_credentials(authorization)
        if credentials is None:
            return succeed(Verdict.NO_CREDENTIALS)
        d = self.checker.requestAvatarId(credentials)

        def allowed(_user: object) -> Verdict:
            return Verdict.ALLOWED

        def refused(failure) -> Verdict:
            if failure.check(PasswordFileUnavailable):
                return Verdict.UNAVAILABLE
            failure.trap(UnauthorizedLogin)
            return Verdict.WRONG_CREDENTIALS

        return d.addCallbacks(allowed, refused)
