"""daily_etl: raw.transactions of one logical date -> silver.transactions -> gold.*, through write-audit-publish.

1. **Gate raw** (``quality/suites/raw_transactions.json``): a broken upstream stops here.
2. **Transform** (pure ``DataFrame -> DataFrame`` functions below): price every amount in USD through
   ``ref.currency_rates``, validate each row (bad rows are quarantined with the reason), deduplicate on
   ``txn_id`` (the first ingested copy wins), attach the latest label known so far; then the gold
   aggregates: merchant and card days, and the day's fraud KPIs (with the stream's alerts).
3. **Write** to an Iceberg branch ``audit_<run>`` of each table: silver through ``MERGE INTO`` (a rerun of
   the same date updates what changed, inserts what is new and removes what no longer qualifies, so it
   never duplicates or loses a row), gold by replacing the day's partition. Readers of ``main`` see none
   of it.
4. **Audit** the branches with the silver and gold suites.
5. **Publish** by fast-forwarding ``main`` to each audit branch (one atomic metadata commit per table), or,
   on failure, keep the failing rows in ``quarantine.transactions`` plus a JSON summary and Data Docs,
   drop the branches and exit non-zero with the report. Nothing visible changes.

python -m spark_jobs.daily_etl --date 2026-11-23
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs import quality, tables

from hybrid_platform import config, names
from hybrid_platform.argparsing import OneLineParser, iso_date
from hybrid_platform.events import CHANNELS, MAX_AMOUNT

SILVER_COLUMNS = (
    "txn_id",
    "card_id",
    "merchant_id",
    "mcc",
    "amount",
    "currency",
    "amount_usd",
    "country",
    "channel",
    "event_time",
    "event_ts",
    "event_date",
    "is_fraud",
    "labeled_at",
)
#: Columns a rerun may legitimately change for an existing txn_id (a label arrived, a rate was corrected).
MUTABLE_SILVER_COLUMNS = ("amount_usd", "is_fraud", "labeled_at")
#: Freshness: the day counts as landed when events from its last hour are there.
FRESHNESS_MS = 3_600_000


class EtlError(RuntimeError):
    """The job cannot run for this date (missing input); the message says what to do."""


# --- transforms: pure DataFrame -> DataFrame ---------------------------------------------------------------


def price_in_usd(transactions: DataFrame, rates: DataFrame) -> DataFrame:
    """Add ``amount_usd`` (rounded to cents) from the rate of the transaction's date; NULL when unpriced."""
    priced = transactions.join(
        rates.select(F.col("rate_date").alias("event_date"), "currency", F.col("usd_per_unit").alias("_usd_per_unit")),
        on=["event_date", "currency"],
        how="left",
    )
    amount_usd = F.round(F.col("amount") * F.col("_usd_per_unit"), 2).cast("decimal(14,2)")
    return priced.withColumn("amount_usd", amount_usd).drop("_usd_per_unit")


def reject_reason(day_start: int, day_end: int) -> Column:
    """Why a priced raw row cannot enter silver (NULL when it can); the first failing rule names it."""
    c = F.col
    rules: list[tuple[Column, str]] = [
        (c("txn_id").isNull() | c("card_id").isNull() | c("merchant_id").isNull(), "missing_id"),
        (c("amount").isNull() | (c("amount") <= 0) | (c("amount") > F.lit(MAX_AMOUNT)), "amount_out_of_range"),
        (c("amount_usd").isNull(), "no_rate_for_currency"),
        (c("mcc").isNull() | ~c("mcc").rlike("^[0-9]{4}$"), "invalid_mcc"),
        (c("country").isNull() | ~c("country").rlike("^[A-Z]{2}$"), "invalid_country"),
        (c("channel").isNull() | ~c("channel").isin(*CHANNELS), "invalid_channel"),
        (c("event_time").isNull() | (c("event_time") < day_start) | (c("event_time") > day_end), "outside_day"),
    ]
    reason: Column = F.lit(None).cast("string")
    for condition, name in reversed(rules):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return reason


def validate(priced: DataFrame, day_start: int, day_end: int) -> tuple[DataFrame, DataFrame]:
    """Split into (valid rows, rejected rows with ``reason``)."""
    flagged = priced.withColumn("reason", reject_reason(day_start, day_end))
    return flagged.where(F.col("reason").isNull()).drop("reason"), flagged.where(F.col("reason").isNotNull())


def deduplicate(transactions: DataFrame) -> DataFrame:
    """One row per txn_id: the first ingested copy (retries replay the same payload later)."""
    first = Window.partitionBy("txn_id").orderBy("ingested_at", "source_partition", "source_offset")
    return transactions.withColumn("_copy", F.row_number().over(first)).where(F.col("_copy") == 1).drop("_copy")


def latest_labels(labels: DataFrame) -> DataFrame:
    """The newest label per txn_id: a chargeback can overturn an earlier confirmation."""
    newest = Window.partitionBy("txn_id").orderBy(F.col("labeled_at").desc(), F.col("is_fraud").desc())
    return (
        labels.withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .select("txn_id", "is_fraud", "labeled_at")
    )


def to_silver(transactions: DataFrame, labels: DataFrame) -> DataFrame:
    """Valid, deduplicated, priced transactions with their latest label, in silver's column order."""
    return transactions.join(latest_labels(labels), on="txn_id", how="left").select(*SILVER_COLUMNS)


def merchant_daily(silver: DataFrame) -> DataFrame:
    fraud = F.coalesce(F.col("is_fraud"), F.lit(False))
    return silver.groupBy("event_date", "merchant_id").agg(
        F.first("mcc").alias("mcc"),
        F.count(F.lit(1)).alias("txn_count"),
        F.sum("amount_usd").cast("decimal(18,2)").alias("amount_usd_sum"),
        F.countDistinct("card_id").alias("distinct_cards"),
        F.count("is_fraud").alias("labeled_count"),
        F.count(F.when(fraud, 1)).alias("fraud_count"),
        F.coalesce(F.sum(F.when(fraud, F.col("amount_usd"))), F.lit(0)).cast("decimal(18,2)").alias("fraud_amount_usd"),
    )


def card_daily(silver: DataFrame) -> DataFrame:
    fraud = F.coalesce(F.col("is_fraud"), F.lit(False))
    return silver.groupBy("event_date", "card_id").agg(
        F.count(F.lit(1)).alias("txn_count"),
        F.sum("amount_usd").cast("decimal(18,2)").alias("amount_usd_sum"),
        F.max("amount_usd").cast("decimal(14,2)").alias("max_amount_usd"),
        F.countDistinct("merchant_id").alias("distinct_merchants"),
        F.countDistinct("country").alias("distinct_countries"),
        F.count(F.when(fraud, 1)).alias("fraud_count"),
    )


def fraud_kpis_daily(silver: DataFrame, alerts: DataFrame) -> DataFrame:
    """The day's fraud picture: labeled fraud, and how the stream's alerts did against the labels known now."""
    alerted = alerts.select("txn_id").distinct().withColumn("_alerted", F.lit(True))
    joined = silver.join(alerted, on="txn_id", how="left")
    fraud = F.coalesce(F.col("is_fraud"), F.lit(False))
    was_alerted = F.coalesce(F.col("_alerted"), F.lit(False))
    kpis = joined.groupBy("event_date").agg(
        F.count(F.lit(1)).alias("txn_count"),
        F.sum("amount_usd").cast("decimal(18,2)").alias("amount_usd_sum"),
        F.count("is_fraud").alias("labeled_count"),
        F.count(F.when(fraud, 1)).alias("fraud_count"),
        F.coalesce(F.sum(F.when(fraud, F.col("amount_usd"))), F.lit(0)).cast("decimal(18,2)").alias("fraud_amount_usd"),
        F.count(F.when(was_alerted, 1)).alias("alert_count"),
        F.count(F.when(was_alerted & fraud, 1)).alias("alerted_fraud_count"),
    )
    return kpis.select(
        "event_date",
        "txn_count",
        "amount_usd_sum",
        "labeled_count",
        "fraud_count",
        "fraud_amount_usd",
        (F.col("fraud_count") / F.col("txn_count")).alias("fraud_rate"),
        "alert_count",
        "alerted_fraud_count",
        F.when(F.col("alert_count") > 0, F.col("alerted_fraud_count") / F.col("alert_count")).alias("alert_precision"),
        F.when(F.col("fraud_count") > 0, F.col("alerted_fraud_count") / F.col("fraud_count")).alias("fraud_recall"),
    )


# --- write-audit-publish ----------------------------------------------------------------------------------


def branch_name(run_id: str) -> str:
    return "audit_" + re.sub(r"[^A-Za-z0-9_]", "_", run_id)


def on_branch(table: str, branch: str) -> str:
    return f"{table}.branch_{branch}"


def create_branch(spark: SparkSession, table: str, branch: str) -> None:
    if spark.sql(f"SELECT 1 FROM {table}.snapshots LIMIT 1").count() == 0:
        # A branch needs a snapshot to start from: give a new table its first (empty) one.
        spark.sql(f"DELETE FROM {table} WHERE false")
        if spark.sql(f"SELECT 1 FROM {table}.snapshots LIMIT 1").count() == 0:
            spark.createDataFrame([], spark.table(table).schema).writeTo(table).append()
    spark.sql(f"ALTER TABLE {table} CREATE BRANCH {branch}")


def drop_branch(spark: SparkSession, table: str, branch: str) -> None:
    spark.sql(f"ALTER TABLE {table} DROP BRANCH IF EXISTS {branch}")


def publish(spark: SparkSession, table: str, branch: str) -> int:
    """Fast-forward main to the audited branch: readers switch to the new snapshot in one commit."""
    catalog = table.split(".")[0]
    row = spark.sql(f"CALL {catalog}.system.fast_forward('{table}', 'main', '{branch}')").first()
    assert row is not None
    return int(row["updated_ref"])


def merge_silver(spark: SparkSession, staged: DataFrame, target: str, day: str) -> None:
    staged.createOrReplaceTempView("silver_staged")
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in MUTABLE_SILVER_COLUMNS)
    spark.sql(f"""
MERGE INTO {target} t
USING silver_staged s
ON t.txn_id = s.txn_id AND t.event_date = DATE '{day}'
WHEN MATCHED AND ({changed}) THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *
WHEN NOT MATCHED BY SOURCE AND t.event_date = DATE '{day}' THEN DELETE""")


# --- the job ----------------------------------------------------------------------------------------------


def run(spark: SparkSession, cfg: config.PlatformConfig, day: date, run_id: str) -> dict[str, Any]:
    """Build and publish one logical date; raises ``quality.GateFailed`` (nothing published) or ``EtlError``."""
    started = time.monotonic()
    literal = day.isoformat()
    day_start = tables.day_start_ms(day)
    day_end = day_start + tables.DAY_MS - 1
    if not tables.table_exists(spark, names.RAW_TRANSACTIONS):
        raise EtlError(f"{names.RAW_TRANSACTIONS} does not exist: run lake_ingest or `hdp batch seed --date {literal}`")
    tables.ensure(
        spark,
        names.RAW_FRAUD_LABELS,
        names.RAW_FRAUD_ALERTS,
        names.REF_CURRENCY_RATES,
        names.SILVER_TRANSACTIONS,
        *names.GOLD_TABLES,
        names.QUARANTINE_TRANSACTIONS,
    )
    # dbt's namespaces too: the DAG runs its models as parallel tasks, and two of them creating the same
    # namespace at once collide in the JDBC catalog (primary key on the namespace row).
    for namespace in (names.DBT_STAGING_NAMESPACE, names.DBT_MARTS_NAMESPACE):
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    raw = spark.table(names.RAW_TRANSACTIONS).where(F.col("event_date") == F.lit(literal).cast("date")).cache()
    rates = spark.table(names.REF_CURRENCY_RATES).where(F.col("rate_date") == F.lit(literal).cast("date")).cache()
    priced_currencies = sorted(r["currency"] for r in rates.select("currency").collect())
    if not priced_currencies:
        raise EtlError(f"{names.REF_CURRENCY_RATES} has no rates for {literal}: load them before the ETL runs")
    report: dict[str, Any] = {"date": literal, "run_id": run_id, "raw_rows": raw.count()}
    day_parameters = {"day_start_ms": day_start, "day_end_ms": day_end, "min_rows": 1}

    # 1. gate the input
    raw_gate = quality.run_gate(
        raw,
        "raw_transactions",
        {**day_parameters, "priced_currencies": priced_currencies, "fresh_after_ms": day_end - FRESHNESS_MS},
        cfg,
        run_id,
        names.RAW_TRANSACTIONS,
    )
    gates = [raw_gate]
    if not raw_gate.success:
        _fail(spark, cfg, [(raw_gate, raw)], literal, run_id)

    # 2. transform
    valid, rejected = validate(price_in_usd(raw, rates), day_start, day_end)
    deduplicated = deduplicate(valid)
    silver_day = to_silver(deduplicated, spark.table(names.RAW_FRAUD_LABELS)).cache()
    alerts = spark.table(names.RAW_FRAUD_ALERTS).where(F.col("event_date") == F.lit(literal).cast("date"))
    rejected_rows = _rejected_for_quarantine(rejected, literal, run_id)

    # 3. write to audit branches
    branch = branch_name(run_id)
    # Catalog-qualified: a bare `silver.transactions.branch_x` would first be tried as catalog `silver`.
    catalog = cfg.catalog.name
    silver_table = f"{catalog}.{names.SILVER_TRANSACTIONS}"
    gold_tables = tuple(f"{catalog}.{table}" for table in names.GOLD_TABLES)
    targets = (silver_table, *gold_tables)
    for table in targets:
        create_branch(spark, table, branch)
    try:
        merge_silver(spark, silver_day, on_branch(silver_table, branch), literal)
        staged_silver = _day(spark.table(on_branch(silver_table, branch)), literal).cache()
        gold_frames = dict(
            zip(
                gold_tables,
                (merchant_daily(staged_silver), card_daily(staged_silver), fraud_kpis_daily(staged_silver, alerts)),
                strict=True,
            )
        )
        for table, frame in gold_frames.items():
            frame.select(*spark.table(table).columns).writeTo(on_branch(table, branch)).overwritePartitions()

        # 4. audit
        silver_rows = staged_silver.count()
        audit_silver = staged_silver.withColumn("fraud_flag", F.coalesce(F.col("is_fraud"), F.lit(False)).cast("int"))
        audited = [
            (
                quality.run_gate(
                    audit_silver, "silver_transactions", day_parameters, cfg, run_id, names.SILVER_TRANSACTIONS
                ),
                staged_silver,
            )
        ]
        for table, name in zip(gold_tables, names.GOLD_TABLES, strict=True):
            staged = _day(spark.table(on_branch(table, branch)), literal)
            suite = name.replace(".", "_")
            audited.append((quality.run_gate(staged, suite, {"silver_rows": silver_rows}, cfg, run_id, name), staged))
        gates += [result for result, _ in audited]
        failed = [(result, frame) for result, frame in audited if not result.success]
        if failed:
            _fail(spark, cfg, failed, literal, run_id, rejected_rows)

        # 5. publish: silver first, so gold never describes rows silver does not show yet
        snapshots = {table: publish(spark, table, branch) for table in targets}
    finally:
        for table in targets:
            drop_branch(spark, table, branch)

    quarantined = _replace_rejected(spark, rejected_rows, literal)
    report.update(
        {
            "duplicates_removed": valid.count() - silver_rows,
            "rejected": {r["reason"]: r["count"] for r in rejected.groupBy("reason").count().collect()},
            "quarantined_rows": quarantined,
            "published_snapshots": snapshots,
            "tables": {table: _checksum(spark, table, literal) for table in targets},
            "gates": {result.suite: result.success for result in gates},
            "data_docs": str(quality.data_docs_dir(cfg) / "index.html"),
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    return report


def _day(frame: DataFrame, literal: str) -> DataFrame:
    return frame.where(F.col("event_date") == F.lit(literal).cast("date"))


def _checksum(spark: SparkSession, table: str, literal: str) -> dict[str, Any]:
    rows, checksum = tables.content_checksum(_day(spark.table(table), literal))
    return {"rows": rows, "checksum": checksum}


def _rejected_for_quarantine(rejected: DataFrame, literal: str, run_id: str) -> DataFrame:
    record_columns = [c for c in rejected.columns if c != "reason"]
    return rejected.select(
        F.lit(literal).cast("date").alias("logical_date"),
        F.lit(run_id).alias("run_id"),
        F.lit("validate").alias("stage"),
        F.concat(F.lit("validate:"), F.col("reason")).alias("reason"),
        F.col("txn_id"),
        F.to_json(F.struct(*record_columns)).alias("record"),
        F.current_timestamp().alias("quarantined_at"),
    )


def _replace_rejected(spark: SparkSession, rejected_rows: DataFrame, literal: str) -> int:
    """The day's row-level rejects replace those of earlier runs, so reruns do not pile up copies."""
    rows = rejected_rows.cache()
    count = rows.count()
    spark.sql(
        f"DELETE FROM {names.QUARANTINE_TRANSACTIONS} WHERE logical_date = DATE '{literal}' AND stage = 'validate'"
    )
    if count:
        rows.writeTo(names.QUARANTINE_TRANSACTIONS).append()
    rows.unpersist()
    return count


def _fail(
    spark: SparkSession,
    cfg: config.PlatformConfig,
    failed: list[tuple[quality.GateResult, DataFrame]],
    literal: str,
    run_id: str,
    rejected_rows: DataFrame | None = None,
) -> None:
    quarantined, summary = quality.quarantine(spark, failed, cfg, literal, run_id)
    if rejected_rows is not None:
        quarantined += _replace_rejected(spark, rejected_rows, literal)
    raise quality.GateFailed([result for result, _ in failed], quarantined, summary)


def new_run_id(day: date) -> str:
    return f"{day.isoformat()}_{datetime.now().strftime('%H%M%S')}_{uuid.uuid4().hex[:6]}"


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from spark_jobs.session import build_session

    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date (UTC), YYYY-MM-DD")
    parser.add_argument("--run-id", help="names the audit branches and quarantine rows (default: generated)")
    args = parser.parse_args(argv)
    cfg = config.load()
    spark = build_session("daily_etl", cfg)
    try:
        report = run(spark, cfg, args.date, args.run_id or new_run_id(args.date))
    except quality.GateFailed as failure:
        print(f"daily_etl {args.date}: quality gate failed, nothing published.\n{failure}", file=sys.stderr)
        return 1
    except EtlError as error:
        print(f"daily_etl {args.date}: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
