"""
--workers: several processes serve one port, each with its own index.
"""

import os
import shutil
import socket
import subprocess
import time
import urllib.request

from tests.distributions import wheel_bytes, write
from tests.server import REPO, WITH_TWO_WORKERS, ServerProcess, listening_sockets


def stat_fields(pid: int) -> list[str]:
    """The fields of C{/proc/PID/stat} after the command name: state, parent, ..."""
    with open(f"/proc/{pid}/stat") as stream:
        return stream.read().rsplit(")", 1)[1].split()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = stat_fields(int(entry))
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def has_ended(pid: int) -> bool:
    """Whether process C{pid} is gone, or a zombie."""
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return True


def wait_until_ended(pid: int, seconds: float, why: str) -> None:
    deadline = time.monotonic() + seconds
    while not has_ended(pid):
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process C{pid} holds open."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def serve_with_two_workers(start_server, packages):
    """A server with C{--workers 2}, once both processes listen; and its worker's pid."""
    server = start_server(*WITH_TWO_WORKERS, str(packages))
    deadline = time.monotonic() + 20
    while len(listening_sockets(server.port)) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    (worker,) = children_of(server.process.pid)
    return server, worker


def test_workers_share_the_port_and_all_see_new_files(packages, start_server, tmp_path):
    write(packages, wheel_bytes("early", "1.0"))
    server, worker = serve_with_two_workers(start_server, packages)

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
    wait_until_ended(worker, 10, "the worker outlived the server")


def test_each_worker_has_its_own_socket_and_a_burst_of_connections_reaches_all(packages, start_server):
    write(packages, wheel_bytes("demo", "1.0"))
    server, worker = serve_with_two_workers(start_server, packages)
    first, second = sockets_of(server.process.pid), sockets_of(worker)
    listening = listening_sockets(server.port)
    assert len(listening & first) == len(listening & second) == 1
    assert not listening & first & second

    # 32 connections at once, as wrk or a CI farm opens them: each process
    # gets some, not whichever woke first all of them.
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(32)]
    try:
        for connection in connections:
            connection.sendall(b"GET /simple/ HTTP/1.1\r\nHost: test\r\n\r\n")
        for connection in connections:
            assert connection.recv(12) == b"HTTP/1.1 200"
        held = [len(sockets_of(pid) - listening) - len(before - listening)
                for pid, before in ((server.process.pid, first), (worker, second))]
        assert sum(held) == 32 and min(held) > 0, held
    finally:
        for connection in connections:
            connection.close()


def test_a_second_server_with_workers_finds_the_port_in_use(packages, start_server, tmp_path):
    first, _ = serve_with_two_workers(start_server, packages)
    second = ServerProcess([*WITH_TWO_WORKERS, str(packages)], tmp_path / "second")
    second.port = first.port
    # Run to its end: its /health would be answered by the first server.
    ended = subprocess.run(second.command(), capture_output=True, text=True, timeout=60, cwd=REPO, env=second.env)
    assert "Address already in use" in ended.stdout + ended.stderr
    held = sockets_of(first.process.pid).union(*(sockets_of(child) for child in children_of(first.process.pid)))
    assert listening_sockets(first.port) <= held  # nobody else joined the port


def test_workers_end_with_the_first_process_however_it_ends(packages, start_server):
    server, worker = serve_with_two_workers(start_server, packages)
    server.process.kill()  # SIGKILL: no chance to stop its workers
    server.process.wait()
    wait_until_ended(worker, 15, "the worker outlived the first process")
    assert listening_sockets(server.port) == set()
