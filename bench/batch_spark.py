"""Spark side of the batch leg, run as its own process (so "cold" includes JVM and session start).

python -m bench.batch_spark generate --rows N --seed S    # the synthetic raw day, once per size
python -m bench.batch_spark etl --repeats R               # the ETL query R times; prints JSON
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from bench import etl_sql

from hybrid_platform import config

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK")
USD_PER_UNIT = ("1.000000", "1.080000", "1.270000", "0.006700", "0.740000", "0.660000", "1.130000", "0.095000")


def generate(rows: int, seed: int) -> dict[str, object]:
    """A raw day shaped like raw.transactions: 0.1% replayed duplicates, ~0.1% invalid amounts."""
    from pyspark.sql import functions as F

    from spark_jobs.session import build_session

    spark = build_session("bench-generate", config.load())
    spark.sql("CREATE NAMESPACE IF NOT EXISTS bench")
    # Files of at most 32 MB: Flink's Iceberg reader (Iceberg 1.11, vectored Parquet IO) takes one direct buffer
    # per row-group range, two at a time at parallelism 2. 128 MB files (95 MB ranges at 10M rows) do not fit
    # beside the local TaskManager's network buffers and fail with "Cannot reserve ... direct buffer memory".
    target_file_bytes = 32 * 2**20
    marker = f"{rows}:{seed}:{target_file_bytes}"
    existing = [r.tableName for r in spark.sql("SHOW TABLES IN bench").collect()]
    if "transactions" in existing:
        props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {etl_sql.TRANSACTIONS}").collect()}
        if props.get("bench.generated") == marker:
            return {"rows": rows, "reused": True}
        spark.sql(f"DROP TABLE {etl_sql.TRANSACTIONS} PURGE")
    started = time.monotonic()
    cards = max(1000, rows // 20)
    merchants = max(100, rows // 50)
    h = F.xxhash64(F.col("id"), F.lit(seed))
    base = spark.range(rows).select(
        F.col("id"),
        F.expr("uuid()").alias("txn_id_random"),
        F.concat(F.lit("c"), (F.abs(h) % cards).cast("string")).alias("card_id"),
        F.concat(F.lit("m"), (F.abs(F.xxhash64(F.col("id"), F.lit(seed + 1))) % merchants).cast("string")).alias(
            "merchant_id"
        ),
        F.lpad((F.abs(h) % 9000 + 1000).cast("string"), 4, "0").alias("mcc"),
        F.when(F.col("id") % 997 == 0, F.lit(-1)).otherwise(1).alias("sign"),
        ((F.abs(F.xxhash64(F.col("id"), F.lit(seed + 2))) % 50000) / 100 + 1).alias("amount_raw"),
        F.element_at(F.array(*[F.lit(c) for c in CURRENCIES]), (F.abs(h) % len(CURRENCIES) + 1).cast("int")).alias(
            "currency"
        ),
        F.element_at(F.array(F.lit("pos"), F.lit("online"), F.lit("atm")), (F.abs(h) % 3 + 1).cast("int")).alias(
            "channel"
        ),
        (F.lit(1_754_784_000_000) + F.abs(F.xxhash64(F.col("id"), F.lit(seed + 3))) % 86_400_000).alias("event_time"),
    )
    transactions = base.select(
        # Deterministic ids (a hash of the row number) so every engine sees the same duplicates.
        F.sha2(F.concat(F.lit(str(seed)), F.col("id").cast("string")), 256).substr(1, 32).alias("txn_id"),
        "card_id",
        "merchant_id",
        "mcc",
        (F.col("amount_raw") * F.col("sign")).cast("decimal(12,2)").alias("amount"),
        "currency",
        "channel",
        F.to_date(F.timestamp_millis(F.col("event_time"))).alias("event_date"),
        "event_time",
        F.col("id").alias("ingest_seq"),
    )
    replays = transactions.where(F.col("ingest_seq") % 1000 == 7).withColumn(
        "ingest_seq", F.col("ingest_seq") + F.lit(rows)
    )
    (
        transactions.unionByName(replays)
        .writeTo(etl_sql.TRANSACTIONS)
        .tableProperty("bench.generated", marker)
        .tableProperty("write.target-file-size-bytes", str(target_file_bytes))
        .create()
    )
    rates = spark.createDataFrame(
        [(c, r) for c, r in zip(CURRENCIES, USD_PER_UNIT, strict=True)], "currency string, usd_per_unit string"
    ).select("currency", F.col("usd_per_unit").cast("decimal(18,6)").alias("usd_per_unit"))
    rates.writeTo(etl_sql.RATES).createOrReplace()
    total = spark.table(etl_sql.TRANSACTIONS).count()
    spark.stop()
    return {
        "rows": rows,
        "rows_with_replays": total,
        "generate_s": round(time.monotonic() - started, 1),
        "reused": False,
    }


def etl(repeats: int) -> dict[str, object]:
    from spark_jobs.session import build_session

    session_started = time.time()
    spark = build_session("bench-etl", config.load())
    session_ready = time.time()
    query = etl_sql.etl_summary_sql(etl_sql.TRANSACTIONS, etl_sql.RATES)
    runs = []
    result: list[str] = []
    for _ in range(repeats + 1):
        started = time.monotonic()
        row = spark.sql(query).collect()[0]
        runs.append({"seconds": time.monotonic() - started, "finished_at": time.time()})
        result = etl_sql.normalize(tuple(row))
    input_rows = spark.table(etl_sql.TRANSACTIONS).count()
    spark.stop()
    return {
        "session_start_s": session_ready - session_started,
        "first_result_at": runs[0]["finished_at"],
        "first_query_s": runs[0]["seconds"],
        "warm_s": [r["seconds"] for r in runs[1:]],  # the first query pays JIT and metadata loading: not warm
        "input_rows": input_rows,
        "result": result,
        "spark_master": config.load().spark_master,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_spark")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--rows", type=int, required=True)
    gen.add_argument("--seed", type=int, default=7)
    run = sub.add_parser("etl")
    run.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = generate(args.rows, args.seed) if args.command == "generate" else etl(args.repeats)
    print("BENCH_RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
