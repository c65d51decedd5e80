"""
The package directories the benchmark serves: the generated corpus, the one large
file, and the 50-wheel dependency chain.

Each is built once into the cache directory and reused; every server then gets its
own hard-linked copy, so one server's uploads or state files never reach another.
"""

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CHAIN_LENGTH = 50


@dataclass
class PackageDir:
    """
    A directory of distribution files and what a client needs to know about it.

    @ivar digests: sha256 hex digests already known, by file name, so that large
        files are hashed once per cache rather than once per run.
    """

    path: Path
    digests: dict[str, str] = field(default_factory=dict)

    def filenames(self) -> list[str]:
        """The distribution files, sorted."""
        return sorted(p.name for p in self.path.iterdir() if p.is_file())

    def projects(self) -> list[str]:
        """The PEP 503 normalised project names, sorted."""
        return sorted({normalise(project_of(name)) for name in self.filenames()})

    def copy_to(self, target: Path) -> "PackageDir":
        """Hard-link every file into the fresh directory C{target}."""
        target.mkdir(parents=True)
        for name in self.filenames():
            os.link(self.path / name, target / name)
        return PackageDir(target, self.digests)

    def digest(self, name: str) -> str:
        """The sha256 hex digest of one file."""
        if name not in self.digests:
            self.digests[name] = sha256_file(self.path / name)
        return self.digests[name]


def normalise(name: str) -> str:
    """PEP 503 normalisation of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    """The project part of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return filename.split("-", 1)[0]
    return filename.removesuffix(".tar.gz").rsplit("-", 1)[0]


def sha256_file(path: Path) -> str:
    """Hash a file in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _build_once(target: Path, build) -> None:
    """Run C{build(tmp)} into a temporary sibling of C{target}, then rename it into place."""
    if target.exists():
        return
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    tmp.rename(target)


def generated_corpus(cache: Path, gen_corpus: Path, projects: int, versions: int) -> PackageDir:
    """
    The corpus written by the generator C{gen_corpus} (by default the one
    beside this file), cached by generator and size.
    """
    generator = hashlib.sha256(gen_corpus.read_bytes()).hexdigest()[:8]
    target = cache / f"corpus-{generator}-{projects}x{versions}"

    def build(tmp: Path) -> None:
        print(f"generating {projects} x {versions} corpus in {target} ...", flush=True)
        subprocess.run(
            [sys.executable, str(gen_corpus), str(tmp), str(projects), str(versions)],
            check=True,
            timeout=1800,
        )

    _build_once(target, build)
    return PackageDir(target)


def large_file(cache: Path, megabytes: int) -> PackageDir:
    """
    A directory holding only C{big-1.0.tar.gz}, C{megabytes} MB (10**6 bytes) of
    random bytes.

    Random rather than zero bytes so that nothing on the way can compress it; its
    digest is kept beside the directory since hashing it takes seconds. Decimal
    units keep a "1 GB" upload under the 1 GiB upload limits servers default to.
    """
    target = cache / f"large-{megabytes}MB"
    name = "big-1.0.tar.gz"

    def build(tmp: Path) -> None:
        print(f"writing {megabytes} MB {name} ...", flush=True)
        with (tmp / name).open("wb") as f:
            for _ in range(megabytes):
                f.write(os.urandom(10**6))

    _build_once(target, build)
    digest_file = cache / f"large-{megabytes}MB.sha256"
    if not digest_file.exists():
        digest_file.write_text(sha256_file(target / name))
    return PackageDir(target, {name: digest_file.read_text()})


def chain_name(i: int) -> str:
    """The project name of link C{i} of the dependency chain."""
    return f"chainpkg-{i:03d}"


def chain_wheel(i: int) -> tuple[str, bytes]:
    """
    A minimal valid wheel for link C{i}, requiring link C{i + 1} unless it is the last.

    @return: the wheel's file name and bytes.
    """
    requires = (chain_name(i + 1),) if i + 1 < CHAIN_LENGTH else ()
    return minimal_wheel(chain_name(i), "1.0", requires)


def minimal_wheel(name: str, version: str, requires: tuple[str, ...] = ()) -> tuple[str, bytes]:
    """
    A valid pure-Python wheel of C{name} C{version} holding an empty module.

    @return: the wheel's file name and bytes.
    """
    module = normalise(name).replace("-", "_")
    info = f"{module}-{version}.dist-info"
    requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": b"",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires_dist}"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: twistedpypi-bench\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [f"{path},sha256={_record_hash(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return f"{module}-{version}-py3-none-any.whl", buffer.getvalue()


def _record_hash(data: bytes) -> str:
    """The urlsafe, unpadded base64 sha256 a wheel's RECORD file uses."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def dependency_chain(cache: Path) -> PackageDir:
    """The directory of wheels C{chainpkg-000} ... C{chainpkg-049}."""
    target = cache / f"chain-{CHAIN_LENGTH}"

    def build(tmp: Path) -> None:
        for i in range(CHAIN_LENGTH):
            name, data = chain_wheel(i)
            (tmp / name).write_bytes(data)

    _build_once(target, build)
    return PackageDir(target)
