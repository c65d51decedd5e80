"""
Publishing to the package directory: an upload stored under its name, or
a release removed, and the index brought up to date before the answer.
The legacy API's other actions (register, verify, documentation) are
answered as pypiserver answers them, and store nothing.

Reactor code: the blocking work (linking, fsync, deleting) runs in
threads through L{twistedpypi.uploads.store}.  Refusals are
L{UploadRejected}, with the status the web layer answers and a reason for
the user.
"""

from __future__ import annotations

import errno
import os
from typing import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from twistedpypi.auth import UPDATE, Principal
from twistedpypi.config import Config
from twistedpypi.index.distfile import (
    SIGNATURE_SUFFIX,
    normalize_name,
    version_from_filename_matches,
)
from twistedpypi.index.markers import (
    ACTIVE,
    PROJECT_STATUSES,
    STATUS_SUFFIX,
    YANKED_SUFFIX,
    ProjectStatus,
    clean_reason,
    format_status,
)
from twistedpypi.index.model import DistributionFile, PackageIndex
from twistedpypi.metrics import METRICS, Metrics
from twistedpypi.uploads.docs import documentation_zip_problem
from twistedpypi.uploads.form import (
    UploadForm,
    check_content_size,
    check_digests,
    check_upload,
    sent_digests,
)
from twistedpypi.uploads.multipart import UploadRejected
from twistedpypi.uploads.receiver import UploadReceiver
from twistedpypi.uploads.store import claim, remove_files, remove_marker, store_signature, write_marker

log = Logger()

NOT_NEEDED = {
    "submit": "nothing to register: a project is registered on this index by its first upload",
    "verify": "nothing to verify: this index checks each file when it is uploaded",
}
"""
The legacy actions that pypiserver answers with 200 and ignores, and what
this index answers them (C{twine register} sends C{submit}).
"""

SUPPORTED_ACTIONS = "file_upload, remove_pkg, yank, unyank, set_status, submit, verify or doc_upload"

CLOSED_PHRASES = {
    "archived": "Project archived: it takes no new files",
    "quarantined": "Project quarantined: it takes no new files",
}
"""
The status lines of an upload refused by the project's status (PEP 792),
fixed phrases: twine prints the status line, uv the body.
"""

UPLOAD_REFUSED_BY_STATUS = 400
"""
The status of an upload refused by the project's status: 400, as PyPI
answers an upload it will not take.  twine prints the status line's phrase
under its error line ("400 Bad Request ... Project archived: it takes no
new files"), uv the body after "Server says:"; a 403 would read as a
question of credentials, which the per-project permissions answer.
"""

_QUOTED_LENGTH = 100
"""How much of a field sent by the client a message quotes back."""


def _not_stored(error: OSError, what: str = "the server could not store the file") -> UploadRejected:
    """
    The refusal of a write that failed: 507 Insufficient Storage when the
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


def _claim(temporary: str, final: str, overwrite: bool, sha256: str, known: bool) -> tuple[bool, bool]:
    """
    L{claim}, telling also whether the file stored replaced one of that
    name (C{--overwrite}).  Blocking: run in a thread.

    @param known: whether the index has a file of that name.
    @return: whether the file was stored, and whether it replaced another.
    """
    existed = overwrite and (known or os.path.lexists(final))
    stored = claim(temporary, final, overwrite, sha256)
    return stored, stored and existed


class Publisher:
    """
    Takes uploads and removals (PyPI's legacy C{:action}s C{file_upload}
    and C{remove_pkg}) into the package directory and the index.

    It keeps the uploads still arriving and the ones being stored, so a
    stop can wait for the second and delete the temporary files of the
    first.

    @ivar watcher: the L{twistedpypi.scan.watcher.PackageWatcher} whose
        C{refresh} puts a change into the index.
    @ivar metrics: where each file stored (C{uploads}) and each
        distribution file removed (C{removals}) is counted.
    """

    def __init__(
        self, config: Config, index: PackageIndex, watcher, metrics: Metrics = METRICS
    ) -> None:
        self.config = config
        self.index = index
        self.watcher = watcher
        self.metrics = metrics
        self._receivers: set[UploadReceiver] = set()
        self._taking: set[Deferred] = set()

    def receiver(
        self, boundary: bytes, pause: Callable[[], None], resume: Callable[[], None]
    ) -> UploadReceiver:
        """
        A receiver for the streaming multipart body of one upload, spooling
        into the upload directory.
        """
        receiver = UploadReceiver(
            self.config.upload_directory,
            self.config.max_upload_size,
            boundary,
            pause,
            resume,
            self._receivers.discard,
        )
        self._receivers.add(receiver)
        return receiver

    def take(
        self, form: UploadForm, receiver: UploadReceiver | None = None, who: Principal | None = None
    ) -> Deferred[str]:
        """
        Do what the form's C{:action} asks, if C{who} sent it may change its
        project (403 otherwise); what was done is logged with C{who}.

        @param receiver: what received the form, when it came as a
            multipart body (with its file); its temporary file is gone
            when the result fires.
        @return: fires with the message for the user, or fails with
            L{UploadRejected}.
        """
        if receiver is not None:
            receiver.handling = True
        taking = Deferred.fromCoroutine(self._take(form, receiver, who))
        if who is not None:
            taking.addCallback(lambda done: (log.info("{done} (by {who})", done=done, who=who.label), done)[1])
        self._taking.add(taking)
        return taking.addBoth(lambda result: (self._taking.discard(taking), result)[1])

    async def _take(self, form: UploadForm, receiver: UploadReceiver | None, who: Principal | None) -> str:
        try:
            if receiver is not None and receiver.error is not None:
                raise receiver.error
            name = form.fields.get("name", "").strip()
            if who is not None and name and (refusal := who.refusal(UPDATE, name)):
                raise UploadRejected(403, refusal, "Forbidden")
            action = form.action
            if action == "file_upload":
                return await self._store(form, receiver)
            if action == "remove_pkg":
                return await self._remove(form)
            if action in ("yank", "unyank"):
                return await self._yank(form, action == "yank")
            if action == "set_status":
                return await self._set_status(form)
            if action in NOT_NEEDED:
                log.info("ignored :action {action}: {why}", action=action, why=NOT_NEEDED[action])
                return NOT_NEEDED[action]
            if action == "doc_upload":
                return await self._check_documentation(form, receiver)
            if action is None:
                raise UploadRejected(400, f"the form has no ':action': use {SUPPORTED_ACTIONS}")
            raise UploadRejected(
                400,
                f"':action' {action[:_QUOTED_LENGTH]!r} is not supported here: use {SUPPORTED_ACTIONS}",
                f"the form's ':action' is not supported here: use {SUPPORTED_ACTIONS}",
            )
        finally:
            if receiver is not None:
                # The temporary file is gone before the answer is sent.
                discarded = receiver.discard()
                if discarded is not None:
                    await discarded

    def stop(self) -> Deferred:
        """
        Let the uploads being stored finish, and delete the temporary files
        of those still arriving (their clients are about to be cut off).
        """
        waiting = [d for d in (r.discard() for r in list(self._receivers) if not r.handling) if d]
        taking: list[Deferred] = []
        for d in list(self._taking):
            waiter: Deferred = Deferred()
            d.addBoth(lambda result, waiter=waiter: (waiter.callback(None), result)[1])
            taking.append(waiter)
        return DeferredList(waiting + taking, consumeErrors=True)

    async def _store(self, form: UploadForm, receiver: UploadReceiver | None) -> str:
        dist = check_upload(form)
        status = self.index.status_of(dist.project)
        if not status.takes_uploads:
            reason = f" ({status.reason})" if status.reason else ""
            raise UploadRejected(
                UPLOAD_REFUSED_BY_STATUS,
                f"{dist.project} is {status.status} on this index{reason}: it takes no new files",
                CLOSED_PHRASES[status.status],
            )
        if receiver is None or not form.content_complete or receiver.writer is None:
            raise UploadRejected(400, "the form has no 'content' file: nothing to upload")
        check_content_size(form, self.config.max_upload_size)
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
            stored, replaced = await deferToThread(
                _claim, writer.file.path, final, self.config.overwrite, digests["sha256"], known is not None
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
        if stored:
            self.metrics.count("uploads")
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
            done = "replaced" if replaced else "stored"
            log.info(
                "{done} {filename} ({size} bytes) of {project} {version}",
                done=done,
                filename=filename,
                size=form.content_size,
                project=dist.project,
                version=dist.version,
            )
            return f"{done} {filename}"
        return f"{filename} was already stored with these very contents"

    async def _check_documentation(self, form: UploadForm, receiver: UploadReceiver | None) -> str:
        """
        A C{doc_upload}: its zip is checked as pypiserver checks it (a zip
        archive holding C{index.html}), then dropped with the temporary
        file; documentation is not hosted here.
        """
        if receiver is None or not form.content_complete or receiver.writer is None:
            raise UploadRejected(
                400, "doc_upload needs the documentation as a 'content' file: a zip archive holding index.html"
            )
        check_content_size(form, self.config.max_upload_size)
        writer = receiver.writer
        try:
            await writer.finish()
            problem = await deferToThread(documentation_zip_problem, writer.file.path)
        except OSError as error:
            raise _not_stored(error, "the server could not receive the documentation") from None
        if problem is not None:
            raise UploadRejected(
                400,
                f"the documentation is not a zip archive holding index.html: {problem}",
                "the documentation is not a zip archive holding index.html",
            )
        log.info(
            "ignored :action doc_upload: the documentation of {project} ({size} bytes) is a valid zip,"
            " not stored (documentation is not hosted here)",
            project=form.fields.get("name", "")[:_QUOTED_LENGTH],
            size=form.content_size,
        )
        return "documentation is not hosted on this index: the zip was checked, and not stored"

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
        sidecars = (SIGNATURE_SUFFIX, YANKED_SUFFIX)
        self.metrics.count("removals", sum(1 for path in removed if not path.endswith(sidecars)))
        await self.watcher.refresh(
            [*paths, *(p + SIGNATURE_SUFFIX for p in paths), *(p + YANKED_SUFFIX for p in paths)]
        )
        log.info(
            "removed {project} {version}: {files}",
            project=project,
            version=version,
            files=", ".join(os.path.basename(p) for p in removed),
        )
        return f"removed {len(paths)} file(s) of {name} {version}"

    def _release_files(self, form: UploadForm, action: str) -> tuple[str, str, list[DistributionFile]]:
        """
        The files a C{yank} or C{unyank} form names: a release's, or the
        one of them its C{filename} names.

        @return: the name and version as sent, and the files.
        @raise UploadRejected: a field is missing (400), or the project,
            release or file is not here (404).
        """
        name = form.fields.get("name", "").strip()
        version = form.fields.get("version", "").strip()
        filename = form.fields.get("filename", "").strip()
        if not name or not version:
            raise UploadRejected(400, f"{action} needs the project's 'name' and 'version'")
        project = self.index.project(normalize_name(name))
        if project is None:
            raise UploadRejected(
                404, f"{name[:_QUOTED_LENGTH]} is not on this index: it has no files", "No such project on this index"
            )
        files = [d for d in project.sorted_files() if version_from_filename_matches(d.dist, version)]
        if not files:
            raise UploadRejected(
                404,
                f"{name[:_QUOTED_LENGTH]} {version[:_QUOTED_LENGTH]} is not on this index:"
                " it has no files of that version",
                "No such release on this index",
            )
        if filename:
            files = [d for d in files if d.filename == filename]
            if not files:
                raise UploadRejected(
                    404,
                    f"{filename[:_QUOTED_LENGTH]} is not a file of {name[:_QUOTED_LENGTH]}"
                    f" {version[:_QUOTED_LENGTH]} on this index",
                    "No such file in this release",
                )
        return name, version, files

    async def _yank(self, form: UploadForm, yank: bool) -> str:
        """
        C{yank} (PEP 592) or C{unyank} a release, or one file of it: its
        marker C{<filename>.yanked}, holding the reason, is written or
        deleted beside each file, and the index brought up to date.
        """
        action = "yank" if yank else "unyank"
        name, version, files = self._release_files(form, action)
        markers = [dist.path + YANKED_SUFFIX for dist in files]
        reason = clean_reason(form.fields.get("reason", ""))
        try:
            if yank:
                content = reason.encode("utf-8")
                for marker in markers:
                    await deferToThread(write_marker, marker, content)
            else:
                for marker in markers:
                    await deferToThread(remove_marker, marker)
        except OSError as error:
            raise _not_stored(error, f"the server could not {action} the files") from None
        await self.watcher.refresh(markers)
        filenames = ", ".join(dist.filename for dist in files)
        log.info(
            "{action}ed {project} {version}: {files}{why}",
            action=action,
            project=files[0].project,
            version=version,
            files=filenames,
            why=f" ({reason})" if yank and reason else "",
        )
        return f"{action}ed {len(files)} file(s) of {name} {version}: {filenames}"

    async def _set_status(self, form: UploadForm) -> str:
        """
        C{set_status}: a project's PEP 792 status, written to its status
        file C{<project>.status} in the upload directory (deleted for a
        plain C{active}), and the index brought up to date.
        """
        name = form.fields.get("name", "").strip()
        wanted = form.fields.get("status", "").strip().lower()
        if not name or not wanted:
            raise UploadRejected(400, "set_status needs the project's 'name' and a 'status'")
        if wanted not in PROJECT_STATUSES:
            raise UploadRejected(
                400,
                f"{wanted[:_QUOTED_LENGTH]!r} is not a project status: use {', '.join(PROJECT_STATUSES)}",
                "Not a project status: use " + ", ".join(PROJECT_STATUSES),
            )
        project = normalize_name(name)
        if self.index.project(project) is None and project not in self.index.statuses:
            raise UploadRejected(
                404, f"{name[:_QUOTED_LENGTH]} is not on this index: it has no files", "No such project on this index"
            )
        status = ProjectStatus(wanted, clean_reason(form.fields.get("reason", "")) or None)
        path = os.path.join(self.config.upload_directory, project + STATUS_SUFFIX)
        try:
            if status.status == ACTIVE and status.reason is None:
                await deferToThread(remove_marker, path)
            else:
                await deferToThread(write_marker, path, format_status(status))
        except OSError as error:
            raise _not_stored(error, "the server could not store the project's status") from None
        await self.watcher.refresh([path])
        log.info(
            "set the status of {project} to {status}{why}",
            project=project,
            status=status.status,
            why=f" ({status.reason})" if status.reason else "",
        )
        return f"{name} is now {status.status}"


class UploadsService(Service):
    """
    Stopping the server waits for the uploads being stored, and deletes
    the temporary files of those cut off.
    """

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def stopService(self) -> Deferred:
        super().stopService()
        return self.publisher.stop()
