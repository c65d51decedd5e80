"""
Benchmark twistedpypi against pypiserver, a bare Twisted page and nginx, and write
the table to bench/results.md.

usage: python bench/run.py [--projects 1000] [--versions 10] [--duration 10] [--quick]
                           [--only ours,pypiserver,bare,nginx] [--skip-large] [--skip-install]

One server runs at a time (the machine has 2 cores: one for the server, one for the
load generator), on its own hard-linked copy of each package directory, and every
server process is stopped on the way out, Ctrl-C included.
"""

import argparse
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import corpus
import machine
import measure
import prerequisites
import servers
from report import OURS, Metric, Table, document, number

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVER_KEYS = {"pypiserver": "pypiserver", "ours": OURS, "bare": "bare Twisted", "nginx": "nginx"}

METHOD = """\
Each server runs alone on the machine, wrk (`-t1 -c{connections} -d{duration}s`) cycling
through the URLs of the row: every project page, every file link (as the project pages
give them), or `/simple/` itself. The 304 row sends each page's own ETag back. Start-up is
launch until `/simple/` lists every project, on a fresh hard-linked copy of the corpus
(page cache warm: "cold" means a new process and directory); bare Twisted has no
projects, so its start-up is its first answer. nginx (1 worker) serves pages pre-rendered
by the harness. RSS is the server's resident memory from /proc (nginx: master + worker);
"growth" is the peak sampled every 20 ms during the transfer minus the RSS before it.
pip and uv install `chainpkg-000`, whose 50 wheels each depend on the next, with no cache,
into an empty `--target` (best of two); the large download is the best of three curl runs.
"""


@dataclass
class Rows:
    """The table's metrics, labelled for this run's corpus and large-file size."""

    startup_cold: Metric
    startup_warm: Metric
    rss_started: Metric
    root: Metric
    project: Metric
    not_modified: Metric
    small_file: Metric
    rss_loaded: Metric
    big_download: Metric
    big_download_rss: Metric
    big_upload: Metric
    big_upload_rss: Metric
    pip: Metric
    uv: Metric

    @classmethod
    def for_run(cls, files: int, projects: int, big: str) -> "Rows":
        return cls(
            Metric(f"start-up, cold, {files:,} files (s, lower is better)"),
            Metric("start-up, warm restart (s, lower is better)"),
            Metric("RSS after start-up (MiB)"),
            Metric(f"GET `/simple/`, {projects:,} projects (req/s)"),
            Metric("GET `/simple/<project>/` (req/s)"),
            Metric("GET `/simple/<project>/` → 304, If-None-Match (req/s)"),
            Metric("GET small file (req/s)"),
            Metric("RSS after the load runs (MiB)"),
            Metric(f"download {big} file (GB/s)"),
            Metric(f"RSS growth during {big} download (MiB)"),
            Metric(f"upload {big} file, multipart POST (GB/s)"),
            Metric(f"RSS growth during {big} upload (MiB)"),
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


def load(run: Run, spec: servers.ServerSpec, server: servers.RunningServer) -> None:
    """The wrk rows for one server already serving the corpus."""
    rows, table = run.rows, run.table
    projects, filenames = run.main.projects(), run.main.filenames()
    pages = [f"/simple/{p}/" for p in projects]
    if spec.indexes:
        files = measure.file_paths(server.url, projects[0], filenames)
        tags = measure.etags(server.url, pages)
    else:
        files, tags = [f"/packages/{name}" for name in filenames], None

    def drive(metric: Metric, paths: list[str], etags: list[str] | None = None) -> None:
        waited = servers.wait_idle(server)
        if waited > 2:
            table.note(f"{spec.name} was still busy for {waited:.0f} s, with requests queued by "
                       f"the previous run, before {metric.label}")
        result = measure.wrk(run.wrk, server.url, paths, run.args.duration,
                             server.log.parent, etags, run.args.connections)
        print(f"  {metric.label}: {number(result.requests_per_second)}", flush=True)
        table.put(metric, spec.name, result.requests_per_second)
        if result.errors:
            table.note(f"{spec.name}, {metric.label}: {result.errors:,} of "
                       f"{result.requests:,} responses were errors or not 2xx/3xx")

    drive(rows.root, ["/simple/"])
    drive(rows.project, pages)
    if tags:
        drive(rows.not_modified, pages, tags)
    else:
        table.put(rows.not_modified, spec.name, "n/a (no ETag/304)")
    drive(rows.small_file, files)
    table.put(rows.rss_loaded, spec.name, mib(machine.rss_kib(server.pids())))


def bench_corpus(run: Run, spec: servers.ServerSpec) -> None:
    """Start-up (cold, then warm), memory and request rates on the generated corpus."""
    packages = run.fresh_copy(run.main, spec, "corpus")
    scratch = run.server_dir(spec) / "run"
    with servers.serving(spec, packages, scratch) as (server, seconds):
        run.table.put(run.rows.startup_cold, spec.name, seconds)
    with servers.serving(spec, packages, scratch) as (server, seconds):
        run.table.put(run.rows.startup_warm, spec.name, seconds)
        run.table.put(run.rows.rss_started, spec.name, mib(machine.rss_kib(server.pids())))
        print(f"  started in {seconds:.2f} s", flush=True)
        load(run, spec, server)


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
    parser.add_argument("--quick", action="store_true", help="small corpus and short runs: under 3 minutes")
    parser.add_argument("--only", default="pypiserver,ours,bare,nginx",
                        help="comma-separated servers among pypiserver, ours, bare, nginx")
    parser.add_argument("--skip-large", action="store_true", help="no large download and upload")
    parser.add_argument("--skip-install", action="store_true", help="no pip / uv installs")
    parser.add_argument("--skip-nginx", action="store_true", help="leave nginx out")
    parser.add_argument("--quiet-wait", type=float,
                        help="seconds to wait, before each server, for other processes to leave the CPU (default 60, quick 15)")
    parser.add_argument("--ours-cmd", default=servers.OURS_COMMAND,
                        help="command starting twistedpypi, with {python}, {port} and {dir} (default: %(default)s)")
    parser.add_argument("--ours-src", default=str(REPO),
                        help="checkout whose twistedpypi is snapshotted onto PYTHONPATH; '' for an installed one")
    parser.add_argument("--gen-corpus", default=str(REPO.parent / "shared" / "tools" / "gen_corpus.py"),
                        help="the corpus generator (default: %(default)s)")
    parser.add_argument("--cache", default="~/.cache/twistedpypi-bench", help="venv, corpora and scratch")
    parser.add_argument("--output", default=str(BENCH / "results.md"), help="where the Markdown report goes")
    args = parser.parse_args(argv)
    defaults = (100, 5, 3, 250, 15) if args.quick else (1000, 10, 10, 1000, 60)
    for name, default in zip(("projects", "versions", "duration", "big_mb", "quiet_wait"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, default)
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
        rows = Rows.for_run(len(main_dir.filenames()), len(main_dir.projects()), _size(args.big_mb))
        table = Table(rows.all(), [spec.name for spec in chosen])
        run = Run(args, wrk, uv, scratch, main_dir, large, chain, rows, table)
        for spec in chosen:
            bench_server(run, spec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    command = "python bench/run.py " + " ".join(shlex.quote(a) for a in argv)
    method = METHOD.format(connections=args.connections, duration=args.duration)
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
