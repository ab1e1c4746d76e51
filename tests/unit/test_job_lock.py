"""The per-job lease in the catalog database (a real SQLite file, as the local platform uses)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hybrid_platform import config, job_lock
from hybrid_platform.config import PlatformConfig


@pytest.fixture
def cfg(tmp_path: Path) -> PlatformConfig:
    (tmp_path / "catalog").mkdir()
    return config.load({"HDP_HOME": str(tmp_path), "HDP_CATALOG_URI": f"jdbc:sqlite:{tmp_path}/catalog/c.db"})


def _in_thread(cfg: PlatformConfig, job: str, hold_s: float, events: list[str], **kwargs: float) -> threading.Thread:
    def run() -> None:
        try:
            with job_lock.held(cfg, job, **kwargs):
                events.append("acquired")
                time.sleep(hold_s)
            events.append("released")
        except job_lock.LockTimeout:
            events.append("timeout")

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_second_actor_waits_for_the_first(cfg: PlatformConfig) -> None:
    order: list[str] = []
    with job_lock.held(cfg, "fraud_scoring"):
        assert job_lock.holder(cfg, "fraud_scoring") is not None
        waiter = _in_thread(cfg, "fraud_scoring", 0, order, poll_s=0.05)
        time.sleep(0.5)
        assert order == [], "the second actor got the lock while the first held it"
        order.append("first done")
    waiter.join(10)
    assert order == ["first done", "acquired", "released"]
    assert job_lock.holder(cfg, "fraud_scoring") is None


def test_jobs_lock_independently_and_a_waiter_gives_up_with_a_message(cfg: PlatformConfig) -> None:
    with job_lock.held(cfg, "fraud_scoring"):
        events: list[str] = []
        _in_thread(cfg, "lake_ingest", 0, events).join(10)
        assert events == ["acquired", "released"]
        events.clear()
        _in_thread(cfg, "fraud_scoring", 0, events, wait_s=0.3, poll_s=0.05).join(10)
        assert events == ["timeout"]


def test_the_holder_renews_its_lease_and_a_dead_holders_lease_expires(cfg: PlatformConfig) -> None:
    events: list[str] = []
    holder = _in_thread(cfg, "fraud_scoring", 2.0, events, lease_s=0.6)
    time.sleep(0.2)
    blocked: list[str] = []
    _in_thread(cfg, "fraud_scoring", 0, blocked, wait_s=1.2, poll_s=0.05).join(10)
    assert blocked == ["timeout"], "a lease shorter than the hold was not renewed"
    holder.join(10)

    # A holder killed mid-deploy leaves its row: once the lease ran out, the next actor takes over.
    engine = sa.create_engine(cfg.catalog.sqlalchemy_uri)
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {job_lock.TABLE} VALUES ('fraud_scoring', 'killed', 0, :expired)"),
            {"expired": int(time.time() * 1000) - 1},
        )
    engine.dispose()
    started = time.monotonic()
    with job_lock.held(cfg, "fraud_scoring", wait_s=5) as owner:
        assert owner != "killed"
    assert time.monotonic() - started < 2


def test_the_lock_is_re_entrant_in_one_thread(cfg: PlatformConfig) -> None:
    with job_lock.held(cfg, "fraud_scoring") as outer:
        with job_lock.held(cfg, "fraud_scoring", wait_s=0.1) as inner:
            assert inner == "re-entered"
        current = job_lock.holder(cfg, "fraud_scoring")
        assert current is not None and current["owner"] == outer
    assert job_lock.holder(cfg, "fraud_scoring") is None
