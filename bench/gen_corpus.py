"""
Writes a corpus of valid, tiny distributions for the benchmark:
C{python bench/gen_corpus.py DIR PROJECTS VERSIONS}.

Each project has VERSIONS releases of one pure wheel and one sdist each,
with real core metadata (a summary, C{Requires-Python}, a C{Requires-Dist}
on the project before it) so that indexes that serve PEP 658 metadata have
some to read. Project names mix case, dots, underscores and dashes, so PEP 503
normalisation has work to do; one project in ten sits in a sub-folder, as
pypiserver users lay theirs out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.distributions import sdist_bytes, wheel_bytes  # noqa: E402

_WORDS = ("lib", "tools", "core", "data", "net", "py", "client", "utils")
_SEPARATORS = ("-", "_", ".", "-")


def project_name(number: int) -> str:
    """The name of the C{number}th project: varied spelling, one normalised form each."""
    separator = _SEPARATORS[number % len(_SEPARATORS)]
    name = f"Pkg{separator}{_WORDS[number % len(_WORDS)]}{separator}{number:05d}"
    return name.lower() if number % 7 == 0 else name


def write_corpus(directory: Path, projects: int, versions: int) -> int:
    """
    Write the corpus into C{directory}.

    @return: how many files were written.
    """
    written = 0
    for number in range(projects):
        name = project_name(number)
        folder = directory / f"group{number // 10 % 10}" if number % 10 == 0 else directory
        folder.mkdir(parents=True, exist_ok=True)
        requires = (project_name(number - 1),) if number else ()
        for minor in range(versions):
            version = f"1.{minor}.0"
            for filename, data in (
                wheel_bytes(name, version, requires=requires, requires_python=">=3.8"),
                sdist_bytes(name, version, requires=requires, requires_python=">=3.8"),
            ):
                with open(folder / filename, "wb") as stream:
                    stream.write(data)
                written += 1
    return written


def main(arguments: list[str]) -> None:
    if len(arguments) != 3:
        sys.exit("usage: gen_corpus.py DIR PROJECTS VERSIONS")
    directory, projects, versions = Path(arguments[0]), int(arguments[1]), int(arguments[2])
    directory.mkdir(parents=True, exist_ok=True)
    print(f"{write_corpus(directory, projects, versions)} files in {os.fspath(directory)}")


if __name__ == "__main__":
    main(sys.argv[1:])
