"""
The checks of the guard-rail suite (L{tests.e2e.test_guardrails}): send one raw
request to a running server over a plain socket, read what comes back, and
list every way the server's answer, or its state afterwards, breaks a
guard rail.

A guard rail is a property that holds whatever a client sends: the answer
is well formed, quick, bounded in size by the request and the largest file,
quotes nothing of the request in its status line, and leaves the server
answering, not leaking memory, requests in flight or errors in its log.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

CANARY = "xq9k"
"""
Put into every unusual value a hostile request carries, so a status line
that quotes the request is found by looking for it.
"""

INJECTED_HEADER = b"x-injected"
"""The header a CR/LF payload tries to add to the response."""

ANSWER_SECONDS = 2.0
"""How long a whole answer (or a clean close) may take."""

WAITING_SECONDS = 1.0
"""
How long a request that may leave the server legitimately waiting for more
of its body (a chunk size larger than what follows) is given to be
answered, before it is abandoned and only a clean close is asked for.
"""

HEALTH_SECONDS = 0.25
"""
How long C{/health} may take while a hostile request is being answered.  A
server that answers health in 1-5 ms needs far less; the margin is for a
2-core CI machine whose other jobs take the CPU now and then.  A reactor
kept busy by one request (a range list expanded byte by byte, a response
built whole in memory) takes seconds.
"""

RSS_GROWTH_LIMIT = 100 * 1024 * 1024
"""How much the server's resident memory may grow over the whole run."""

RESPONSE_SLACK = 64 * 1024
"""Bytes an answer may carry beyond twice the largest file (error pages, headers)."""

_LOG_ALARMS = re.compile(r"Unhandled|CRITICAL|Traceback \(most recent call last\)")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5]\d\d)(?: ([\t\x20-\x7e]*))?")
_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FRAMING_REFUSALS = {400, 411, 413, 431, 501}
"""Answers that refuse a request's framing; a 401 or a 200 means it was acted on."""
_ALLOWED_5XX = {501, 505}
"""5xx answers a hostile request may get: a method or version not implemented."""


@dataclass
class HostileRequest:
    """
    One raw request and what to expect of it.

    @ivar raw: the bytes sent, exactly.
    @ivar may_wait: whether the server may wait for more body than was sent
        (the request's own framing asks for it); then no answer within
        L{WAITING_SECONDS} is not a failure, provided the server lets go of
        the request once the client closes.
    @ivar refuse: whether the request's framing is invalid (RFC 9112 6), so
        that it must be refused (400, 411, 413, 431, 501, or a close), never
        acted on.
    """

    raw: bytes
    may_wait: bool = False
    refuse: bool = False

    @property
    def method(self) -> bytes:
        """The method, as the server should read it."""
        return self.raw.split(b" ", 1)[0]


@dataclass
class Answer:
    """What the server sent back for one L{HostileRequest}."""

    buffer: bytearray = field(default_factory=bytearray)
    head: bytes = b""
    status: int | None = None
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    seconds: float = 0.0
    closed_without_answer: bool = False
    still_waiting: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def received(self) -> bytes:
        """Every byte the server sent on the connection."""
        return bytes(self.buffer)


class Malformed(Exception):
    """The server's answer is not well-formed HTTP."""


class Server:
    """
    The server process under test, seen from outside: its port, process
    id, log file and the state the checks compare against.
    """

    def __init__(self, port: int, pid: int, log_path: Path, largest_file: int) -> None:
        self.port = port
        self.pid = pid
        self.log_path = log_path
        self.largest_file = largest_file
        self.log_offset = log_path.stat().st_size
        self.baseline_rss = rss_bytes(pid)
        self.peak_rss = self.baseline_rss

    def connect(self, timeout: float) -> socket.socket:
        """A new connection to the server."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def new_log_alarms(self) -> list[str]:
        """The log lines since the last call that tell of an unhandled error."""
        with open(self.log_path, "rb") as stream:
            stream.seek(self.log_offset)
            text = stream.read()
        # Only whole lines: the rest is read next time.
        cut = text.rfind(b"\n") + 1
        self.log_offset += cut
        lines = text[:cut].decode("utf-8", "replace").splitlines()
        alarms = []
        for number, line in enumerate(lines):
            if _LOG_ALARMS.search(line):
                # With the traceback's last lines: the error itself.
                following = lines[number + 1 : number + 40]
                ends = [i for i, later in enumerate(following) if later and not later[0].isspace()]
                tail = following[: ends[0]] if ends else following
                alarms.append("\n      ".join([line, *tail[-3:]]))
        return alarms


def rss_bytes(pid: int) -> int:
    """The resident memory of process C{pid}, from C{/proc/PID/status}."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _recv_until(sock: socket.socket, buffer: bytearray, needed, deadline: float) -> bool:
    """
    Receive into C{buffer} until C{needed(buffer)} holds; C{False} if the
    connection closed first.  Raises L{TimeoutError} at C{deadline}.
    """
    while not needed(buffer):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            raise TimeoutError from None
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        buffer += chunk
    return True


def _parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise Malformed(f"status line does not parse: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise Malformed(f"header line does not parse: {line!r}")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise Malformed(f"header value holds a control character: {line!r}")
        headers.append((name.lower(), value.strip()))
    return int(match.group(1)), match.group(2) or b"", headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


def _read_body(sock, buffer: bytearray, start: int, method: bytes, status: int, headers, deadline) -> int:
    """
    Read the body of the answer whose head ends at C{start} of C{buffer};
    return where the answer ends.
    """
    if method == b"HEAD" or status in (204, 304):
        return start
    encodings = _header(headers, b"transfer-encoding")
    lengths = _header(headers, b"content-length")
    if encodings:
        if encodings[-1].lower().split(b",")[-1].strip() != b"chunked":
            raise Malformed(f"transfer-encoding without chunked last: {encodings!r}")
        if lengths:
            raise Malformed("both content-length and transfer-encoding")
        position = start
        while True:
            if not _recv_until(sock, buffer, lambda b: b.find(b"\r\n", position) >= 0, deadline):
                raise Malformed("closed within a chunked body")
            end = buffer.index(b"\r\n", position)
            try:
                size = int(bytes(buffer[position:end]).split(b";")[0], 16)
            except ValueError:
                raise Malformed(f"bad chunk size {bytes(buffer[position:end])!r}") from None
            position = end + 2
            if size == 0:
                # Trailers, then an empty line.
                while True:
                    if not _recv_until(sock, buffer, lambda b: b.find(b"\r\n", position) >= 0, deadline):
                        raise Malformed("closed within chunked trailers")
                    end = buffer.index(b"\r\n", position)
                    line_empty = end == position
                    position = end + 2
                    if line_empty:
                        return position
            if not _recv_until(sock, buffer, lambda b: len(b) >= position + size + 2, deadline):
                raise Malformed("closed within a chunk")
            position += size + 2
    if lengths:
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise Malformed(f"bad content-length {lengths!r}")
        end = start + int(lengths[0])
        if not _recv_until(sock, buffer, lambda b: len(b) >= end, deadline):
            raise Malformed(f"closed after {len(buffer) - start} of {int(lengths[0])} body bytes")
        return end
    # Delimited by the close.
    _recv_until(sock, buffer, lambda b: False, deadline)
    return len(buffer)


def _read_answer(sock: socket.socket, request: HostileRequest, answer: Answer, deadline: float) -> None:
    buffer = answer.buffer
    position = 0
    while True:
        found = _recv_until(sock, buffer, lambda b: b.find(b"\r\n\r\n", position) >= 0, deadline)
        if not found:
            if len(buffer) == position:
                answer.closed_without_answer = position == 0
                return
            raise Malformed(f"closed within the answer's head: {bytes(buffer[position:])[:300]!r}")
        end = buffer.index(b"\r\n\r\n", position)
        head = bytes(buffer[position:end])
        status, reason, headers = _parse_head(head)
        answer.head, answer.status, answer.reason, answer.headers = head, status, reason, headers
        position = end + 4
        if status >= 200:
            break
        # 100 Continue and the like: the final answer follows.
    _read_body(sock, buffer, position, request.method, status, headers, deadline)
    # Whatever else already arrived (a second answer, for a request the
    # server read as two) counts too.
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(262144)
            if not chunk:
                break
            buffer += chunk
    except (BlockingIOError, ConnectionResetError):
        pass


def probe_health(server: Server) -> tuple[float, bytes]:
    """Seconds C{GET /health} takes on a new connection, and its status line."""
    started = time.monotonic()
    with server.connect(timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        buffer = bytearray()
        try:
            _recv_until(sock, buffer, lambda b: b"\r\n" in b, started + 5)
        except TimeoutError:
            return time.monotonic() - started, b"(no answer within 5 s)"
    return time.monotonic() - started, bytes(buffer).split(b"\r\n", 1)[0]


_IN_FLIGHT = re.compile(rb"^twistedpypi_http_requests_in_flight (\d+)(?:\.0)?$", re.MULTILINE)


def requests_in_flight(server: Server) -> int:
    """The in-flight gauge of C{/metrics}, less the scrape itself."""
    with server.connect(timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        buffer = bytearray()
        _recv_until(sock, buffer, lambda b: False, time.monotonic() + 5)
    match = _IN_FLIGHT.search(bytes(buffer))
    if match is None:
        raise RuntimeError(f"/metrics has no in-flight gauge: {bytes(buffer)[:300]!r}")
    return int(match.group(1)) - 1


def check(server: Server, request: HostileRequest) -> Answer:
    """
    Send C{request} on a new connection and check every guard rail; the
    problems found are in the answer's C{problems}.
    """
    answer = Answer()
    problems = answer.problems
    # Compared with what was in flight before, so that one leak is blamed
    # on the request that made it, not on every request after it.
    try:
        in_flight_before = requests_in_flight(server)
    except (OSError, TimeoutError, RuntimeError) as error:
        problems.append(f"the server does not answer /metrics even before this request: {error!r}")
        return answer
    sock = server.connect(timeout=ANSWER_SECONDS)
    started = time.monotonic()
    try:
        try:
            sock.sendall(request.raw)
        except (BrokenPipeError, ConnectionResetError):
            # The server refused early and closed; its answer may still be
            # there to read.
            pass
        health_seconds, health_status = probe_health(server)
        if health_seconds > HEALTH_SECONDS or b" 200 " not in health_status + b" ":
            problems.append(
                f"/health took {health_seconds * 1000:.0f} ms ({health_status!r}) while this request"
                f" was being answered (limit {HEALTH_SECONDS * 1000:.0f} ms)"
            )
        wait = WAITING_SECONDS if request.may_wait else ANSWER_SECONDS
        try:
            _read_answer(sock, request, answer, started + wait)
        except TimeoutError:
            if request.may_wait and answer.status is None:
                answer.still_waiting = True
            else:
                problems.append(f"no whole answer (nor a close) within {wait} s")
        except Malformed as error:
            problems.append(f"malformed answer: {error}")
        answer.seconds = time.monotonic() - started
    finally:
        sock.close()
    if answer.status is not None:
        if answer.status >= 500 and answer.status not in _ALLOWED_5XX:
            problems.append(f"server error {answer.status}")
        if CANARY.encode() in answer.reason.lower() or any(
            byte in answer.reason for byte in b"\r\n\0"
        ):
            problems.append(f"the status line quotes the request: {answer.reason!r}")
        if any(name == INJECTED_HEADER for name, _ in answer.headers):
            problems.append("a header of the request's making is in the answer")
        if request.refuse and answer.status not in _FRAMING_REFUSALS:
            problems.append(f"a request with invalid framing was answered {answer.status}, not refused")
    elif request.refuse and answer.still_waiting:
        problems.append("a request with invalid framing was not refused: the server waits for its body")
    limit = 2 * server.largest_file + RESPONSE_SLACK + 8 * len(request.raw)
    declared = [int(v) for v in _header(answer.headers, b"content-length") if v.isdigit()]
    if len(answer.buffer) > limit or any(size > limit for size in declared):
        problems.append(
            f"{len(answer.buffer)} bytes sent back (Content-Length: {declared}), more than the {limit} allowed"
        )
    # The server lets go of the request once its client has gone.
    deadline = time.monotonic() + 3
    try:
        in_flight = requests_in_flight(server)
        while in_flight > in_flight_before and time.monotonic() < deadline:
            time.sleep(0.02)
            in_flight = requests_in_flight(server)
    except (OSError, TimeoutError) as error:
        problems.append(f"/metrics did not answer after this request: {error!r}")
        in_flight = in_flight_before
    if in_flight > in_flight_before:
        problems.append(
            f"the in-flight gauge went from {in_flight_before} to {in_flight}, and stayed there 3 s"
            " after the connection closed"
        )
    try:
        rss = rss_bytes(server.pid)
    except FileNotFoundError:
        problems.append("the server process has exited")
        return answer
    server.peak_rss = max(server.peak_rss, rss)
    if rss - server.baseline_rss > RSS_GROWTH_LIMIT:
        problems.append(
            f"server memory grew by {(rss - server.baseline_rss) >> 20} MiB since the suite started"
        )
    alarms = server.new_log_alarms()
    if alarms:
        problems.append(
            "the server logged an error during or after this request (an 'Unhandled error in Deferred'"
            " is logged when the Deferred is collected, maybe after an earlier request's):\n    "
            + "\n    ".join(alarms[:20])
        )
    return answer


def report(request: HostileRequest, answer: Answer) -> str:
    """A failure message that lets a developer send the very same request."""
    shown = request.raw if len(request.raw) <= 3000 else request.raw[:1500] + b"[...]" + request.raw[-1500:]
    lines = [
        "guard rails broken:",
        *(f"  - {problem}" for problem in answer.problems),
        f"request ({len(request.raw)} bytes; reproduce with"
        " socket.create_connection(...).sendall(raw)):",
        f"  raw = {shown!r}",
    ]
    if answer.status is not None:
        lines.append(f"answer head ({answer.seconds:.3f} s, {len(answer.buffer)} bytes received):")
        lines.append(f"  {answer.head[:3000]!r}")
    elif answer.closed_without_answer:
        lines.append("the server closed the connection without an answer")
    elif answer.still_waiting:
        lines.append("the server was still waiting for more of the request")
    return "\n".join(lines)
