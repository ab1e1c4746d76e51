"""The daily ETL's core as one query, written once per engine dialect, over the same Iceberg data.

What ``spark_jobs.daily_etl`` does to a raw day before it writes gold — deduplicate on ``txn_id`` (first
ingested copy wins), price in USD through the rates dimension, drop invalid rows, aggregate per merchant
and day — as a single statement every engine can run: Spark SQL and Flink SQL read the Iceberg tables
through the shared catalog, DuckDB reads the very same Parquet data files. Each returns one summary row
(result rows, transactions, USD total, card-days) so equal results prove the engines did equal work.
"""

from __future__ import annotations

TRANSACTIONS = "bench.transactions"
RATES = "bench.currency_rates"
CHANNELS = ("pos", "online", "atm")


def etl_summary_sql(transactions: str, rates: str) -> str:
    """ANSI-enough SQL that Spark, Flink (batch) and DuckDB all accept unchanged."""
    channels = ", ".join(f"'{c}'" for c in CHANNELS)
    return f"""
WITH ranked AS (
  SELECT txn_id, card_id, merchant_id, amount, currency, channel, event_date,
         ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY ingest_seq) AS copy_number
  FROM {transactions}
),
priced AS (
  SELECT r.card_id, r.merchant_id, r.event_date, r.amount * x.usd_per_unit AS amount_usd
  FROM ranked r JOIN {rates} x ON r.currency = x.currency
  WHERE r.copy_number = 1 AND r.amount > 0 AND r.channel IN ({channels})
),
merchant_daily AS (
  SELECT event_date, merchant_id, COUNT(*) AS txn_count, SUM(amount_usd) AS amount_usd,
         COUNT(DISTINCT card_id) AS cards
  FROM priced GROUP BY event_date, merchant_id
)
SELECT COUNT(*) AS result_rows, SUM(txn_count) AS transactions, CAST(SUM(amount_usd) AS DECIMAL(38, 2)) AS amount_usd,
       SUM(cards) AS card_merchant_days
FROM merchant_daily"""


def normalize(row: tuple[object, ...] | list[object]) -> list[str]:
    """One engine-independent rendering of the summary row, for comparing engines."""
    return [str(int(row[0])), str(int(row[1])), f"{float(row[2]):.2f}", str(int(row[3]))]  # type: ignore[arg-type]
