"""The `flink_jobs` DAG keeps the streaming jobs alive on the real runtime, exactly once.

The TaskManager is killed (`kill -9` of its whole process session, like a lost machine) while the generator
produces; the real DAG then runs (`dag.test()`, in a fresh interpreter configured with the private runtime's
Airflow environment, so no Airflow state leaks into this test process). Checked: the TaskManager is back,
both jobs are RUNNING again from their latest checkpoint, and raw.transactions holds every valid produced
txn_id exactly once. Then a cancelled job is restored from its retained checkpoint, and a controlled upgrade
(stop with savepoint -> start from it) keeps the state, both while events flow and both exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stream_checks

from hybrid_platform import flink_ops, generator, names, reconcile, runtime
from hybrid_platform.config import REPO_ROOT, PlatformConfig

pytestmark = pytest.mark.integration

CHECKPOINT_MS = "1000"  # short, so a restart replays little and a run lands fast

# A worker interpreter configured with the private runtime's Airflow environment: it reads one request per
# line ({"conf": ..., "out": path}), runs the real DAG with dag.test() and writes the run's task states and
# return values to `out`. One process for the module: the in-process execution API starts once (≈ 15 s).
DAG_WORKER = textwrap.dedent("""
    import json, os, sys
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["flink_jobs"]
    for line in sys.stdin:
        request = json.loads(line)
        run = dag.test(run_conf=request["conf"])
        with create_session() as session:
            where = dict(dag_id="flink_jobs", run_id=run.run_id)
            tasks = {ti.task_id: str(ti.state) for ti in session.query(TaskInstance).filter_by(**where)}
            values = session.query(XComModel).filter_by(key="return_value", **where)
            xcoms = {x.task_id: x.value for x in values}
        with open(request["out"] + ".tmp", "w") as out:
            json.dump({"state": str(run.state), "tasks": tasks, "xcoms": xcoms}, out, default=str)
        os.replace(request["out"] + ".tmp", request["out"])  # the test sees the whole file or none
""")


class DagRunner:
    """Runs the `flink_jobs` DAG in the worker process; its Airflow log goes to ``<HDP_HOME>/logs``."""

    def __init__(self, cfg: PlatformConfig) -> None:
        self.cfg = cfg
        self.log = cfg.log_dir / "dag-test-flink_jobs.log"
        dag_file = str(REPO_ROOT / "dags" / "flink_jobs.py")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", DAG_WORKER, dag_file],
                env={**os.environ, **runtime.airflow_env(cfg)},
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.runs = 0

    def run(self, conf: dict[str, Any], timeout_s: float = 900) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.runs += 1
        out = self.cfg.home / f"dag-test-flink_jobs-{self.runs}.json"
        started = time.monotonic()
        self.process.stdin.write(json.dumps({"conf": conf, "out": str(out)}) + "\n")
        self.process.stdin.flush()
        while not out.exists():
            assert self.process.poll() is None, f"the dag.test worker exited; see {self.log}"
            assert time.monotonic() - started < timeout_s, f"no DAG result after {timeout_s:.0f} s; see {self.log}"
            time.sleep(0.5)
        outcome: dict[str, Any] = json.loads(out.read_text())
        outcome["wall_s"] = round(time.monotonic() - started, 1)
        print(f"flink_jobs DAG {conf}: {outcome['state']} in {outcome['wall_s']} s; {outcome['tasks']}")
        return outcome

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Producer(threading.Thread):
    """The generator in the background, so jobs are killed, cancelled and upgraded while events flow."""

    def __init__(self, cfg: PlatformConfig, seed: int, duration_s: float, rate: float = 200) -> None:
        super().__init__(daemon=True)
        self.cfg, self.seed, self.duration_s, self.rate = cfg, seed, duration_s, rate
        self.report: generator.GeneratorReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = generator.produce(self.cfg, rate=self.rate, duration_s=self.duration_s, seed=self.seed)
        except BaseException as error:
            self.error = error

    def valid_txn_ids(self) -> set[str]:
        self.join(timeout=self.duration_s + 120)
        assert self.error is None and self.report is not None, f"generator failed: {self.error}"
        return set(self.report.txn_ids_valid)


def _raw_transactions(cfg: PlatformConfig, txn_ids: set[str]) -> list[str]:
    """The rows of raw.transactions with one of ``txn_ids`` (one entry per row: duplicates show)."""
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    table = catalog.load_table(names.RAW_TRANSACTIONS)
    landed = table.scan(selected_fields=("txn_id",)).to_arrow().column("txn_id").to_pylist()
    return [str(t) for t in landed if t in txn_ids]


def assert_exactly_once(cfg: PlatformConfig, valid: set[str], timeout_s: float = 180) -> None:
    """Every valid produced txn_id lands in raw.transactions, and none twice."""
    deadline = time.monotonic() + timeout_s
    while True:
        landed = _raw_transactions(cfg, valid)
        if set(landed) == valid or time.monotonic() > deadline:
            break
        time.sleep(3)
    missing = valid - set(landed)
    assert not missing, f"{len(missing)} of {len(valid)} valid txn_ids never landed (lost)"
    assert len(landed) == len(valid), f"{len(landed) - len(valid)} duplicate rows in raw.transactions"


@pytest.fixture(scope="module")
def jobs_running(local_runtime: PlatformConfig) -> Iterator[PlatformConfig]:
    cfg = local_runtime
    generator.ensure_topics(cfg, names.ALL_TOPICS)
    for job in flink_ops.JOBS:
        # The DAG's first run is checked from "never savepointed": savepoints that modules run earlier in the
        # session took of these jobs would otherwise count as this deployment's newest one.
        for leftover in flink_ops.local_savepoints(cfg, job):
            shutil.rmtree(leftover)
        flink_ops.deploy(cfg, job, ["--checkpoint-interval-ms", CHECKPOINT_MS])
    yield cfg
    for job in flink_ops.JOBS:
        flink_ops.cancel(cfg, job)


@pytest.fixture(scope="module")
def dag_runner(local_runtime: PlatformConfig) -> Iterator[DagRunner]:
    runner = DagRunner(local_runtime)
    yield runner
    runner.close()


def _restored(cfg: PlatformConfig, job_id: str) -> dict[str, Any]:
    restored: dict[str, Any] = (flink_ops.checkpoints(cfg, job_id).get("latest") or {}).get("restored") or {}
    return restored


def test_running_jobs_are_left_alone_and_get_a_first_savepoint(
    jobs_running: PlatformConfig, dag_runner: DagRunner
) -> None:
    cfg = jobs_running
    before = {job: flink_ops.active_job(cfg, job) for job in flink_ops.JOBS}

    outcome = dag_runner.run({})  # a scheduled run: the default params

    assert outcome["state"] == "success", outcome
    for job, info in before.items():
        assert info is not None
        ensured = outcome["xcoms"][f"{job}.ensure_running"]
        assert (ensured["job_id"], ensured["actions"]) == (info.job_id, []), ensured
        assert outcome["xcoms"][f"{job}.health_check"]["healthy"]
        savepoint = outcome["xcoms"][f"{job}.savepoint"]
        assert savepoint["taken"] and savepoint["reason"] == "no savepoint yet", savepoint
        assert flink_ops.latest_savepoint(cfg, job) == savepoint["location"]
        assert outcome["tasks"][f"{job}.upgrade"] == "skipped"


def test_killed_taskmanagers_are_brought_back_and_no_event_is_lost_or_doubled(
    jobs_running: PlatformConfig, dag_runner: DagRunner
) -> None:
    cfg = jobs_running
    before = {job: flink_ops.active_job(cfg, job) for job in flink_ops.JOBS}
    producer = Producer(cfg, seed=501, duration_s=30)
    producer.start()
    time.sleep(8)
    # Every TaskManager, so that both jobs lose their tasks whichever TaskManager runs them.
    killed = {service: runtime.running(cfg, service) for service in runtime.TASKMANAGERS}
    for taskmanager in killed.values():
        assert taskmanager is not None
        os.killpg(taskmanager.pid, signal.SIGKILL)  # the TaskManager and every process of its session
    killed_at_ms = int(time.time() * 1000)
    for taskmanager in killed.values():
        assert taskmanager is not None
        with contextlib.suppress(ChildProcessError):  # this process started it: reap it, as init would
            os.waitpid(taskmanager.pid, 0)
    time.sleep(2)

    outcome = dag_runner.run({"action": "ensure"})

    assert outcome["state"] == "success", outcome
    for service, taskmanager in killed.items():
        back = runtime.running(cfg, service)
        assert taskmanager is not None and back is not None and back.pid != taskmanager.pid, f"{service} restarted"
    for job, old in before.items():
        ensured = outcome["xcoms"][f"{job}.ensure_running"]
        assert ensured["state"] == "RUNNING"
        # Flink's own restart strategy recovered the job once its TaskManager was back: same job, no redeploy,
        # its state restored from the latest checkpoint taken before the kill.
        assert old is not None and ensured["job_id"] == old.job_id, ensured
        restored = _restored(cfg, old.job_id)
        assert restored and not restored["is_savepoint"], restored
        assert restored["restore_timestamp"] >= killed_at_ms
        assert restored["external_path"].startswith(f"file:{cfg.home}/flink/checkpoints/{old.job_id}/chk-")
        assert outcome["xcoms"][f"{job}.health_check"]["healthy"]
        print(
            f"{job}: RUNNING again {(ensured['finished_at_ms'] - killed_at_ms) / 1000:.1f} s after the kill "
            f"(ensure_running {ensured['duration_s']} s: {' -> '.join(ensured['actions'])}); "
            f"restored checkpoint {restored['id']}; steps: {ensured['steps']}"
        )
    # Whichever job's task ran first started the TaskManager again; the other found it back.
    actions = [outcome["xcoms"][f"{job}.ensure_running"]["actions"] for job in flink_ops.JOBS]
    assert sorted(actions) == [[], ["restart_services"]], actions

    assert_exactly_once(cfg, producer.valid_txn_ids())


def test_cancelled_job_is_restored_from_its_latest_retained_checkpoint(
    jobs_running: PlatformConfig, dag_runner: DagRunner
) -> None:
    cfg = jobs_running
    job = names.JOB_LAKE_INGEST
    old = flink_ops.active_job(cfg, job)
    assert old is not None
    producer = Producer(cfg, seed=502, duration_s=20)
    producer.start()
    time.sleep(6)
    assert flink_ops.cancel(cfg, job)  # its retained checkpoints stay (RETAIN_ON_CANCELLATION)

    outcome = dag_runner.run({"action": "ensure", "jobs": [job]})

    assert outcome["state"] == "success", outcome
    ensured = outcome["xcoms"][f"{job}.ensure_running"]
    assert ensured["actions"] == ["restore"], ensured
    assert ensured["restored_from"].startswith(f"file:{cfg.home}/flink/checkpoints/{old.job_id}/chk-")
    deployment = flink_ops.deployments(cfg, job)[-1]
    assert deployment["job_id"] == ensured["job_id"] != old.job_id
    assert deployment["restored_from"] == ensured["restored_from"]
    assert deployment["args"] == ["--checkpoint-interval-ms", CHECKPOINT_MS], "restarted as it was deployed"
    assert outcome["tasks"][f"{names.JOB_FRAUD_SCORING}.ensure_running"] == "skipped"
    print(f"{job}: restored in {ensured['duration_s']} s from {ensured['restored_from']}")

    assert_exactly_once(cfg, producer.valid_txn_ids())


def test_controlled_upgrade_from_the_dag_keeps_state_and_exactly_once(
    jobs_running: PlatformConfig, dag_runner: DagRunner
) -> None:
    cfg = jobs_running
    job = names.JOB_LAKE_INGEST
    old = flink_ops.active_job(cfg, job)
    assert old is not None
    new_args = ["--checkpoint-interval-ms", "2000"]
    producer = Producer(cfg, seed=503, duration_s=20)
    producer.start()
    time.sleep(4)

    outcome = dag_runner.run({"action": "upgrade", "jobs": [job], "job_args": {job: new_args}})

    assert outcome["state"] == "success", outcome
    assert outcome["tasks"][f"{job}.ensure_running"] == "skipped"
    upgraded = outcome["xcoms"][f"{job}.upgrade"]
    assert upgraded["previous_job_id"] == old.job_id != upgraded["job_id"]
    assert upgraded["savepoint"].startswith(f"file:{cfg.home}/flink/savepoints/savepoint-{old.job_id[:6]}")
    restored = _restored(cfg, upgraded["job_id"])
    deployment = flink_ops.deployments(cfg, job)[-1]
    # The run claims a copy of the savepoint; the savepoint itself stays a restore point.
    assert deployment["restored_from"] == upgraded["savepoint"] != deployment["claimed_copy"]
    assert restored["is_savepoint"] and restored["external_path"] == deployment["claimed_copy"], restored
    assert (flink_ops.local_path(upgraded["savepoint"]) / "_metadata").exists()
    assert deployment["args"] == new_args
    savepoint = outcome["xcoms"][f"{job}.savepoint"]
    assert not savepoint["taken"], "the upgrade's savepoint is fresh: no periodic one needed"
    print(f"{job}: upgraded {old.job_id} -> {upgraded['job_id']} in {upgraded['duration_s']} s")

    assert_exactly_once(cfg, producer.valid_txn_ids())


def _await_no_copy(cfg: PlatformConfig, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while any(flink_ops.active_copies(cfg, job) for job in flink_ops.JOBS):
        assert time.monotonic() < deadline, "jobs still active after cancel"
        time.sleep(0.5)


def test_cli_deploy_racing_the_dag_starts_one_copy_of_each_job(
    jobs_running: PlatformConfig, dag_runner: DagRunner
) -> None:
    """`hdp flink deploy` and the DAG's ensure_running, started at the same moment on stopped jobs, again and
    again: every time exactly one copy of each job is submitted, and no alert is duplicated after."""
    cfg = jobs_running
    hdp = str(REPO_ROOT / ".venv" / "bin" / "hdp")
    for attempt in range(3):
        for job in flink_ops.JOBS:
            flink_ops.cancel(cfg, job)
        _await_no_copy(cfg)
        since_ms = int(time.time() * 1000)
        outcomes: list[dict[str, Any]] = []
        dag = threading.Thread(target=lambda out=outcomes: out.append(dag_runner.run({"action": "ensure"})))
        dag.start()
        cli = subprocess.run(
            [hdp, "flink", "deploy", "--job-arg=--checkpoint-interval-ms", f"--job-arg={CHECKPOINT_MS}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        dag.join(900)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert outcomes and outcomes[0]["state"] == "success", outcomes
        started = [j for j in flink_ops.jobs(cfg) if j.start_time >= since_ms]
        for job in flink_ops.JOBS:
            copies = [j.job_id for j in started if j.name == job]
            assert len(copies) == 1, f"attempt {attempt}: {job} was submitted {len(copies)} times: {copies}"
            assert len(flink_ops.active_copies(cfg, job)) == 1
        print(f"attempt {attempt}: one copy each; cli: {cli.stdout.strip()!r}")

    alerts_from = reconcile.end_offsets(cfg, names.TOPIC_FRAUD_ALERTS)
    producer = Producer(cfg, seed=504, duration_s=20)
    producer.start()
    valid = producer.valid_txn_ids()
    assert_exactly_once(cfg, valid)
    alerts = [
        json.loads(m.value())["txn_id"]
        for m in stream_checks.read_committed(cfg, names.TOPIC_FRAUD_ALERTS, alerts_from)
    ]
    assert alerts, "no alert at all: the check would not see a duplicate"
    assert len(alerts) == len(set(alerts)), f"{len(alerts) - len(set(alerts))} duplicated alerts"


def test_a_savepoint_survives_the_restores_that_use_it(jobs_running: PlatformConfig) -> None:
    """fraud_scoring restores in CLAIM mode: Flink deletes what it claimed once subsumed. It claims a copy."""
    cfg = jobs_running
    job = names.JOB_FRAUD_SCORING
    location = flink_ops.savepoint(cfg, job)
    for attempt in range(2):
        assert flink_ops.cancel(cfg, job)
        _await_no_copy_of(cfg, job)
        info, source = flink_ops.restore(cfg, job, from_path=location)
        assert source == location
        restored = _restored(cfg, info.job_id)
        claimed = flink_ops.deployments(cfg, job)[-1]["claimed_copy"]
        # Claimed, a savepoint becomes the run's own checkpoint (is_savepoint false): the copy, not the original.
        assert restored and restored["external_path"] == claimed != location, restored
        await_checkpoints = time.monotonic() + 60
        while (flink_ops.checkpoints(cfg, info.job_id).get("counts") or {}).get("completed", 0) < 3:
            assert time.monotonic() < await_checkpoints, "no three checkpoints after the restore"
            time.sleep(0.5)
        assert (flink_ops.local_path(location) / "_metadata").exists(), f"restore {attempt} deleted the savepoint"
        print(
            f"restore {attempt}: from a copy {claimed}; the copy is gone: {not flink_ops.local_path(claimed).exists()}"
        )


def _await_no_copy_of(cfg: PlatformConfig, job: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while flink_ops.active_copies(cfg, job):
        assert time.monotonic() < deadline, f"{job} still active after cancel"
        time.sleep(0.5)
