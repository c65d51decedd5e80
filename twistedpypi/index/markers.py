"""
Release management markers kept beside the distributions: a file's yank
(PEP 592) and a project's status (PEP 792).  Pure: names and contents only.

Both are small text files in a package directory, written by the upload
API's C{yank}, C{unyank} and C{set_status} actions or by hand, and read by
the watcher like any other change:

  - C{<filename>.yanked} beside a distribution file yanks it; its content,
    UTF-8, is the reason (it may be empty).  Deleting it unyanks.
  - C{<project>.status} (the normalised name) in any package directory
    holds the project's status on its first line (C{active}, C{archived},
    C{quarantined} or C{deprecated}) and the reason, if any, on the lines
    after it.  Deleting it makes the project active again.

Neither name parses as a distribution, so listings never serve them.
"""

from __future__ import annotations

from dataclasses import dataclass

YANKED_SUFFIX = ".yanked"
"""What a yank marker's name adds to its distribution file's."""

STATUS_SUFFIX = ".status"
"""What a project status file's name adds to the project's normalised name."""

MARKER_SUFFIXES = (YANKED_SUFFIX, STATUS_SUFFIX)

MARKER_SIZE_LIMIT = 4096
"""The most of a marker file read: a reason is a sentence, not a document."""

REASON_LENGTH_LIMIT = 1000
"""The longest reason kept, in characters."""

ACTIVE = "active"
ARCHIVED = "archived"
QUARANTINED = "quarantined"
DEPRECATED = "deprecated"

PROJECT_STATUSES = (ACTIVE, ARCHIVED, QUARANTINED, DEPRECATED)
"""The PEP 792 statuses, the default first."""

UPLOADS_CLOSED = (ARCHIVED, QUARANTINED)
"""The statuses under which the index takes no new files of the project."""


@dataclass(frozen=True, slots=True)
class ProjectStatus:
    """
    A project's PEP 792 status, with the reason given for it, if any.
    """

    status: str = ACTIVE
    reason: str | None = None

    @property
    def offers_files(self) -> bool:
        """Whether the index serves the project's files (not when quarantined)."""
        return self.status != QUARANTINED

    @property
    def takes_uploads(self) -> bool:
        """Whether the index takes new files of the project."""
        return self.status not in UPLOADS_CLOSED


ACTIVE_STATUS = ProjectStatus()


def is_marker_name(filename: str) -> bool:
    """Whether C{filename} is a yank marker or a project status file."""
    return filename.endswith(MARKER_SUFFIXES) and not filename.startswith(".")


def clean_reason(text: str) -> str:
    """
    A reason as it is kept and served: surrounding white space dropped,
    line breaks and other control characters made spaces, bounded.
    """
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text.strip())
    return cleaned[:REASON_LENGTH_LIMIT]


def decode_marker(content: bytes) -> str:
    """A marker file's bytes as text: UTF-8, anything else replaced."""
    return content[:MARKER_SIZE_LIMIT].decode("utf-8", errors="replace")


def yank_reason(content: bytes) -> str:
    """The reason a yank marker's content gives (empty if none)."""
    return clean_reason(decode_marker(content))


def parse_status(content: bytes) -> ProjectStatus | None:
    """
    The status a project status file holds: its first line, then the
    reason.  L{None} if the first line is not a PEP 792 status.
    """
    first, _, rest = decode_marker(content).partition("\n")
    status = first.strip().lower()
    if status not in PROJECT_STATUSES:
        return None
    reason = clean_reason(rest)
    return ProjectStatus(status, reason or None)


def format_status(status: ProjectStatus) -> bytes:
    """The content of the project status file for C{status}."""
    text = status.status + "\n"
    if status.reason:
        text += status.reason + "\n"
    return text.encode("utf-8")


def status_project(filename: str) -> str | None:
    """The normalised project name a status file's name holds, if it is one."""
    if not filename.endswith(STATUS_SUFFIX):
        return None
    return filename[: -len(STATUS_SUFFIX)] or None
