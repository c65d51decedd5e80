"""
Benchmark twistedpypi against pypiserver, a bare Twisted page and nginx, and write
the table to bench/results.md.

usage: python bench/run.py [--projects 1000] [--versions 10] [--duration 10] [--rounds 5] [--quick]
                           [--only ours,pypiserver,bare,nginx] [--skip-large] [--skip-install]
                           [--flat-projects 50,5000] [--skip-flat] [--workers 2] [--new-files 15]

Besides the comparison, it measures what the performance issue sets targets for
(the table's last two columns): flat cost from 1,000 to 100,000 files, memory with
100,000 files, how soon a new file is listed, and the gain from --workers.

One server is driven at a time (the machine has 2 cores: one for the server, one
for the load generator), on its own hard-linked copy of each package directory, and
every server process is stopped on the way out, Ctrl-C included.
"""

import argparse
import contextlib
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import corpus
import machine
import measure
import prerequisites
import servers
from report import OURS, Metric, Table, Target, document, number

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ISSUE_RATIO = 5000 / 10700
"""The issue's absolute 5,000/s targets as a ratio to its bare Twisted figure."""

SERVER_KEYS = {"pypiserver": "pypiserver", "ours": OURS, "bare": "bare Twisted", "nginx": "nginx"}
LATENCY_PROJECT = "newfile-probe"
STARTS = 3
"""Start-ups measured on the main corpus, cold and warm: the rows give the median."""
MB_IN_MIB = 1e6 / 2**20

METHOD = """\
Each server runs alone on the machine, wrk (`-t1 -c{connections} -d{duration}s`) cycling
through the URLs of the row, each request accepting gzip as pip and uv do: every project page, every file link (as the project pages
give them), or `/simple/` itself. The 304 row sends each page's own ETag back. Rows that
are compared with each other, the project pages with their 304s and each flat-cost row
with its other corpus, are {rounds} runs each, taken in turn (A B A B ...), each row the
median of its runs: a slow spell of the shared machine then falls on both sides. Start-up is
launch until `/simple/` lists every project, on a fresh hard-linked copy of the corpus
(page cache warm: "cold" means a new process and directory), the median of {starts}
cold starts (each on its own copy) and of {starts} warm restarts on the last copy; the
100,000-file start-ups are single runs; bare Twisted has no
projects, so its start-up is its first answer. nginx (1 worker) serves pages pre-rendered
by the harness. RSS is the server's resident memory from /proc (nginx: master + worker);
"growth" is the peak sampled every 20 ms during the transfer minus the RSS before it.
pip and uv install `chainpkg-000`, whose 50 wheels each depend on the next, with no cache,
into an empty `--target` (best of two); the large download is the best of three curl runs.

"New file listed" is measured on the corpus after the load runs: {new_files} fresh
wheels of `{latency_project}`, written beside the package directory, then hard-linked
(odd ones) or copied (even ones) into it, each timed until a back-to-back poll of its
project page links it (a first, untimed wheel creates the project). `--workers {workers}`
restarts twistedpypi (warm) on the same corpus and repeats the page and small-file runs.
The flat-cost rows serve two more corpora made by the same generator, {flat_small:,} and
{flat_large:,} files ({versions} releases × wheel + sdist per project, so every project page
has the same size; `/simple/` grows with the number of projects and measures bytes as
well), each restarted warm after a cold start, then both served at once (only the one
under load is busy); the {flat_large:,}-file RSS rows are read after each start and after
the wrk runs. nginx serves both corpora the same way, as a measure of what going from
one to the other costs this machine (each of its files is opened for every request,
as twistedpypi's are once they no longer fit its small-file cache); so does twistedpypi
with `--file-cache 0`, in two more rows. The row "{flat_large:,} files, {flat_small:,} of them"
cycles through as many files of the large corpus as the small one has, in turn with
the two others: the large index, with the small corpus's working set. pypiserver is only
started (cold) on the large corpus: its pages cost a directory listing per request,
wrk runs would take hours.

The "target (ours)" column is the performance issue's target for twistedpypi's figure,
and "met?" is computed from this run's figures. A target relative to another row
compares with twistedpypi's figure there (the measured ratio is shown); "or ≥ 0.75×
bare" counts as met when that ratio to bare Twisted, in the same run, is met, even if
the absolute figure is not. The issue gives the root index and small downloads
absolute targets only (5,000/s), set where a bare Twisted page did 10,700/s; on a
machine where bare Twisted does less, they are held to the issue's own ratio,
5,000 / 10,700 ≈ 0.47× bare, in the same way. The large download's "without reading it into memory" is
held to the upload's bound, RSS growth ≤ 50 MB. MB are 10⁶ bytes. The targets are set for 20,000 files, a
1 GB file and 1,000 / 100,000-file corpora: on smaller sizes (`--quick`) the verdicts
only show that the rows work.
"""


@dataclass
class Rows:
    """The table's metrics, labelled for this run's sizes, with the issue's targets."""

    startup_cold: Metric
    startup_warm: Metric
    rss_started: Metric
    root: Metric
    project: Metric
    not_modified: Metric
    small_file: Metric
    rss_loaded: Metric
    new_file_median: Metric
    new_file_max: Metric
    workers_project: Metric
    workers_small_file: Metric
    flat_project_small: Metric
    flat_project_large: Metric
    flat_root_small: Metric
    flat_root_large: Metric
    flat_file_small: Metric
    flat_file_large: Metric
    flat_file_share: Metric
    flat_file_uncached_small: Metric
    flat_file_uncached_large: Metric
    flat_startup_cold: Metric
    flat_startup_warm: Metric
    flat_rss_cold: Metric
    flat_rss_warm: Metric
    flat_rss_loaded: Metric
    big_download: Metric
    big_download_rss: Metric
    big_upload: Metric
    big_upload_rss: Metric
    pip: Metric
    uv: Metric

    @classmethod
    def for_run(cls, files: int, projects: int, big: str, workers: int,
                flat: tuple[tuple[int, int], tuple[int, int]]) -> "Rows":
        """
        @param flat: the files and projects of the small and large flat-cost corpora.
        """
        (small_files, small_projects), (large_files, large_projects) = flat
        small, large = f"{small_files:,} files", f"{large_files:,} files"
        project = Metric("GET `/simple/<project>/` (req/s)", Target("≥ 8,000 or ≥ 0.75× bare", least=8000, or_bare=0.75))
        small_file = Metric("GET small file (req/s)", Target(f"≥ 5,000 or ≥ {ISSUE_RATIO:.2f}× bare", least=5000, or_bare=ISSUE_RATIO))
        flat_project = Metric(f"GET `/simple/<project>/`, {small} (req/s)")
        flat_root = Metric(f"GET `/simple/`, {small} ({small_projects:,} projects) (req/s)")
        flat_file = Metric(f"GET small file, {small} (req/s)")
        as_flat = Target(f"≥ 0.9× {small}", least=0.9)
        memory = Target("≤ 150 MB (143 MiB)", most=150 * MB_IN_MIB)
        streamed = Target("≤ 50 MB (47.7 MiB)", most=50 * MB_IN_MIB)
        listed = Target("≤ 200 ms", most=200)
        return cls(
            Metric(f"start-up, cold, {files:,} files (s, lower is better)", Target("≤ 3 s", most=3)),
            Metric("start-up, warm restart (s, lower is better)", Target("≤ 1 s", most=1)),
            Metric("RSS after start-up (MiB)"),
            Metric(
                f"GET `/simple/`, {projects:,} projects (req/s)",
                Target(f"≥ 5,000 or ≥ {ISSUE_RATIO:.2f}× bare", least=5000, or_bare=ISSUE_RATIO),
            ),
            project,
            Metric("GET `/simple/<project>/` → 304, If-None-Match (req/s)",
                   Target("faster than the 200 row", least=1, relative_to=project)),
            small_file,
            Metric("RSS after the load runs (MiB)"),
            Metric("new file listed, median (ms, lower is better)", listed),
            Metric("new file listed, slowest (ms, lower is better)", listed),
            Metric(f"GET `/simple/<project>/`, `--workers {workers}` (req/s)",
                   Target("faster than 1 process", least=1, relative_to=project)),
            Metric(f"GET small file, `--workers {workers}` (req/s)",
                   Target("faster than 1 process", least=1, relative_to=small_file)),
            flat_project,
            Metric(f"GET `/simple/<project>/`, {large} (req/s)", replace(as_flat, relative_to=flat_project)),
            flat_root,
            Metric(f"GET `/simple/`, {large} ({large_projects:,} projects) (req/s)",
                   replace(as_flat, relative_to=flat_root)),
            flat_file,
            Metric(f"GET small file, {large} (req/s)", replace(as_flat, relative_to=flat_file)),
            Metric(f"GET small file, {large}, {small_files:,} of them (req/s)"),
            Metric(f"GET small file, {small}, `--file-cache 0` (req/s)"),
            Metric(f"GET small file, {large}, `--file-cache 0` (req/s)"),
            Metric(f"start-up, cold, {large} (s, lower is better)"),
            Metric(f"start-up, warm restart, {large} (s, lower is better)"),
            Metric(f"RSS after a cold start, {large} (MiB)", memory),
            Metric(f"RSS after a warm restart, {large} (MiB)", memory),
            Metric(f"RSS after the load runs, {large} (MiB)", memory),
            Metric(f"download {big} file (GB/s)", Target("≥ 1 GB/s", least=1)),
            Metric(f"RSS growth during {big} download (MiB)", streamed),
            Metric(f"upload {big} file, multipart POST (GB/s)"),
            Metric(f"RSS growth during {big} upload (MiB)", streamed),
            Metric(f"pip install, {corpus.CHAIN_LENGTH}-package chain (s, lower is better)"),
            Metric(f"uv pip install, {corpus.CHAIN_LENGTH}-package chain (s, lower is better)"),
        )

    def all(self) -> list[Metric]:
        return list(vars(self).values())


@dataclass
class Run:
    """Everything one benchmark run shares: options, tools, package dirs, results."""

    args: argparse.Namespace
    wrk: str
    uv: str
    scratch: Path
    main: corpus.PackageDir
    large: corpus.PackageDir | None
    chain: corpus.PackageDir | None
    flat: tuple[corpus.PackageDir, corpus.PackageDir] | None
    rows: Rows
    table: Table

    def fresh_copy(self, packages: corpus.PackageDir, spec: servers.ServerSpec, what: str) -> corpus.PackageDir:
        """A private hard-linked copy of C{packages} for one server."""
        return packages.copy_to(self.server_dir(spec) / what)

    def server_dir(self, spec: servers.ServerSpec) -> Path:
        """The scratch directory for one server's logs, configuration and copies."""
        return self.scratch / re.sub(r"\W+", "-", spec.name)


def mib(kib: int) -> float:
    """KiB, as /proc reports them, in MiB."""
    return kib / 1024


def wrk_once(run: Run, spec: servers.ServerSpec, server: servers.RunningServer, metric: Metric,
             paths: list[str], etags: list[str] | None = None) -> float:
    """One wrk run over C{paths}, once the server has finished its earlier work: its req/s."""
    waited = servers.wait_idle(server)
    if waited > 2:
        run.table.note(f"{spec.name} was still busy for {waited:.0f} s, with requests queued by "
                       f"the previous run, before {metric.label}")
    result = measure.wrk(run.wrk, server.url, paths, run.args.duration,
                         server.log.parent, etags, run.args.connections)
    if result.errors:
        run.table.note(f"{spec.name}, {metric.label}: {result.errors:,} of "
                       f"{result.requests:,} responses were errors or not 2xx/3xx")
    return result.requests_per_second


def drive(run: Run, spec: servers.ServerSpec, server: servers.RunningServer, metric: Metric,
          paths: list[str], etags: list[str] | None = None) -> None:
    """The row C{metric}: one wrk run over C{paths}."""
    rate = wrk_once(run, spec, server, metric, paths, etags)
    print(f"  {metric.label}: {number(rate)}", flush=True)
    run.table.put(metric, spec.name, rate)


def drive_alternating(run: Run, spec: servers.ServerSpec,
                      legs: list[tuple[servers.RunningServer, Metric, list[str], list[str] | None]]) -> None:
    """
    Rows compared with each other: C{--rounds} wrk runs of each, in turn (A B A B
    ...), each row given its median, so that a slow spell of the shared machine
    falls on every side of the comparison instead of deciding it.
    """
    rates: list[list[float]] = [[] for _ in legs]
    for _ in range(run.args.rounds):
        for leg, (server, metric, paths, etags) in zip(rates, legs):
            leg.append(wrk_once(run, spec, server, metric, paths, etags))
    for leg, (_, metric, _, _) in zip(rates, legs):
        median = statistics.median(leg)
        print(f"  {metric.label}: {number(median)} ({' / '.join(number(r) for r in leg)})", flush=True)
        run.table.put(metric, spec.name, median)


def urls(packages: corpus.PackageDir, spec: servers.ServerSpec, server: servers.RunningServer) -> tuple[list[str], list[str]]:
    """Every project page of C{packages}, and every file's download path."""
    projects, filenames = packages.projects(), packages.filenames()
    pages = [f"/simple/{p}/" for p in projects]
    if spec.indexes:
        return pages, measure.file_paths(server.url, projects[0], filenames)
    return pages, [f"/packages/{name}" for name in filenames]


def load(run: Run, spec: servers.ServerSpec, server: servers.RunningServer) -> None:
    """The wrk rows for one server already serving the corpus."""
    rows, table = run.rows, run.table
    pages, files = urls(run.main, spec, server)
    # Before any load: a WSGI server goes on answering a run's queued requests after it.
    tags = measure.etags(server.url, pages) if spec.indexes else None
    drive(run, spec, server, rows.root, ["/simple/"])
    if tags:
        drive_alternating(run, spec, [(server, rows.project, pages, None), (server, rows.not_modified, pages, tags)])
    else:
        drive(run, spec, server, rows.project, pages)
        table.put(rows.not_modified, spec.name, "n/a (no ETag/304)")
    drive(run, spec, server, rows.small_file, files)
    table.put(rows.rss_loaded, spec.name, mib(machine.rss_kib(server.pids())))


def new_file(run: Run, spec: servers.ServerSpec, server: servers.RunningServer, packages: corpus.PackageDir) -> None:
    """The median and slowest time until a file dropped into the directory is listed."""
    servers.wait_idle(server)
    took = measure.new_file_latency(server.url, packages.path, packages.path.parent / "staging",
                                    LATENCY_PROJECT, run.args.new_files)
    took_ms = sorted(1000 * t for t in took)
    median = (took_ms[(len(took_ms) - 1) // 2] + took_ms[len(took_ms) // 2]) / 2
    print(f"  new file listed: median {median:.0f} ms, slowest {took_ms[-1]:.0f} ms", flush=True)
    run.table.put(run.rows.new_file_median, spec.name, median)
    run.table.put(run.rows.new_file_max, spec.name, took_ms[-1])


def _seconds(samples: list[float]) -> str:
    return " / ".join(f"{seconds:.2f}" for seconds in samples) + " s"


def bench_corpus(run: Run, spec: servers.ServerSpec) -> None:
    """
    Start-up (cold, then warm), memory, request rates and new-file latency on the
    generated corpus; then, for twistedpypi, the same page and file runs with
    C{--workers}.
    """
    scratch = run.server_dir(spec) / "run"
    cold = []
    for start in range(STARTS):
        # A new directory each time: no description cache knows it yet.
        packages = run.fresh_copy(run.main, spec, f"corpus-{start}")
        with servers.serving(spec, packages, scratch) as (server, seconds):
            cold.append(seconds)
    run.table.put(run.rows.startup_cold, spec.name, statistics.median(cold))
    warm = []
    for start in range(STARTS - 1):
        with servers.serving(spec, packages, scratch) as (server, seconds):
            warm.append(seconds)
    with servers.serving(spec, packages, scratch) as (server, seconds):
        warm.append(seconds)
        run.table.put(run.rows.startup_warm, spec.name, statistics.median(warm))
        run.table.put(run.rows.rss_started, spec.name, mib(machine.rss_kib(server.pids())))
        print(f"  started cold in {_seconds(cold)}, warm in {_seconds(warm)}", flush=True)
        load(run, spec, server)
        if spec.watches and run.args.new_files:
            new_file(run, spec, server, packages)
    if spec.name == OURS and run.args.workers > 1:
        workers = servers.with_arguments(spec, "--workers", str(run.args.workers))
        with servers.serving(workers, packages, scratch) as (server, _):
            # Ready means one process lists everything: wait for the others' scans too.
            servers.wait_idle(server)
            pages, files = urls(run.main, spec, server)
            drive(run, spec, server, run.rows.workers_project, pages)
            drive(run, spec, server, run.rows.workers_small_file, files)


def bench_flat(run: Run, spec: servers.ServerSpec) -> None:
    """
    Start-up and memory on the large flat-cost corpus; for twistedpypi, then, the
    request rates on the small and the large one, both restarted warm after a cold
    start and serving at once, their runs alternating, with the memory after the
    large one's load runs. nginx gives the same request rates, as the machine's own
    cost of going from one corpus to the other; pypiserver only starts (cold) on the
    large corpus.
    """
    rows, table = run.rows, run.table
    small, large = run.flat
    copies: dict[str, tuple[corpus.PackageDir, Path]] = {}

    def copy_of(source: corpus.PackageDir, what: str) -> tuple[corpus.PackageDir, Path]:
        """This server's own copy of C{source} and its scratch directory, made once."""
        if what not in copies:
            copies[what] = (run.fresh_copy(source, spec, f"flat-{what}"), run.server_dir(spec) / f"flat-{what}-run")
        return copies[what]

    cold = {OURS: [(small, "small"), (large, "large")], "pypiserver": [(large, "large")]}.get(spec.name, [])
    for source, what in cold:
        with servers.serving(spec, *copy_of(source, what)) as (server, seconds):
            if source is large:
                table.put(rows.flat_startup_cold, spec.name, seconds)
                table.put(rows.flat_rss_cold, spec.name, mib(machine.rss_kib(server.pids())))
                print(f"  started on {len(source.filenames()):,} files in {seconds:.2f} s", flush=True)
    if spec.name not in (OURS, "nginx"):
        return
    with contextlib.ExitStack() as both:
        legs = []
        for source, what, metrics in (
            (small, "small", (rows.flat_root_small, rows.flat_project_small, rows.flat_file_small)),
            (large, "large", (rows.flat_root_large, rows.flat_project_large, rows.flat_file_large)),
        ):
            server, seconds = both.enter_context(servers.serving(spec, *copy_of(source, what)))
            if source is large and spec.name == OURS:
                loaded = server
                table.put(rows.flat_startup_warm, spec.name, seconds)
                table.put(rows.flat_rss_warm, spec.name, mib(machine.rss_kib(server.pids())))
            pages, files = urls(source, spec, server)
            # Every page read once first, as the main corpus's are for their ETags.
            measure.etags(server.url, pages)
            legs.append([(server, metric, paths, None) for metric, paths in zip(metrics, (["/simple/"], pages, files))])
        (*small_legs, small_files), (*large_legs, large_files) = legs
        # The large corpus's first files, as many as the small one has: its
        # index, with the small corpus's working set.
        server, _, paths, _ = large_files
        share = (server, rows.flat_file_share, paths[: len(small_files[2])], None)
        for pair in zip(small_legs, large_legs):
            drive_alternating(run, spec, list(pair))
        drive_alternating(run, spec, [small_files, large_files, share])
        if spec.name == OURS:
            table.put(rows.flat_rss_loaded, spec.name, mib(machine.rss_kib(loaded.pids())))
    if spec.name == OURS:
        # The same downloads with no small-file cache: every file opened and read at
        # both sizes, as nginx does, so only the index's own cost can differ.
        uncached = servers.with_arguments(spec, "--file-cache", "0")
        with contextlib.ExitStack() as both:
            legs = []
            for source, what, metric in ((small, "small", rows.flat_file_uncached_small),
                                         (large, "large", rows.flat_file_uncached_large)):
                server, _ = both.enter_context(servers.serving(uncached, *copy_of(source, what)))
                legs.append((server, metric, urls(source, spec, server)[1], None))
            drive_alternating(run, spec, legs)


def bench_large(run: Run, spec: servers.ServerSpec) -> None:
    """One large download and, where the server takes uploads, one large upload."""
    rows, table = run.rows, run.table
    packages = run.fresh_copy(run.large, spec, "large")
    big = packages.path / packages.filenames()[0]
    with servers.serving(spec, packages, run.server_dir(spec) / "run") as (server, _):
        servers.wait_idle(server)  # a server may still be hashing the large file
        link = server.url + measure.file_paths(server.url, "big", [big.name])[0]
        with servers.PeakRss(server) as rss:
            # The best of three, as one transfer of about a second is noisy.
            got = max((measure.download(link) for _ in range(3)), key=lambda t: (t.status == 200, t.bytes_per_second))
        if got.status != 200:
            table.put(rows.big_download, spec.name, f"failed (HTTP {got.status})")
        else:
            table.put(rows.big_download, spec.name, got.bytes_per_second / 1e9)
            table.put(rows.big_download_rss, spec.name, mib(rss.peak - rss.before))
        if not spec.uploads:
            return
        with servers.PeakRss(server) as rss:
            sent = measure.upload(server.url, big, "bigupload", "1.0", packages.digest(big.name))
        stored = packages.path / "bigupload-1.0.tar.gz"
        if not 200 <= sent.status < 300:
            table.put(rows.big_upload, spec.name, f"n/a (HTTP {sent.status})")
        elif not stored.exists() or stored.stat().st_size != big.stat().st_size:
            table.put(rows.big_upload, spec.name, "failed (file not stored whole)")
        else:
            table.put(rows.big_upload, spec.name, sent.bytes_per_second / 1e9)
            table.put(rows.big_upload_rss, spec.name, mib(rss.peak - rss.before))


def bench_install(run: Run, spec: servers.ServerSpec) -> None:
    """pip and uv installing the dependency chain from the server."""
    packages = run.fresh_copy(run.chain, spec, "chain")
    with servers.serving(spec, packages, run.server_dir(spec) / "run") as (server, _):
        servers.wait_idle(server)
        for metric, tool in ((run.rows.pip, measure.pip_command()), (run.rows.uv, measure.uv_command(run.uv))):
            try:
                # The best of two: a single install of a few seconds is noisy.
                seconds = min(
                    measure.install_chain(tool, server.url + "/simple/", corpus.chain_name(0), corpus.CHAIN_LENGTH)
                    for _ in range(2)
                )
            except RuntimeError as error:
                run.table.put(metric, spec.name, "failed")
                run.table.note(f"{spec.name}: {error}")
                continue
            print(f"  {metric.label}: {number(seconds)}", flush=True)
            run.table.put(metric, spec.name, seconds)


def bench_server(run: Run, spec: servers.ServerSpec) -> None:
    """Every scenario for one server; a scenario that fails is noted and the rest go on."""
    scenarios = [("corpus", bench_corpus)]
    if run.flat and spec.indexes and spec.name in (OURS, "pypiserver", "nginx"):
        scenarios.append(("flat cost", bench_flat))
    if run.large and spec.indexes:
        scenarios.append(("large file", bench_large))
    if run.chain and spec.indexes:
        scenarios.append(("install", bench_install))
    if run.args.quiet_wait:
        machine.wait_for_quiet(run.args.quiet_wait)
    with machine.OtherLoad() as other:
        for what, scenario in scenarios:
            print(f"{spec.name}: {what}", flush=True)
            try:
                scenario(run, spec)
            except (servers.ServerFailed, RuntimeError, OSError, subprocess.SubprocessError) as error:
                run.table.note(f"{spec.name}, {what}: {error}")
    if other.cores > 0.1:
        run.table.note(f"other processes on the machine used {other.cores:.2f} cores on average "
                       f"while {spec.name} ran: its numbers are noisy")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, help="corpus projects (default 1000, quick 100)")
    parser.add_argument("--versions", type=int, help="releases per project, 2 files each (default 10, quick 5)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--big-mb", type=int, help="size of the large file in MB (default 1000, quick 250)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating wrk runs of the rows compared with each other: the 200s and the 304s, "
                             "the small and the large flat-cost corpus (default 5; the median is kept)")
    parser.add_argument("--quick", action="store_true", help="small corpora and short runs, every row: a few minutes")
    parser.add_argument("--only", default="pypiserver,ours,bare,nginx",
                        help="comma-separated servers among pypiserver, ours, bare, nginx")
    parser.add_argument("--skip-large", action="store_true", help="no large download and upload")
    parser.add_argument("--skip-install", action="store_true", help="no pip / uv installs")
    parser.add_argument("--skip-nginx", action="store_true", help="leave nginx out")
    parser.add_argument("--flat-projects",
                        help="projects of the small and large flat-cost corpora, with --versions releases "
                             "each (default 50,5000: 1,000 and 100,000 files; quick 10,500)")
    parser.add_argument("--skip-flat", action="store_true", help="no flat-cost corpora")
    parser.add_argument("--workers", type=int, default=2,
                        help="twistedpypi --workers N, against one process (default 2; 1 to skip)")
    parser.add_argument("--new-files", type=int,
                        help="files dropped into the directory to time their listing (default 15, quick 5; 0 to skip)")
    parser.add_argument("--quiet-wait", type=float,
                        help="seconds to wait, before each server, for other processes to leave the CPU (default 60, quick 15)")
    parser.add_argument("--ours-cmd", default=servers.OURS_COMMAND,
                        help="command starting twistedpypi, with {python}, {port} and {dir} (default: %(default)s)")
    parser.add_argument("--ours-src", default=str(REPO),
                        help="checkout whose twistedpypi is snapshotted onto PYTHONPATH; '' for an installed one")
    parser.add_argument("--gen-corpus", default=str(BENCH / "gen_corpus.py"),
                        help="the corpus generator, run as GEN DIR PROJECTS VERSIONS (default: %(default)s)")
    parser.add_argument("--cache", default="~/.cache/twistedpypi-bench", help="venv, corpora and scratch")
    parser.add_argument("--output", default=str(BENCH / "results.md"), help="where the Markdown report goes")
    args = parser.parse_args(argv)
    defaults = (100, 5, 3, 250, 15, "10,500", 5) if args.quick else (1000, 10, 10, 1000, 60, "50,5000", 15)
    names = ("projects", "versions", "duration", "big_mb", "quiet_wait", "flat_projects", "new_files")
    for name, default in zip(names, defaults):
        if getattr(args, name) is None:
            setattr(args, name, default)
    try:
        small, large = (int(n) for n in args.flat_projects.split(","))
    except ValueError:
        parser.error("--flat-projects takes two numbers of projects: SMALL,LARGE")
    args.flat_projects = (small, large)
    chosen = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(chosen) - set(SERVER_KEYS)
    if unknown:
        parser.error(f"--only: unknown server(s) {', '.join(sorted(unknown))}; pick from {', '.join(SERVER_KEYS)}")
    args.only = [key for key in SERVER_KEYS if key in chosen and not (key == "nginx" and args.skip_nginx)]
    return args


def _size(megabytes: int) -> str:
    """A size in MB as a row label says it: "250 MB", "1 GB"."""
    return f"{megabytes / 1000:g} GB" if megabytes >= 1000 else f"{megabytes} MB"


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C, so every server is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)

    wrk = prerequisites.apt_tool("wrk", "wrk")
    nginx = prerequisites.apt_tool("nginx", "nginx") if "nginx" in args.only else None
    bin_dir = prerequisites.bench_venv(cache)
    uv = prerequisites.uv_tool(bin_dir)
    main_dir = corpus.generated_corpus(cache, Path(args.gen_corpus), args.projects, args.versions)
    large = None if args.skip_large else corpus.large_file(cache, args.big_mb)
    chain = None if args.skip_install else corpus.dependency_chain(cache)
    flat = None if args.skip_flat else tuple(
        corpus.generated_corpus(cache, Path(args.gen_corpus), n, args.versions) for n in args.flat_projects
    )
    flat_sizes = tuple((len(d.filenames()), len(d.projects())) for d in flat) if flat else ((0, 0), (0, 0))

    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=cache))
    try:
        specs = {
            "pypiserver": lambda: servers.pypiserver(bin_dir),
            "ours": lambda: servers.twistedpypi(
                args.ours_cmd, Path(args.ours_src) if args.ours_src else None, scratch / "ours-src"
            ),
            "bare": servers.bare_twisted,
            "nginx": lambda: servers.nginx(nginx),
        }
        chosen = [specs[key]() for key in args.only]
        rows = Rows.for_run(len(main_dir.filenames()), len(main_dir.projects()), _size(args.big_mb),
                            args.workers, flat_sizes)
        table = Table(rows.all(), [spec.name for spec in chosen])
        run = Run(args, wrk, uv, scratch, main_dir, large, chain, flat, rows, table)
        for spec in chosen:
            bench_server(run, spec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    command = "python bench/run.py " + " ".join(shlex.quote(a) for a in argv)
    method = METHOD.format(
        connections=args.connections, duration=args.duration, new_files=args.new_files,
        latency_project=LATENCY_PROJECT, workers=args.workers, versions=args.versions,
        flat_small=flat_sizes[0][0], flat_large=flat_sizes[1][0], starts=STARTS, rounds=args.rounds,
    )
    text = document(table, command.strip(), prerequisites.versions(bin_dir, uv, wrk, nginx), method)
    Path(args.output).write_text(text)
    print("\n" + table.markdown())
    if table.notes:
        print("Notes:\n" + "\n".join(f"- {n}" for n in table.notes))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        sys.exit("interrupted: every server was stopped; no results written")
