"""
### lakehouse_maintenance

Nightly Iceberg table maintenance with Spark (`spark_jobs/maintenance.py`), the batch engine doing what
the streaming engine should not: `lake_ingest` commits small files at every Flink checkpoint, and
merge-on-read MERGEs leave delete files.

- **`compact_raw`** — `rewrite_data_files` (bin-pack, apply deletes), `rewrite_manifests`,
  `expire_snapshots` (keeps `snapshot_retention_hours`, Airflow Variable) and `remove_orphan_files`
  (only files older than `orphan_min_age_hours`, so an in-flight checkpoint is never touched) on `raw.*`;
- **`compact_published`** — the same on silver and gold.

Each reports files before and after and a content checksum, which must not change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from hybrid_platform import names

RAW_TABLES = [
    names.RAW_TRANSACTIONS,
    names.RAW_FRAUD_LABELS,
    names.RAW_FRAUD_ALERTS,
    names.RAW_FRAUD_DECISIONS,
    names.RAW_TRANSACTIONS_DLQ,
]
PUBLISHED_TABLES = [names.SILVER_TRANSACTIONS, *names.GOLD_TABLES]


def _maintenance_args(tables: list[str], orphan_min_age_hours: float | None = None) -> list[str]:
    """The job's arguments, with the retention settings read from Airflow Variables when the task runs."""
    from hybrid_platform.orchestration import variable

    args = [
        "--snapshot-retention-hours",
        variable("snapshot_retention_hours"),
        "--orphan-min-age-hours",
        str(orphan_min_age_hours) if orphan_min_age_hours is not None else variable("orphan_min_age_hours"),
    ]
    for table in tables:
        args += ["--table", table]
    return args


@dag(
    schedule="30 2 * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["maintenance", "spark", "iceberg"],
)
def lakehouse_maintenance() -> None:
    @task
    def compact_raw() -> None:
        from hybrid_platform.orchestration import spark_submit

        orphan_age: float | None = None
        # [template:streaming]
        # lake_ingest writes raw.*: files a retained checkpoint or savepoint would commit on a restore are
        # not orphans, however long the job has been down.
        import time

        from hybrid_platform import config, flink_ops
        from hybrid_platform.orchestration import variable

        orphan_age = flink_ops.orphan_min_age_hours(
            config.load(), names.JOB_LAKE_INGEST, float(variable("orphan_min_age_hours")), int(time.time() * 1000)
        )
        if orphan_age == flink_ops.UNKNOWN_RESTORE_POINTS_HOURS:
            print(f"orphan files: none removed ({names.JOB_LAKE_INGEST}'s restore points cannot be listed)")
        else:
            print(f"orphan files: only those older than {orphan_age:.1f} h")
        # [/template:streaming]
        spark_submit("spark_jobs.maintenance", _maintenance_args(RAW_TABLES, orphan_age))

    @task
    def compact_published() -> None:
        from hybrid_platform.orchestration import spark_submit

        spark_submit("spark_jobs.maintenance", _maintenance_args(PUBLISHED_TABLES))

    compact_raw() >> compact_published()


lakehouse_maintenance()
