"""The import structure holds: the domain (`shared/`) imports neither the API, the workers nor
the command line, and its packages depend on each other one way only."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "shared"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def package_of(module: str) -> str | None:
    """`shared.pool.service` -> `pool`; modules directly under shared/ are not packages."""
    parts = module.split(".")
    if parts[0] != "shared" or len(parts) < 2 or not (SHARED / parts[1]).is_dir():
        return None
    return parts[1]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SHARED.rglob("*.py"):
        source = package_of("shared." + ".".join(path.relative_to(SHARED).with_suffix("").parts))
        if source is None:
            continue
        for module in imported_modules(path):
            target = package_of(module)
            if target and target != source:
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of the graph, found by depth-first search from each node."""
    found = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:  # report each cycle once, from its smallest node
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_the_domain_packages_depend_on_each_other_one_way():
    graph = package_graph()
    assert graph, "no package imports found: the scan is broken"
    assert cycles(graph) == [], cycles(graph)


def test_the_domain_imports_no_outer_layer():
    offenders = [f"{path.relative_to(REPO)} imports {module}"
                 for path in SHARED.rglob("*.py") for module in imported_modules(path)
                 if module.split(".")[0] in ("api", "workers", "cli")]
    assert offenders == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
