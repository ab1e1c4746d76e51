"""Flink side of the batch leg: the ETL query in batch mode on the session cluster, over the Iceberg tables.

Submitted with ``flink run -py`` (client in the Flink environment); prints one ``BENCH_RESULT`` JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pyflink.table import EnvironmentSettings, TableEnvironment

from bench import etl_sql

from hybrid_platform import config, engines


def _wait_until_terminal(table_result: Any, timeout_s: float = 60) -> None:
    """Each run starts on an idle cluster: the previous job has released its slots and memory."""
    client = table_result.get_job_client()
    deadline = time.monotonic() + timeout_s
    while client is not None and time.monotonic() < deadline:
        if client.get_job_status().result().is_globally_terminal_state():
            return
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    cfg = config.load()
    started = time.time()
    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    # Same parallelism as Spark's local[2]: two cores, two tasks.
    t_env.get_config().set("parallelism.default", str(args.parallelism))
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.execute_sql(engines.flink_catalog_ddl(cfg))
    t_env.execute_sql(f"USE CATALOG `{cfg.catalog.name}`")
    query = etl_sql.etl_summary_sql(etl_sql.TRANSACTIONS, etl_sql.RATES)
    runs = []
    result: list[str] = []
    for _ in range(args.repeats + 1):
        run_started = time.monotonic()
        table_result = t_env.execute_sql(query)
        with table_result.collect() as rows:
            # Read to the end: closing the iterator early cancels a job that has not finished yet, and the
            # next run would then queue behind a cancellation for its slots.
            row, *_rest = list(rows)
        runs.append({"seconds": time.monotonic() - run_started, "finished_at": time.time()})
        _wait_until_terminal(table_result)
        result = etl_sql.normalize(tuple(row))
    print(
        "BENCH_RESULT "
        + json.dumps(
            {
                "environment_start_s": runs[0]["finished_at"] - runs[0]["seconds"] - started,
                "first_result_at": runs[0]["finished_at"],
                "first_query_s": runs[0]["seconds"],
                "warm_s": [r["seconds"] for r in runs[1:]],
                "result": result,
                "parallelism": args.parallelism,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
