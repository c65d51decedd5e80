"""
One twistedpypi process against a bare Twisted C{Site}, with pip's request
headers, with and without access logs, and with a client that sends no
C{Accept-Encoding} (curl, wrk by default): the single-process rows of issue #21.

usage: python bench/single_process.py [--projects 200] [--versions 10] [--duration 5] [--rounds 5]
                                      [--ours-src DIR]

Four servers run at once (ours with and without its access log, bare Twisted
with and without Twisted's), each driven alone in turn by wrk
(C{-t1 -c32}), every row once a round, so a slow spell of the shared machine
falls on every row; each row's figure is the median of its rounds, and every
ratio is between medians of the same run.
"""

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import corpus
import measure
import prerequisites
import servers

BENCH = Path(__file__).resolve().parent

NO_ENCODING = {"Accept": "*/*"}
"""A client that sends no C{Accept-Encoding}, as curl does."""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--versions", type=int, default=10, help="releases per project, 2 files each")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ours-src", default=str(BENCH.parent), help="the checkout whose twistedpypi runs")
    parser.add_argument("--cache", default="~/.cache/twistedpypi-bench")
    args = parser.parse_args(argv)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    wrk = prerequisites.apt_tool("wrk", "wrk")
    packages = corpus.generated_corpus(cache, BENCH / "gen_corpus.py", args.projects, args.versions)
    pages = [f"/simple/{p}/" for p in packages.projects()]
    scratch = Path(tempfile.mkdtemp(prefix="single-", dir=cache))
    ours = servers.twistedpypi(servers.OURS_COMMAND, Path(args.ours_src), scratch / "ours-src")
    specs = {
        "ours": ours,
        "ours, no log": servers.with_arguments(ours, "--no-access-log"),
        "bare": servers.bare_twisted(),
        "bare, no log": servers.bare_twisted(access_log=False),
    }
    rows = [
        ("ours, pip headers, log", "ours", measure.PIP_HEADERS),
        ("bare, pip headers, log", "bare", measure.PIP_HEADERS),
        ("ours, pip headers, no log", "ours, no log", measure.PIP_HEADERS),
        ("bare, pip headers, no log", "bare, no log", measure.PIP_HEADERS),
        ("ours, no Accept-Encoding, log", "ours", NO_ENCODING),
        ("ours, no Accept-Encoding, no log", "ours, no log", NO_ENCODING),
    ]
    rates: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        running = {}
        for name, spec in specs.items():
            copy = packages.copy_to(scratch / name.replace(",", "").replace(" ", "-") / "packages")
            running[name], _ = stack.enter_context(servers.serving(spec, copy, scratch / "run"))
        for server in running.values():
            measure.etags(server.url, pages[:1])  # renders nothing for bare; warms ours
        for server in running.values():
            if server.spec.indexes:
                measure.etags(server.url, pages)
        for round_ in range(args.rounds):
            for label, name, headers in rows:
                server = running[name]
                servers.wait_idle(server)
                result = measure.wrk(wrk, server.url, pages, args.duration, scratch, None, 32, headers)
                if result.errors:
                    print(f"  {label}: {result.errors} errors of {result.requests}", flush=True)
                rates[label].append(result.requests_per_second)
            print(f"round {round_ + 1}: " + ", ".join(f"{rates[label][-1]:,.0f}" for label, _, _ in rows), flush=True)
    median = {label: statistics.median(values) for label, values in rates.items()}
    print()
    for label, _, _ in rows:
        print(f"{label:36} {median[label]:8,.0f} req/s  ({' / '.join(f'{r:,.0f}' for r in rates[label])})")
    print()
    print(f"ours / bare, access logs on:   {median['ours, pip headers, log'] / median['bare, pip headers, log']:.3f}x")
    print(f"ours / bare, no logs:          {median['ours, pip headers, no log'] / median['bare, pip headers, no log']:.3f}x")
    print(f"no Accept-Encoding / gzip, log:    "
          f"{median['ours, no Accept-Encoding, log'] / median['ours, pip headers, log']:.3f}x")
    print(f"no Accept-Encoding / gzip, no log: "
          f"{median['ours, no Accept-Encoding, no log'] / median['ours, pip headers, no log']:.3f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
