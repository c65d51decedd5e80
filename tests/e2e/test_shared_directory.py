"""
End to end: several nodes on one package directory, each the real
C{twistd -n pypi} named by C{TWISTEDPYPI_NODE_NAME} as if on its own host.
A starting node reclaims only its own node's unfinished uploads: another
node's, even one bearing a dead process id or its own, are left to it.
Nodes started as containers are, each as process 1 of its own process id
namespace (C{unshare}).  Loopback only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.forms import BOUNDARY, fetch, upload_form
from tests.server import ServerProcess
from tests.waiting import until

OPEN = ("-P", ".", "-a", ".", "--disable-fallback")


def node(name):
    return {"TWISTEDPYPI_NODE_NAME": name}


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class ContainedServer(ServerProcess):
    """C{twistd -n pypi} as process 1 of a process id namespace of its own, as in a container."""

    def command(self):
        return ["unshare", "--pid", "--fork", "--kill-child=SIGTERM", *super().command()]

    def stop(self):
        """Stop the server: C{unshare} passes no signal on, so signal its child."""
        if self.process is not None and self.process.poll() is None:
            pid = self.process.pid
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                for child in children.read().split():
                    os.kill(int(child), signal.SIGTERM)
        super().stop()


def can_unshare():
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def start_container(tmp_path):
    """Start L{ContainedServer}s; stopped after the test."""
    if not can_unshare():
        pytest.skip("unshare --pid is not allowed here")
    servers = []

    def start(*arguments, env=None):
        server = ContainedServer(list(arguments), tmp_path, env=env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith(".upload-"))


def test_a_start_deletes_its_own_nodes_dead_upload_and_keeps_another_nodes(start_server, packages):
    gone = dead_pid()
    others = [f".upload-node-b_{pid}-abcd1234.tmp" for pid in (os.getpid(), gone, 1)]
    own = f".upload-node-a_{gone}-abcd1234.tmp"
    for name in [*others, own]:
        (packages / name).write_bytes(b"half an upload")
    server = start_server(*OPEN, str(packages), env=node("node-a"))
    assert temporaries(packages) == sorted(others)
    assert f"deleted an unfinished upload: {packages / own}" in server.log()


def test_a_node_starting_while_another_receives_an_upload_leaves_that_upload_alone(start_container, packages):
    # Both are process 1: only the node's name tells their uploads apart.
    first = start_container(*OPEN, str(packages), env=node("node-a"))
    data = os.urandom(4 * 1024 * 1024)
    body = upload_form("demo-1.0.tar.gz", data)
    with socket.create_connection(("127.0.0.1", first.port), timeout=30) as connection:
        connection.sendall(
            (
                "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        assert until(lambda: temporaries(packages))
        [receiving] = temporaries(packages)
        assert receiving.startswith(".upload-node-a_1-")

        second = start_container(*OPEN, str(packages), env=node("node-b"))
        assert temporaries(packages) == [receiving]
        assert "deleted an unfinished upload" not in second.log()

        connection.sendall(body[len(body) // 2 :])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert (packages / "demo-1.0.tar.gz").read_bytes() == data
    assert temporaries(packages) == []
    # The other node, watching the same directory, lists it too.
    assert until(lambda: b"demo-1.0.tar.gz" in fetch(second.url + "/simple/demo/")[1])
