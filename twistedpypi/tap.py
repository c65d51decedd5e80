"""
C{twistd pypi}: the command line, and the service it builds.

The flags are pypiserver's, so switching from C{pypi-server run} is one
word.
"""

from __future__ import annotations

import getopt
import hashlib
import os
import re
import sys
from urllib.parse import urlsplit

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from twistedpypi.config import (
    ACTIONS,
    DEFAULT_FALLBACK_URL,
    DEFAULT_FILE_CACHE_SIZE,
    DEFAULT_HASH_ALGO,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HEALTH_ENDPOINT,
    DEFAULT_MAX_UPLOAD_SIZE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_UPSTREAM_TIMEOUT,
    DEFAULT_UPSTREAM_TTL,
    FALLBACK_MODES,
    LISTEN_BACKLOG,
    WATCH_MODES,
    Config,
)

log = Logger()

DEFAULT_DIRECTORY = "~/packages"

LINK_HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
"""The hashes PEP 503 allows in a link's fragment, which pip checks."""


def parse_size(value: str) -> int:
    """
    Read a size such as C{500}, C{100K}, C{20M} or C{2G} as bytes.
    """
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    multiplier = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        size = int(float(number) * multiplier)
    except ValueError:
        raise usage.UsageError(f"{value!r} is not a size (try 100M or 2G)") from None
    if size <= 0:
        raise usage.UsageError(f"{value!r} is not a positive size")
    return size


def size_text(size: int) -> str:
    """C{size} bytes as L{parse_size} reads them: C{1G} for 1024**3."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


class Options(usage.Options):
    """
    C{twistd pypi [options] [PACKAGE_DIR ...]}
    """

    synopsis = "[options] [PACKAGE_DIR ...]"
    longdesc = (
        "Serve the distribution files in PACKAGE_DIR (default ~/packages, "
        "searched recursively; the first directory receives uploads) as a "
        "Python package index for pip, uv and twine."
    )

    optParameters = [
        ["port", "p", "8080", "Port number, or a Twisted endpoint such as tcp:8080:interface=127.0.0.1 or ssl:443:privateKey=key.pem."],
        ["interface", "i", "0.0.0.0", "Interface to listen on when --port is a number."],
        ["passwords", "P", None, "htpasswd file for authentication ('.' for none)."],
        ["authenticate", "a", None, "Comma-separated actions that need a password: update, download, list ('.' for none). Default: update."],
        ["tokens", None, None, "Upload tokens file (managed with 'twistedpypi token'); clients send a token as user __token__ or Bearer."],
        ["permissions", None, None, "TOML file saying who may update (and download, list) which projects."],
        ["fallback-url", None, DEFAULT_FALLBACK_URL, "Index to send clients to for projects not found here."],
        ["welcome", None, None, "HTML file shown as the welcome page."],
        ["cache-control", None, None, "Add 'Cache-Control: public, max-age=AGE' to responses."],
        ["hash-algo", None, DEFAULT_HASH_ALGO, "Hash in the simple index's links (a hashlib name, or 'off')."],
        ["health-endpoint", None, DEFAULT_HEALTH_ENDPOINT, "Path that answers 200 while serving."],
        ["max-upload-size", None, size_text(DEFAULT_MAX_UPLOAD_SIZE), "Largest upload accepted (e.g. 500M, 2G)."],
        ["workers", None, "1", "Processes serving the same port, each with its own index (one per core is a good start)."],
        ["inherit-fd", None, None, "Internal (used by --workers): serve the listening socket on this descriptor."],
        ["describe-cache", None, None, "File keeping hashes and metadata across restarts ('off' for none). Default: under ~/.cache/twistedpypi/."],
        ["fallback-mode", None, FALLBACK_MODES[0], "For projects not found here: 'redirect' clients to --fallback-url, or 'proxy' it (fetch, cache, serve)."],
        ["cache-dir", None, None, "Where proxy mode caches upstream files (default: PACKAGE_DIR-upstream-cache beside the first package directory)."],
        ["upstream-ttl", None, f"{DEFAULT_UPSTREAM_TTL:g}", "Seconds a proxied project page is served before it is fetched again."],
        ["upstream-timeout", None, f"{DEFAULT_UPSTREAM_TIMEOUT:g}", "Seconds to wait for the upstream index before answering 504."],
        ["header-timeout", None, f"{DEFAULT_HEADER_TIMEOUT:g}", "Seconds a client has to send its request headers before it is disconnected."],
        ["watch", None, WATCH_MODES[0], f"How changes to the package directories are seen: 'inotify', or 'poll[:INTERVAL]' (every INTERVAL seconds, default {DEFAULT_POLL_INTERVAL:g}) for shared storage such as NFS."],
        ["file-cache", None, size_text(DEFAULT_FILE_CACHE_SIZE), "Memory kept for small files (up to 64K each) to send them without opening them ('0' for none)."],
        ["log-file", None, None, "Write the log to this file too (under -n, as well as to --log-stream)."],
        ["log-stream", None, "stdout", "Where twistd -n writes the log: stdout, stderr or none."],
        ["log-frmt", None, None, "A Python logging format for each log line, e.g. '%(asctime)s|%(name)s|%(levelname)s|%(message)s'."],
        ["log-req-frmt", None, None, "pypiserver's request log format: accepted, no effect (requests are logged in Apache's combined format)."],
        ["log-res-frmt", None, None, "pypiserver's response log format: accepted, no effect (see --log-req-frmt)."],
        ["log-err-frmt", None, None, "pypiserver's error log format: accepted, no effect (errors are logged with their traceback)."],
        ["server", None, None, "pypiserver's choice of WSGI server: accepted, no effect (this is Twisted)."],
        ["backend", None, None, "pypiserver's storage backend: accepted, no effect (the index is in memory, following the directories)."],
        ["server-base-url", None, None, "Serve every route under this path, as pypiserver does: /pypi gives /pypi/simple/, uploads to /pypi/."],
    ]
    optFlags = [
        ["overwrite", "o", "Allow uploads to replace existing files."],
        ["disable-fallback", None, "Answer 404 for projects not found here instead of redirecting."],
        ["follow-symlinks", None, "Serve symbolic links to files outside the package directories."],
        ["no-access-log", None, "Do not log each request (e.g. when nginx in front logs them already)."],
        ["mirror", None, "Accepted, no effect: a caching mirror of --fallback-url is --fallback-mode proxy."],
    ]

    IGNORED = {
        "log-req-frmt": "requests are logged in Apache's combined format (--no-access-log turns it off)",
        "log-res-frmt": "requests are logged in Apache's combined format (--no-access-log turns it off)",
        "log-err-frmt": "errors are logged with their traceback, in --log-frmt's format if given",
        "server": "twistedpypi always serves with Twisted",
        "backend": "the index is always kept in memory and follows the directories as they change",
        "mirror": "for a caching mirror of --fallback-url use --fallback-mode proxy",
    }
    """pypiserver's flags that mean nothing here, and why."""

    def __init__(self) -> None:
        super().__init__()
        self["directories"] = []
        self["verbosity"] = 0

    def opt_passwd(self, path: str) -> None:
        """Alias for --passwords."""
        self["passwords"] = path

    def opt_host(self, interface: str) -> None:
        """Alias for --interface (pypiserver's -H, --host)."""
        self["interface"] = interface

    opt_H = opt_host

    def opt_verbose(self) -> None:
        """Log more: with -v, debug events too (repeat as for pypiserver)."""
        self["verbosity"] += 1

    opt_v = opt_verbose

    def opt_version(self) -> None:
        """Print the version of twistedpypi and Twisted, and exit."""
        from twisted import __version__ as twisted_version

        from twistedpypi import __version__

        print(f"twistedpypi {__version__} (Twisted {twisted_version})")
        sys.exit(0)

    def parseOptions(self, options=None) -> None:
        # "twistd pypi run -p 8080 dir" as pypiserver 2 users write it.
        if options is None:
            options = sys.argv[1:]
        if options[:1] == ["run"]:
            options = options[1:]
        self["arguments"] = list(options)
        if self.parent is not None:
            self._no_pid_file_in_the_foreground(self.parent)
        try:
            super().parseOptions(self._options_first(options))
        except usage.UsageError as error:
            if self.parent is None:
                raise
            # twistd would print all the usage text first, and the reason
            # last: the reason alone, and where the rest is.
            sys.stderr.write(f"twistd pypi: {error}\nSee 'twistd pypi --help' for every option.\n")
            sys.exit(1)

    @staticmethod
    def _no_pid_file_in_the_foreground(server_options) -> None:
        """
        Under C{twistd -n}, write no pid file unless C{--pidfile} asks for
        one: systemd, Docker and a terminal know the process already, and
        twistd's default, C{twistd.pid} in the working directory, would
        stop a second server started in the same directory.
        """
        twistd_arguments = sys.argv[1 : sys.argv.index("pypi")] if "pypi" in sys.argv else sys.argv[1:]
        asked = any(argument.startswith("--pid") for argument in twistd_arguments)
        if server_options.get("nodaemon") and not asked:
            server_options["pidfile"] = ""

    def _options_first(self, arguments: list[str]) -> list[str]:
        """
        C{arguments} with every option before the directories, as
        pypiserver's argparse takes them (C{pypi-server run ~/packages
        -p 8080}): Twisted's parser stops at the first directory, and would
        take the options after it for more directories.  A C{--} still ends
        the options.
        """
        try:
            options, directories = getopt.gnu_getopt(arguments, self.shortOpt, self.longOpt)
        except getopt.GetoptError as error:
            raise usage.UsageError(str(error)) from None
        takes_value = {f"--{name[:-1]}" for name in self.longOpt if name.endswith("=")}
        takes_value |= {f"-{letter}" for letter, colon in zip(self.shortOpt, self.shortOpt[1:] + " ") if colon == ":"}
        ordered = []
        for name, value in options:
            ordered += [name, value] if name in takes_value else [name]
        return [*ordered, "--", *directories]

    def parseArgs(self, *directories: str) -> None:
        self["directories"] = list(directories) or [DEFAULT_DIRECTORY]

    def postOptions(self) -> None:
        self["directories"] = [os.path.abspath(os.path.expanduser(d)) for d in self["directories"]]
        self._check_port()
        self._check_auth()
        algo = self["hash-algo"]
        if algo.lower() in ("off", "no", "none", "false", "0"):
            self["hash-algo"] = None
        elif algo.lower() not in LINK_HASHES or algo.lower() not in hashlib.algorithms_available:
            raise usage.UsageError(
                f"--hash-algo {algo!r} cannot be used: choose one of {', '.join(LINK_HASHES)} (or 'off')"
            )
        else:
            self["hash-algo"] = algo.lower()
        if self["cache-control"] is not None:
            try:
                self["cache-control"] = int(self["cache-control"])
            except ValueError:
                raise usage.UsageError("--cache-control takes a number of seconds") from None
            if self["cache-control"] < 0:
                raise usage.UsageError("--cache-control takes a number of seconds")
        self["max-upload-size"] = parse_size(self["max-upload-size"])
        self["file-cache"] = 0 if self["file-cache"].strip() in ("0", "off") else parse_size(self["file-cache"])
        try:
            self["workers"] = int(self["workers"])
        except ValueError:
            raise usage.UsageError("--workers takes a number of processes") from None
        if not 1 <= self["workers"] <= 256:
            raise usage.UsageError("--workers takes a number of processes from 1 to 256")
        if self["inherit-fd"] is not None:
            self["inherit-fd"] = int(self["inherit-fd"])
        self._check_header_timeout()
        self["poll-interval"] = self._poll_interval(self["watch"])
        self["server-base-url"] = self._base_path(self["server-base-url"])
        if not self["health-endpoint"].startswith("/"):
            raise usage.UsageError("--health-endpoint must start with '/'")
        if self["welcome"] is not None:
            try:
                with open(self["welcome"], "rb") as stream:
                    self["welcome-html"] = stream.read()
            except OSError as error:
                raise usage.UsageError(f"cannot read --welcome file: {error.strerror}") from None
        if not self["fallback-url"].endswith("/"):
            self["fallback-url"] += "/"
        for directory in self["directories"]:
            self._ensure_directory(directory)
        self._check_upstream()
        self["describe-cache"] = self._describe_cache_path(self["describe-cache"], self["directories"])
        self._check_logging()

    def _check_logging(self) -> None:
        from twistedpypi.process.twistdlog import LOG_STREAMS, LogChoices, logging_style_formatter

        stream = self["log-stream"].lower()
        if stream not in LOG_STREAMS:
            raise usage.UsageError(f"--log-stream {self['log-stream']!r}: choose stdout, stderr or none")
        if self["log-frmt"] is not None:
            try:
                logging_style_formatter(self["log-frmt"])
            except KeyError as error:
                raise usage.UsageError(
                    f"--log-frmt names %({error.args[0]})s, which is not one of %(asctime)s, %(name)s,"
                    " %(levelname)s, %(message)s, %(process)d, %(thread)d, %(threadName)s, %(created)f, %(msecs)d, %(levelno)s"
                ) from None
            except (ValueError, TypeError) as error:
                raise usage.UsageError(f"--log-frmt is not a logging format string: {error}") from None
        log_file = self["log-file"]
        if log_file is not None:
            log_file = os.path.abspath(os.path.expanduser(log_file))
            if not os.path.isdir(os.path.dirname(log_file)):
                raise usage.UsageError(f"--log-file {log_file}: its directory does not exist")
        self["log-choices"] = LogChoices(self["verbosity"], log_file, stream, self["log-frmt"])
        for name, why in self.IGNORED.items():
            if self[name]:
                log.warn("--{name} has no effect: {why}", name=name, why=why)

    @staticmethod
    def _base_path(value: str | None) -> str:
        """C{--server-base-url} as a path without its last slash; C{""} for C{/}."""
        if value is None:
            return ""
        path = "/" + value.strip().strip("/")
        if path == "/":
            return ""
        segments = path[1:].split("/")
        if any(segment in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9._~-]+", segment) for segment in segments):
            raise usage.UsageError(
                f"--server-base-url {value!r} is not a plain path: segments of letters, digits, - . _ ~ (e.g. /pypi)"
            )
        return path

    @staticmethod
    def _describe_cache_path(value: str | None, directories: list[str]) -> str | None:
        if value is not None:
            return None if value.lower() in ("off", "none", ".") else os.path.abspath(os.path.expanduser(value))
        # One cache per set of package directories, where the user keeps caches.
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        key = hashlib.sha256("\0".join(directories).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return os.path.join(base, "twistedpypi", f"describe-{key}.json")

    @staticmethod
    def _poll_interval(watch: str) -> float | None:
        """What C{--watch} asks for: seconds between looks, or L{None} for inotify."""
        mode, colon, interval = watch.partition(":")
        if watch == "inotify":
            return None
        if mode != "poll":
            raise usage.UsageError(f"--watch {watch!r}: choose inotify, poll or poll:INTERVAL (e.g. poll:0.5)")
        if not colon:
            return DEFAULT_POLL_INTERVAL
        try:
            seconds = float(interval)
        except ValueError:
            seconds = 0.0
        if not 0 < seconds < float("inf"):
            raise usage.UsageError(f"--watch poll:{interval}: INTERVAL is a positive number of seconds (e.g. poll:0.5)")
        return seconds

    def _check_header_timeout(self) -> None:
        try:
            self["header-timeout"] = float(self["header-timeout"])
        except ValueError:
            self["header-timeout"] = 0.0
        if not self["header-timeout"] > 0:
            raise usage.UsageError("--header-timeout takes a positive number of seconds")

    def _check_port(self) -> None:
        port = self["port"]
        # The interface and port, when --port is a number, so that --workers
        # can give each process a socket of its own (see ListeningService).
        self["address"] = None
        if port.isdigit():
            if not 0 <= int(port) <= 65535:
                raise usage.UsageError(f"--port {port} is not a port number (0-65535)")
            interface = self["interface"].replace(":", "\\:")
            self["endpoint"] = f"tcp:{port}:interface={interface}:backlog={LISTEN_BACKLOG}"
            self["address"] = (self["interface"], int(port))
            return
        from twisted.internet import endpoints, reactor

        try:
            endpoints.serverFromString(reactor, port)
        except (ValueError, TypeError, KeyError) as error:
            raise usage.UsageError(f"--port {port!r} is not a port number or endpoint: {error}") from None
        self["endpoint"] = port

    def _check_auth(self) -> None:
        explicit = self["authenticate"] is not None
        raw = self["authenticate"] if explicit else "update"
        actions = {a.strip().lower() for a in raw.split(",") if a.strip()}
        if actions == {"."}:
            actions = set()
        unknown = actions - set(ACTIONS)
        if unknown:
            raise usage.UsageError(
                f"-a/--authenticate: unknown action {', '.join(sorted(unknown))!r}"
                f" (choose from {', '.join(ACTIONS)}, or '.' for none)"
            )
        passwords = self["passwords"]
        if passwords == ".":
            passwords = None
        if passwords is not None:
            from twistedpypi.fs import open_regular_descriptor

            try:
                # A FIFO there would hang a plain open() until a writer came.
                descriptor, _ = open_regular_descriptor(passwords)
            except OSError as error:
                raise usage.UsageError(
                    f"cannot read the password file {passwords}: {error.strerror}"
                ) from None
            os.close(descriptor)
            from twistedpypi.auth import HtpasswdChecker

            try:
                HtpasswdChecker(passwords).load()
            except ValueError as error:
                raise usage.UsageError(
                    f"the password file {passwords} is not an htpasswd file ({error});"
                    " create it with: htpasswd -c -B FILE USER"
                ) from None
            if not actions:
                raise usage.UsageError(
                    "a password file was given but -a protects nothing; "
                    "name the actions (-a update) or drop -P"
                )
        elif explicit and actions and self["tokens"] is None:
            raise usage.UsageError(
                f"-a {','.join(sorted(actions))} needs a password file: give -P HTPASSWD,"
                " or -P . -a . for an open server"
            )
        self._check_credential_files(passwords, actions)
        self["passwords"] = passwords
        self["authenticate"] = frozenset(actions)

    def _check_credential_files(self, passwords: str | None, actions: set[str]) -> None:
        """--tokens and --permissions: readable, well formed, and of use."""
        from twistedpypi.auth.permissions import parse_permissions
        from twistedpypi.auth.tokens import parse_tokens
        from twistedpypi.auth.watched import WatchedFile

        files = (
            ("tokens", "tokens file", parse_tokens, "create it with: twistedpypi token create --tokens FILE --project NAME"),
            ("permissions", "permissions file", parse_permissions, "see the README's Passwords and tokens section"),
        )
        for option, what, parse, hint in files:
            path = self[option]
            if path is None:
                continue
            try:
                WatchedFile(path, what, parse).load()
            except OSError as error:
                raise usage.UsageError(f"cannot read the {what} {path}: {error.strerror}; {hint}") from None
            except ValueError as error:
                raise usage.UsageError(f"the {what} {path} is broken ({error}); {hint}") from None
            if not actions:
                raise usage.UsageError(f"--{option} was given but -a protects nothing; name the actions (-a update)")
        if self["permissions"] is not None and passwords is None:
            raise usage.UsageError("--permissions says what users of the password file may do: give -P HTPASSWD too")

    def _check_upstream(self) -> None:
        mode = self["fallback-mode"]
        if mode not in FALLBACK_MODES:
            raise usage.UsageError(f"--fallback-mode {mode!r}: choose {' or '.join(FALLBACK_MODES)}")
        for name in ("upstream-ttl", "upstream-timeout"):
            try:
                self[name] = float(self[name])
            except (TypeError, ValueError):
                raise usage.UsageError(f"--{name} takes a number of seconds") from None
            if self[name] < 0 or (name == "upstream-timeout" and self[name] == 0):
                raise usage.UsageError(f"--{name} takes a positive number of seconds")
        if self["disable-fallback"]:
            return
        parts = urlsplit(self["fallback-url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # Sent as it is in a Location header, it would be a path on this server.
            raise usage.UsageError(
                f"--fallback-url {self['fallback-url'].rstrip('/')!r} is not an http:// or https:// URL"
                " (for example https://pypi.org/simple/)"
            )
        if mode == "redirect":
            if parts.username is not None or parts.password is not None:
                # Every anonymous client would be given them in a Location header.
                raise usage.UsageError(
                    "--fallback-url has a user or password, which redirect mode would hand to every"
                    " client: use --fallback-mode proxy for an upstream that needs credentials"
                )
            return
        first = self["directories"][0]
        cache_dir = self["cache-dir"] or os.path.join(os.path.dirname(first), os.path.basename(first) + "-upstream-cache")
        self["cache-dir"] = cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
        real_cache = os.path.realpath(cache_dir)
        for directory in self["directories"]:
            real = os.path.realpath(directory)
            if os.path.commonpath([real, real_cache]) in (real, real_cache):
                # Cached upstream files would be served as local ones.
                raise usage.UsageError(
                    f"--cache-dir {cache_dir} overlaps the package directory {directory}; put it beside it"
                )
        self._ensure_directory(cache_dir, "--cache-dir")

    @staticmethod
    def _ensure_directory(directory: str, what: str = "package directory") -> None:
        if os.path.isdir(directory):
            return
        if os.path.lexists(directory):
            kind = "is a file, not a directory" if os.path.isfile(directory) else "is not a directory"
            raise usage.UsageError(f"{what} {directory} {kind}")
        try:
            os.makedirs(directory)
        except OSError as error:
            raise usage.UsageError(
                f"{what} {directory} is missing and cannot be created: {error.strerror}"
            ) from None
        log.info("created the package directory {directory}", directory=directory)

    def config(self) -> Config:
        """The settings these options describe."""
        return Config(
            directories=self["directories"],
            passwords=self["passwords"],
            authenticate=self["authenticate"],
            tokens=self["tokens"],
            permissions=self["permissions"],
            overwrite=bool(self["overwrite"]),
            fallback_url=None if self["disable-fallback"] else self["fallback-url"],
            welcome_html=self.get("welcome-html"),
            cache_control=self["cache-control"],
            hash_algo=self["hash-algo"],
            health_endpoint=self["health-endpoint"],
            max_upload_size=self["max-upload-size"],
            describe_cache=self["describe-cache"],
            fallback_mode=self["fallback-mode"],
            cache_dir=self["cache-dir"],
            upstream_ttl=self["upstream-ttl"],
            upstream_timeout=self["upstream-timeout"],
            header_timeout=self["header-timeout"],
            follow_symlinks=bool(self["follow-symlinks"]),
            access_log=not self["no-access-log"],
            file_cache_size=self["file-cache"],
            poll_interval=self["poll-interval"],
            base_path=self["server-base-url"],
        )


def _metadata_store(describe_cache: str | None):
    """
    Where core metadata is kept off the heap: beside the description cache,
    else in the system's temporary directory; L{None} (kept in memory) when
    neither can take a file.
    """
    from twistedpypi.index.metadatastore import MetadataStore

    directories = [os.path.dirname(describe_cache)] if describe_cache else []
    for directory in [*directories, None]:
        try:
            if directory is not None:
                os.makedirs(directory, exist_ok=True)
            return MetadataStore(directory)
        except OSError as error:
            log.warn(
                "cannot keep metadata in {directory}: {error}",
                directory=directory or "the temporary directory",
                error=error,
            )
    return None


class ServerService(service.MultiService):
    """
    The server's top service.  Added to twistd's application, it gives the
    application this server's log observer (see L{twistedpypi.process.twistdlog}).

    @param server_options: twistd's own options, if twistd runs the server.
    @param log_choices: what pypiserver's log flags asked for (a
        L{twistedpypi.process.twistdlog.LogChoices}), or L{None}.
    """

    def __init__(self, server_options=None, log_choices=None) -> None:
        super().__init__()
        self.server_options = server_options
        self.log_choices = log_choices

    def setServiceParent(self, parent) -> None:
        super().setServiceParent(parent)
        if self.server_options is not None and hasattr(parent, "setComponent"):
            from twistedpypi.process.twistdlog import LogChoices, give_twistd_this_log

            give_twistd_this_log(parent, self.server_options, self.log_choices or LogChoices())

    def privilegedStartService(self) -> None:
        from twistedpypi.process.listen import ListenRefused

        try:
            super().privilegedStartService()
        except ListenRefused as refusal:
            log.critical("{refusal}", refusal=str(refusal))
            if self.server_options is not None:
                # twistd removes its pid file and exits with status 1; the
                # user reads one line on standard error, not a traceback.
                _exit_with_one_line(refusal)
            raise


def _exit_with_one_line(error: Exception) -> None:
    """
    Make the coming end of the process by C{error} print only its message,
    on standard error, where Python would print its traceback.
    """
    previous = sys.excepthook

    def one_line(kind, value, traceback) -> None:
        if value is error:
            sys.__stderr__.write(f"twistd pypi: {error}\n")
        else:
            previous(kind, value, traceback)

    sys.excepthook = one_line


def _available_cores() -> int:
    """The processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def makeService(options: Options) -> service.IService:
    """
    Wire the index, the directory watcher and the web site together.
    """
    from twisted.internet import reactor

    from twistedpypi.process.memory import keep_large_blocks_apart
    from twistedpypi.process.openfiles import raise_open_file_limit

    keep_large_blocks_apart()
    raise_open_file_limit(reactor)
    config = options.config()
    server_options = getattr(options, "parent", None)
    # Cores this process may use besides the one it runs on: each of the
    # --workers processes describes its own index.
    spare_cores = _available_cores() // options["workers"] - 1
    early_listing = None
    if server_options is not None and spare_cores > 0:
        from twistedpypi.scan.listing import EarlyListing, link_roots

        # Under twistd, started first: it lists the package directories on
        # another core while this one imports the rest of the server.
        early_listing = EarlyListing.start(
            config.directories, link_roots(config.directories, config.follow_symlinks)
        )

    from twistedpypi.index.model import PackageIndex
    from twistedpypi.process.drain import DrainService, exit_cleanly_on_sigterm
    from twistedpypi.process.listen import ListeningService
    from twistedpypi.process.twistdlog import LogChoices, logs_to_stdout
    from twistedpypi.scan.watcher import PackageWatcher
    from twistedpypi.scan.workers import MAX_DESCRIBE_WORKERS
    from twistedpypi.uploads.publisher import UploadsService
    from twistedpypi.uploads.store import remove_stale_uploads
    from twistedpypi.web.site import make_site

    # Before listening: the leftovers of uploads a killed server was taking.
    for path in remove_stale_uploads(config.upload_directory):
        log.info("deleted an unfinished upload: {path}", path=path)
    log_choices = options["log-choices"]
    # Workers write to this process's standard output and error as they
    # are, unless its log goes to a file of its own too, which it then
    # writes for them: its log file, not theirs, is rotated.
    share_output = server_options is not None and logs_to_stdout(server_options) and log_choices.log_file is None
    if options["inherit-fd"] is not None and log_choices.log_file is not None:
        log_choices = LogChoices(verbosity=log_choices.verbosity)
    top = ServerService(server_options, log_choices)
    log.debug(
        "serving {directories} (uploads to {upload_directory}, -a {authenticate}), fallback {fallback} ({mode}),"
        " description cache {describe_cache}",
        directories=config.directories,
        upload_directory=config.upload_directory,
        authenticate=",".join(sorted(config.authenticate)) or ".",
        fallback=config.fallback_url or "off",
        mode=config.fallback_mode,
        describe_cache=config.describe_cache or "off",
    )
    index = PackageIndex(_metadata_store(config.describe_cache))
    watcher = PackageWatcher(
        index,
        config.directories,
        config.hash_algorithms,
        cache_path=config.describe_cache,
        follow_symlinks=config.follow_symlinks,
        describe_workers=min(MAX_DESCRIBE_WORKERS, spare_cores),
        early_listing=early_listing,
        use_inotify=config.poll_interval is None,
        poll_interval=config.poll_interval or DEFAULT_POLL_INTERVAL,
    )
    watcher.setServiceParent(top)
    upstream = None
    if config.fallback_mode == "proxy" and config.fallback_url:
        from twistedpypi.proxy.upstream import Upstream, UpstreamService

        upstream = Upstream(config.fallback_url, config.cache_dir, config.upstream_ttl, config.upstream_timeout)
        UpstreamService(upstream).setServiceParent(top)
    site = make_site(config, index, watcher, upstream)
    ListeningService(
        options["endpoint"],
        site,
        address=options["address"],
        inherited_fd=options["inherit-fd"],
        workers=options["workers"],
        # The same command line: with --inherit-fd, a worker starts no workers.
        worker_arguments=options["arguments"],
        share_output=share_output,
    ).setServiceParent(top)
    UploadsService(site.uploads.publisher).setServiceParent(top)
    # On stop, the port closes while this waits for requests in flight.
    DrainService(site.in_flight, site.open_connections).setServiceParent(top)
    exit_cleanly_on_sigterm()
    return top
