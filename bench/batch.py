"""Batch leg: the ETL query on Spark (cold and warm), Flink in batch mode, and DuckDB, on the same data."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import etl_sql
from bench.measure import Context, summarize

from hybrid_platform import config, flink_ops, runtime

#: Every engine gets two cores' worth of parallelism: Spark local[2], Flink parallelism 2, DuckDB 2 threads.
CORES = 2


def _bench_result(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("BENCH_RESULT "):
            parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return parsed
    raise RuntimeError(f"no BENCH_RESULT line in the output: {output[-800:]}")


def run_module(module: str, *args: str) -> dict[str, Any]:
    """``python -m module *args`` with Spark on the bench's cores: its BENCH_RESULT, or its error."""
    env = {**os.environ, "HDP_SPARK_MASTER": f"local[{CORES}]"}
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{module} {args[0]} failed: {(result.stderr or result.stdout)[-800:]}")
    return _bench_result(result.stdout)


def _spark(*args: str) -> tuple[dict[str, Any], float]:
    started = time.time()
    return run_module("bench.batch_spark", *args), started


def _data_files(cfg: config.PlatformConfig, table: str) -> list[str]:
    import logging

    from pyiceberg.catalog import load_catalog

    # The catalog's V0 layout is deliberate (Java and pyiceberg share it); its notice is noise here.
    logging.getLogger("pyiceberg.catalog.sql").setLevel(logging.ERROR)
    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    return [task.file.file_path.removeprefix("file://") for task in catalog.load_table(table).scan().plan_files()]


def duckdb_runs(cfg: config.PlatformConfig, repeats: int) -> dict[str, Any]:
    """DuckDB on the Iceberg tables' own Parquet files (the file list from the catalog's current snapshot).

    Runs in a process of its own (``main``), as Spark and Flink do: cold is that process's start to its
    first result, and each process is one repeat.
    """
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {CORES}")
    connection.execute("CREATE SCHEMA bench")
    for table in (etl_sql.TRANSACTIONS, etl_sql.RATES):
        files = ", ".join(f"'{path}'" for path in _data_files(cfg, table))
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{files}])")
    query = etl_sql.etl_summary_sql(etl_sql.TRANSACTIONS, etl_sql.RATES)
    seconds = []
    result: list[str] = []
    first_result_at = 0.0
    for _ in range(repeats + 1):
        run_started = time.monotonic()
        row = connection.execute(query).fetchone()
        seconds.append(time.monotonic() - run_started)
        first_result_at = first_result_at or time.time()
        assert row is not None
        result = etl_sql.normalize(tuple(row))
    connection.close()
    return {
        "first_result_at": first_result_at,
        "warm_s": seconds[1:],
        "result": result,
        "threads": CORES,
        "version": duckdb.__version__,
    }


def _duckdb(repeats: int) -> dict[str, Any]:
    started = time.time()
    outcome = run_module("bench.batch", "duckdb", "--repeats", str(repeats))
    outcome["cold_s"] = outcome["first_result_at"] - started
    return outcome


def taskmanager_direct_memory_mb(cfg: config.PlatformConfig) -> float | None:
    """Direct memory the TaskManager JVM holds: it must not grow from one batch job to the next."""
    metric = "Status.JVM.Memory.Direct.MemoryUsed"
    deadline = time.monotonic() + 15  # the JobManager fetches TaskManager metrics every 10 s
    while time.monotonic() < deadline:
        try:
            managers = flink_ops.request(cfg, "GET", "/taskmanagers").get("taskmanagers", [])
            values = flink_ops.request(cfg, "GET", f"/taskmanagers/{managers[0]['id']}/metrics?get={metric}")
            if values:
                return round(float(values[0]["value"]) / 2**20, 1)
        except Exception:  # recorded as unknown: the timings stand without it
            return None
        time.sleep(1)
    return None


def flink_runs(cfg: config.PlatformConfig, repeats: int) -> dict[str, Any]:
    started = time.time()
    output = runtime.flink_run(
        cfg,
        config.REPO_ROOT / "bench" / "flink_batch_job.py",
        ["--repeats", str(repeats), "--parallelism", str(CORES)],
        timeout_s=3600,
    )
    result = _bench_result(output.stdout)
    result["cold_s"] = result["first_result_at"] - started
    result["taskmanager_direct_mb_after"] = taskmanager_direct_memory_mb(cfg)
    return result


def batch(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    ctx.services("flink")  # Flink batch submits to the session cluster; nothing else runs
    generated, _ = _spark("generate", "--rows", str(p.batch_rows), "--seed", str(p.seed))
    ctx.echo(f"   data: {generated}")
    warm_repeats = p.batch_warm_runs

    spark_cold, spark_warm, spark_results, input_rows = [], [], [], 0
    flink_cold, flink_warm, flink_results, flink_direct_mb = [], [], [], []
    duck_cold, duck_warm, duck_results = [], [], []
    spark_warm_runs: list[list[float]] = []
    flink_warm_runs: list[list[float]] = []
    duck_warm_runs: list[list[float]] = []
    version = ""
    # Warm-up, not measured (as hyperfine's --warmup; Profile.batch_warm_up says why). Spark's first process
    # follows the data generation, which warmed the same.
    warm_up_s = {}
    if "flink_batch" in p.batch_warm_up:
        warm_up_s["flink_batch"] = round(flink_runs(ctx.cfg, 0)["cold_s"], 2)
    if "duckdb" in p.batch_warm_up:
        warm_up_s["duckdb"] = round(_duckdb(0)["cold_s"], 2)
    # One engine after another, repeat by repeat (Spark, Flink, DuckDB, Spark, ...): each engine's repeats span
    # the whole leg, so a drift of the machine's speed shows in every engine's spread rather than in one.
    # The Flink session cluster stays up (idle) throughout, so every engine runs beside the same idle JVMs.
    # One repeat is one process: its warm time is the median of that process's warm runs. Runs in one process
    # share its JIT, caches and minute of the machine's life, so they are not independent repeats; counted as
    # such they would narrow the rerun interval to a spread the next run's processes do not keep to.
    for _ in range(p.repeats):
        outcome, started = _spark("etl", "--repeats", str(warm_repeats))
        spark_cold.append(outcome["first_result_at"] - started)
        spark_warm.append(statistics.median(outcome["warm_s"]))
        spark_warm_runs.append(outcome["warm_s"])
        spark_results.append(outcome["result"])
        input_rows = outcome["input_rows"]

        outcome = flink_runs(ctx.cfg, warm_repeats)
        flink_cold.append(outcome["cold_s"])
        flink_warm.append(statistics.median(outcome["warm_s"]))
        flink_warm_runs.append(outcome["warm_s"])
        flink_results.append(outcome["result"])
        flink_direct_mb.append(outcome["taskmanager_direct_mb_after"])

        outcome = _duckdb(p.duckdb_warm_runs)
        duck_cold.append(outcome["cold_s"])
        duck_warm.append(statistics.median(outcome["warm_s"]))
        duck_warm_runs.append(outcome["warm_s"])
        duck_results.append(outcome["result"])
        version = outcome["version"]

    engines: dict[str, dict[str, Any]] = {
        "spark": {
            "cold_s": summarize(spark_cold),
            "warm_s": summarize(spark_warm),
            "warm_runs_by_process": spark_warm_runs,
            "setting": f"local[{CORES}]",
        },
        "flink_batch": {
            "cold_s": summarize(flink_cold),
            "warm_s": summarize(flink_warm),
            "warm_runs_by_process": flink_warm_runs,
            "setting": f"batch mode, parallelism {CORES}, session cluster",
            "taskmanager_direct_mb_after_each_process": flink_direct_mb,
        },
        "duckdb": {
            "cold_s": summarize(duck_cold),
            "warm_s": summarize(duck_warm),
            "warm_runs_by_process": duck_warm_runs,
            "setting": f"{CORES} threads, {version}",
        },
    }
    for numbers in engines.values():
        warm = numbers["warm_s"]["median"]
        numbers["rows_per_s_warm"] = round(input_rows / warm) if warm else None
        numbers["rows_per_s_per_core_warm"] = round(input_rows / warm / CORES) if warm else None
        cold = numbers["cold_s"]["median"]
        numbers["rows_per_s_cold"] = round(input_rows / cold) if cold else None
    results = {spark_results[0] == r for r in flink_results + duck_results + spark_results}
    spark_warm_rate = engines["spark"]["rows_per_s_warm"] or 0
    return {
        "warm_up_s": warm_up_s,
        "input_rows": input_rows,
        "data": generated,
        "engines": engines,
        "same_result_everywhere": results == {True},
        "result": spark_results[0],
        "ratios": {
            "spark_over_flink_warm": _ratio(spark_warm_rate, engines["flink_batch"]["rows_per_s_warm"]),
            "duckdb_over_spark_warm": _ratio(engines["duckdb"]["rows_per_s_warm"], spark_warm_rate),
            "spark_over_flink_cold": _ratio(
                engines["spark"]["rows_per_s_cold"], engines["flink_batch"]["rows_per_s_cold"]
            ),
        },
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.batch duckdb --repeats N``: one DuckDB process of the batch leg; prints BENCH_RESULT."""
    parser = argparse.ArgumentParser(prog="python -m bench.batch")
    parser.add_argument("engine", choices=["duckdb"])
    parser.add_argument("--repeats", type=int, default=1, help="warm runs after the first (cold) one")
    args = parser.parse_args(argv)
    print("BENCH_RESULT " + json.dumps(duckdb_runs(config.load(), args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
