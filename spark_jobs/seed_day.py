"""Land one synthetic day in raw.* directly, as lake_ingest would have after streaming it (a backfill).

Streaming a million transactions through Kafka and Flink takes as long as the day's rate allows; the
batch path and its tests need whole days now. This writes the generator's records for one UTC day into
``raw.transactions`` and ``raw.fraud_labels`` with the columns Flink writes, plus that day's currency
rates into ``ref.currency_rates``. Labels are written only if they were known at ``--labels-as-of``
(chargebacks arrive days later), like the lake would hold them.

``--corrupt`` adds what a broken upstream produces: negative amounts, replayed ids well beyond the
tolerated duplicate share, and a currency with no rate for the day. The daily ETL must refuse that day.

python -m spark_jobs.seed_day --date 2026-11-23 --transactions 1000000
"""

from __future__ import annotations

import csv
import json
import random
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs import tables

from hybrid_platform import generator, names
from hybrid_platform.argparsing import OneLineParser, iso_date, non_negative_int, positive_int

KAFKA_PARTITIONS = 2
#: Producer retries replay a record now and then; the ETL deduplicates on txn_id.
DUPLICATE_SHARE = 0.001
#: --corrupt: far beyond the ETL's duplicate tolerance, plus invalid amounts and an unpriced currency.
CORRUPT_DUPLICATE_SHARE = 0.05
CORRUPT_NEGATIVE_SHARE = 0.02
CORRUPT_UNPRICED_SHARE = 0.02
UNPRICED_CURRENCY = "SEK"  # a valid ISO 4217 code with no row in the rates reference

RAW_TRANSACTION_SCHEMA = T.StructType(
    [
        T.StructField("txn_id", T.StringType()),
        T.StructField("card_id", T.StringType()),
        T.StructField("merchant_id", T.StringType()),
        T.StructField("mcc", T.StringType()),
        T.StructField("amount", T.DecimalType(12, 2)),
        T.StructField("currency", T.StringType()),
        T.StructField("country", T.StringType()),
        T.StructField("channel", T.StringType()),
        T.StructField("event_time", T.LongType()),
        T.StructField("source_partition", T.IntegerType()),
        T.StructField("source_offset", T.LongType()),
        T.StructField("ingest_delay_ms", T.LongType()),
    ]
)
LABEL_SCHEMA = T.StructType(
    [
        T.StructField("txn_id", T.StringType()),
        T.StructField("is_fraud", T.BooleanType()),
        T.StructField("labeled_at", T.LongType()),
    ]
)


def reference_rates() -> dict[str, Decimal]:
    """USD per unit of each currency the platform prices (versioned in spark_jobs/reference)."""
    text = resources.files("spark_jobs").joinpath("reference/currency_rates.csv").read_text(encoding="utf-8")
    return {row["currency"]: Decimal(row["usd_per_unit"]) for row in csv.DictReader(text.splitlines())}


def synthesize_day(
    day: date, transactions: int, seed: int, labels_as_of_ms: int, corrupt: bool = False
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, int]]:
    """Raw transaction rows and known label rows for ``day``, and counts of what was produced.

    Only transactions whose event time falls on ``day`` are kept (the generator's late events near
    midnight would belong to the day before), so a day can be re-seeded without touching its neighbours.
    """
    start = tables.day_start_ms(day)
    rng = random.Random(seed ^ 0x5EED)
    offsets = [0] * KAFKA_PARTITIONS
    rows: list[tuple[Any, ...]] = []
    labels: list[tuple[Any, ...]] = []
    counts: Counter[str] = Counter()
    rate = transactions / (tables.DAY_MS / 1000)
    for record in generator.synthesize(seed, transactions, start, rate):
        if record.kind == generator.KIND_LABEL:
            label = json.loads(record.value)
            if label["labeled_at"] <= labels_as_of_ms:
                labels.append((label["txn_id"], label["is_fraud"], label["labeled_at"]))
                counts["labels"] += 1
            else:
                counts["labels_not_yet_known"] += 1
            continue
        txn = record.transaction
        if txn is None or not start <= txn.event_time < start + tables.DAY_MS:
            counts["outside_day"] += 1
            continue
        amount, currency = txn.amount, txn.currency
        if corrupt and rng.random() < CORRUPT_NEGATIVE_SHARE:
            amount, counts["corrupt_negative_amount"] = -amount, counts["corrupt_negative_amount"] + 1
        elif corrupt and rng.random() < CORRUPT_UNPRICED_SHARE:
            currency, counts["corrupt_unpriced_currency"] = UNPRICED_CURRENCY, counts["corrupt_unpriced_currency"] + 1
        partition = zlib.crc32(txn.card_id.encode()) % KAFKA_PARTITIONS
        row = [txn.txn_id, txn.card_id, txn.merchant_id, txn.mcc, amount, currency, txn.country, txn.channel]
        row += [txn.event_time, partition, offsets[partition], rng.randint(200, 15_000)]
        offsets[partition] += 1
        rows.append(tuple(row))
        counts["transactions"] += 1
        counts["fraud"] += record.is_fraud
        duplicate_share = CORRUPT_DUPLICATE_SHARE if corrupt else DUPLICATE_SHARE
        if rng.random() < duplicate_share:  # the same record again, later in the partition
            replay = [*row[:9], partition, offsets[partition], rng.randint(15_000, 120_000)]
            offsets[partition] += 1
            rows.append(tuple(replay))
            counts["duplicates"] += 1
    counts["raw_rows"] = len(rows)
    return rows, labels, dict(counts)


def raw_transactions_frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    """The seeded rows with the derived columns lake_ingest adds (event_ts, event_date, ingested_at)."""
    frame = spark.createDataFrame(rows, RAW_TRANSACTION_SCHEMA)
    event_ts = F.timestamp_millis("event_time")
    return frame.select(
        *RAW_TRANSACTION_SCHEMA.names[:9],
        event_ts.alias("event_ts"),
        F.to_date(event_ts).alias("event_date"),
        "source_partition",
        "source_offset",
        F.timestamp_millis(F.col("event_time") + F.col("ingest_delay_ms")).alias("ingested_at"),
    )


def raw_labels_frame(spark: SparkSession, labels: list[tuple[Any, ...]]) -> DataFrame:
    labeled_ts = F.timestamp_millis("labeled_at")
    return spark.createDataFrame(labels, LABEL_SCHEMA).select(
        "txn_id", "is_fraud", "labeled_at", F.to_date(labeled_ts).alias("labeled_date"), labeled_ts.alias("ingested_at")
    )


def rates_frame(spark: SparkSession, day: date, rates: dict[str, Decimal]) -> DataFrame:
    schema = "rate_date DATE, currency STRING, usd_per_unit DECIMAL(18, 8)"
    return spark.createDataFrame([(day, currency, rate) for currency, rate in sorted(rates.items())], schema)


def seed(
    spark: SparkSession,
    day: date,
    transactions: int,
    seed_value: int = 42,
    labels_as_of_ms: int | None = None,
    corrupt: bool = False,
) -> dict[str, Any]:
    """Replace ``day`` in raw.transactions (and its labels) and write the day's rates; returns the counts."""
    as_of = labels_as_of_ms if labels_as_of_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    rows, labels, counts = synthesize_day(day, transactions, seed_value, as_of, corrupt)
    tables.ensure(spark, names.RAW_TRANSACTIONS, names.RAW_FRAUD_LABELS, names.REF_CURRENCY_RATES)
    txns = raw_transactions_frame(spark, rows)
    label_rows = raw_labels_frame(spark, labels)
    day_literal = day.isoformat()
    # Re-seeding a day replaces it: the day's transactions and the labels of exactly those transactions.
    spark.sql(f"DELETE FROM {names.RAW_TRANSACTIONS} WHERE event_date = DATE '{day_literal}'")
    txns.writeTo(names.RAW_TRANSACTIONS).append()
    label_rows.createOrReplaceTempView("seed_labels")
    spark.sql(f"DELETE FROM {names.RAW_FRAUD_LABELS} WHERE txn_id IN (SELECT txn_id FROM seed_labels)")
    label_rows.writeTo(names.RAW_FRAUD_LABELS).append()
    rates = reference_rates()
    rates_frame(spark, day, rates).writeTo(names.REF_CURRENCY_RATES).overwritePartitions()
    return {"date": day_literal, "seed": seed_value, "labels_as_of_ms": as_of, "corrupt": corrupt, **counts}


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from spark_jobs.session import build_session

    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="UTC day, YYYY-MM-DD")
    parser.add_argument(
        "--transactions", type=positive_int, default=1_000_000, help="generated transactions (default 1M)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=42)
    parser.add_argument(
        "--labels-as-of",
        type=iso_date,
        help="keep labels known by the end of this day (default: now); chargebacks take up to 30 days",
    )
    parser.add_argument("--corrupt", action="store_true", help="inject a broken upstream's defects")
    args = parser.parse_args(argv)
    as_of = None if args.labels_as_of is None else tables.day_start_ms(args.labels_as_of + timedelta(days=1)) - 1
    spark = build_session("seed_day")
    try:
        print(json.dumps(seed(spark, args.date, args.transactions, args.seed, as_of, args.corrupt), indent=2))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
