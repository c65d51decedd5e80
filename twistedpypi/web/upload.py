"""
C{POST /} with PyPI's legacy upload API (C{:action}s): the HTTP side of
L{twistedpypi.uploads.publisher.Publisher}.

A multipart body streams into an
L{twistedpypi.uploads.receiver.UploadReceiver} as it arrives (see
L{twistedpypi.web.site.IndexRequest}), whose access check starts here as
soon as the headers are in; a URL-encoded form (a removal) is read from
the request once it is complete.  L{Uploads} hands the form to the
publisher and turns its outcome into the answer.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import parse_qsl

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request

from twistedpypi.auth import UPDATE, AccessPolicy, Verdict
from twistedpypi.uploads.form import UploadForm
from twistedpypi.uploads.multipart import UploadRejected
from twistedpypi.uploads.publisher import Publisher
from twistedpypi.uploads.receiver import UploadReceiver
from twistedpypi.web.guard import authorize_request, principal_of
from twistedpypi.web.respond import error_page, render_later


def read_form(request: Request) -> UploadForm:
    """
    The URL-encoded form a complete request sent (a removal).

    @raise UploadRejected: the body is not such a form.
    """
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        raise UploadRejected(
            400,
            "expected a multipart/form-data upload (:action=file_upload)"
            " or a form (:action=remove_pkg, yank, unyank, set_status, submit or verify)",
        )
    if getattr(request, "body_truncated", False):
        raise UploadRejected(413, "the form is too large")
    request.content.seek(0)
    form = UploadForm()
    try:
        for name, value in parse_qsl(request.content.read().decode("utf-8"), keep_blank_values=True):
            form.fields[name] = value
    except UnicodeDecodeError:
        raise UploadRejected(400, "the form is not UTF-8 text") from None
    return form


class Uploads(Resource):
    """
    C{POST /} with a form: C{:action=file_upload}, C{:action=remove_pkg},
    C{yank}, C{unyank} and C{set_status} (PEP 592 and PEP 792), and the legacy actions answered without storing anything (C{submit},
    C{verify}, C{doc_upload}).

    The access check comes first, in the guard the root puts in front of
    this resource; by the time it renders, the body has been received.
    """

    isLeaf = True

    def __init__(self, publisher: Publisher, policy: AccessPolicy) -> None:
        super().__init__()
        self.publisher = publisher
        self.policy = policy

    def receiver(
        self, request: Request, boundary: bytes, pause: Callable[[], None], resume: Callable[[], None]
    ) -> UploadReceiver:
        """
        A receiver for the streaming body of C{request}, whose credentials
        are checked at once: nothing reaches the disk before they are.
        """
        receiver = self.publisher.receiver(boundary, pause, resume)
        # A check that fails (an unreadable password file) refuses: the
        # guard reports the failure once the body is in.
        authorize_request(self.policy, request, UPDATE).addCallbacks(
            receiver.authorized, lambda _: receiver.authorized(Verdict.WRONG_CREDENTIALS)
        )
        return receiver

    def render_POST(self, request: Request) -> int:
        # The store runs to its end even when the client leaves (a file
        # half linked is worse than one stored for nobody): only the answer,
        # a Deferred chained to it, is cancelled with the request.
        stored = Deferred.fromCoroutine(self._answer(request))
        answer: Deferred[bytes] = Deferred()
        stored.chainDeferred(answer)
        return render_later(request, answer)

    async def _answer(self, request: Request) -> bytes:
        """The body of the answer to C{request}, its status and headers set."""
        code, phrase, message = await self._handle(request)
        if code >= 400:
            return error_page(request, code, phrase or message, message)
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (message + "\n").encode("utf-8")

    async def _handle(self, request: Request) -> tuple[int, str | None, str]:
        """
        The answer to the upload or removal C{request} asks for: the
        status, the status line's fixed phrase (L{None} when the message is
        fixed text, which says it) and the message for the body.
        """
        receiver: UploadReceiver | None = getattr(request, "upload", None)
        try:
            form = receiver.form if receiver is not None else read_form(request)
            return 200, None, await self.publisher.take(form, receiver, principal_of(request))
        except UploadRejected as error:
            return error.code, error.phrase, error.reason
