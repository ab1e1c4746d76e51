"""Kafka topics as Flink SQL tables: the raw bytes of a topic with their coordinates, or a topic of JSON records."""

from __future__ import annotations

#: ``fraud_alerts`` (exactly once, read committed): the audited record of every alert.
ALERT_COLUMNS = (
    "txn_id STRING, card_id STRING, score DOUBLE, reasons ARRAY<STRING>, model_version STRING, "
    "event_time BIGINT, scored_at BIGINT"
)
#: ``fraud_decisions`` (at least once, deduplicated on txn_id): every decision with the features it was made on.
DECISION_COLUMNS = (
    "txn_id STRING, card_id STRING, score DOUBLE, decision STRING, reasons ARRAY<STRING>, model_version STRING, "
    "feature_spec_version STRING, features MAP<STRING, DOUBLE>, event_time BIGINT, scored_at BIGINT, "
    "source_partition INT, source_offset BIGINT, source_ts BIGINT"
)
#: ``transactions_dlq``: a rejected record as received, why, and where it came from.
DLQ_COLUMNS = (
    "original STRING, original_encoding STRING, reason STRING, source_topic STRING, source_partition INT, "
    "source_offset BIGINT, received_at BIGINT"
)


#: A reader that lands data at checkpoints (seconds apart) does not need each record the moment it is
#: written: larger, rarer fetches cost the broker and the reader a fraction of the CPU of one per record.
BULK_FETCH = "'properties.fetch.min.bytes' = '65536', 'properties.fetch.max.wait.ms' = '500'"


def _common(topic: str, bootstrap: str, group_id: str, start_from: str, auth: str) -> str:
    """From the group's offsets (earliest for a new group), or ``latest-offset``: only what arrives from now on.
    ``auth``: the client's security options (``kafka_auth.flink_sql_options``), "" for plaintext."""
    return (
        f"'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', "
        f"'properties.group.id' = '{group_id}', 'properties.auto.offset.reset' = 'earliest', "
        f"'scan.startup.mode' = '{start_from}', {BULK_FETCH}{auth}"
    )


def raw_source_ddl(
    table: str, topic: str, bootstrap: str, group_id: str, start_from: str = "group-offsets", auth: str = ""
) -> str:
    """``topic`` as raw bytes with partition and offset."""
    return f"""
CREATE TEMPORARY TABLE {table} (
  `raw` BYTES,
  `source_partition` INT METADATA FROM 'partition' VIRTUAL,
  `source_offset` BIGINT METADATA FROM 'offset' VIRTUAL
) WITH ({_common(topic, bootstrap, group_id, start_from, auth)}, 'value.format' = 'raw')"""


def json_source_ddl(
    table: str,
    columns: str,
    topic: str,
    bootstrap: str,
    group_id: str,
    start_from: str = "group-offsets",
    auth: str = "",
) -> str:
    """``topic`` of JSON records with ``columns``; only committed records of transactional writers."""
    return f"""
CREATE TEMPORARY TABLE {table} ({columns}) WITH (
  {_common(topic, bootstrap, group_id, start_from, auth)}, 'value.format' = 'json',
  -- A record that is not JSON would fail the job on every restart (a poison pill): the format skips it,
  -- and the guard source of the same topic (guard_source_ddl) routes it to the dead letters instead.
  'value.json.ignore-parse-errors' = 'true',
  -- written by transactional producers: only committed records, never an aborted one
  'properties.isolation.level' = 'read_committed'
)"""


def guard_source_ddl(
    table: str, topic: str, bootstrap: str, group_id: str, start_from: str = "group-offsets", auth: str = ""
) -> str:
    """``topic`` as committed raw bytes with coordinates: what a JSON source beside it skips, seen whole.

    A group of its own: two readers of one topic in one group would move each other's committed offsets.
    """
    return f"""
CREATE TEMPORARY TABLE {table} (
  `raw` BYTES,
  `source_partition` INT METADATA FROM 'partition' VIRTUAL,
  `source_offset` BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  {_common(topic, bootstrap, f"{group_id}-guard", start_from, auth)}, 'value.format' = 'raw',
  'properties.isolation.level' = 'read_committed'
)"""


def not_json_object(raw_column: str = "`raw`") -> str:
    """SQL condition: the record is absent or not a JSON object (what a JSON source cannot read)."""
    return f"({raw_column} IS NULL OR NOT (CAST({raw_column} AS STRING) IS JSON OBJECT))"
