"""
The server killed outright (SIGKILL) and started again: every file is still
there, byte for byte, and served with the same hashes.
"""

import hashlib
import json
import os
import urllib.request

from tests.distributions import sdist_bytes, wheel_bytes, write


def fetch(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def served_files(server, project: str) -> dict[str, str]:
    """Each file's advertised sha256, after checking the bytes served match it."""
    document = json.loads(fetch(f"{server.url}/simple/{project}/", "application/vnd.pypi.simple.v1+json"))
    hashes = {}
    for entry in document["files"]:
        data = fetch(f"{server.url}/packages/{entry['filename']}")
        assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
        hashes[entry["filename"]] = entry["hashes"]["sha256"]
    return hashes


def test_after_sigkill_and_restart_every_file_is_intact_and_served(packages, start_server):
    for version in ("1.0", "1.1", "2.0"):
        write(packages, wheel_bytes("sturdy", version))
        write(packages, sdist_bytes("sturdy", version))
    on_disk = {name: hashlib.sha256((packages / name).read_bytes()).hexdigest() for name in os.listdir(packages)}
    arguments = ("-P", ".", "-a", ".", "--disable-fallback", str(packages))

    first = start_server(*arguments)
    assert served_files(first, "sturdy") == on_disk
    first.process.kill()
    first.process.wait(10)

    second = start_server(*arguments)
    assert served_files(second, "sturdy") == on_disk
    # Nothing was added to or left in the package directory.
    assert sorted(os.listdir(packages)) == sorted(on_disk)
