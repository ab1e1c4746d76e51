"""lake_ingest: every Kafka topic of the streaming path into the raw.* Iceberg tables, exactly once.

Kafka offsets and Iceberg commits both ride on Flink checkpoints: a restart from the latest checkpoint
re-reads exactly what was not committed, so each record lands once. Files are committed at each
checkpoint, so the interval trades visibility against small files (the Spark maintenance job compacts).

- ``transactions`` -> ``raw.transactions`` (valid records; malformed ones reach the lake through the DLQ
  topic that fraud_scoring writes, so there is one classification, not two);
- ``fraud_labels`` -> ``raw.fraud_labels`` (malformed labels -> ``raw.transactions_dlq``);
- ``fraud_alerts`` and ``transactions_dlq`` (read committed) -> ``raw.fraud_alerts``, ``raw.transactions_dlq``;
- ``fraud_decisions`` -> ``raw.fraud_decisions``: every record of the topic once. The topic itself is at least
  once (a restart of fraud_scoring may repeat the decisions made since its last checkpoint), so readers
  deduplicate on ``txn_id`` (the replayed decision is the same decision: the job replays deterministically).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from flink_jobs.lib.kafka_sql import (
    ALERT_COLUMNS,
    DECISION_COLUMNS,
    DLQ_COLUMNS,
    guard_source_ddl,
    json_source_ddl,
    not_json_object,
    raw_source_ddl,
)
from flink_jobs.lib.settings import register_record_parsers, use_operators

from hybrid_platform import config, kafka_auth, names
from hybrid_platform.engines import flink_catalog_ddl

RAW_TABLES = {
    names.RAW_TRANSACTIONS: """(
  txn_id STRING, card_id STRING, merchant_id STRING, mcc STRING, amount DECIMAL(12, 2), currency STRING,
  country STRING, channel STRING, event_time BIGINT, event_ts TIMESTAMP_LTZ(3), event_date DATE,
  source_partition INT, source_offset BIGINT, ingested_at TIMESTAMP_LTZ(3)
) PARTITIONED BY (event_date)""",
    names.RAW_FRAUD_LABELS: """(
  txn_id STRING, is_fraud BOOLEAN, labeled_at BIGINT, labeled_date DATE, ingested_at TIMESTAMP_LTZ(3)
) PARTITIONED BY (labeled_date)""",
    names.RAW_FRAUD_ALERTS: f"""(
  {ALERT_COLUMNS}, event_date DATE, ingested_at TIMESTAMP_LTZ(3)
) PARTITIONED BY (event_date)""",
    names.RAW_FRAUD_DECISIONS: f"""(
  {DECISION_COLUMNS}, event_date DATE, ingested_at TIMESTAMP_LTZ(3)
) PARTITIONED BY (event_date)""",
    names.RAW_TRANSACTIONS_DLQ: f"""(
  {DLQ_COLUMNS}, received_date DATE, ingested_at TIMESTAMP_LTZ(3)
) PARTITIONED BY (received_date)""",
}


def quoted(table: str) -> str:
    """`raw`.`transactions`: RAW is a reserved word in Flink SQL (the RAW type)."""
    return ".".join(f"`{part}`" for part in table.split("."))


def create_raw_tables(t_env: TableEnvironment, catalog: str) -> None:
    t_env.execute_sql(f"CREATE DATABASE IF NOT EXISTS `{catalog}`.`{names.RAW_NAMESPACE}`")
    for table, definition in RAW_TABLES.items():
        t_env.execute_sql(
            f"CREATE TABLE IF NOT EXISTS `{catalog}`.{quoted(table)} {definition} WITH ('format-version' = '2')"
        ).wait()


def _date(epoch_ms_column: str) -> str:
    return f"CAST(TO_TIMESTAMP_LTZ({epoch_ms_column}, 3) AS DATE)"


def build_pipeline(
    t_env: TableEnvironment,
    transactions: str,
    labels: str,
    alerts: str,
    decisions: str,
    dlq: str,
    sink_prefix: str,
    guards: dict[str, str] | None = None,
) -> StatementSet:
    """Route the five sources into ``{sink_prefix}raw.*`` (e.g. ``lakehouse.``); sources as in the DDLs above.

    ``guards``: topic -> a raw source of that JSON topic (``guard_source_ddl``); its records that are not JSON
    objects go to ``raw.transactions_dlq`` with the reason, so no record stops the job or is dropped unseen.
    """
    register_record_parsers(t_env, {"parse_transaction": "transaction", "parse_label": "label"})
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_TRANSACTIONS)}
SELECT p.txn_id, p.card_id, p.merchant_id, p.mcc, p.amount, p.currency, p.country, p.channel, p.event_time,
       TO_TIMESTAMP_LTZ(p.event_time, 3), {_date("p.event_time")}, source_partition, source_offset,
       CURRENT_TIMESTAMP
FROM (SELECT parse_transaction(`raw`) AS p, source_partition, source_offset FROM {transactions})
WHERE p.ok""")
    t_env.create_temporary_view(
        "labels_parsed",
        t_env.sql_query(f"SELECT parse_label(`raw`) AS p, source_partition, source_offset FROM {labels}"),
    )
    statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_FRAUD_LABELS)}
SELECT p.txn_id, p.is_fraud, p.labeled_at, {_date("p.labeled_at")}, CURRENT_TIMESTAMP
FROM labels_parsed WHERE p.ok""")
    statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_FRAUD_ALERTS)}
SELECT *, {_date("event_time")}, CURRENT_TIMESTAMP FROM {alerts}""")
    statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_FRAUD_DECISIONS)}
SELECT *, {_date("event_time")}, CURRENT_TIMESTAMP FROM {decisions}""")
    statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_TRANSACTIONS_DLQ)}
SELECT *, {_date("received_at")}, CURRENT_TIMESTAMP FROM {dlq}
UNION ALL
SELECT p.original, p.original_encoding, p.reason, '{names.TOPIC_FRAUD_LABELS}', source_partition, source_offset,
       p.received_at, {_date("p.received_at")}, CURRENT_TIMESTAMP
FROM labels_parsed WHERE NOT p.ok""")
    for topic, guard in (guards or {}).items():
        statements.add_insert_sql(f"""
INSERT INTO {sink_prefix}{quoted(names.RAW_TRANSACTIONS_DLQ)}
SELECT TO_BASE64(`raw`), 'base64', 'not a JSON object', '{topic}', source_partition, source_offset,
       UNIX_TIMESTAMP() * 1000, CURRENT_DATE, CURRENT_TIMESTAMP
FROM {guard} WHERE {not_json_object()}""")
    return statements


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config.load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Each checkpoint commits one set of files per table: shorter = fresher lake, more small files.
    parser.add_argument("--checkpoint-interval-ms", type=int, default=10_000)
    # group-offsets: resume where the job's consumer group left off (a new group starts at the earliest
    # record). latest-offset: only what arrives from now on (the benchmark, after its state prefill).
    parser.add_argument("--start-from", choices=["group-offsets", "latest-offset"], default="group-offsets")
    args = parser.parse_args(argv)

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("pipeline.name", names.JOB_LAKE_INGEST)
    conf.set("table.local-time-zone", "UTC")
    conf.set("execution.checkpointing.interval", f"{args.checkpoint_interval_ms} ms")
    conf.set("execution.checkpointing.mode", "EXACTLY_ONCE")
    # Chained operators hand rows over without copying them (measured: a copy of every row on its way to
    # the Iceberg writers was a visible share of the job's CPU at 5,000 events/s).
    conf.set("pipeline.object-reuse", "true")
    use_operators(t_env)
    t_env.execute_sql(flink_catalog_ddl(cfg))
    create_raw_tables(t_env, cfg.catalog.name)
    job, bootstrap, start = names.JOB_LAKE_INGEST, cfg.kafka_bootstrap, args.start_from
    auth = kafka_auth.flink_sql_options(cfg.kafka_java("lake-ingest", shaded=kafka_auth.FLINK_SHADED))
    t_env.execute_sql(raw_source_ddl("transactions_source", names.TOPIC_TRANSACTIONS, bootstrap, job, start, auth))
    t_env.execute_sql(raw_source_ddl("labels_source", names.TOPIC_FRAUD_LABELS, bootstrap, job, start, auth))
    for table, columns, topic in (
        ("alerts_source", ALERT_COLUMNS, names.TOPIC_FRAUD_ALERTS),
        ("decisions_source", DECISION_COLUMNS, names.TOPIC_FRAUD_DECISIONS),
        ("dlq_source", DLQ_COLUMNS, names.TOPIC_TRANSACTIONS_DLQ),
    ):
        t_env.execute_sql(json_source_ddl(table, columns, topic, bootstrap, job, start, auth))
        t_env.execute_sql(guard_source_ddl(f"{table}_guard", topic, bootstrap, job, start, auth))
    build_pipeline(
        t_env,
        "transactions_source",
        "labels_source",
        "alerts_source",
        "decisions_source",
        "dlq_source",
        f"`{cfg.catalog.name}`.",
        guards={
            names.TOPIC_FRAUD_ALERTS: "alerts_source_guard",
            names.TOPIC_FRAUD_DECISIONS: "decisions_source_guard",
            names.TOPIC_TRANSACTIONS_DLQ: "dlq_source_guard",
        },
    ).execute()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
