"""
The server's settings, as the command line gave them.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("update", "download", "list")
"""What C{-a} can protect: uploads and removals, file downloads, listings."""

DEFAULT_FALLBACK_URL = "https://pypi.org/simple/"

FALLBACK_MODES = ("redirect", "proxy")
"""What C{--fallback-mode} can be; the first is the default."""

WATCH_MODES = ("inotify", "poll")
"""What C{--watch} can be; the first is the default."""

DEFAULT_POLL_INTERVAL = 0.5
"""Seconds between looks at the package directories with C{--watch poll},
unless C{--watch poll:INTERVAL} says otherwise."""

DEFAULT_HASH_ALGO = "sha256"
"""The hash in the simple index's link fragments unless --hash-algo says
otherwise."""

DEFAULT_HEALTH_ENDPOINT = "/health"
"""The path that answers 200 while serving unless --health-endpoint says
otherwise."""

DEFAULT_MAX_UPLOAD_SIZE = 1024 * 1024 * 1024
"""Bytes of the largest upload accepted unless --max-upload-size says
otherwise."""

DEFAULT_UPSTREAM_TTL = 300.0
"""Seconds a proxied page is served before it is fetched again, unless
--upstream-ttl says otherwise."""

DEFAULT_UPSTREAM_TIMEOUT = 10.0
"""Seconds to wait for the upstream index unless --upstream-timeout says
otherwise."""

DEFAULT_HEADER_TIMEOUT = 20.0
"""
Seconds a client has to send a whole request line and headers, from the
moment the connection opens (or the first byte of a later request on a
kept-alive connection), unless --header-timeout says otherwise.  The idle
timeout alone lets a client that sends a byte every few seconds hold a
connection for ever.
"""

DEFAULT_FILE_CACHE_SIZE = 16 * 1024 * 1024
"""Bytes of small distribution files kept in memory unless --file-cache
says otherwise."""

LISTEN_BACKLOG = 511
"""Connections the kernel queues for a listening socket before it refuses
more (capped by C{net.core.somaxconn}): nginx's default, so a burst of a
few hundred clients is queued rather than made to retry a second later,
as Twisted's default of 50 would."""


@dataclass(slots=True)
class Config:
    """
    Everything the web resources and services need to know.

    @ivar directories: the package directories; the first takes uploads.
    @ivar passwords: the htpasswd file, or L{None} for no authentication.
    @ivar authenticate: the protected actions, a subset of L{ACTIONS}.
    @ivar tokens: the upload tokens file, or L{None} for no tokens.
    @ivar permissions: the per-project permissions file (TOML), or L{None}
        for none: any user with a password may do any protected action.
    @ivar fallback_url: where unknown projects are sent, or L{None} when
        fallback is disabled.
    @ivar hash_algo: the hash in the simple index's link fragments, or
        L{None} for none.
    @ivar cache_control: C{max-age} for files and pages, or L{None}.
    @ivar describe_cache: the file keeping each file's hashes and metadata
        across restarts, or L{None} for none.
    @ivar fallback_mode: C{"redirect"} unknown projects to the fallback
        index, or C{"proxy"} them: fetch, cache and serve them here.
    @ivar cache_dir: where C{proxy} mode keeps what it fetched.
    @ivar upstream_ttl: seconds a proxied page is served before it is
        fetched again.
    @ivar upstream_timeout: seconds to wait for the upstream index.
    @ivar header_timeout: seconds a client has to send its request headers.
    @ivar follow_symlinks: whether links to files outside the package
        directories are served.
    @ivar access_log: whether each request is logged.
    @ivar file_cache_size: bytes of small distribution files kept in
        memory, 0 for none.
    @ivar poll_interval: seconds between looks at the package directories
        (C{--watch poll}, for shared storage), or L{None} to have inotify
        announce changes.
    @ivar base_path: the path every route is served under (pypiserver's
        C{--server-base-url}), as C{/pypi}; C{""} to serve at C{/}.
    """

    directories: list[str]
    passwords: str | None = None
    authenticate: frozenset[str] = frozenset({"update"})
    tokens: str | None = None
    permissions: str | None = None
    overwrite: bool = False
    fallback_url: str | None = DEFAULT_FALLBACK_URL
    welcome_html: bytes | None = None
    cache_control: int | None = None
    hash_algo: str | None = DEFAULT_HASH_ALGO
    health_endpoint: str = DEFAULT_HEALTH_ENDPOINT
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE
    describe_cache: str | None = None
    fallback_mode: str = FALLBACK_MODES[0]
    cache_dir: str | None = None
    upstream_ttl: float = DEFAULT_UPSTREAM_TTL
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    follow_symlinks: bool = False
    access_log: bool = True
    file_cache_size: int = DEFAULT_FILE_CACHE_SIZE
    poll_interval: float | None = None
    base_path: str = ""

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
