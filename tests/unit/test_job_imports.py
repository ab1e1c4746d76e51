"""Jobs import libraries, never other jobs: a job is deployable, testable and deletable on its own."""

from __future__ import annotations

import ast
from pathlib import Path

from hybrid_platform.config import REPO_ROOT

JOB_PACKAGES = ("spark_jobs", "flink_jobs")


def _modules(package: str) -> dict[str, Path]:
    folder = REPO_ROOT / package
    return {f"{package}.{path.stem}": path for path in sorted(folder.glob("*.py")) if path.stem != "__init__"}


def _is_job(path: Path) -> bool:
    """A job has an entry point: a module-level ``main``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from spark_jobs import x`
    return found


def test_jobs_import_libraries_never_other_jobs() -> None:
    modules = {name: path for package in JOB_PACKAGES for name, path in _modules(package).items()}
    jobs = {name for name, path in modules.items() if _is_job(path)}
    assert "spark_jobs.daily_etl" in jobs  # the rule below is about something
    offenders = {}
    for name, path in modules.items():
        other_jobs = sorted(_imported_modules(path) & (jobs - {name}))
        if other_jobs:
            offenders[name] = other_jobs
    assert not offenders, f"move what they share into a library module (spark_jobs.tables, flink_jobs.lib): {offenders}"
