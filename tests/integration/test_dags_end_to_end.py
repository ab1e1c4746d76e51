"""`airflow dags test` of the batch DAGs against the real local runtime: Spark through the connection, dbt
through Cosmos, the model registry — the same code the scheduler runs."""

from __future__ import annotations

import json
import os
import re
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
    airflow = str(runtime.REPO_ROOT / ".venv" / "bin" / "airflow")
    env = {**os.environ, **runtime.airflow_env(cfg)}
    # `dags test` runs the tasks in this process, but its run lives in the shared metadata DB: when another
    # test (the UI test) has unpaused the DAG, the running scheduler queues the same task instances too
    # and one of the two fails with "TI was not in a state where it could be marked as running".
    subprocess.run([airflow, "dags", "pause", dag_id], env=env, capture_output=True, check=True, timeout=120)
    command = [airflow, "dags", "test", dag_id, logical_date]
    if conf:
        command[3:3] = ["-c", json.dumps(conf)]
    done = subprocess.run(
        command,
        env=env,
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


def test_lakehouse_maintenance_compacts_what_the_day_published(
    local_runtime: PlatformConfig, spark: Any, seeded: Any
) -> None:
    """The nightly DAG with its Variables' defaults: every table maintained, content unchanged."""
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(local_runtime.catalog.name, **local_runtime.catalog.pyiceberg_properties())
    silver = catalog.load_table(names.SILVER_TRANSACTIONS)
    snapshot_before = silver.current_snapshot()
    output = _dags_test(local_runtime, "lakehouse_maintenance", "2026-11-17T06:00:00+00:00")
    # The job prints each table's report (spark-submit output is the task's log): every table kept its content.
    assert "content_unchanged" in output and not re.search(r"content_unchanged\W+false", output), output[-3000:]
    assert _rows(local_runtime, names.SILVER_TRANSACTIONS, DAY) == seeded["transactions"]
    silver.refresh()
    assert snapshot_before is not None and silver.current_snapshot() is not None
