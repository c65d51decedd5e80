"""
Receiving the body of one upload as it streams in: parsed by the multipart
parser into an L{UploadForm}, its file spooled to disk by a
L{SpoolWriter} once the uploader is known to be allowed.  Reactor code.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred

from twistedpypi.auth import Verdict
from twistedpypi.uploads.form import UploadForm, check_content_size, check_filename, sent_digests
from twistedpypi.uploads.multipart import MultipartParser, UploadRejected
from twistedpypi.uploads.spool import HIGH_WATER, SpoolWriter


class UploadReceiver:
    """
    Receives the body of one upload request as it streams in: parses it,
    keeps the small fields, spools the file to disk.

    Nothing reaches the disk before the uploader is allowed (the verdict,
    L{authorized}, comes from the web layer's access check, which starts
    as soon as the headers are in): until then the file's first bytes wait
    in memory, and past L{HIGH_WATER} the client is paused.  A refused
    upload has its body read and dropped.  Any other problem found while
    streaming is kept in L{error} and answered once the body is complete.

    @ivar form: the form as parsed so far.
    @ivar error: the first problem found, if any.
    @ivar writer: what spools the file, once it is being written.
    @ivar handling: whether the complete upload is being stored (a stop
        then waits for it rather than discarding it).
    """

    def __init__(
        self,
        directory: str,
        max_upload_size: int,
        boundary: bytes,
        pause: Callable[[], None],
        resume: Callable[[], None],
        forget: Callable[["UploadReceiver"], None],
    ) -> None:
        """
        @param directory: where the temporary file is written (the upload
            directory, so storing it is a link on one file system).
        @param max_upload_size: the largest file accepted, in bytes.
        @param pause: asks the client to stop sending for a while.
        @param resume: lets it send again.
        @param forget: called once the temporary file is gone.
        """
        self.directory = directory
        self.max_upload_size = max_upload_size
        self.form = UploadForm(content=self)
        self.parser = MultipartParser(boundary, self.form)
        self.error: UploadRejected | None = None
        self.writer: SpoolWriter | None = None
        self._pause = pause
        self._resume = resume
        self._forget = forget
        self._allowed: bool | None = None
        self._refused = False
        self._discarded = False
        self._content_open = False
        self._early: list[bytes] = []
        self._early_size = 0
        self._paused = False
        self.handling = False

    def authorized(self, verdict: Verdict) -> None:
        """
        The access check's verdict: an allowed upload is written to disk
        from now on, any other is dropped.
        """
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
            self._forget(self)
            return None
        writer, self.writer = self.writer, None
        return writer.discard().addBoth(lambda _: self._forget(self))

    def _start_writer(self) -> None:
        # Digests sent before the file are computed as it is written.
        algorithms = tuple(sent_digests(self.form).values())
        self.writer = SpoolWriter(self.directory, algorithms, self._pause, self._resume)

    # ContentSink

    def open(self, filename: str) -> None:
        check_filename(filename)
        if not self.receiving:
            return
        self._content_open = True
        if self._allowed:
            self._start_writer()

    def write(self, data: bytes) -> None:
        check_content_size(self.form, self.max_upload_size)
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
