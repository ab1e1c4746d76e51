"""DAG integrity: one DagBag for the session, every file checked, and a snapshot of what each DAG is.

The DagBag is filled in a child process with the local runtime's Airflow environment (a private
AIRFLOW_HOME), the way the dag processor parses: this test process never imports Airflow's config.
Regenerate the snapshot after an intended change with ``HDP_UPDATE_SNAPSHOTS=1 pytest tests/unit/test_dags.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hybrid_platform import config, dbt_runner, runtime

DAGS_DIR = config.REPO_ROOT / "dags"
DAG_FILES = sorted(path.stem for path in DAGS_DIR.glob("*.py") if not path.name.startswith("_"))
SNAPSHOT = Path(__file__).parent / "snapshots" / "dags.json"
#: Importing any of these at a DAG file's top level slows every parse (seconds each); tasks import them.
HEAVY_MODULES = ("pyspark", "pyflink", "pandas", "great_expectations", "dbt.cli", "confluent_kafka", "sklearn")

_DESCRIBE = r"""
import json, sys, time
import airflow.sdk  # noqa: F401 - the dag processor has Airflow loaded before it parses a file
from airflow.dag_processing.dagbag import DagBag

heavy = sys.argv[2].split(",")
result = {"files": {}, "dags": {}}
for path in sys.argv[1].split(","):
    before = set(sys.modules)
    started = time.perf_counter()
    bag = DagBag(dag_folder=path)
    seconds = time.perf_counter() - started
    loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in {h.split(".")[0] for h in heavy}
                    and any(m == h or m.startswith(h + ".") for h in heavy))
    result["files"][path] = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "seconds": seconds,
                             "heavy_modules": loaded, "dag_ids": sorted(bag.dag_ids)}
    for dag in bag.dags.values():
        result["dags"][dag.dag_id] = {
            "fileloc": dag.fileloc,
            "doc_md": bool(dag.doc_md),
            "catchup": dag.catchup,
            "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
            "tags": sorted(dag.tags),
            "schedule": str(getattr(dag.timetable, "description", "") or "") or repr(dag.timetable),
            "schedule_assets": sorted(a.uri for _, a in dag.timetable.asset_condition.iter_assets())
            if getattr(dag.timetable, "asset_condition", None) is not None else [],
            "params": sorted(dag.params.keys()),
            "tasks": {
                t.task_id: {
                    "owner": t.owner,
                    "retries": t.retries,
                    "upstream": sorted(t.upstream_task_ids),
                    "outlets": sorted(getattr(o, "uri", str(o)) for o in t.outlets),
                    "operator": type(t).__name__,
                }
                for t in dag.tasks
            },
        }
print("DAGBAG-JSON" + json.dumps(result, sort_keys=True))
"""


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("dags-home")
    cfg = config.load({**os.environ, "HDP_HOME": str(home)})
    dbt_runner.parse(cfg)  # Cosmos renders lakehouse_daily's dbt tasks from this manifest  # [template:dbt]
    dbt_runner.write_profile(cfg)  # [template:dbt]
    env = {**os.environ, **runtime.airflow_env(cfg)}
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    files = ",".join(str(DAGS_DIR / f"{name}.py") for name in DAG_FILES)
    done = subprocess.run(
        [sys.executable, "-c", _DESCRIBE, files, ",".join(HEAVY_MODULES)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    marker = [line for line in done.stdout.splitlines() if line.startswith("DAGBAG-JSON")]
    assert marker, f"DagBag child failed:\n{done.stderr[-3000:]}"
    described: dict[str, Any] = json.loads(marker[-1].removeprefix("DAGBAG-JSON"))
    return described


def test_every_expected_dag_exists() -> None:
    expected = {"lakehouse_daily", "lakehouse_maintenance"}
    expected |= {"fraud_model_training"}  # [template:ml]
    expected |= {"flink_jobs"}  # [template:streaming]
    assert set(DAG_FILES) >= expected


@pytest.mark.parametrize("name", DAG_FILES)
def test_dag_file_imports_cleanly_and_stays_thin(dagbag: dict[str, Any], name: str) -> None:
    parsed = dagbag["files"][str(DAGS_DIR / f"{name}.py")]
    assert parsed["errors"] == {}
    assert parsed["dag_ids"] == [name], "one DAG per file, dag_id = file name"
    assert parsed["heavy_modules"] == [], "import heavy libraries inside tasks, not at module level"


@pytest.mark.parametrize("name", DAG_FILES)
def test_dag_follows_the_house_rules(dagbag: dict[str, Any], name: str) -> None:
    dag = dagbag["dags"][name]
    assert dag["doc_md"], "doc_md=__doc__"
    assert dag["catchup"] is False
    assert dag["start_date_tz"] in {"UTC", "Timezone('UTC')"}, dag["start_date_tz"]
    assert dag["tags"]
    for task_id, task in dag["tasks"].items():
        assert task["owner"] and task["owner"] != "airflow", f"{task_id}: set an owner"
        assert task["retries"] is not None, task_id


def _snapshot_view(dagbag: dict[str, Any]) -> dict[str, Any]:
    return {
        dag_id: {key: value for key, value in dag.items() if key != "fileloc"}
        for dag_id, dag in sorted(dagbag["dags"].items())
    }


def test_dags_match_the_snapshot(dagbag: dict[str, Any]) -> None:
    """Tasks, dependencies, schedules, params and Assets: a change here must be intended."""
    current = _snapshot_view(dagbag)
    if os.environ.get("HDP_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if os.environ.get("HDP_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"wrote a new snapshot {SNAPSHOT}: review and commit it")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
