"""
The machine the benchmark runs on: what it is, and what its processes use, read
from /proc. On a shared machine, other processes' CPU use is what makes numbers noisy.
"""

import os
import platform
import re
import time
from pathlib import Path


def describe() -> str:
    """One line describing the CPU, cores, memory and OS the numbers come from."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.platform()}"


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the parenthesised command: [state, ppid, ...]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """C{root} and all its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kib(pids: list[int]) -> int:
    """The resident memory of these processes together, in KiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
    return total


def cpu_seconds(pids: list[int], reaped_children: bool = False) -> float:
    """
    The user + system CPU time these processes have used, and with
    C{reaped_children} also that of the children they have waited for.
    """
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if reaped_children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """
    How many cores' worth of CPU processes outside this benchmark used while the
    block ran: on a shared machine, the sign that its numbers are noisy.
    """

    def __init__(self) -> None:
        self.cores = 0.0

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        # /proc/stat's first line: cpu user nice system idle ... Interrupt time is left
        # out: it is the loopback traffic the benchmark itself makes, billed to no process.
        user, nice, system = (int(n) for n in Path("/proc/stat").read_text().split(maxsplit=4)[1:4])
        busy = (user + nice + system) / os.sysconf("SC_CLK_TCK")
        return time.monotonic(), busy, cpu_seconds(process_tree(os.getpid()), reaped_children=True)

    def __enter__(self) -> "OtherLoad":
        self._start = self._sample()
        return self

    def __exit__(self, *exc_info) -> None:
        end = self._sample()
        wall, busy, own = (b - a for a, b in zip(self._start, end))
        self.cores = max(0.0, busy - own) / wall if wall > 0 else 0.0


def wait_for_quiet(limit: float, window: float = 3) -> float:
    """
    Wait, up to C{limit} seconds, for a C{window} in which other processes use
    under 0.2 cores.

    @return: the other processes' load in the last window, in cores.
    """
    deadline = time.monotonic() + limit
    while True:
        with OtherLoad() as other:
            time.sleep(window)
        if other.cores < 0.2 or time.monotonic() >= deadline:
            return other.cores
