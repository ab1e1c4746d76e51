"""`airflow dags test` of the batch DAGs against the real local runtime: Spark through the connection, dbt
through Cosmos, the model registry — the same code the scheduler runs."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from typing import Any

import pytest

from spark_jobs import seed_day

from hybrid_platform import names, runtime
from hybrid_platform.config import PlatformConfig
from hybrid_platform.model import ModelRegistry, registry_root

pytestmark = pytest.mark.integration

DAY = date(2026, 8, 10)
ALL_LABELS_KNOWN = 4_102_444_800_000


def _dags_test(cfg: PlatformConfig, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> str:
    command = [str(runtime.REPO_ROOT / ".venv" / "bin" / "airflow"), "dags", "test", dag_id, logical_date]
    if conf:
        command[3:3] = ["-c", json.dumps(conf)]
    done = subprocess.run(
        command,
        env={**os.environ, **runtime.airflow_env(cfg)},
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    output = done.stdout + done.stderr
    (cfg.home / f"dags-test-{dag_id}.log").write_text(output)
    assert done.returncode == 0, output[-4000:]
    return output


def _rows(cfg: PlatformConfig, table: str, day: date) -> int:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.expressions import EqualTo

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    scan = catalog.load_table(table).scan(row_filter=EqualTo("event_date", day.isoformat()))
    return int(scan.to_arrow().num_rows)


@pytest.fixture(scope="module")
def seeded(local_runtime: PlatformConfig, spark: Any) -> dict[str, Any]:
    return seed_day.seed(spark, DAY, 12_000, seed_value=5, labels_as_of_ms=ALL_LABELS_KNOWN)


def test_lakehouse_daily_builds_the_day_and_the_marts(local_runtime: PlatformConfig, spark: Any, seeded: Any) -> None:
    _dags_test(local_runtime, "lakehouse_daily", "2026-11-15T06:00:00+00:00", {"date": DAY.isoformat()})
    # Read with pyiceberg, a reader of its own: the tables were written by the DAG's processes.
    silver = _rows(local_runtime, names.SILVER_TRANSACTIONS, DAY)
    assert silver == seeded["transactions"], (local_runtime.home / "dags-test-lakehouse_daily.log").read_text()[-3000:]
    marts = _rows(local_runtime, f"{names.DBT_MARTS_NAMESPACE}.mart_fraud_daily", DAY)
    assert marts == 1, "dbt built the day's mart row from what the ETL published"


def test_fraud_model_training_promotes_a_model(local_runtime: PlatformConfig, spark: Any, seeded: Any) -> None:
    registry = ModelRegistry(registry_root(local_runtime))
    before = registry.champion_version()
    # The day before this logical date is the cutoff: every label of DAY is known by then, and DAY alone
    # clears the training-set gate (at least 10,000 rows, 50 frauds) when this module runs by itself.
    output = _dags_test(local_runtime, "fraud_model_training", "2026-11-16T06:00:00+00:00")
    after = registry.champion_version()
    assert after is not None and after != before, output[-3000:]
    assert registry.get(after).trained_on["table"] == names.SILVER_TRANSACTIONS
