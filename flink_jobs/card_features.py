"""card_features: the per-card features over a bounded set of events, with the SQL fraud_scoring runs online.

Used by the feature-parity test (Flink and Spark must agree on the same events) and for backfills:

    flink run -py flink_jobs/card_features.py --input events.jsonl --output features.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import Decimal

from pyflink.table import EnvironmentSettings, Table, TableEnvironment

from hybrid_platform import features


def source_ddl(table: str, path: str) -> str:
    return f"""
CREATE TEMPORARY TABLE {table} (
  txn_id STRING, card_id STRING, amount DECIMAL(12, 2), country STRING, event_time BIGINT,
  event_ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR event_ts AS event_ts
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')"""


def build_pipeline(t_env: TableEnvironment, source: str) -> Table:
    """The feature stages of ``hybrid_platform.features`` over ``source``: txn_id plus every feature."""
    for view, query in features.flink_feature_stages(source):
        t_env.create_temporary_view(view, t_env.sql_query(query))
    return t_env.sql_query(f"SELECT txn_id, {', '.join(features.FEATURE_NAMES)} FROM card_features")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="JSON lines: txn_id, card_id, amount, country, event_time")
    parser.add_argument("--output", required=True, help="JSON lines written by this client: txn_id + features")
    args = parser.parse_args(argv)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.name", "card_features")
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.execute_sql(source_ddl("events", args.input))
    with build_pipeline(t_env, "events").execute().collect() as rows, open(args.output, "w") as out:
        for row in rows:
            values = dict(zip(["txn_id", *features.FEATURE_NAMES], row, strict=True))
            out.write(json.dumps(values, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
