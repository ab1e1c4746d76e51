"""The batch path on the real Iceberg catalog: exact counts, idempotent reruns, a gate that publishes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pyspark.sql import functions as F

from spark_jobs import daily_etl, maintenance, quality, seed_day

from hybrid_platform import names
from hybrid_platform.config import PlatformConfig

pytestmark = pytest.mark.integration

GOOD_DAY = date(2026, 9, 1)
CORRUPT_DAY = date(2026, 9, 2)
TRANSACTIONS = 20_000
ALL_LABELS_KNOWN = 4_102_444_800_000  # 2100-01-01: every label of these days has arrived


def _day_rows(spark: Any, table: str, day: date) -> int:
    return int(spark.table(table).where(F.col("event_date") == F.lit(day.isoformat()).cast("date")).count())


def _main_snapshots(spark: Any, tables: list[str]) -> dict[str, Any]:
    return {t: spark.sql(f"SELECT snapshot_id FROM {t}.refs WHERE name = 'main'").first() for t in tables}


@pytest.fixture(scope="module")
def good_day(spark: Any, platform_cfg: PlatformConfig) -> dict[str, Any]:
    seeded = seed_day.seed(spark, GOOD_DAY, TRANSACTIONS, seed_value=7, labels_as_of_ms=ALL_LABELS_KNOWN)
    rows, _, _ = seed_day.synthesize_day(GOOD_DAY, TRANSACTIONS, 7, ALL_LABELS_KNOWN)
    report = daily_etl.run(spark, platform_cfg, GOOD_DAY, "test-first")
    return {"seeded": seeded, "rows": rows, "report": report}


def test_one_generated_day_gives_exact_silver_and_gold(spark: Any, good_day: dict[str, Any]) -> None:
    seeded, rows, report = good_day["seeded"], good_day["rows"], good_day["report"]
    assert seeded["duplicates"] > 0, "the seed replays some records, so deduplication is exercised"
    assert report["raw_rows"] == seeded["raw_rows"] == seeded["transactions"] + seeded["duplicates"]
    assert report["duplicates_removed"] == seeded["duplicates"]
    assert report["rejected"] == {} and report["quarantined_rows"] == 0
    tables = report["tables"]
    silver = tables[f"lakehouse.{names.SILVER_TRANSACTIONS}"]["rows"]
    assert silver == seeded["transactions"] == _day_rows(spark, names.SILVER_TRANSACTIONS, GOOD_DAY)
    assert tables[f"lakehouse.{names.GOLD_MERCHANT_DAILY}"]["rows"] == len({r[2] for r in rows})
    assert tables[f"lakehouse.{names.GOLD_CARD_DAILY}"]["rows"] == len({r[1] for r in rows})
    kpis = spark.table(names.GOLD_FRAUD_KPIS_DAILY).where(F.col("event_date") == F.lit("2026-09-01")).first()
    assert kpis.txn_count == seeded["transactions"]
    # Every label is known, and every fraud is labeled: the day's fraud count is the generator's.
    assert kpis.fraud_count == seeded["fraud"]
    assert all(good_day["report"]["gates"].values())
    branches = spark.sql(f"SELECT name FROM {names.SILVER_TRANSACTIONS}.refs").collect()
    assert [b.name for b in branches] == ["main"], "audit branches are dropped after publishing"


def test_a_rerun_of_the_same_date_changes_nothing(spark: Any, platform_cfg: PlatformConfig, good_day: Any) -> None:
    rerun = daily_etl.run(spark, platform_cfg, GOOD_DAY, "test-rerun")
    assert rerun["tables"] == good_day["report"]["tables"]  # rows and content checksums, table by table


def test_a_late_label_updates_its_row_on_the_next_run(spark: Any, platform_cfg: PlatformConfig, good_day: Any) -> None:
    unlabeled = (
        spark.table(names.SILVER_TRANSACTIONS)
        .where((F.col("event_date") == F.lit("2026-09-01")) & F.col("is_fraud").isNull())
        .select("txn_id")
        .first()
        .txn_id
    )
    chargeback = spark.createDataFrame(
        [(unlabeled, True, ALL_LABELS_KNOWN - 1)], "txn_id STRING, is_fraud BOOLEAN, labeled_at BIGINT"
    )
    seed_day.raw_labels_frame(spark, [tuple(chargeback.first())]).writeTo(names.RAW_FRAUD_LABELS).append()
    report = daily_etl.run(spark, platform_cfg, GOOD_DAY, "test-late-label")
    silver_key = f"lakehouse.{names.SILVER_TRANSACTIONS}"
    assert report["tables"][silver_key]["rows"] == good_day["report"]["tables"][silver_key]["rows"]
    assert report["tables"][silver_key]["checksum"] != good_day["report"]["tables"][silver_key]["checksum"]
    row = spark.table(names.SILVER_TRANSACTIONS).where(F.col("txn_id") == unlabeled).collect()
    assert [(r.is_fraud, r.labeled_at) for r in row] == [(True, ALL_LABELS_KNOWN - 1)]


def test_a_corrupted_day_fails_its_gate_publishes_nothing_and_quarantines(
    spark: Any, platform_cfg: PlatformConfig, good_day: Any
) -> None:
    seeded = seed_day.seed(spark, CORRUPT_DAY, 5_000, seed_value=8, labels_as_of_ms=ALL_LABELS_KNOWN, corrupt=True)
    published = [f"lakehouse.{t}" for t in (names.SILVER_TRANSACTIONS, *names.GOLD_TABLES)]
    before = _main_snapshots(spark, published)
    with pytest.raises(quality.GateFailed) as failure:
        daily_etl.run(spark, platform_cfg, CORRUPT_DAY, "test-corrupt")
    report = str(failure.value)
    assert "Gate raw_transactions on raw.transactions" in report
    assert "expect_column_values_to_be_between on amount" in report
    assert "expect_column_values_to_be_in_set on currency" in report
    assert "expect_column_proportion_of_unique_values_to_be_between on txn_id" in report
    assert "Data Docs: " in report and failure.value.summary_path is not None
    assert failure.value.summary_path.is_file()
    # Nothing visible changed: no rows for the day, and main still points at the same snapshots.
    for table in (names.SILVER_TRANSACTIONS, *names.GOLD_TABLES):
        assert _day_rows(spark, table, CORRUPT_DAY) == 0, table
    assert _main_snapshots(spark, published) == before
    # The failing rows are kept with the reason: every negative amount and every unpriced row.
    quarantined = (
        spark.table(names.QUARANTINE_TRANSACTIONS)
        .where(F.col("run_id") == "test-corrupt")
        .groupBy("reason")
        .count()
        .collect()
    )
    by_reason = {r["reason"]: r["count"] for r in quarantined}
    raw = spark.table(names.RAW_TRANSACTIONS).where(F.col("event_date") == F.lit("2026-09-02"))
    assert (
        by_reason["gate:raw_transactions:expect_column_values_to_be_between:amount"] == raw.where("amount < 0").count()
    )
    unpriced = raw.where(F.col("currency") == seed_day.UNPRICED_CURRENCY).count()
    assert by_reason["gate:raw_transactions:expect_column_values_to_be_in_set:currency"] == unpriced
    assert seeded["corrupt_negative_amount"] > 0 and unpriced > 0


def test_maintenance_compacts_small_files_and_keeps_the_content(spark: Any) -> None:
    table = "lakehouse.raw.small_files"
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    # Like a streaming sink: one small commit after another (lake_ingest commits at every checkpoint).
    for batch in range(12):
        frame = spark.range(batch * 100, (batch + 1) * 100).withColumn("day", F.lit("2026-09-01").cast("date"))
        frame.writeTo(table).partitionedBy("day").createOrReplace() if batch == 0 else frame.writeTo(table).append()
    report = maintenance.maintain(spark, table, *maintenance_cutoffs())
    assert report["before"]["data_files"] >= 12
    assert report["after"]["data_files"] < report["before"]["data_files"]
    assert report["content_unchanged"] and report["rows_and_checksum_after"][0] == 1_200


def test_maintenance_drops_audit_branches_a_killed_run_left(spark: Any) -> None:
    from datetime import UTC, datetime, timedelta

    table = "lakehouse.raw.left_branches"
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.range(0, 10).writeTo(table).create()
    spark.sql(f"ALTER TABLE {table} CREATE BRANCH audit_killed_run")
    spark.sql(f"ALTER TABLE {table} CREATE BRANCH keep_me")
    now = datetime.now(UTC).replace(tzinfo=None)
    # A branch younger than the cut-off may belong to a run in progress: kept.
    assert maintenance.drop_stale_audit_branches(spark, table, now - timedelta(days=1)) == []
    assert maintenance.drop_stale_audit_branches(spark, table, now + timedelta(minutes=1)) == ["audit_killed_run"]
    branches = {row["name"] for row in spark.sql(f"SELECT name FROM {table}.refs").collect()}
    assert branches == {"main", "keep_me"}


def maintenance_cutoffs() -> tuple[Any, int, Any]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC).replace(tzinfo=None)
    return now, 1, now - timedelta(days=1)


def test_spark_loads_the_fixed_lz4_before_the_one_pyspark_ships(spark: Any) -> None:
    """pyspark bundles lz4-java 1.8.0 (CVE-2025-12183, CVE-2025-66566): the pinned fork comes first on the class
    path (jars.toml first_in), so its classes are the ones Spark's codec and Kafka's record batches use."""
    factory = spark._jvm.java.lang.Class.forName("net.jpountz.lz4.LZ4Factory")
    location = str(factory.getProtectionDomain().getCodeSource().getLocation().toString())
    assert location.endswith("/lz4-java-1.10.4.jar"), location
