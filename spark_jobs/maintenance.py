"""lakehouse_maintenance: compact the small files Flink commits, expire old snapshots, delete orphan files.

A streaming sink commits a few files per table at every checkpoint (every 10 s for lake_ingest), and
merge-on-read MERGEs leave delete files: readers then open thousands of tiny files. Rewriting them is
batch work, done here with Iceberg's Spark procedures so the streaming job never pauses for it:

- ``rewrite_data_files``: bin-pack small files (and apply delete files) into target-size files;
- ``rewrite_manifests``: fewer, larger manifests for faster planning;
- ``expire_snapshots``: drop snapshots older than the retention, keeping the last few for time travel;
- ``remove_orphan_files``: delete files no snapshot references (left by failed writes), only when older
  than a safety margin, so files of an in-flight Flink checkpoint are never touched.

Content is unchanged by construction; the report proves it with a checksum before and after.

python -m spark_jobs.maintenance --table raw.transactions --table raw.fraud_alerts
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import Row, SparkSession

from spark_jobs import tables

from hybrid_platform import names
from hybrid_platform.argparsing import OneLineParser, non_negative_number, positive_int, positive_number

DEFAULT_TABLES = (
    names.RAW_TRANSACTIONS,
    names.RAW_FRAUD_LABELS,
    names.RAW_FRAUD_ALERTS,
    names.RAW_FRAUD_DECISIONS,
    names.RAW_TRANSACTIONS_DLQ,
    names.SILVER_TRANSACTIONS,
    *names.GOLD_TABLES,
)
#: Files smaller than this are compacted (Iceberg's default target is 512 MB; local days are smaller).
TARGET_FILE_BYTES = 128 * 1024 * 1024


def file_stats(spark: SparkSession, table: str) -> dict[str, int]:
    """Live data and delete files of the current snapshot."""
    row = spark.sql(
        f"SELECT count_if(content = 0) AS data_files, count_if(content != 0) AS delete_files, "
        f"coalesce(sum(file_size_in_bytes), 0) AS bytes FROM {table}.files"
    ).first()
    snapshots = spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots").first()
    assert row is not None and snapshots is not None
    return {
        "data_files": int(row["data_files"]),
        "delete_files": int(row["delete_files"]),
        "bytes": int(row["bytes"]),
        "snapshots": int(snapshots["n"]),
    }


#: Concurrent commits the procedures can lose against: a streaming writer (lake_ingest commits at every
#: checkpoint, merging manifests and writing an empty snapshot every few idle checkpoints) changed the table
#: between planning and commit. The procedures are idempotent, so they are simply planned again.
_CONFLICTS = ("ValidationException", "CommitFailedException")
_ATTEMPTS = 5


def call_procedure(spark: SparkSession, statement: str) -> list[Row]:
    """``CALL ...`` retried when a concurrent commit won the race (the table changed under it)."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return spark.sql(statement).collect()
        except Exception as error:  # py4j wraps the Iceberg exception; only its class name is reliable
            if attempt == _ATTEMPTS or not any(name in str(error) for name in _CONFLICTS):
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def drop_stale_audit_branches(spark: SparkSession, table: str, older_than: datetime) -> list[str]:
    """Drop the ``audit_*`` branches (write-audit-publish) whose head is older than ``older_than``.

    A daily_etl run drops its branch when it publishes or fails; a run killed in between leaves it, and a
    branch pins its snapshots (and their files) for good. Only branches older than the orphan-file age are
    dropped, so a run in progress keeps its own.
    """
    stale = spark.sql(
        f"SELECT r.name FROM {table}.refs r JOIN {table}.snapshots s ON r.snapshot_id = s.snapshot_id "
        f"WHERE r.type = 'BRANCH' AND startswith(r.name, 'audit_') "
        f"AND s.committed_at < TIMESTAMP '{older_than:%Y-%m-%d %H:%M:%S}'"
    ).collect()
    names = sorted(str(row["name"]) for row in stale)
    for name in names:
        spark.sql(f"ALTER TABLE {table} DROP BRANCH IF EXISTS `{name}`")
    return names


def maintain(
    spark: SparkSession,
    table: str,
    expire_older_than: datetime,
    retain_last: int,
    orphan_older_than: datetime,
) -> dict[str, Any]:
    """Run the four procedures on ``table`` (catalog-qualified) and report files and content before/after."""
    catalog = table.split(".")[0]
    before = file_stats(spark, table)
    checksum_before = tables.content_checksum(spark.table(table))
    started = time.monotonic()
    dropped_branches = drop_stale_audit_branches(spark, table, orphan_older_than)
    rewritten = call_procedure(
        spark,
        f"CALL {catalog}.system.rewrite_data_files(table => '{table}', options => map("
        f"'min-input-files', '2', 'target-file-size-bytes', '{TARGET_FILE_BYTES}', "
        f"'delete-file-threshold', '1', 'remove-dangling-deletes', 'true'))",
    )[0]
    call_procedure(spark, f"CALL {catalog}.system.rewrite_manifests('{table}')")
    expired = call_procedure(
        spark,
        f"CALL {catalog}.system.expire_snapshots(table => '{table}', "
        f"older_than => TIMESTAMP '{expire_older_than:%Y-%m-%d %H:%M:%S}', retain_last => {retain_last})",
    )[0]
    orphans = spark.sql(
        f"CALL {catalog}.system.remove_orphan_files(table => '{table}', "
        f"older_than => TIMESTAMP '{orphan_older_than:%Y-%m-%d %H:%M:%S}')"
    ).collect()
    after = file_stats(spark, table)
    checksum_after = tables.content_checksum(spark.table(table))
    assert rewritten is not None and expired is not None
    return {
        "table": table,
        "before": before,
        "after": after,
        "rewritten_data_files": int(rewritten["rewritten_data_files_count"]),
        "added_data_files": int(rewritten["added_data_files_count"]),
        "expired_data_files": int(expired["deleted_data_files_count"]),
        "orphan_files_removed": len(orphans),
        "stale_audit_branches_dropped": dropped_branches,
        "rows_and_checksum_before": list(checksum_before),
        "rows_and_checksum_after": list(checksum_after),
        "content_unchanged": checksum_before == checksum_after,
        "seconds": round(time.monotonic() - started, 1),
    }


def run(
    spark: SparkSession,
    catalog: str,
    table_names: Sequence[str],
    snapshot_retention: timedelta,
    retain_last: int,
    orphan_min_age: timedelta,
) -> list[dict[str, Any]]:
    # Procedures compare with the session time zone (UTC here): pass naive UTC timestamps.
    now = datetime.now(UTC).replace(tzinfo=None)
    reports = []
    for table in table_names:
        qualified = f"{catalog}.{table}"
        if not tables.table_exists(spark, qualified):
            reports.append({"table": qualified, "skipped": "does not exist yet"})
            continue
        reports.append(maintain(spark, qualified, now - snapshot_retention, retain_last, now - orphan_min_age))
    return reports


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from spark_jobs.session import build_session

    from hybrid_platform import config

    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="append", help=f"repeatable (default: {', '.join(DEFAULT_TABLES)})")
    parser.add_argument(
        "--snapshot-retention-hours", type=non_negative_number, default=72.0, help="time travel kept (72)"
    )
    parser.add_argument("--retain-last", type=positive_int, default=5, help="snapshots always kept (5)")
    # Well beyond any checkpoint interval or batch write: a file this old and unreferenced is an orphan.
    parser.add_argument("--orphan-min-age-hours", type=positive_number, default=24.0, help="orphan safety margin (24)")
    args = parser.parse_args(argv)
    cfg = config.load()
    spark = build_session("lakehouse_maintenance", cfg)
    try:
        reports = run(
            spark,
            cfg.catalog.name,
            args.table or DEFAULT_TABLES,
            timedelta(hours=args.snapshot_retention_hours),
            args.retain_last,
            timedelta(hours=args.orphan_min_age_hours),
        )
    finally:
        spark.stop()
    print(json.dumps(reports, indent=2))
    return 0 if all(r.get("content_unchanged", True) for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
