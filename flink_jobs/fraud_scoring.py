"""fraud_scoring: card transactions from Kafka -> per-card event-time features -> score -> fraud_alerts.

Long-lived job on the Flink session cluster (``hdp flink deploy fraud_scoring``):

- Kafka source of raw bytes; event time from the record's ``event_time`` (bounded out-of-orderness,
  idle partitions do not hold the watermark back);
- parse and validate in Python: malformed records go to ``transactions_dlq`` with the reason; the job
  never fails on data;
- features as chained event-time OVER aggregates keyed by ``card_id`` (JVM keyed state), from the one
  definition in ``hybrid_platform.features``; events later than the watermark skip the windows and are
  scored on their stateless signals, marked ``late_event``;
- score = explainable rules + the champion model from the registry, re-read without a restart;
- alerts at or above the threshold to ``fraud_alerts`` through a transactional producer: exactly once,
  visible to read-committed consumers when each checkpoint completes (so the checkpoint interval bounds
  the alert latency).
"""

from __future__ import annotations

import argparse
import json
import os
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from hybrid_platform import config, events, features, names
from hybrid_platform.config import REPO_ROOT
from hybrid_platform.model import registry_root
from hybrid_platform.rules import DEFAULT_ALERT_THRESHOLD


@dataclass(frozen=True)
class ScoringSettings:
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    registry_root: str = ""
    model_reload_interval_s: float = 5.0


def source_ddl(
    table: str, topic: str, bootstrap: str, group_id: str, watermark_delay_ms: int, startup_mode: str = "group-offsets"
) -> str:
    """Kafka transactions as raw bytes with their coordinates and an event-time attribute ``event_ts``.

    The event time is read with JSON_VALUE so the watermark can be declared on the source. A record whose
    time is missing, unreadable or more than a minute ahead of its Kafka timestamp takes the Kafka
    timestamp instead: one malformed record must not push the watermark into the future and make every
    following event late.
    """
    return f"""
CREATE TEMPORARY TABLE {table} (
  `raw` BYTES,
  `source_topic` STRING METADATA FROM 'topic' VIRTUAL,
  `source_partition` INT METADATA FROM 'partition' VIRTUAL,
  `source_offset` BIGINT METADATA FROM 'offset' VIRTUAL,
  `kafka_ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  `event_ts` AS CASE
      WHEN TO_TIMESTAMP_LTZ(TRY_CAST(JSON_VALUE(CAST(`raw` AS STRING), '$.event_time') AS BIGINT), 3)
           <= `kafka_ts` + INTERVAL '1' MINUTE
      THEN TO_TIMESTAMP_LTZ(TRY_CAST(JSON_VALUE(CAST(`raw` AS STRING), '$.event_time') AS BIGINT), 3)
      ELSE `kafka_ts`
    END,
  WATERMARK FOR `event_ts` AS `event_ts` - INTERVAL '{watermark_delay_ms / 1000:.3f}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{bootstrap}',
  'properties.group.id' = '{group_id}',
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = '{startup_mode}',
  'value.format' = 'raw'
)"""


def exactly_once_kafka_sink_ddl(
    table: str,
    columns: str,
    topic: str,
    bootstrap: str,
    transactional_id_prefix: str,
    key: str | None = None,
    max_record_bytes: int | None = None,
) -> str:
    """A Kafka sink writing JSON through Kafka transactions committed at each checkpoint.

    ``max_record_bytes`` raises the producer's 1 MiB ``max.request.size`` (the topic must allow as much).
    """
    key_options = f"'key.format' = 'raw', 'key.fields' = '{key}', 'value.fields-include' = 'ALL'," if key else ""
    if max_record_bytes:
        key_options += f"'properties.max.request.size' = '{max_record_bytes}',"
    return f"""
CREATE TEMPORARY TABLE {table} ({columns}) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{bootstrap}',
  {key_options}
  'value.format' = 'json',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '{transactional_id_prefix}',
  -- below the broker's transaction.max.timeout.ms (15 min); covers a slow checkpoint and a restart
  'properties.transaction.timeout.ms' = '600000'
)"""


ALERT_COLUMNS = (
    "txn_id STRING, card_id STRING, score DOUBLE, reasons ARRAY<STRING>, model_version STRING, "
    "event_time BIGINT, scored_at BIGINT"
)
DLQ_COLUMNS = (
    "original STRING, original_encoding STRING, reason STRING, source_topic STRING, source_partition INT, "
    "source_offset BIGINT, received_at BIGINT"
)


#: On time: not yet behind the watermark, so the OVER windows will see it. Late: scored without windows.
ON_TIME = "(CURRENT_WATERMARK(event_ts) IS NULL OR event_ts > CURRENT_WATERMARK(event_ts))"


def add_feature_views(t_env: TableEnvironment, parsed: str) -> None:
    """``on_time`` (valid rows the windows take) and the feature stages up to ``card_features``.

    ``parsed`` has ``ok`` and the contract's columns. Only what scoring needs goes into the windows: OVER
    operators keep every input row of their range (an hour for the 1-hour features), so each dropped column
    shrinks state and checkpoints.
    """
    t_env.create_temporary_view(
        "on_time",
        t_env.sql_query(
            f"SELECT txn_id, card_id, amount, mcc, channel, country, event_time, event_ts "
            f"FROM {parsed} WHERE ok AND {ON_TIME}"
        ),
    )
    for view, query in features.flink_feature_stages("on_time"):
        t_env.create_temporary_view(view, t_env.sql_query(query))


def build_pipeline(
    t_env: TableEnvironment, source: str, alerts_sink: str, dlq_sink: str, settings: ScoringSettings
) -> StatementSet:
    """Wire parse -> features -> score -> sinks. ``source`` has the columns of ``source_ddl``."""
    from flink_jobs.udfs import parse_transaction, score_transaction_udf

    t_env.create_temporary_function("parse_transaction", parse_transaction)
    t_env.create_temporary_function(
        "score_transaction", score_transaction_udf(settings.registry_root, settings.model_reload_interval_s)
    )
    t_env.create_temporary_view(
        "parsed",
        t_env.sql_query(
            f"SELECT p.*, source_topic, source_partition, source_offset, event_ts "
            f"FROM (SELECT parse_transaction(`raw`) AS p, source_topic, source_partition, source_offset, event_ts "
            f"FROM {source})"
        ),
    )
    add_feature_views(t_env, "parsed")

    feature_args = ", ".join(features.FEATURE_NAMES)
    late_feature_args = ", ".join(
        "CAST(-1.0 AS DOUBLE)" if name == features.PREVIOUS_GAP_FEATURE else "CAST(0.0 AS DOUBLE)"
        for name in features.FEATURE_NAMES
    )
    scored = f"""
SELECT txn_id, card_id, s.score AS score, s.reasons AS reasons, s.model_version AS model_version, event_time,
       s.scored_at AS scored_at
FROM (
  SELECT txn_id, card_id, event_time,
         score_transaction(amount, mcc, channel, country, FALSE, {feature_args}) AS s
  FROM card_features
  UNION ALL
  SELECT txn_id, card_id, event_time,
         score_transaction(amount, mcc, channel, country, TRUE, {late_feature_args}) AS s
  FROM parsed WHERE ok AND NOT {ON_TIME}
)
WHERE s.score >= {settings.alert_threshold}"""
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"INSERT INTO {alerts_sink} {scored}")
    statements.add_insert_sql(
        f"INSERT INTO {dlq_sink} SELECT original, original_encoding, reason, source_topic, source_partition, "
        f"source_offset, received_at FROM parsed WHERE NOT ok"
    )
    return statements


def python_thread_mode() -> dict[str, str]:
    """Run Python UDFs inside the TaskManager (PEMJA) instead of a separate Beam worker process.

    Measured here: ~3x the rows per CPU second of process mode, which matters on a 2-core machine running
    two jobs. Thread mode imports from python.pythonpath (the editable install's .pth is not read there),
    so it lists the Flink environment's site-packages and this repository. HDP_FLINK_PYTHON_MODE=process
    switches back.
    """
    mode = os.environ.get("HDP_FLINK_PYTHON_MODE", "thread")
    if mode != "thread":
        return {"python.execution-mode": mode}
    paths = [sysconfig.get_paths()["purelib"], str(REPO_ROOT), str(REPO_ROOT / "src")]
    return {"python.execution-mode": "thread", "python.pythonpath": os.pathsep.join(paths)}


#: How ``configure`` prefixes the job's effective settings in the client output (read by the benchmark).
JOB_SETTINGS_PREFIX = "job settings: "


def changelog_settings() -> dict[str, str]:
    """The changelog state backend (HDP_FLINK_CHANGELOG, default on), and the restore mode it needs.

    A restore in Flink's default NO_CLAIM mode must take a full snapshot first, which the changelog backend
    cannot: with it the job claims the checkpoint or savepoint it starts from (CLAIM), and Flink deletes that
    snapshot once newer checkpoints subsume it.
    """
    if os.environ.get("HDP_FLINK_CHANGELOG", "true").lower() in {"0", "false", "no"}:
        return {"state.changelog.enabled": "false"}
    return {"state.changelog.enabled": "true", "execution.state-recovery.claim-mode": "CLAIM"}


def configure(t_env: TableEnvironment, job_name: str, checkpoint_interval_ms: int) -> None:
    """Job settings that decide latency and guarantees (recorded here, not left to defaults)."""
    conf = t_env.get_config()
    settings = {
        "pipeline.name": job_name,
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": f"{checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.min-pause": "0 ms",
        # Heap state locally (RocksDB p99 1.3 s on 1.3 cores at 1,000 events/s; HDP_FLINK_STATE_BACKEND=rocksdb
        # for state larger than memory). Alert visibility needs a checkpoint every few hundred ms, and a full
        # heap snapshot of an hour of per-card windows (131 MB after 80 s at 1,000/s) cannot be written that
        # often. The changelog backend uploads only the changes since the previous checkpoint (1.5 KB) and
        # materializes the full state every 10 minutes. Measured with the whole runtime up, 1,000/s for 60 s,
        # warm: p99 0.75 s, 0.81 cores, checkpoints 84 ms; without it p99 2.7 s, 1.27 cores, 436 ms.
        "state.backend.type": os.environ.get("HDP_FLINK_STATE_BACKEND", "hashmap"),
        "execution.checkpointing.incremental": "true",
        **changelog_settings(),
        # Emit watermarks often and flush network buffers quickly: both add directly to alert latency.
        "pipeline.auto-watermark-interval": "50 ms",
        "execution.buffer-timeout.interval": "10 ms",
        # A partition without traffic must not stall event time for the others.
        "table.exec.source.idle-timeout": "2 s",
        **python_thread_mode(),
        # Small Python bundles: default bundles (100k rows / 1 s) add up to a second of latency.
        "python.fn-execution.bundle.size": "100",
        "python.fn-execution.bundle.time": "10",
    }
    for key, value in settings.items():
        conf.set(key, value)
    # One line in the client's output: Flink's REST API shows the cluster's settings, not these job-level ones.
    print(JOB_SETTINGS_PREFIX + json.dumps(settings, sort_keys=True), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config.load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-threshold", type=float, default=DEFAULT_ALERT_THRESHOLD)
    # Alerts become visible to read-committed consumers when a checkpoint completes: this bounds latency.
    parser.add_argument("--checkpoint-interval-ms", type=int, default=300)
    # Bounded out-of-orderness: later events skip the windows (scored as late) but every alert waits this long.
    parser.add_argument("--watermark-delay-ms", type=int, default=200)
    parser.add_argument("--model-registry", default=str(registry_root(cfg)))
    parser.add_argument("--model-reload-interval-s", type=float, default=5.0)
    # group-offsets: resume where the job's consumer group left off (a new group starts at the earliest
    # record). latest-offset: only what arrives from now on (the benchmark's fresh deployments).
    parser.add_argument("--start-from", choices=["group-offsets", "latest-offset"], default="group-offsets")
    args = parser.parse_args(argv)

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    configure(t_env, names.JOB_FRAUD_SCORING, args.checkpoint_interval_ms)
    job = names.JOB_FRAUD_SCORING
    t_env.execute_sql(
        source_ddl(
            "transactions_source",
            names.TOPIC_TRANSACTIONS,
            cfg.kafka_bootstrap,
            job,
            args.watermark_delay_ms,
            args.start_from,
        )
    )
    t_env.execute_sql(
        exactly_once_kafka_sink_ddl(
            "alerts_sink", ALERT_COLUMNS, names.TOPIC_FRAUD_ALERTS, cfg.kafka_bootstrap, f"{job}-alerts", key="card_id"
        )
    )
    t_env.execute_sql(
        exactly_once_kafka_sink_ddl(
            "dlq_sink",
            DLQ_COLUMNS,
            names.TOPIC_TRANSACTIONS_DLQ,
            cfg.kafka_bootstrap,
            f"{job}-dlq",
            # A DLQ record carries the rejected record whole: up to 4/3 of a 1 MiB record (see events).
            max_record_bytes=events.DLQ_MAX_MESSAGE_BYTES,
        )
    )
    settings = ScoringSettings(args.alert_threshold, args.model_registry, args.model_reload_interval_s)
    build_pipeline(t_env, "transactions_source", "alerts_sink", "dlq_sink", settings).execute()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
