"""A Spark batch job killed mid-write: readers see nothing partial, and the rerun completes exactly.

`make chaos`. The numbers go to the same report as the streaming faults (``fault_report``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fault_report import FAULT_RESULTS

from hybrid_platform import names, runtime
from hybrid_platform.config import REPO_ROOT, PlatformConfig

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


PUBLISHED_DAY = date(2026, 8, 2)  # built completely first: what readers see while the next day is written
BATCH_DAY = date(2026, 8, 3)  # the day whose run is killed
BATCH_TRANSACTIONS = 200_000


def _spark(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the driver and its JVM in one process group: killed together
        )


def _table(cfg: PlatformConfig, name: str) -> Any:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchTableError

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return None


def _day_rows(table: Any, day: date = BATCH_DAY) -> int:
    from pyiceberg.expressions import EqualTo

    if table is None or table.current_snapshot() is None:
        return 0
    return int(table.scan(row_filter=EqualTo("event_date", day.isoformat())).to_arrow().num_rows)


def _data_files(cfg: PlatformConfig, name: str) -> set[Path]:
    """Every Parquet file under the table's data folder, referenced by a snapshot or not (yet)."""
    table = _table(cfg, name)
    if table is None:
        return set()
    folder = Path(urlparse(table.location()).path) / "data"
    return set(folder.rglob("*.parquet")) if folder.exists() else set()


def _published(cfg: PlatformConfig, names_: list[str]) -> dict[str, tuple[int | None, int, int]]:
    """What a reader of each table sees: main's snapshot id, and the rows of both days."""
    seen = {}
    for name in names_:
        table = _table(cfg, name)
        snapshot = table.current_snapshot() if table is not None else None
        seen[name] = (snapshot.snapshot_id if snapshot else None, _day_rows(table, PUBLISHED_DAY), _day_rows(table))
    return seen


def _seed(day: date, log: Path) -> dict[str, Any]:
    seed = _spark(["spark_jobs.seed_day", "--date", day.isoformat(), "--transactions", str(BATCH_TRANSACTIONS)], log)
    assert seed.wait(600) == 0, f"seed_day failed; see {log}"
    text = log.read_text()
    seeded: dict[str, Any] = json.loads(text[text.rindex("\n{") :])
    return seeded


def _etl(day: date, run_id: str, log: Path) -> subprocess.Popen[bytes]:
    return _spark(["spark_jobs.daily_etl", "--date", day.isoformat(), "--run-id", run_id], log)


def test_spark_job_killed_mid_write_publishes_nothing_and_the_rerun_completes(
    platform_cfg: PlatformConfig, tmp_path: Path
) -> None:
    """``daily_etl`` for a day is killed (``kill -9`` of the driver and its JVM) while it writes silver, the
    day before already published: readers of every published table see exactly what they saw before (the
    same snapshot: write-audit-publish wrote to an audit branch, and Iceberg commits are atomic); the rerun
    of the day completes with exact counts."""
    cfg = platform_cfg
    runtime.prepare_catalog(cfg)  # the one piece of the runtime a Spark job needs (no process)
    log = tmp_path / "spark.log"
    published = _seed(PUBLISHED_DAY, log)
    assert _etl(PUBLISHED_DAY, "chaos_published", log).wait(900) == 0, f"daily_etl failed; see {log}"
    seeded = _seed(BATCH_DAY, log)
    tables = [names.SILVER_TRANSACTIONS, *names.GOLD_TABLES]
    before = _published(cfg, tables)
    assert before[names.SILVER_TRANSACTIONS][1:] == (published["transactions"], 0), before
    files_before = _data_files(cfg, names.SILVER_TRANSACTIONS)

    started = time.monotonic()
    killed = _etl(BATCH_DAY, "chaos_killed", log)
    while not (written := _data_files(cfg, names.SILVER_TRANSACTIONS) - files_before):
        assert killed.poll() is None, f"daily_etl ended (exit {killed.returncode}) before writing; see {log}"
        assert time.monotonic() - started < 600, "daily_etl wrote no silver file in 10 min"
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)
    killed_after_s = round(time.monotonic() - started, 1)
    killed.wait(30)

    after = _published(cfg, tables)
    changed = sorted(t for t in tables if after[t] != before[t])
    assert not changed, f"a killed run changed what readers of {changed} see: {before} -> {after}"

    rerun_started = time.monotonic()
    rerun = _etl(BATCH_DAY, "chaos_rerun", log)
    assert rerun.wait(900) == 0, f"the rerun failed; see {log}"
    rerun_s = round(time.monotonic() - rerun_started, 1)
    silver = _table(cfg, names.SILVER_TRANSACTIONS)
    silver_rows = _day_rows(silver)
    assert silver_rows == seeded["transactions"], (silver_rows, seeded)
    assert _day_rows(silver, PUBLISHED_DAY) == published["transactions"], "the day before is untouched"
    result = {
        "fault": "kill -9 Spark daily_etl mid-write",
        "seeded_transactions": seeded["transactions"],
        "killed_after_s": killed_after_s,
        "files_written_before_kill": len(written),
        "published_tables_changed_by_killed_run": len(changed),
        "silver_rows_after_rerun": silver_rows,
        "lost": seeded["transactions"] - silver_rows,
        "rerun_s": rerun_s,
    }
    FAULT_RESULTS.append(result)
    print(json.dumps(result))
