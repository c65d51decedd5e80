"""
Uploads and removals through PyPI's legacy API: C{POST /} with
C{:action=file_upload} or C{:action=remove_pkg}.

The body of an upload streams in as it arrives (see
L{twistedpypi.web.site.IndexRequest}): an L{UploadReceiver} parses it and
writes the file to a hidden temporary file in the upload directory, in a
thread, hashing as it goes.  When the request is complete, L{Uploads}
checks the form and the digests, then stores the file under its name
atomically and puts it in the index before answering.
"""

from __future__ import annotations

import errno
import os
from urllib.parse import parse_qsl

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twistedpypi.auth import UPDATE, AccessPolicy, Verdict
from twistedpypi.config import Config
from twistedpypi.index.distfile import (
    SIGNATURE_SUFFIX,
    normalize_name,
    version_from_filename_matches,
)
from twistedpypi.index.model import PackageIndex
from twistedpypi.uploads.form import (
    UploadForm,
    check_digests,
    check_filename,
    check_upload,
    sent_digests,
)
from twistedpypi.uploads.multipart import MultipartParser, UploadRejected
from twistedpypi.uploads.store import (
    TemporaryUpload,
    claim,
    remove_files,
    store_signature,
)
from twistedpypi.web.guard import authorize_request
from twistedpypi.web.respond import error_page

log = Logger()

WRITE_SIZE = 1024 * 1024
"""Bytes gathered before one write to the temporary file."""

HIGH_WATER = 8 * 1024 * 1024
"""Bytes waiting to be written at which the client is asked to pause."""

LOW_WATER = 2 * 1024 * 1024
"""Bytes waiting to be written at which it may send again."""


class SpoolWriter:
    """
    Writes an upload to a L{TemporaryUpload} in the reactor's thread pool,
    one operation at a time and in order, so neither the writes nor the
    hashing (seconds of CPU for a large file) run on the reactor thread.

    Memory stays bounded: past L{HIGH_WATER} bytes waiting, C{pause} is
    called (stop reading from the client), and C{resume} once the writes
    have caught up.
    """

    def __init__(self, directory: str, algorithms: tuple[str, ...], pause, resume) -> None:
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._in_flight = 0
        self._error: Failure | None = None
        self._closed = False
        self.file: TemporaryUpload | None = None
        self._tail: Deferred[None] = Deferred()
        self._tail.callback(None)
        self._then(self._create, directory, algorithms).addErrback(lambda _: None)

    def _create(self, directory: str, algorithms: tuple[str, ...]) -> None:
        self.file = TemporaryUpload(directory, algorithms)

    def _then(self, function, *args) -> Deferred:
        """Run C{function} in a thread after every operation before it."""
        result: Deferred = Deferred()

        def run(_: object) -> Deferred | None:
            if self._error is not None:
                result.errback(self._error)
                return None

            def done(value: object) -> None:
                if isinstance(value, Failure):
                    self._error = value
                    result.errback(value)
                else:
                    result.callback(value)

            return deferToThread(function, *args).addBoth(done)

        self._tail.addCallback(run)
        return result

    def write(self, data: bytes) -> None:
        """Queue some bytes of the file."""
        if self._closed or self._error is not None:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_SIZE:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._in_flight += len(data)
        if self._in_flight >= HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()

        def written(_: object) -> None:
            self._in_flight -= len(data)
            if self._paused and (self._in_flight <= LOW_WATER or self._error is not None):
                self._paused = False
                self._resume()

        self._then(lambda: self.file.write(data)).addBoth(written)

    def finish(self, wanted: tuple[str, ...] = ()) -> Deferred[dict[str, str]]:
        """
        Write what is left and fsync: fires with the file's digests
        (C{sha256} and C{wanted}).
        """
        self._flush()
        self._closed = True
        return self._then(lambda: self.file.finish(wanted))

    def discard(self) -> Deferred[None]:
        """
        Stop writing and delete the temporary file (once the operations
        under way are done).
        """
        self._closed = True
        self._pending = []
        result: Deferred[None] = Deferred()

        def remove(_: object) -> Deferred:
            file = self.file
            if file is None:
                return None
            return deferToThread(file.discard).addErrback(
                lambda failure: log.failure("cannot delete {path}", failure, path=file.path)
            )

        self._tail.addCallback(remove).addBoth(lambda _: result.callback(None))
        return result


class UploadReceiver:
    """
    Receives the body of one upload request as it streams in: parses it,
    keeps the small fields, spools the file to disk.

    Nothing reaches the disk before the credentials are checked (which
    starts as soon as the headers are in): until then the file's first
    bytes wait in memory, and past L{HIGH_WATER} the client is paused.
    A refused request (no or wrong credentials, uploads disabled) has its
    body read and dropped, and the guard answers 401 or 403.  Any other
    problem found while streaming is kept and answered, once the body is
    complete, by L{Uploads}.
    """

    def __init__(self, uploads: "Uploads", request: Request, boundary: bytes, pause, resume) -> None:
        self.uploads = uploads
        self.request = request
        self.form = UploadForm(content=self)
        self.parser = MultipartParser(boundary, self.form)
        self.error: UploadRejected | None = None
        self.writer: SpoolWriter | None = None
        self._pause = pause
        self._resume = resume
        self._allowed: bool | None = None
        self._refused = False
        self._discarded = False
        self._content_open = False
        self._early: list[bytes] = []
        self._early_size = 0
        self._paused = False
        self.handling = False
        # A check that fails (an unreadable password file) refuses: the
        # guard reports the failure once the body is in.
        authorize_request(uploads.policy, request, UPDATE).addCallbacks(
            self._verdict, lambda _: self._verdict(Verdict.WRONG_CREDENTIALS)
        )

    def _verdict(self, verdict: Verdict) -> None:
        early, self._early, self._early_size = self._early, [], 0
        if verdict is Verdict.ALLOWED:
            self._allowed = True
            if self._content_open and self.receiving:
                self._start_writer()
                for data in early:
                    self.writer.write(data)
        else:
            self._allowed = False
            self._refused = True
            self.discard()
        if self._paused:
            self._paused = False
            self._resume()

    @property
    def receiving(self) -> bool:
        """Whether the body is still of interest (not refused, no error)."""
        return not self._refused and self.error is None and not self._discarded

    def feed(self, data: bytes) -> None:
        """The next chunk of the request body."""
        if not self.receiving:
            return
        try:
            self.parser.feed(data)
        except UploadRejected as error:
            self.fail(error)

    def body_complete(self) -> None:
        """The whole body has arrived."""
        if not self.receiving:
            return
        try:
            self.parser.close()
        except UploadRejected as error:
            self.fail(error)

    def fail(self, error: UploadRejected) -> None:
        """Remember what was wrong, and stop writing."""
        if self.error is None:
            self.error = error
        self.discard()

    def discard(self) -> Deferred[None] | None:
        """Drop what was received and delete the temporary file (idempotent)."""
        self._discarded = True
        self._early, self._early_size = [], 0
        if self.writer is None:
            self.uploads.forget(self)
            return None
        writer, self.writer = self.writer, None
        return writer.discard().addBoth(lambda _: self.uploads.forget(self))

    def _start_writer(self) -> None:
        # Digests sent before the file are computed as it is written.
        algorithms = tuple(sent_digests(self.form).values())
        self.writer = SpoolWriter(
            self.uploads.config.upload_directory, algorithms, self._pause, self._resume
        )

    # ContentSink

    def open(self, filename: str) -> None:
        check_filename(filename)
        if not self.receiving:
            return
        self._content_open = True
        if self._allowed:
            self._start_writer()

    def write(self, data: bytes) -> None:
        if self.form.content_size > self.uploads.config.max_upload_size:
            raise UploadRejected(413, _too_large(self.uploads.config.max_upload_size))
        if self.writer is not None:
            self.writer.write(data)
        elif self._allowed is None:
            self._early.append(data)
            self._early_size += len(data)
            if self._early_size >= HIGH_WATER and not self._paused:
                self._paused = True
                self._pause()

    def close(self) -> None:
        pass


def _not_stored(error: OSError, what: str = "the server could not store the file") -> UploadRejected:
    """
    The answer to a write that failed: 507 Insufficient Storage when the
    disk is full (or the quota spent), which twine prints, 500 otherwise,
    both with the system's reason.
    """
    log.error("{what}: {error}", what=what, error=error)
    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    reason = error.strerror or str(error)
    # What failed may name the file: the status line says it in general,
    # with the system's words ("No space left on device").
    phrase = "the server could not store the file" + (f": {error.strerror}" if error.strerror else "")
    return UploadRejected(507 if full else 500, f"{what}: {reason}", phrase)


def _too_large(limit: int) -> str:
    return (
        f"the file is larger than this server accepts ({limit} bytes);"
        " the administrator can raise --max-upload-size"
    )


class Uploads(Resource):
    """
    C{POST /} with a form: C{:action=file_upload} and C{:action=remove_pkg}.

    The access check comes first, in the guard the root puts in front of
    this resource; by the time it renders, the body has been received.
    """

    isLeaf = True

    def __init__(self, config: Config, index: PackageIndex, watcher, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.index = index
        self.watcher = watcher
        self.policy = policy
        self._receivers: set[UploadReceiver] = set()
        self._handling: set[Deferred] = set()

    def receiver(self, request: Request, boundary: bytes, pause, resume) -> UploadReceiver:
        """A receiver for the streaming body of C{request}."""
        receiver = UploadReceiver(self, request, boundary, pause, resume)
        self._receivers.add(receiver)
        return receiver

    def forget(self, receiver: UploadReceiver) -> None:
        """A receiver is done: its temporary file is stored or deleted."""
        self._receivers.discard(receiver)

    def stop(self) -> Deferred:
        """
        Let the uploads being stored finish, and delete the temporary files
        of those still arriving (their clients are about to be cut off).
        """
        waiting = [d for d in (r.discard() for r in list(self._receivers) if not r.handling) if d]
        handling: list[Deferred] = []
        for d in list(self._handling):
            waiter: Deferred = Deferred()
            d.addBoth(lambda result, waiter=waiter: (waiter.callback(None), result)[1])
            handling.append(waiter)
        return DeferredList(waiting + handling, consumeErrors=True)

    def render_POST(self, request: Request) -> int:
        def answer(result: tuple[int, str | None, str]) -> None:
            code, phrase, message = result
            if code >= 400:
                body = error_page(request, code, phrase or message, message)
            else:
                request.setResponseCode(code)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                body = (message + "\n").encode("utf-8")
            request.setHeader(b"content-length", b"%d" % len(body))
            request.write(body)
            request.finish()

        def failed(failure: Failure) -> None:
            log.failure("handling an upload failed", failure)
            request.processingFailed(failure)

        gone: list[bool] = []
        request.notifyFinish().addBoth(lambda _: gone.append(True))
        receiver = getattr(request, "upload", None)
        if receiver is not None:
            receiver.handling = True
        d = Deferred.fromCoroutine(self._handle(request))
        self._handling.add(d)
        d.addBoth(lambda result: (self._handling.discard(d), result)[1])
        d.addCallback(lambda result: None if gone else answer(result))
        d.addErrback(lambda failure: None if gone else failed(failure))
        return NOT_DONE_YET

    async def _handle(self, request: Request) -> tuple[int, str | None, str]:
        """
        Take the upload or removal C{request} asks for: the status, the
        status line's fixed phrase (L{None} when the message is fixed text,
        which says it) and the message for the body.
        """
        receiver: UploadReceiver | None = getattr(request, "upload", None)
        try:
            form = self._form(request, receiver)
            action = form.action
            if action == "file_upload":
                return 200, None, await self._store(form, receiver)
            if action == "remove_pkg":
                return 200, None, await self._remove(form)
            if action is None:
                raise UploadRejected(
                    400, "the form has no ':action': use file_upload or remove_pkg"
                )
            raise UploadRejected(
                400,
                f"':action' {action!r} is not supported here: use file_upload or remove_pkg",
                "the form's ':action' is not supported here: use file_upload or remove_pkg",
            )
        except UploadRejected as error:
            return error.code, error.phrase, error.reason
        finally:
            if receiver is not None:
                # The temporary file is gone before the answer is sent.
                discarded = receiver.discard()
                if discarded is not None:
                    await discarded

    def _form(self, request: Request, receiver: UploadReceiver | None) -> UploadForm:
        if receiver is not None:
            if receiver.error is not None:
                raise receiver.error
            return receiver.form
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != b"application/x-www-form-urlencoded":
            raise UploadRejected(
                400,
                "expected a multipart/form-data upload (:action=file_upload)"
                " or a form (:action=remove_pkg)",
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

    async def _store(self, form: UploadForm, receiver: UploadReceiver | None) -> str:
        dist = check_upload(form)
        if receiver is None or not form.content_complete or receiver.writer is None:
            raise UploadRejected(400, "the form has no 'content' file: nothing to upload")
        if form.content_size > self.config.max_upload_size:
            raise UploadRejected(413, _too_large(self.config.max_upload_size))
        writer = receiver.writer
        try:
            digests = await writer.finish(tuple(sent_digests(form).values()))
        except OSError as error:
            raise _not_stored(error) from None
        check_digests(form, digests)
        filename = form.filename
        known = self.index.file(filename)
        final = known.path if known is not None else os.path.join(self.config.upload_directory, filename)
        try:
            stored = await deferToThread(
                claim, writer.file.path, final, self.config.overwrite, digests["sha256"]
            )
        except FileExistsError:
            raise UploadRejected(
                409,
                f"File already exists: {filename} is already on this index with different"
                " contents; upload a new version (or start the server with --overwrite)",
                "File already exists, with different contents: upload a new version",
            ) from None
        except OSError as error:
            raise _not_stored(error) from None
        signature = form.files.get("gpg_signature")
        if signature is None and form.fields.get("gpg_signature"):
            signature = form.fields["gpg_signature"].encode("utf-8")
        unsigned: OSError | None = None
        if signature and (stored or not os.path.exists(final + SIGNATURE_SUFFIX)):
            try:
                await deferToThread(store_signature, final, signature, self.config.overwrite)
            except OSError as error:
                unsigned = error
        await self.watcher.refresh([final, final + SIGNATURE_SUFFIX])
        if unsigned is not None:
            # The file is stored, whole; sending it again is a success.
            raise _not_stored(unsigned, f"stored {filename} but not its signature")
        if stored:
            log.info(
                "stored {filename} ({size} bytes) of {project} {version}",
                filename=filename,
                size=form.content_size,
                project=dist.project,
                version=dist.version,
            )
            return f"stored {filename}"
        return f"{filename} was already stored with these very contents"

    async def _remove(self, form: UploadForm) -> str:
        name = form.fields.get("name", "").strip()
        version = form.fields.get("version", "").strip()
        if not name or not version:
            raise UploadRejected(400, "remove_pkg needs the project's 'name' and 'version'")
        project = normalize_name(name)
        paths = [
            dist.path
            for dist in list(self.index.files_by_path.values())
            if dist.project == project and version_from_filename_matches(dist.dist, version)
        ]
        if not paths:
            raise UploadRejected(
                404,
                f"{name} {version} is not on this index: it has no files of that project and version",
                "No such release on this index",
            )
        removed = await deferToThread(remove_files, paths)
        await self.watcher.refresh([*paths, *(p + SIGNATURE_SUFFIX for p in paths)])
        log.info(
            "removed {project} {version}: {files}",
            project=project,
            version=version,
            files=", ".join(os.path.basename(p) for p in removed),
        )
        return f"removed {len(paths)} file(s) of {name} {version}"


class UploadsService(Service):
    """
    Stopping the server waits for the uploads being stored, and deletes
    the temporary files of those cut off.
    """

    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads

    def stopService(self) -> Deferred:
        super().stopService()
        return self.uploads.stop()
