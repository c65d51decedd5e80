"""
Project pages through the shipped replicas configuration (nginx with its
micro-cache in front of twistedpypi nodes on one package directory) against
nginx serving a pre-rendered tree of the same pages, and how soon an upload
through nginx is listed through nginx: the replicas rows of issue #21.

usage: python bench/replicas.py [--projects 1000] [--versions 10] [--duration 5] [--rounds 3]
                                [--nodes 2] [--uploads 5] [--ours-src DIR]

The nodes run C{twistd pypi --watch poll} on one hard-linked copy of the
corpus, each with its own description cache, behind nginx running
init/nginx-replicas-test.conf.template (the locations of
init/nginx-replicas.conf). Both nginx have one worker. wrk (C{-t1 -c32},
pip's C{Accept} and C{Accept-Encoding}) cycles through every project page,
the two sides in turn (A B A B ...), each side's figure the median of its
runs. Then C{--uploads} sdists of one new project are uploaded through nginx
as twine does, each timed from the upload's answer until the project page,
asked back to back through nginx and of every node, lists it. Prints a
markdown table.
"""

import argparse
import contextlib
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import corpus
import measure
import prerequisites
import servers

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.distributions import sdist_bytes
from tests.nginx import REPLICAS_TEMPLATE, Nginx

PROBE = "replica-probe"
"""The project the upload rows create."""

TARGET_RATIO = 0.5
TARGET_VISIBLE = 2.0


def start_nodes(stack: contextlib.ExitStack, count: int, source: Path, packages: corpus.PackageDir,
                scratch: Path) -> list[servers.RunningServer]:
    """
    C{count} nodes on C{packages}, each with its own snapshot of the code and so
    its own description cache (XDG_CACHE_HOME beside the snapshot), and its own
    node name, as on hosts of their own.
    """
    nodes = []
    for number in range(1, count + 1):
        home = scratch / f"node{number}"
        spec = servers.twistedpypi(servers.OURS_COMMAND, source, home / "src")
        spec = servers.with_arguments(spec, "--watch", "poll")
        spec = replace(spec, name=f"node{number}", env={**spec.env, "TWISTEDPYPI_NODE_NAME": f"node{number}"})
        node, _ = stack.enter_context(servers.serving(spec, packages, home / "run"))
        nodes.append(node)
    return nodes


def node_requests(nodes: list[servers.RunningServer]) -> int:
    """How many page requests the nodes have logged so far."""
    return sum(len(re.findall(r'"(?:GET|HEAD) /simple/', node.log.read_text(errors="replace"))) for node in nodes)


def listed(url: str, filename: str) -> bool:
    """Whether the page at C{url} answers and links C{filename}."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return filename.encode() in response.read()
    except urllib.error.HTTPError:
        return False


def upload_visibility(url: str, nodes: list[servers.RunningServer], staging: Path, count: int,
                      timeout: float = 30) -> list[tuple[float, float]]:
    """
    Upload C{count} versions of L{PROBE} through C{url} (nginx), each timed from
    the upload's answer until C{url}'s page of the project lists it, and until
    every node's own page does, all asked back to back.

    @return: for each upload, in order (the first creates the project), the
        seconds until nginx listed it and until the last node did.
    """
    staging.mkdir(parents=True, exist_ok=True)
    took = []
    for n in range(count):
        # The name measure.upload gives the file in its form.
        filename = f"{PROBE}-1.{n}.tar.gz"
        path = staging / filename
        path.write_bytes(sdist_bytes(PROBE, f"1.{n}")[1])
        sent = measure.upload(url, path, PROBE, f"1.{n}", corpus.sha256_file(path))
        if sent.status != 200:
            raise RuntimeError(f"upload of {filename} through nginx answered {sent.status}")
        started = time.monotonic()
        pending = {url, *(node.url for node in nodes)}
        seen = {}
        while pending:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{filename} was not listed by {sorted(pending)} within {timeout:.0f} s")
            for base in sorted(pending):
                if listed(f"{base}/simple/{PROBE}/", filename):
                    seen[base] = time.monotonic() - started
                    pending.discard(base)
            time.sleep(0.005)
        took.append((seen[url], max(seen[node.url] for node in nodes)))
    return took


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10, help="releases per project, 2 files each")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs of each side, in turn")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--uploads", type=int, default=5, help="uploads timed until listed through nginx")
    parser.add_argument("--ours-src", default=str(BENCH.parent), help="the checkout whose twistedpypi runs")
    parser.add_argument("--cache", default="~/.cache/twistedpypi-bench", help="corpora and scratch")
    args = parser.parse_args(argv)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    wrk = prerequisites.apt_tool("wrk", "wrk")
    nginx = prerequisites.apt_tool("nginx", "nginx")
    source = corpus.generated_corpus(cache, BENCH / "gen_corpus.py", args.projects, args.versions)
    projects = source.projects()
    scratch = Path(tempfile.mkdtemp(prefix="replicas-", dir=cache))
    rates: dict[str, list[float]] = {"replicas": [], "static": []}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        shared = source.copy_to(scratch / "shared" / "packages")
        static, _ = stack.enter_context(
            servers.serving(servers.nginx(nginx), source.copy_to(scratch / "static" / "packages"), scratch / "static")
        )
        nodes = start_nodes(stack, args.nodes, Path(args.ours_src), shared, scratch)
        (scratch / "nginx").mkdir()
        proxy = Nginx(scratch / "nginx", [node.port for node in nodes], shared.path, template=REPLICAS_TEMPLATE,
                      buffered_log=True)
        stack.callback(proxy.stop)
        sides = {
            "replicas": (proxy.url, [f"/pypi/simple/{p}/" for p in projects]),
            "static": (static.url, [f"/simple/{p}/" for p in projects]),
        }
        measure.etags(proxy.url + "/pypi", [f"/simple/{p}/" for p in projects])  # every page rendered once
        served = {"requests": 0, "by nodes": 0}
        for round_ in range(args.rounds):
            for side, (url, paths) in sides.items():
                for node in nodes:
                    servers.wait_idle(node)
                servers.wait_idle(static)
                before = node_requests(nodes)
                result = measure.wrk(wrk, url, paths, args.duration, scratch, None, 32, measure.PIP_HEADERS)
                if result.errors:
                    print(f"  {side}: {result.errors:,} of {result.requests:,} answers were errors", flush=True)
                if side == "replicas":
                    served["requests"] += result.requests
                    served["by nodes"] += node_requests(nodes) - before
                rates[side].append(result.requests_per_second)
            print(f"round {round_ + 1}: replicas {rates['replicas'][-1]:,.0f}/s, "
                  f"static {rates['static'][-1]:,.0f}/s", flush=True)
        for node in nodes:
            servers.wait_idle(node)
        took = upload_visibility(proxy.url + "/pypi", nodes, scratch / "staging", args.uploads)
    replicas, static_rate = statistics.median(rates["replicas"]), statistics.median(rates["static"])
    ratio = replicas / static_rate
    share = served["by nodes"] / max(served["requests"], 1)
    print()
    print(f"{args.projects:,} projects x {args.versions} releases, {args.nodes} nodes, "
          f"wrk -t1 -c32 -d{args.duration}s with pip's headers, median of {args.rounds} runs a side")
    print()
    print("| | project pages/s | target |")
    print("|---|---:|---|")
    print(f"| nginx + {args.nodes} nodes (init/nginx-replicas.conf) | {replicas:,.0f} "
          f"({' / '.join(f'{r:,.0f}' for r in rates['replicas'])}) | |")
    print(f"| nginx, static tree | {static_rate:,.0f} "
          f"({' / '.join(f'{r:,.0f}' for r in rates['static'])}) | |")
    print(f"| ratio | {ratio:.2f}x | >= {TARGET_RATIO}x |")
    print(f"| page requests answered by the nodes | {share:.1%} | |")
    first, rest = took[0], took[1:]
    print(f"| upload listed through nginx, first (new project) | {first[0]:.2f} s | < {TARGET_VISIBLE:.0f} s |")
    if rest:
        through = [nginx for nginx, _ in rest]
        every = [last for _, last in rest]
        print(f"| upload listed through nginx, new versions (median / slowest of {len(rest)}) | "
              f"{statistics.median(through):.2f} s / {max(through):.2f} s | < {TARGET_VISIBLE:.0f} s |")
        print(f"| the same, listed by every node (median / slowest) | "
              f"{statistics.median(every):.2f} s / {max(every):.2f} s | |")

if __name__ == "__main__":
    main(sys.argv[1:])
