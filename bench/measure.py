"""
The client side: reading a server's pages for file links and ETags, wrk runs over
lists of URLs, large downloads and uploads with curl, timed pip / uv installs, and
how soon a file dropped into the package directory is listed.
Each is bounded in time and returns plain numbers.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from corpus import minimal_wheel


@dataclass
class WrkResult:
    """What one wrk run reports: throughput and how many answers were not 2xx/3xx."""

    requests_per_second: float
    requests: int
    errors: int


LUA = """\
local paths = {paths}
local etags = {etags}
local requests = {{}}
local i = 0

function init(args)
  for n, path in ipairs(paths) do
    local headers = {headers}
    if etags[n] then headers["If-None-Match"] = etags[n] end
    requests[n] = wrk.format("GET", path, headers)
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
"""


ACCEPTS_GZIP = {"Accept-Encoding": "gzip"}
"""The benchmark's usual request headers: gzip accepted, as pip and uv do."""

PIP_HEADERS = {
    "Accept-Encoding": "gzip, deflate",
    "Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
}
"""What pip sends with each index page request (pip 23 and later)."""


def _lua_table(headers: dict[str, str]) -> str:
    """A Lua table literal of ASCII header names and values."""
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def _lua_list(strings: list[str]) -> str:
    """A Lua table literal of ASCII strings (a JSON string is then a valid Lua string)."""
    return "{" + ",\n".join(json.dumps(s, ensure_ascii=True) for s in strings) + "}"


def wrk(
    wrk_binary: str,
    url: str,
    paths: list[str],
    duration: int,
    scratch: Path,
    etags: list[str] | None = None,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """
    Drive C{url} with one wrk thread and C{connections} connections for C{duration}
    seconds, cycling through C{paths} (each with its C{If-None-Match}, if given).

    @param headers: the request headers of every request; by default
        L{ACCEPTS_GZIP}.
    """
    script = scratch / "cycle.lua"
    script.write_text(LUA.format(paths=_lua_list(paths), etags=_lua_list(etags or []),
                                 headers=_lua_table(ACCEPTS_GZIP if headers is None else headers)))
    done = subprocess.run(
        [wrk_binary, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or not rps:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in socket.groups()) if socket else 0
    return WrkResult(float(rps.group(1)), int(total.group(1)), errors)


def answers_not_modified(url: str, tag: str) -> bool:
    """Whether a conditional GET with C{tag} gets a 304 back."""
    request = urllib.request.Request(url, headers={"If-None-Match": tag})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return False
    except urllib.error.HTTPError as error:
        return error.code == 304


def _get(url: str) -> tuple[str, str | None]:
    """The body and ETag of one page."""
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read().decode("utf-8", "replace"), response.headers.get("ETag")


def file_paths(url: str, project: str, filenames: list[str]) -> list[str]:
    """
    The download path of every file, from where C{project}'s page links its files.

    One page tells the prefix; reading every page would take pypiserver, whose
    project pages cost O(all files), tens of minutes on a large corpus.
    """
    body, _ = _get(f"{url}/simple/{project}/")
    link = re.search(r'href="([^"#]+)', body)
    if not link:
        raise RuntimeError(f"{url}/simple/{project}/ links no file")
    path = urllib.parse.urlsplit(urllib.parse.urljoin(f"{url}/simple/{project}/", link.group(1))).path
    prefix = path.rsplit("/", 1)[0] + "/"
    return [prefix + urllib.parse.quote(name) for name in filenames]


def etags(url: str, pages: list[str]) -> list[str] | None:
    """Every page's ETag, or None if the server does not answer 304 to its own ETag."""
    tags = []
    for page in pages:
        _, tag = _get(url + page)
        if tag is None:
            return None
        tags.append(tag)
    return tags if answers_not_modified(url + pages[0], tags[0]) else None


@dataclass
class Transfer:
    """One curl transfer: the HTTP status and the bytes per second it ran at."""

    status: int
    bytes_per_second: float


def _curl(argv: list[str], timeout: float) -> Transfer:
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", str(int(timeout)), *argv],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
    )
    match = re.fullmatch(r"(\d+) ([\d.]+)", done.stdout.strip())
    if not match:
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stdout}{done.stderr}")
    return Transfer(int(match.group(1)), float(match.group(2)))


def download(url: str, timeout: float = 600) -> Transfer:
    """GET C{url} to /dev/null."""
    return _curl(["-w", "%{http_code} %{speed_download}", url], timeout)


def upload(url: str, path: Path, name: str, version: str, sha256: str, timeout: float = 600) -> Transfer:
    """
    POST C{path} the way twine does (multipart, C{:action=file_upload}), streamed by
    curl from disk. C{Expect: 100-continue} is turned off, as twine's requests sends none.
    """
    filename = f"{name}-{version}.tar.gz"
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "sdist",
        "pyversion": "source",
        "sha256_digest": sha256,
    }
    form = [arg for key, value in fields.items() for arg in ("--form-string", f"{key}={value}")]
    return _curl(
        ["-H", "Expect:", *form, "-F", f"content=@{path};filename={filename}",
         "-w", "%{http_code} %{speed_upload}", url + "/"],
        timeout,
    )


def install_chain(tool: list[str], index_url: str, first: str, expected: int, timeout: float = 600) -> float:
    """
    Install C{first} and its whole dependency chain into an empty target directory.

    The user's pip and uv configuration (this machine adds find-links and extra
    indexes) is left out so that only the server under test is asked.

    @param tool: C{pip} or C{uv} argv up to the arguments this function adds.
    @return: seconds taken.
    @raise RuntimeError: if the install fails or installs fewer than C{expected}
        distributions.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    with tempfile.TemporaryDirectory(prefix="chain-") as target:
        started = time.monotonic()
        done = subprocess.run(
            [*tool, "--index-url", index_url, "--target", target, first],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        elapsed = time.monotonic() - started
        installed = len(list(Path(target).glob("*.dist-info")))
    if done.returncode != 0 or installed != expected:
        raise RuntimeError(
            f"{tool[0]} installed {installed}/{expected} (exit {done.returncode}): "
            f"{done.stderr.strip()[-500:]}"
        )
    return elapsed


def pip_command() -> list[str]:
    """pip, without a cache, as the argv prefix L{install_chain} wants."""
    return [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-input",
            "--disable-pip-version-check"]


def uv_command(uv: str) -> list[str]:
    """uv, without a cache or configuration, installing for this Python."""
    return [uv, "pip", "install", "--no-cache", "--no-config", "--python", sys.executable]


def new_file_latency(url: str, packages: Path, staging: Path, project: str, count: int, timeout: float = 30) -> list[float]:
    """
    How long a server takes to list a file dropped into its package directory.

    For each of C{count} new versions of C{project}, a wheel is written to
    C{staging} (beside C{packages}, on the same filesystem), then hard-linked
    (odd versions, as C{cp -l} or C{mv} would) or copied (even versions: written,
    then closed) into C{packages}, and the project's page is fetched back to back
    until it links the file. A first, untimed version creates the project.

    @return: the seconds each timed version took to appear, in order.
    @raise RuntimeError: if one is not listed within C{timeout} seconds.
    """
    staging.mkdir(parents=True, exist_ok=True)
    page = f"{url}/simple/{project}/"
    took = []
    for n in range(count + 1):
        name, data = minimal_wheel(project, f"1.{n}")
        (staging / name).write_bytes(data)
        started = time.monotonic()
        if n % 2:
            os.link(staging / name, packages / name)
        else:
            shutil.copyfile(staging / name, packages / name)
        while name not in _page_or_nothing(page):
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name} was not listed on {page} within {timeout:.0f} s")
            time.sleep(0.001)
        if n:
            took.append(time.monotonic() - started)
    return took


def _page_or_nothing(url: str) -> str:
    """A page's body, or "" while it is an error (a project not listed yet is a 404)."""
    try:
        return _get(url)[0]
    except urllib.error.HTTPError:
        return ""
