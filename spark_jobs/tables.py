"""The lakehouse tables the batch path reads and writes, as Spark DDL: one definition per table.

``raw.*`` mirrors what Flink's lake_ingest creates (``flink_jobs.lake_ingest.RAW_TABLES``; a test keeps
both identical), so a day can also be landed by Spark (``spark_jobs.seed_day``). Everything else is
created here, by the batch jobs, on first use.

Columns are nullable in the table schema on purpose: the quality gates (``quality/suites``) enforce the
non-null contracts with a readable report and a quarantine, where a schema constraint would only abort
the write. All tables are Iceberg format v2 with merge-on-read: MERGE and DELETE write small delete
files instead of rewriting whole data files (the maintenance job compacts them).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession

from hybrid_platform import names

#: A day partition (``event_date``) is a UTC day: these many milliseconds from its first one.
DAY_MS = 86_400_000


def day_start_ms(day: date) -> int:
    """The first epoch millisecond of ``day`` (UTC)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


RAW = {
    names.RAW_TRANSACTIONS: (
        """(
  txn_id STRING, card_id STRING, merchant_id STRING, mcc STRING, amount DECIMAL(12, 2), currency STRING,
  country STRING, channel STRING, event_time BIGINT, event_ts TIMESTAMP, event_date DATE,
  source_partition INT, source_offset BIGINT, ingested_at TIMESTAMP
)""",
        "event_date",
    ),
    names.RAW_FRAUD_LABELS: (
        """(
  txn_id STRING, is_fraud BOOLEAN, labeled_at BIGINT, labeled_date DATE, ingested_at TIMESTAMP
)""",
        "labeled_date",
    ),
    names.RAW_FRAUD_ALERTS: (
        """(
  txn_id STRING, card_id STRING, score DOUBLE, reasons ARRAY<STRING>, model_version STRING, event_time BIGINT,
  scored_at BIGINT, event_date DATE, ingested_at TIMESTAMP
)""",
        "event_date",
    ),
}

SILVER = {
    # One row per txn_id: validated, deduplicated, amounts in the reporting currency, the label known so far.
    names.SILVER_TRANSACTIONS: (
        """(
  txn_id STRING, card_id STRING, merchant_id STRING, mcc STRING,
  amount DECIMAL(12, 2), currency STRING, amount_usd DECIMAL(14, 2), country STRING,
  channel STRING, event_time BIGINT, event_ts TIMESTAMP, event_date DATE,
  is_fraud BOOLEAN, labeled_at BIGINT
)""",
        "event_date",
    ),
}

GOLD = {
    names.GOLD_MERCHANT_DAILY: (
        """(
  event_date DATE, merchant_id STRING, mcc STRING, txn_count BIGINT,
  amount_usd_sum DECIMAL(18, 2), distinct_cards BIGINT, labeled_count BIGINT,
  fraud_count BIGINT, fraud_amount_usd DECIMAL(18, 2)
)""",
        "event_date",
    ),
    names.GOLD_CARD_DAILY: (
        """(
  event_date DATE, card_id STRING, txn_count BIGINT, amount_usd_sum DECIMAL(18, 2),
  max_amount_usd DECIMAL(14, 2), distinct_merchants BIGINT, distinct_countries BIGINT,
  fraud_count BIGINT
)""",
        "event_date",
    ),
    names.GOLD_FRAUD_KPIS_DAILY: (
        """(
  event_date DATE, txn_count BIGINT, amount_usd_sum DECIMAL(18, 2),
  labeled_count BIGINT, fraud_count BIGINT, fraud_amount_usd DECIMAL(18, 2),
  fraud_rate DOUBLE, alert_count BIGINT, alerted_fraud_count BIGINT,
  alert_precision DOUBLE, fraud_recall DOUBLE
)""",
        "event_date",
    ),
}

REF = {
    names.REF_CURRENCY_RATES: (
        """(
  rate_date DATE, currency STRING, usd_per_unit DECIMAL(18, 8)
)""",
        "rate_date",
    ),
}

QUARANTINE = {
    # The original columns as text (a rejected value may not fit the typed column), the reason and the run.
    names.QUARANTINE_TRANSACTIONS: (
        """(
  logical_date DATE, run_id STRING, stage STRING, reason STRING,
  txn_id STRING, record STRING, quarantined_at TIMESTAMP
)""",
        "logical_date",
    ),
}

#: table -> (column definitions, identity partition column)
ALL: dict[str, tuple[str, str]] = {**RAW, **SILVER, **GOLD, **REF, **QUARANTINE}


def table_exists(spark: SparkSession, table: str) -> bool:
    """Whether ``[catalog.]namespace.table`` exists, by listing.

    ``spark.catalog.tableExists`` (and any read of a missing table) raises on the JDBC catalog instead:
    Spark falls back to looking for a view, which a JDBC catalog without view support refuses.
    """
    namespace, _, name = table.rpartition(".")
    parent, _, leaf = namespace.rpartition(".")
    namespaces = {
        row[0] for row in spark.sql(f"SHOW NAMESPACES IN {parent}" if parent else "SHOW NAMESPACES").collect()
    }
    if leaf not in namespaces:
        return False
    return name in {row["tableName"] for row in spark.sql(f"SHOW TABLES IN {namespace}").collect()}


def ensure(spark: SparkSession, *tables: str) -> None:
    """Create the namespaces and tables that do not exist yet (never alters an existing one)."""
    for table in tables:
        namespace = table.split(".")[0]
        columns, partition_column = ALL[table]
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {table} {columns} USING iceberg PARTITIONED BY ({partition_column}) "
            "TBLPROPERTIES ('format-version' = '2', 'write.merge.mode' = 'merge-on-read')"
        )


def content_checksum(df: DataFrame) -> tuple[int, str]:
    """(rows, order-independent checksum of every value): equal pairs mean equal content.

    A map column is hashed as its entries sorted by key (Spark cannot hash a map: two equal maps may
    iterate in different orders).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    types = {field.name: field.dataType for field in df.schema.fields}
    columns = [
        F.array_sort(F.map_entries(F.col(c))) if isinstance(types[c], MapType) else F.col(c) for c in sorted(df.columns)
    ]
    row_hash = F.xxhash64(*columns).cast("decimal(38,0)")
    row = df.agg(F.count(F.lit(1)).alias("rows"), F.coalesce(F.sum(row_hash), F.lit(0)).alias("sum")).first()
    assert row is not None
    return int(row["rows"]), f"{int(row['sum']) & (2**64 - 1):016x}"
