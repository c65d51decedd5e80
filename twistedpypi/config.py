"""
The server's settings, as the command line gave them.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("update", "download", "list")
"""What C{-a} can protect: uploads and removals, file downloads, listings."""

DEFAULT_FALLBACK_URL = "https://pypi.org/simple/"


@dataclass(slots=True)
class Config:
    """
    Everything the web resources and services need to know.

    @ivar directories: the package directories; the first takes uploads.
    @ivar passwords: the htpasswd file, or L{None} for no authentication.
    @ivar authenticate: the protected actions, a subset of L{ACTIONS}.
    @ivar fallback_url: where unknown projects are sent, or L{None} when
        fallback is disabled.
    @ivar hash_algo: the hash in the simple index's link fragments, or
        L{None} for none.
    @ivar cache_control: C{max-age} for files and pages, or L{None}.
    @ivar access_log: whether each request is logged.
    """

    directories: list[str]
    passwords: str | None = None
    authenticate: frozenset[str] = frozenset({"update"})
    overwrite: bool = False
    fallback_url: str | None = DEFAULT_FALLBACK_URL
    welcome_html: bytes | None = None
    cache_control: int | None = None
    hash_algo: str | None = "sha256"
    health_endpoint: str = "/health"
    max_upload_size: int = 1024 * 1024 * 1024
    access_log: bool = True

    @property
    def upload_directory(self) -> str:
        """Where uploads are stored."""
        return self.directories[0]

    @property
    def hash_algorithms(self) -> tuple[str, ...]:
        """The hashes to compute of every file: sha256, and the link hash."""
        if self.hash_algo is None or self.hash_algo == "sha256":
            return ("sha256",)
        return ("sha256", self.hash_algo)
