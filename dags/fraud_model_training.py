"""
### fraud_model_training

Retrains the fraud model whenever `lakehouse_daily` publishes `silver.transactions` (Asset schedule),
and weekly in any case (Monday 04:00 UTC) so a quiet week still gets a fresh model.

1. **`train_evaluate_gate_promote`** — Spark MLlib through the `spark_default` connection
   (`spark_jobs/train_fraud_model.py`): a point-in-time training set from silver (labels known at the
   cutoff), Great Expectations gate on it (a failed gate trains nothing and fails the task), a
   class-weighted logistic regression, evaluation of the exported portable artifact on a time-based
   holdout against the rules-only baseline and the current champion, registration, and promotion only
   when it beats both.
2. **`champion`** — reads the registry and emits the model Asset with the champion's version and
   metrics. The running Flink `fraud_scoring` job hot-reloads the champion without a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from hybrid_platform import names
from hybrid_platform.orchestration import MODEL_ASSET_URI, asset_uri

SILVER = Asset(name=names.SILVER_TRANSACTIONS, uri=asset_uri(names.SILVER_TRANSACTIONS))
MODEL = Asset(name="fraud_model_champion", uri=MODEL_ASSET_URI)


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * 1", timezone="UTC"), assets=[SILVER]),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={"owner": "ml-platform", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["ml", "spark", "quality"],
)
def fraud_model_training() -> None:
    @task
    def train_evaluate_gate_promote(**context: Any) -> None:
        from hybrid_platform.orchestration import day_to_process, spark_submit

        # Labels known by the end of the last complete day (asset-triggered runs have no logical date).
        spark_submit("spark_jobs.train_fraud_model", ["--as-of", day_to_process(context)])

    @task(outlets=[MODEL], multiple_outputs=False)
    def champion(**context: Any) -> dict[str, Any]:
        from hybrid_platform import config
        from hybrid_platform.model import ModelRegistry, registry_root

        artifact = ModelRegistry(registry_root(config.load())).champion()
        if artifact is None:
            raise RuntimeError("no champion model in the registry: the first training did not beat the baseline")
        summary = {"model_version": artifact.model_version, **artifact.metrics}
        context["outlet_events"][MODEL].extra = summary
        return summary

    train_evaluate_gate_promote() >> champion()


fraud_model_training()
