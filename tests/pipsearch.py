"""
C{pip search}, or the XML-RPC call it made where pip no longer has it.
"""

from __future__ import annotations

import subprocess
import sys
import xmlrpc.client

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def pip_has_search() -> bool:
    """Whether this pip still has the search command (newer pips may not)."""
    return subprocess.run([*PIP, "search", "--help"], capture_output=True).returncode == 0


def pip_search(index_url: str, term: str) -> str:
    """
    The output of C{pip search -i URL term}; where pip no longer has the
    command, the same XML-RPC call pip made, printed in pip's layout.
    """
    if pip_has_search():
        result = subprocess.run([*PIP, "search", "-i", index_url, term], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout
    hits = xmlrpc.client.ServerProxy(index_url).search({"name": [term], "summary": [term]}, "or")
    return "".join(f"{hit['name']} ({hit['version']})  - {hit['summary']}\n" for hit in hits)
