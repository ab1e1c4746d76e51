"""Spark's half of the shared-lakehouse check: write a table for Flink to read, verify what Flink wrote.

python -m spark_jobs.lakehouse_roundtrip write  --table demo.cards_from_spark
python -m spark_jobs.lakehouse_roundtrip verify --source demo.cards_from_spark --table demo.cards_from_flink
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, LongType, StringType, StructField, StructType

SCHEMA = StructType(
    [
        StructField("id", LongType(), nullable=False),
        StructField("name", StringType()),
        StructField("amount", DecimalType(12, 2)),
        StructField("written_by", StringType()),
    ]
)


def sample_rows(count: int) -> list[tuple[int, str, Decimal, str]]:
    """Deterministic rows: the same input every run, so results can be compared exactly."""
    return [(i, f"card-{i:05d}", Decimal(i % 997) + Decimal("0.25"), "spark") for i in range(1, count + 1)]


def expected_from_flink(source: DataFrame) -> DataFrame:
    """What the Flink roundtrip job must produce from ``source`` (it doubles amounts, marks the writer)."""
    return source.select(
        "id",
        "name",
        (F.col("amount") * 2).cast(DecimalType(12, 2)).alias("amount"),
        F.lit("flink").alias("written_by"),
    )


def write(spark: SparkSession, table: str, count: int) -> None:
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.split('.')[0]}")
    spark.createDataFrame(sample_rows(count), SCHEMA).writeTo(table).using("iceberg").createOrReplace()


def verify(spark: SparkSession, source: str, table: str) -> dict[str, object]:
    expected = expected_from_flink(spark.table(source))
    actual = spark.table(table)
    missing = expected.exceptAll(actual).count()
    unexpected = actual.exceptAll(expected).count()
    return {"table": table, "rows": actual.count(), "missing": missing, "unexpected": unexpected}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    w = sub.add_parser("write", help="(re)create TABLE with deterministic rows")
    w.add_argument("--table", required=True)
    w.add_argument("--rows", type=int, default=1000)
    v = sub.add_parser("verify", help="check TABLE equals what Flink must derive from SOURCE")
    v.add_argument("--source", required=True)
    v.add_argument("--table", required=True)
    args = parser.parse_args(argv)

    from spark_jobs.session import build_session

    spark = build_session(f"lakehouse_roundtrip_{args.action}")
    try:
        if args.action == "write":
            write(spark, args.table, args.rows)
            print(json.dumps({"table": args.table, "rows": args.rows}))
            return 0
        report = verify(spark, args.source, args.table)
        print(json.dumps(report))
        return 0 if report["missing"] == report["unexpected"] == 0 else 1
    finally:
        spark.stop()


if __name__ == "__main__":
    raise SystemExit(main())
