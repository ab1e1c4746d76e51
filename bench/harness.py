"""A run: the private runtime it uses, the legs in order, and the record of everything that was set."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import legs as leg_registry
from bench.measure import (  # re-exported (__all__): the CLI, the report and the tests read them here
    ALL_LEGS,
    PROFILES,
    Context,
    Profile,
    _t_975,
    add_machine_drift,
    dag_parse_times,
    machine_drift,
    reference_speed_ms,
    rerun_interval,
    summarize,
    summarize_dag_parse,
    takes_parse_sample,
    wait_until_idle,
)

from hybrid_platform import config, jars, runtime

__all__ = [
    "ALL_LEGS",
    "BENCH_HOME",
    "PROFILES",
    "RESULTS_DIR",
    "Context",
    "Profile",
    "_t_975",
    "add_machine_drift",
    "dag_parse_times",
    "machine",
    "machine_drift",
    "private_runtime",
    "reference_speed_ms",
    "rerun_interval",
    "run",
    "summarize",
    "summarize_dag_parse",
    "takes_parse_sample",
    "versions",
    "wait_until_idle",
    "write_results",
]

RESULTS_DIR = config.REPO_ROOT / "bench" / "results"
#: The bench's own runtime state (git-ignored); never the `make demo` runtime.
BENCH_HOME = config.REPO_ROOT / ".bench"


@contextmanager
def private_runtime(home: Path) -> Generator[None]:
    """HDP_* variables for a runtime of the bench's own (free ports, own state); stopped at the end."""
    home.mkdir(parents=True, exist_ok=True)
    env = runtime.private_env(home)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    cfg = config.load()
    jars.ensure_all(cfg.jar_cache, repository=cfg.maven_repository)
    try:
        yield
    finally:
        runtime.down(cfg, echo=lambda _line: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict[str, Any]:
    """The machine and software a result belongs to."""
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory_gb = round(total_kb / 1024 / 1024, 1)
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": _command_output(["java", "-version"]) or _java_version(),
        "git_revision": _command_output(["git", "-C", str(config.REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_command_output(["git", "-C", str(config.REPO_ROOT), "status", "--porcelain"])),
    }


def _java_version() -> str:
    result = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (result.stderr or result.stdout).splitlines()[0] if (result.stderr or result.stdout) else ""


def versions() -> dict[str, Any]:
    """The version matrix as installed (Python packages of both environments, pinned jars)."""
    from importlib import metadata

    python = {}
    for package in ("pyspark", "apache-airflow", "confluent-kafka", "duckdb", "scikit-learn", "pyiceberg"):
        try:
            python[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            python[package] = None
    cfg = config.load()
    flink = _command_output(
        [str(cfg.flink_python), "-c", "import importlib.metadata as m; print(m.version('apache-flink'))"]
    )
    python["apache-flink"] = flink or None
    jar_versions, _ = jars.load_manifest()
    return {"python": python, "jars": jar_versions}


def write_results(out_dir: Path, results: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    return path


def run(
    profile: Profile,
    out_dir: Path,
    legs: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
    home: Path | None = None,
) -> dict[str, Any]:
    """Run the profile's legs in order on a private runtime; returns (and writes) the results document."""
    chosen = [leg for leg in (legs or profile.legs) if leg in profile.legs or legs]
    started = time.time()

    def stamped(line: str) -> None:  # every line says when in the run it came: where the minutes go
        elapsed = int(time.time() - started)
        echo(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {line}")

    results: dict[str, Any] = {
        "profile": asdict(profile),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine(),
        "legs": {},
    }
    with private_runtime(home or BENCH_HOME / profile.name):
        results["versions"] = versions()
        ctx = Context(profile=profile, out_dir=out_dir, echo=stamped)
        for leg in chosen:
            stamped(f"== {leg}")
            ctx.reference_speed_ms = None
            ctx.leg = leg
            leg_started = time.monotonic()
            try:
                outcome = leg_registry.LEGS[leg](ctx)
                outcome["wall_s"] = round(time.monotonic() - leg_started, 1)
            except Exception as error:  # a failed leg is recorded, the others still run
                outcome = {
                    "error": f"{type(error).__name__}: {error}",
                    "wall_s": round(time.monotonic() - leg_started, 1),
                }
                stamped(f"   {leg} failed: {outcome['error']}")
            outcome["reference_speed_ms"] = ctx.reference_speed_ms
            results["legs"][leg] = outcome
            if ctx.dag_parse_samples and "parse_s" in results["legs"].get("orchestration", {}):
                results["legs"]["orchestration"]["parse_s"] = summarize_dag_parse(ctx.dag_parse_samples)
                results["legs"]["orchestration"]["parse_sampled_in_legs"] = [name for name, _ in ctx.dag_parse_samples]
            write_results(out_dir, results)  # partial results survive an interrupted run
    results["wall_s"] = round(time.time() - started, 1)
    add_machine_drift(results)
    write_results(out_dir, results)
    return results
