"""
Install the tools the benchmark drives, when they are missing: wrk and nginx from
Debian, pypiserver and uv into a throwaway virtualenv kept in the cache directory.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

PYPISERVER_REQUIREMENTS = ["pypiserver[cache]==2.4.2", "waitress"]

_apt_updated = False


def apt_tool(command: str, package: str) -> str:
    """The path of C{command}, installing Debian's C{package} first if it is missing."""
    global _apt_updated
    found = shutil.which(command)
    if found:
        return found
    print(f"installing {package} with apt-get ...", flush=True)
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
        _apt_updated = True
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        timeout=600,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if not found:
        raise SystemExit(f"apt-get installed {package} but {command} is still not on PATH")
    return found


def bench_venv(cache: Path) -> Path:
    """
    The virtualenv holding pypiserver (with its watchdog cache and waitress), and uv
    when it is not on PATH.

    @return: the venv's C{bin} directory.
    """
    venv = cache / "venv"
    bin_dir = venv / "bin"
    wanted = PYPISERVER_REQUIREMENTS + ([] if shutil.which("uv") else ["uv"])
    if (bin_dir / "pypi-server").exists() and (shutil.which("uv") or (bin_dir / "uv").exists()):
        return bin_dir
    print(f"installing {' '.join(wanted)} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", *wanted],
        check=True,
        timeout=900,
    )
    return bin_dir


def uv_tool(bin_dir: Path) -> str:
    """uv from PATH, else the copy in the benchmark's virtualenv."""
    return shutil.which("uv") or str(bin_dir / "uv")


def versions(bin_dir: Path, uv: str, wrk: str, nginx: str | None) -> dict[str, str]:
    """The version of every tool and server in the comparison, for the report."""

    def output(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        found = re.search(r"\d+\.\d+[\w.+-]*", done.stdout + done.stderr)
        return found.group(0) if found else "unknown"

    found = {
        "pypiserver": output(str(bin_dir / "pypi-server"), "--version"),
        "waitress": output(str(bin_dir / "python"), "-c", "import importlib.metadata as m; print(m.version('waitress'))"),
        "twisted": output(sys.executable, "-c", "import twisted; print(twisted.__version__)"),
        "pip": output(sys.executable, "-m", "pip", "--version").split(" from ")[0],
        "uv": output(uv, "--version"),
        "wrk": output(wrk, "-v"),
    }
    if nginx:
        found["nginx"] = output(nginx, "-v")
    return found
