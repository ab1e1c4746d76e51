"""fraud_scoring without Python: the same pipeline in Flink SQL only, to show what the Python UDFs cost.

A benchmark variant (``make bench``), not a production job: parsing is JSON_VALUE with the contract's
checks written as SQL predicates (a malformed record goes to the DLQ with a coarse reason), and scoring
is the explainable rules of ``hybrid_platform.rules`` rendered as SQL (no model: the portable model is
scored in Python). Source, watermark, feature stages, checkpointing and the exactly-once sinks are the
production job's own (``fraud_scoring.source_ddl``, ``features.flink_feature_stages``, ``configure``), so the
difference to ``fraud_scoring`` with a rules-only registry is the Python UDFs alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from flink_jobs.fraud_scoring import (
    ALERT_COLUMNS,
    DLQ_COLUMNS,
    ON_TIME,
    add_feature_views,
    configure,
    exactly_once_kafka_sink_ddl,
    source_ddl,
)

from hybrid_platform import config, names, rules
from hybrid_platform.model import RULES_ONLY_VERSION

JOB_NAME = "fraud_scoring_sql"


def _field(name: str) -> str:
    return f"JSON_VALUE(CAST(`raw` AS STRING), '$.{name}')"


def score_sql(is_late: bool) -> tuple[str, str]:
    """(score expression, reasons-string expression): ``1 - prod(1 - weight)`` over the fired rules."""
    conditions = rules.sql_rule_conditions(is_late)
    score = "1.0 - " + " * ".join(f"(CASE WHEN {cond} THEN {1.0 - w:.2f} ELSE 1.0 END)" for _, w, cond in conditions)
    reasons = [f"CASE WHEN {cond} THEN '{reason}' END" for reason, _, cond in conditions]
    if is_late:
        reasons.append(f"'{rules.LATE_EVENT_REASON}'")
    return score, f"CONCAT_WS(',', {', '.join(reasons)})"


def build_pipeline(
    t_env: TableEnvironment, source: str, alerts_sink: str, dlq_sink: str, threshold: float
) -> StatementSet:
    valid = (
        f"{_field('txn_id')} IS NOT NULL AND {_field('card_id')} IS NOT NULL AND {_field('merchant_id')} IS NOT NULL "
        f"AND REGEXP({_field('mcc')}, '^[0-9]{{4}}$') AND TRY_CAST({_field('amount')} AS DECIMAL(12, 2)) > 0 "
        f"AND REGEXP({_field('currency')}, '^[A-Z]{{3}}$') AND REGEXP({_field('country')}, '^[A-Z]{{2}}$') "
        f"AND {_field('channel')} IN ('pos', 'online', 'atm') "
        f"AND TRY_CAST({_field('event_time')} AS BIGINT) IS NOT NULL"
    )
    t_env.create_temporary_view(
        "parsed",
        t_env.sql_query(
            f"SELECT COALESCE({valid}, FALSE) AS ok, {_field('txn_id')} AS txn_id, {_field('card_id')} AS card_id, "
            f"{_field('mcc')} AS mcc, {_field('channel')} AS channel, {_field('country')} AS country, "
            f"TRY_CAST({_field('amount')} AS DECIMAL(12, 2)) AS amount, "
            f"TRY_CAST({_field('event_time')} AS BIGINT) AS event_time, "
            f"CAST(`raw` AS STRING) AS original, source_topic, source_partition, source_offset, event_ts FROM {source}"
        ),
    )
    add_feature_views(t_env, "parsed")
    on_time_score, on_time_reasons = score_sql(is_late=False)
    late_score, late_reasons = score_sql(is_late=True)
    scored = f"""
SELECT txn_id, card_id, score, SPLIT(reasons, ',') AS reasons, '{RULES_ONLY_VERSION}' AS model_version, event_time,
       CAST(UNIX_TIMESTAMP() AS BIGINT) * 1000 AS scored_at
FROM (
  SELECT txn_id, card_id, event_time, {on_time_score} AS score, {on_time_reasons} AS reasons FROM card_features
  UNION ALL
  SELECT txn_id, card_id, event_time, {late_score} AS score, {late_reasons} AS reasons
  FROM parsed WHERE ok AND NOT {ON_TIME}
)
WHERE score >= {threshold}"""
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"INSERT INTO {alerts_sink} {scored}")
    statements.add_insert_sql(
        f"INSERT INTO {dlq_sink} SELECT original, 'text', 'invalid transaction (SQL checks)', source_topic, "
        f"source_partition, source_offset, CAST(UNIX_TIMESTAMP() AS BIGINT) * 1000 FROM parsed WHERE NOT ok"
    )
    return statements


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config.load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-threshold", type=float, default=rules.DEFAULT_ALERT_THRESHOLD)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=300)
    parser.add_argument("--watermark-delay-ms", type=int, default=200)
    parser.add_argument("--start-from", choices=["group-offsets", "latest-offset"], default="latest-offset")
    args = parser.parse_args(argv)

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    configure(t_env, JOB_NAME, args.checkpoint_interval_ms)
    t_env.execute_sql(
        source_ddl(
            "transactions_source",
            names.TOPIC_TRANSACTIONS,
            cfg.kafka_bootstrap,
            JOB_NAME,
            args.watermark_delay_ms,
            args.start_from,
        )
    )
    t_env.execute_sql(
        exactly_once_kafka_sink_ddl(
            "alerts_sink",
            ALERT_COLUMNS,
            names.TOPIC_FRAUD_ALERTS,
            cfg.kafka_bootstrap,
            f"{JOB_NAME}-alerts",
            key="card_id",
        )
    )
    t_env.execute_sql(
        exactly_once_kafka_sink_ddl(
            "dlq_sink", DLQ_COLUMNS, names.TOPIC_TRANSACTIONS_DLQ, cfg.kafka_bootstrap, f"{JOB_NAME}-dlq"
        )
    )
    build_pipeline(t_env, "transactions_source", "alerts_sink", "dlq_sink", args.alert_threshold).execute()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
