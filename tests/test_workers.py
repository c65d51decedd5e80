"""
--workers: several processes serve one port, each with its own index.
"""

import os
import shutil
import time
import urllib.request

from tests.distributions import wheel_bytes, write


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    fields = stream.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def test_workers_share_the_port_and_all_see_new_files(packages, start_server, tmp_path):
    write(packages, wheel_bytes("early", "1.0"))
    server = start_server("-P", ".", "-a", ".", "--disable-fallback", "--workers", "2", str(packages))
    deadline = time.monotonic() + 20
    while len(children_of(server.process.pid)) < 1:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    worker = children_of(server.process.pid)[0]

    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy(write(staging, wheel_bytes("late", "1.0")), packages)
    time.sleep(1.0)
    # Every answer, whichever process gives it, knows both projects.
    for _ in range(40):
        with urllib.request.urlopen(server.url + "/simple/") as response:
            page = response.read()
        assert b"early/" in page and b"late/" in page

    # Each worker starts no workers of its own.
    assert children_of(worker) == []
    server.stop()
    # Each process writes its own access lines to the shared output, as
    # they are: none is lost, none is relayed through the first process.
    log = server.log()
    assert log.count('"GET /simple/ HTTP/1.1" 200') >= 40, log
    assert not [line for line in log.splitlines() if "[worker" in line and "twistedpypi.access" in line]
    # twistd ends by re-raising the SIGTERM it handled.
    assert server.process.returncode in (0, -15), server.log()
    assert "Server Shut Down" in server.log()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{worker}") and open(f"/proc/{worker}/stat").read().split()[2] != "Z":
        assert time.monotonic() < deadline, "the worker outlived the server"
        time.sleep(0.1)
