"""
The guard in front of protected resources: it asks the access policy about
the request (the password is checked in a thread), then renders the
resource, or answers 401 with C{WWW-Authenticate}, or 403 (the action is
off, or the user or token may not do it to the project the path names).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET, Request

from twistedpypi.auth import DOWNLOAD, LIST, REALM, AccessPolicy, Principal, Verdict, basic_credentials, token_of
from twistedpypi.index.distfile import SIGNATURE_SUFFIX, parse_filename
from twistedpypi.web.respond import error_page, render_later

log = Logger()

_VERDICTS = "_twistedpypi_verdicts"
_PRINCIPAL = "_twistedpypi_principal"


def principal_of(request: Request) -> Principal | None:
    """Who the request authenticated as, once L{authorize_request} knows."""
    return request.__dict__.get(_PRINCIPAL)


def authorize_request(policy: AccessPolicy, request: Request, action: str) -> Deferred[Verdict]:
    """
    The policy's verdict on a request for an action, checked once per
    request and action however many times it is asked (an upload's
    credentials are checked as soon as its headers arrive, while the body
    is still streaming in, and again by the guard).
    """
    verdicts = request.__dict__.setdefault(_VERDICTS, {})
    entry = verdicts.get(action)
    if entry is None:
        entry = verdicts[action] = {"waiting": [], "verdict": None}

        def decided(outcome: tuple[Verdict, Principal | None]) -> None:
            verdict, principal = outcome
            if principal is not None:
                request.__dict__[_PRINCIPAL] = principal
            entry["verdict"] = verdict
            waiting, entry["waiting"] = entry["waiting"], []
            for waiter in waiting:
                waiter.callback(verdict)

        def failed(failure: Failure) -> None:
            entry["verdict"] = failure
            waiting, entry["waiting"] = entry["waiting"], []
            for waiter in waiting:
                waiter.errback(failure)

        # Register before starting: the answer may already be known.
        result: Deferred[Verdict] = Deferred()
        entry["waiting"].append(result)
        policy.identify(action, request.getHeader(b"authorization")).addCallbacks(decided, failed)
        return result
    if entry["verdict"] is None:
        result = Deferred()
        entry["waiting"].append(result)
        return result
    if isinstance(entry["verdict"], Failure):
        return fail(entry["verdict"])
    return succeed(entry["verdict"])


def refuse(request: Request, verdict: Verdict, action: str) -> bytes:
    """
    Answer a request the policy refused: 401 with a C{WWW-Authenticate}
    challenge, 403 when the action is disabled or the token may not do it,
    503 while the password, tokens or permissions file cannot be read.

    A wrong user name and a wrong password get the very same answer, and
    the attempt is logged with the client's address (never the password).
    """
    if verdict is Verdict.UNAVAILABLE:
        request.setHeader(b"retry-after", b"30")
        return error_page(
            request,
            503,
            "the server cannot check credentials right now (its password file, tokens file or"
            " permissions file is missing or unreadable); try again later, or tell its administrator",
        )
    if verdict is Verdict.FORBIDDEN:
        principal = principal_of(request)
        label = principal.label if principal is not None else "this token"
        return error_page(request, 403, "Forbidden", f"{label} may not {_VERBS.get(action, action)}")
    if verdict is Verdict.DISABLED:
        return error_page(
            request,
            403,
            "uploads are disabled: start the server with a password file"
            " (-P htpasswd) to accept authenticated uploads, or with -P . -a . for an open server",
        )
    request.setHeader(b"www-authenticate", f'Basic realm="{REALM}"'.encode("ascii"))
    if verdict is Verdict.NO_CREDENTIALS:
        reason = f"authentication required to {_VERBS.get(action, action)}: send a user name and password"
    elif token_of(request.getHeader(b"authorization")) is not None:
        reason = "unknown, expired or revoked token"
        log.warn(
            "refused {action} to {client}: unknown, expired or revoked token",
            action=action,
            client=getattr(request.getClientAddress(), "host", "-"),
        )
    else:
        reason = "wrong user name or password"
        credentials = basic_credentials(request.getHeader(b"authorization"))
        log.warn(
            "refused {action} to {client}: wrong user name or password for {user!r}",
            action=action,
            client=getattr(request.getClientAddress(), "host", "-"),
            user=credentials.username[:100] if credentials is not None else None,
        )
    return error_page(request, 401, reason)


_PROJECT_ROUTES = (b"simple", b"pypi", b"project")
"""The routes whose first segment below them is a project's name."""


def project_of(request: Request) -> str | None:
    """
    The project a download or listing is about, read from its path
    (C{/simple/NAME/}, C{/pypi/NAME/json}, C{/project/NAME/},
    C{/packages/FILE}), or L{None} for index-wide pages.
    """
    route = request.prepath[-1] if request.prepath else b""
    segments = [segment for segment in request.postpath if segment]
    if not segments:
        return None
    if route in _PROJECT_ROUTES:
        name = segments[0]
    elif route == b"packages":
        name = segments[-1]
        for suffix in (b".metadata", SIGNATURE_SUFFIX.encode("ascii")):
            name = name.removesuffix(suffix)
    else:
        return None
    # The whole name, as the resource will read it: a cut one could name
    # another project (or none), which other rules allow.
    text = name.decode("utf-8", "replace")
    if route == b"packages":
        dist = parse_filename(text)
        return dist.project if dist is not None else text
    return text


_VERBS = {"update": "upload or remove", "download": "download files", "list": "list packages"}


class Guard(Resource):
    """
    Wraps a resource with the password check for one action.

    The wrapped resource is looked up and rendered as usual once the verdict
    is in, from the same place in the path (the guard is a leaf, so
    C{request.postpath} is still what the resource expects).
    """

    isLeaf = True

    def __init__(self, resource: Resource, action: str, policy: AccessPolicy) -> None:
        super().__init__()
        self.resource = resource
        self.action = action
        self.policy = policy

    def render(self, request: Request) -> bytes | int:
        return render_later(request, self._answer(request))

    async def _answer(self, request: Request) -> bytes | int:
        """The refusal's body, or the guarded resource rendered."""
        verdict = await authorize_request(self.policy, request, self.action)
        if verdict is not Verdict.ALLOWED:
            return refuse(request, verdict, self.action)
        principal = principal_of(request)
        project = None
        if self.action in (DOWNLOAD, LIST):
            # A resource for one project says which (pypiserver's
            # /NAME/json); a route's resource is told it by the path.
            project = getattr(self.resource, "project", None) or project_of(request)
        if principal is not None and project is not None:
            refusal = principal.refusal(self.action, project)
            if refusal is not None:
                return error_page(request, 403, "Forbidden", refusal)
        request.render(getChildForRequest(self.resource, request))
        return NOT_DONE_YET
