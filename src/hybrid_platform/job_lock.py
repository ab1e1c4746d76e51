"""One actor at a time starts, restores or upgrades a given long-lived job: a lease in the catalog database.

Two copies of one Flink job share a consumer group and a transactional-id prefix, so they break exactly
once (duplicated alerts). Every path that submits a job (``hdp flink``, the ``flink_jobs`` DAG, the demo, the
tests, an upgrade) goes through :func:`flink_ops.deploy`, which holds this lock from its check against the
JobManager until the new job's tasks run. The catalog database is the one store every actor already reaches,
on a laptop (SQLite) and on a cluster (PostgreSQL), so the lock is one the whole cluster sees.

A lease, renewed by its holder while it works, so a holder killed mid-deploy blocks the others for at most
one lease. The lock is re-entrant per thread: an upgrade holds it across its stop and its deploy.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from hybrid_platform.config import PlatformConfig

log = logging.getLogger(__name__)

TABLE = "hdp_job_locks"
LEASE_S = 60.0
#: Longer than any single deploy, restore or upgrade holds it (stop with savepoint ≤ 120 s, submit, verify).
WAIT_S = 600.0

_held = threading.local()


class LockTimeout(RuntimeError):
    """Another actor held the job's lock for longer than we wait; the message names it."""


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    depths: dict[str, int] = _held.depths
    return depths


def _engine(cfg: PlatformConfig) -> Any:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    connect_args = {"timeout": 30} if cfg.catalog.sqlalchemy_uri.startswith("sqlite") else {}
    return sqlalchemy.create_engine(cfg.catalog.sqlalchemy_uri, poolclass=NullPool, connect_args=connect_args)


def _table(metadata: Any) -> Any:
    import sqlalchemy as sa

    return sa.Table(
        TABLE,
        metadata,
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("acquired_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def holder(cfg: PlatformConfig, job: str) -> dict[str, Any] | None:
    """The current lease on ``job`` (owner, acquired_at_ms, expires_at_ms), or None when it is free."""
    import sqlalchemy as sa

    engine = _engine(cfg)
    try:
        table = _table(sa.MetaData())
        table.create(engine, checkfirst=True)
        with engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.job == job)).mappings().first()
        return dict(row) if row and row["expires_at_ms"] >= _now_ms() else None
    finally:
        engine.dispose()


@contextmanager
def held(
    cfg: PlatformConfig, job: str, *, lease_s: float = LEASE_S, wait_s: float = WAIT_S, poll_s: float = 0.5
) -> Generator[str, None, None]:
    """Hold ``job``'s lock for the block; yields the owner token. Waits up to ``wait_s`` for another holder."""
    depths = _depths()
    if depths.get(job):
        depths[job] += 1
        try:
            yield "re-entered"
        finally:
            depths[job] -= 1
        return

    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    engine = _engine(cfg)
    table = _table(sa.MetaData())
    table.create(engine, checkfirst=True)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lease_ms = int(lease_s * 1000)
    deadline = time.monotonic() + wait_s
    waiting_logged = False
    while True:
        now = _now_ms()
        with engine.begin() as conn:  # a lease its holder stopped renewing is free
            conn.execute(sa.delete(table).where(table.c.job == job, table.c.expires_at_ms < now))
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(table).values(job=job, owner=owner, acquired_at_ms=now, expires_at_ms=now + lease_ms)
                )
            break
        except IntegrityError:
            current = holder(cfg, job)
            if time.monotonic() > deadline:
                engine.dispose()
                raise LockTimeout(
                    f"{job}: another deploy, restore or upgrade has held its lock for over {wait_s:.0f} s "
                    f"({current}); wait for it to finish, or check `hdp flink status`"
                ) from None
            if not waiting_logged:
                log.info("%s: waiting for the lock held by %s", job, current and current["owner"])
                waiting_logged = True
            time.sleep(poll_s)

    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(table)
                        .where(table.c.job == job, table.c.owner == owner)
                        .values(expires_at_ms=_now_ms() + lease_ms)
                    )
            except Exception:  # a catalog hiccup: the next renewal retries; the lease covers the gap
                log.warning("%s: could not renew the lock lease", job, exc_info=True)

    renewer = threading.Thread(target=renew, name=f"job-lock-{job}", daemon=True)
    renewer.start()
    depths[job] = 1
    try:
        yield owner
    finally:
        depths.pop(job, None)
        stop.set()
        renewer.join()
        with engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.job == job, table.c.owner == owner))
        engine.dispose()
