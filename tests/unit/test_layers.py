"""
The package's layers: each subsystem imports only from the ones below it,
and no module imports, however indirectly, itself.

The imports are read from the source with C{ast}, function-level ones
included, so an import that only happens at run time counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "twistedpypi"

ALLOWED = {
    "config": set(),
    "fs": set(),
    "index": {"index"},
    "metrics": {"index"},
    "auth": {"config", "fs"},
    "process": {"process", "config"},
    "pages": {"pages", "index"},
    "scan": {"scan", "index", "fs", "process", "config"},
    "uploads": {"uploads", "index", "fs", "scan", "config", "metrics", "auth"},
    "proxy": {"proxy", "index", "pages", "fs", "config"},
    "web": {"web", "index", "pages", "scan", "uploads", "proxy", "process", "auth", "config", "fs", "metrics"},
    "__main__": {"auth", "uploads"},
    "tap": {"web", "index", "pages", "scan", "uploads", "proxy", "process", "auth", "config", "fs", "metrics"},
}
"""Each room of the package, and the rooms it may import from: web -> the
domain (scan, uploads, proxy) -> pages -> index, with process plumbing and
the file system below them all."""


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that the module at C{path} imports."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("twistedpypi.") and known[name] != path:
                imported.add(name)
    # "from twistedpypi.scan import describe" names the package and the module: keep the module.
    return {name for name in imported if not any(other.startswith(name + ".") for other in imported)}


def room(module: str) -> str:
    """The subsystem a module belongs to: its first name under twistedpypi."""
    return module.split(".")[1] if module.count(".") else module


GRAPH = {name: imports_of(path, modules()) for name, path in modules().items()}


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if name.count(".")))
def test_module_imports_only_from_the_rooms_below_it(module: str) -> None:
    here = room(module)
    assert here in ALLOWED, f"{module}: a new room; say in ALLOWED what it may import"
    wrong = sorted(name for name in GRAPH[module] if room(name) not in ALLOWED[here] | {here})
    assert not wrong, f"{module} imports against the layers: {wrong}"


def test_no_module_imports_itself_through_others() -> None:
    cycles = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == "open":
                cycles.append(trail[trail.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, trail + [imported])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_layer_rules_see_the_imports() -> None:
    """The reading of imports finds what is there: tap imports the web site."""
    assert "twistedpypi.web.site" in GRAPH["twistedpypi.tap"]
