"""Flink reads an Iceberg table (written by Spark) and writes another (read back by Spark and pyiceberg).

It proves the engines share one lakehouse through one catalog. Submitted to the session cluster by
``hdp demo`` and the shared-storage integration test:

    flink run -py flink_jobs/lakehouse_roundtrip.py --source demo.cards_from_spark --sink demo.cards_from_flink
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyflink.table import EnvironmentSettings, TableEnvironment, TableResult

from hybrid_platform import config
from hybrid_platform.engines import flink_catalog_ddl


def build_pipeline(t_env: TableEnvironment, source: str, sink: str) -> TableResult:
    """Replace ``sink`` with ``source``, marking each row as written by Flink (the sink is created if absent)."""
    t_env.execute_sql(
        f"CREATE TABLE IF NOT EXISTS {sink} ( id BIGINT, name STRING, amount DECIMAL(12, 2), written_by STRING)"
    )
    return t_env.execute_sql(
        f"INSERT OVERWRITE {sink} SELECT id, name, CAST(amount * 2 AS DECIMAL(12, 2)), 'flink' FROM {source}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="namespace.table to read")
    parser.add_argument("--sink", required=True, help="namespace.table to write")
    args = parser.parse_args(argv)
    cfg = config.load()
    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.execute_sql(flink_catalog_ddl(cfg))
    t_env.use_catalog(cfg.catalog.name)
    t_env.execute_sql(f"CREATE DATABASE IF NOT EXISTS {args.sink.split('.')[0]}")
    build_pipeline(t_env, args.source, args.sink).wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
