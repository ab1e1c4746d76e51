"""The benchmark's modules import in one direction: the legs never import the harness that runs them."""

from __future__ import annotations

import ast

from hybrid_platform.config import REPO_ROOT


def test_no_bench_module_imports_one_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for path in (REPO_ROOT / "bench").glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "bench":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
                imported.add(node.module.split(".", 1)[1])
        graph[path.stem] = imported

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph.get(start, ()))

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"import cycles through: {cycles}"
