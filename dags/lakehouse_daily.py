"""
### lakehouse_daily

The batch path for one complete UTC day: by default the day before the run (a run at 00:00 on the 24th
builds the 23rd); set the `date` param when triggering to (re)build another day.

1. **`daily_etl`** — Spark, through the `spark_default` connection: gates `raw.transactions` with Great
   Expectations, builds silver and gold on Iceberg audit branches, audits them with the silver and gold
   suites, and publishes by fast-forwarding `main` — or fails with the report (which expectations, how
   many rows, the Data Docs page) and publishes nothing. See `spark_jobs/daily_etl.py`.
<!-- [template:dbt] -->
2. **`dbt`** — the dbt project's staging models and marts (with their tests) on the published tables,
   rendered by astronomer-cosmos from the precompiled manifest (the scheduler never runs dbt to parse).
3. **`publish_marts`** — marks the marts as updated.
<!-- [/template:dbt] -->

Emits Assets for silver, gold and the marts; `fraud_model_training` is scheduled on silver.
Rerunning a date is safe: silver merges on `txn_id`, gold and marts are replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig  # [template:dbt]
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior  # [template:dbt]

from hybrid_platform import (
    config,  # [template:dbt]
    dbt_runner,  # [template:dbt]
    names,
)
from hybrid_platform.orchestration import asset_uri

_cfg = config.load()  # environment only: no I/O, no network  # [template:dbt]
SILVER = Asset(name=names.SILVER_TRANSACTIONS, uri=asset_uri(names.SILVER_TRANSACTIONS))
GOLD = [Asset(name=table, uri=asset_uri(table)) for table in names.GOLD_TABLES]
# [template:dbt]
MARTS = [
    Asset(name=f"{names.DBT_MARTS_NAMESPACE}.{mart}", uri=asset_uri(f"{names.DBT_MARTS_NAMESPACE}.{mart}"))
    for mart in ("fct_transactions", "dim_merchants", "mart_fraud_daily", "mart_model_performance")
]
# [/template:dbt]


@dag(
    schedule="@daily",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)},
    tags=["batch", "spark", "dbt", "quality"],  # [template:dbt]
    # [template:!dbt] tags=["batch", "spark", "quality"],
    params={"date": Param(None, type=["null", "string"], format="date", description="UTC day to build (YYYY-MM-DD)")},
)
def lakehouse_daily() -> None:
    @task(outlets=[SILVER, *GOLD])
    def daily_etl(**context: Any) -> str:
        from hybrid_platform.orchestration import day_to_process, spark_submit

        day = day_to_process(context)
        spark_submit("spark_jobs.daily_etl", ["--date", day])
        return day

    # [template:dbt]
    project = ProjectConfig(dbt_project_path=dbt_runner.project_dir(), manifest_path=dbt_runner.manifest_path(_cfg))
    # A local manifest is read as a plain file: through ObjectStoragePath, reading it loads every lineage
    # plugin first (0.8 s of each parse of this file).
    project.manifest_path = dbt_runner.manifest_path(_cfg)
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=project,
        profile_config=ProfileConfig(
            profile_name=dbt_runner.PROFILE_NAME,
            target_name=_cfg.environment,
            profiles_yml_filepath=dbt_runner.profiles_dir(_cfg) / "profiles.yml",
        ),
        # dbt in the task's process (dbtRunner, no subprocess); one task per model, then
        # the project's tests once they are all built (a relationships test needs both of its models).
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_ALL),
        default_args={"retries": 0},
    )

    @task(outlets=MARTS)
    def publish_marts() -> None:
        """The marts were rebuilt and tested by dbt: emit their Assets for downstream consumers."""

    daily_etl() >> dbt >> publish_marts()
    # [/template:dbt]
    # [template:!dbt] daily_etl()


lakehouse_daily()
