"""dbt on the lakehouse: a seeded day through Spark's daily_etl, alerts from a hot-swapped model, then
`dbt build` (models, data tests, unit tests) and `dbt docs generate` on the same Iceberg catalog.

dbt runs in this process (``dbtRunner``) and dbt-spark's session method picks up the test's SparkSession
through ``getOrCreate()``; one test starts dbt in a fresh interpreter to show that the rendered profile alone
configures a new session (jars, catalog, no Hive metastore).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybrid_platform import config, dbt_runner, names

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
TRANSACTIONS = 3_000
#: The champion changes at noon (a hot reload): alerts before it carry the first version, after it the second.
VERSIONS = ("lr-20261119T230000Z-aaaaaa", "lr-20261120T120000Z-bbbbbb")
HOT_SWAP_MS = 12 * 3_600_000


@dataclass(frozen=True)
class Lakehouse:
    """What the marts must show for DAY. Other integration tests share the catalog and may add other days."""

    silver_rows: int
    merchants: int  # over every day in silver (dim_merchants is not per day)
    frauds: int
    alerted: int  # distinct alerted transactions (one replayed alert is dropped by stg_fraud_alerts)
    #: model_version -> alerts, labeled alerts, true positives, false positives (against silver's labels)
    per_version: dict[str, Counter[str]]


def _alerts(spark: Any) -> list[tuple[Any, ...]]:
    """Alerts the stream could have raised for the seeded day: most frauds, some legit and unlabeled rows."""
    from spark_jobs.tables import day_start_ms

    labels = {r["txn_id"]: r["is_fraud"] for r in spark.table(names.RAW_FRAUD_LABELS).collect()}
    raw = spark.table(names.RAW_TRANSACTIONS).where(f"event_date = DATE '{DAY}'")
    rows = {r["txn_id"]: r for r in raw.select("txn_id", "card_id", "event_time").collect()}
    noon = day_start_ms(DAY) + HOT_SWAP_MS
    alerts = []
    for txn_id in sorted(rows):
        h, label = zlib.crc32(txn_id.encode()), labels.get(txn_id)
        if (label is True and h % 4) or (label is False and h % 5 == 0) or (label is None and h % 40 == 0):
            event_time = rows[txn_id]["event_time"]
            version = VERSIONS[event_time >= noon]
            alerts.append((txn_id, rows[txn_id]["card_id"], 0.5 + (h % 50) / 100, ["rule"], version, event_time))
    # A replayed transaction is scored again, later (here by the other version): only the first alert counts.
    first = alerts[0]
    replay = (*first[:4], VERSIONS[first[4] == VERSIONS[0]], first[5])
    return [(*a, a[5] + 400, DAY) for a in alerts] + [(*replay, replay[5] + 90_000, DAY)]


@pytest.fixture(scope="module")
def lakehouse(spark: Any, platform_cfg: config.PlatformConfig) -> Lakehouse:
    """One seeded day, its alerts in raw.fraud_alerts, then silver and gold published by daily_etl."""
    from pyspark.sql import functions as F

    from spark_jobs import daily_etl, seed_day, tables

    seed_day.seed(spark, DAY, TRANSACTIONS, labels_as_of_ms=tables.day_start_ms(date(2027, 1, 1)))
    tables.ensure(spark, names.RAW_FRAUD_ALERTS)
    schema = "txn_id STRING, card_id STRING, score DOUBLE, reasons ARRAY<STRING>, model_version STRING, "
    schema += "event_time BIGINT, scored_at BIGINT, event_date DATE"
    alerts = spark.createDataFrame(_alerts(spark), schema).withColumn("ingested_at", F.current_timestamp())
    spark.sql(f"DELETE FROM {names.RAW_FRAUD_ALERTS} WHERE event_date = DATE '{DAY}'")
    alerts.writeTo(names.RAW_FRAUD_ALERTS).append()
    daily_etl.run(spark, platform_cfg, DAY, daily_etl.new_run_id(DAY))

    all_days = spark.table(names.SILVER_TRANSACTIONS)
    silver = {r["txn_id"]: r for r in all_days.where(f"event_date = DATE '{DAY}'").collect()}
    first_alerts: dict[str, str] = {}
    for row in sorted(alerts.collect(), key=lambda r: r["scored_at"]):
        first_alerts.setdefault(row["txn_id"], row["model_version"])
    per_version: dict[str, Counter[str]] = {version: Counter() for version in VERSIONS}
    for txn_id, version in first_alerts.items():
        label = silver[txn_id]["is_fraud"]
        per_version[version].update(
            alerts=1, labeled=label is not None, true_positives=label is True, false_positives=label is False
        )
    return Lakehouse(
        silver_rows=len(silver),
        merchants=all_days.select("merchant_id").distinct().count(),
        frauds=sum(r["is_fraud"] is True for r in silver.values()),
        alerted=len(first_alerts),
        per_version=per_version,
    )


def _dbt(spark: Any, cfg: config.PlatformConfig, args: list[str]) -> Any:
    """Run dbt in-process on this session (not a Spark Connect server); put back the one session setting
    dbt-spark forces (ANSI off) for later tests."""
    ansi = spark.conf.get("spark.sql.ansi.enabled")
    try:
        return dbt_runner.invoke(replace(cfg, spark_remote=""), args)
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi)


@pytest.fixture(scope="module")
def built(lakehouse: Lakehouse, spark: Any, platform_cfg: config.PlatformConfig) -> Iterator[Any]:
    started = time.monotonic()
    result = _dbt(spark, platform_cfg, ["build"])
    print(f"dbt build: {time.monotonic() - started:.1f} s")
    yield result


def test_dbt_build_passes_every_model_and_test(built: Any) -> None:
    assert built.success, built.exception
    statuses = Counter((r.node.resource_type, str(r.status)) for r in built.result.results)
    assert statuses["model", "success"] == 10
    assert statuses["unit_test", "pass"] == 2
    assert statuses["test", "pass"] >= 90
    # The one test allowed to warn: alerts whose transaction is not in silver. Other tests of the session may
    # stream alerts for a day no ETL has published; this module's own alerts all have their transaction.
    warned = [r.node.name for r in built.result.results if str(r.status) == "warn"]
    assert all(name.startswith("relationships_stg_fraud_alerts_txn_id") for name in warned), warned
    assert {status for _, status in statuses} <= {"success", "pass", "warn"}, statuses


def test_marts_hold_the_fixture_day(built: Any, lakehouse: Lakehouse, spark: Any) -> None:
    assert built.success
    marts, staging = names.DBT_MARTS_NAMESPACE, names.DBT_STAGING_NAMESPACE
    on_day = f"event_date = DATE '{DAY}'"
    assert spark.table(f"{staging}.stg_transactions").where(on_day).count() == lakehouse.silver_rows
    assert spark.table(f"{staging}.stg_fraud_alerts").where(on_day).count() == lakehouse.alerted
    fct = spark.table(f"{marts}.fct_transactions").where(on_day)
    assert fct.count() == lakehouse.silver_rows
    assert fct.where("is_alerted").count() == lakehouse.alerted
    assert spark.table(f"{marts}.dim_merchants").count() == lakehouse.merchants

    daily = spark.table(f"{marts}.mart_fraud_daily").where(on_day).collect()
    assert len(daily) == 1
    assert (daily[0]["event_date"], daily[0]["txn_count"]) == (DAY, lakehouse.silver_rows)
    assert (daily[0]["fraud_count"], daily[0]["alert_count"]) == (lakehouse.frauds, lakehouse.alerted)

    performance = {
        r["model_version"]: r for r in spark.table(f"{marts}.mart_model_performance").where(on_day).collect()
    }
    assert set(performance) == set(VERSIONS)
    for version, expected in lakehouse.per_version.items():
        row = performance[version]
        assert row["alert_count"] == expected["alerts"]
        assert row["labeled_alert_count"] == expected["labeled"]
        assert row["true_positive_count"] == expected["true_positives"]
        assert row["false_positive_count"] == expected["false_positives"]
        assert row["alert_precision"] == pytest.approx(expected["true_positives"] / expected["labeled"])
        assert row["model_versions_that_day"] == 2
        assert row["fraud_recall"] is None  # the champion changed that day: misses have no version
    # The day's recall over both versions is in mart_fraud_daily.
    true_positives = sum(c["true_positives"] for c in lakehouse.per_version.values())
    assert daily[0]["fraud_recall"] == pytest.approx(true_positives / lakehouse.frauds)


def test_marts_are_iceberg_tables_in_the_shared_catalog(
    built: Any, spark: Any, platform_cfg: config.PlatformConfig
) -> None:
    assert built.success
    catalog = platform_cfg.catalog.name
    for namespace, count in [(names.DBT_STAGING_NAMESPACE, 6), (names.DBT_MARTS_NAMESPACE, 4)]:
        tables = [r["tableName"] for r in spark.sql(f"SHOW TABLES IN {catalog}.{namespace}").collect()]
        assert len(tables) == count, tables
        for table in tables:
            detail = {
                r["col_name"]: r["data_type"]
                for r in spark.sql(f"DESCRIBE TABLE EXTENDED {namespace}.{table}").collect()
            }
            assert detail["Provider"] == "iceberg" and detail["Name"] == f"{catalog}.{namespace}.{table}"
    # Descriptions from the YAML are in the Iceberg metadata (persist_docs), readable by every engine.
    described = spark.sql(f"DESCRIBE TABLE {names.DBT_MARTS_NAMESPACE}.fct_transactions").collect()
    assert next(r for r in described if r["col_name"] == "txn_id")["comment"] == "Transaction id, the grain."


def test_docs_generate_catalogs_every_model_and_source(
    built: Any, spark: Any, platform_cfg: config.PlatformConfig
) -> None:
    assert built.success
    result = _dbt(spark, platform_cfg, ["docs", "generate"])
    assert result.success, result.exception
    catalog = json.loads((dbt_runner.target_path(platform_cfg) / "catalog.json").read_text(encoding="utf-8"))
    assert not catalog.get("errors")
    assert len(catalog["sources"]) == 8
    # The built tables have exactly the columns each model's YAML documents.
    for path in sorted((dbt_runner.project_dir() / "models").rglob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            node = catalog["nodes"][f"model.{dbt_runner.PROFILE_NAME}.{model['name']}"]
            assert set(node["columns"]) == {c["name"] for c in model["columns"]}, model["name"]


def test_the_rendered_profile_configures_a_fresh_spark_session(
    built: Any, lakehouse: Lakehouse, platform_cfg: config.PlatformConfig, tmp_path: Path
) -> None:
    """dbt in a new interpreter creates the session from profiles.yml alone and reads the same catalog."""
    assert built.success
    script = """
import json, sys
from hybrid_platform import config, dbt_runner
result = dbt_runner.invoke(config.load(), ["show", "--inline", sys.argv[1]])
from pyspark.sql import SparkSession
session = SparkSession.builder.getOrCreate()  # the session dbt-spark created
conf = session.sparkContext.getConf()
print(json.dumps({
    "success": result.success,
    "rows": int(result.result.results[0].agate_table.rows[0][0]),
    "jars": conf.get("spark.jars"),
    "catalog_implementation": conf.get("spark.sql.catalogImplementation"),
    "java_options": conf.get("spark.driver.extraJavaOptions"),
    "default_catalog": session.conf.get("spark.sql.defaultCatalog"),
    "catalog_uri": session.conf.get("spark.sql.catalog.%s.uri" % config.load().catalog.name),
}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, f"select count(*) as n from marts.fct_transactions where event_date = '{DAY}'"],
        cwd=tmp_path,
        env={**os.environ, "HDP_HOME": str(platform_cfg.home), "HDP_SPARK_REMOTE": "none"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"] and report["rows"] == lakehouse.silver_rows
    assert "iceberg-spark-runtime" in report["jars"] and "sqlite-jdbc" in report["jars"]
    assert report["default_catalog"] == platform_cfg.catalog.name
    assert report["catalog_uri"] == platform_cfg.catalog.uri
    # dbt-spark asks for Hive support; the profile overrides it, so no Derby metastore is ever created.
    assert report["catalog_implementation"] == "in-memory"
    assert f"-Dderby.system.home={platform_cfg.home / 'spark'}" in report["java_options"]
    assert not [p.name for p in tmp_path.iterdir()], "dbt or Spark wrote into the working directory"


def test_nothing_is_written_into_the_repository(built: Any) -> None:
    assert built.success
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--", "dbt"],
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    ignored = [line for line in done.stdout.splitlines() if line.startswith("!!")]
    assert not ignored, f"dbt wrote git-ignored files into dbt/: {ignored}"
