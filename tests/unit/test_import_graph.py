"""The package's import graph: the product core at the centre, no cycles, and no module importing one that
sits above it in the pipeline (README, "Project layout"). Every import counts, also those inside functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ugt_ensemble"

#: Layers from the bottom up: a module may import its own folder and the layers below it, never above or beside.
LAYERS: list[set[str]] = [
    {"runtime"},  # copied into every emitted repository: numpy only
    {"errors", "lazy", "progress", "histories"},
    {"__init__"},  # the package's lazy public names
    {"config", "catalog"},
    {"model"},
    {"export", "repository"},
    {"build_result"},
    {"build"},
    {"client"},
    {"server"},
    {"serving", "deploy", "api", "tools"},
    {"cli"},
    {"__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """ugt_ensemble.serving.rollout -> serving; ugt_ensemble -> __init__."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the ugt_ensemble modules it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            graph[module].update(n for n in names if n == "ugt_ensemble" or n.startswith("ugt_ensemble."))
    return graph


def test_every_folder_has_a_layer():
    parts = {_part(_module(p)) for p in PACKAGE.rglob("*.py")}
    assert parts <= set(RANK), f"give these a layer in LAYERS: {sorted(parts - set(RANK))}"


def test_no_module_imports_one_above_it_or_beside_it():
    wrong = []
    for module, imported in _imports().items():
        own = _part(module)
        for target in imported:
            other = _part(target)
            if other != own and RANK[other] >= RANK[own]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_the_runtime_shipped_into_repositories_imports_nothing_else_of_the_package():
    graph = _imports()
    leaks = [f"{m} -> {t}" for m, ts in graph.items() if _part(m) == "runtime" for t in ts if _part(t) != "runtime"]
    assert not leaks, leaks


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    # A package's __init__ re-exporting its own modules is not a cycle of ideas; anything else is.
    real = [c for c in cycles if len({_part(m) for m in c}) > 1 or not any(m.count(".") == 1 for m in c)]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)
