"""
The real clients the end-to-end tests drive: pip and uv, run as subprocesses.
"""

import os
import shutil
import subprocess
import sys

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def run(command, check=True, **kwargs):
    """Run a client; unless C{check} is false, fail the test if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, **kwargs)
    if check:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def uv() -> str:
    found = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")
    return found
