"""Keep the long-lived Flink jobs alive: what the ``flink_jobs`` Airflow DAG runs every few minutes.

- :func:`ensure_running` — idempotent. It *observes* the job (:func:`observe`), *decides* with a pure
  function of that observation (:func:`decide`, unit-tested state by state) and *acts*, until the job runs:
  RUNNING → nothing; RESTARTING / INITIALIZING / waiting for slots → give Flink's own restart strategy a
  bounded time first; absent, FAILED or CANCELED → restore from the newest retained checkpoint or
  savepoint (exactly-once continuity: Kafka offsets, Kafka transactions and Iceberg commits all ride on
  it), a fresh deploy only when there is none. On the local runtime a killed JobManager or TaskManager
  process is started again first; on a cluster Kubernetes restarts pods, so :class:`Policy` turns that
  off (``cfg.environment`` decides). Checkpoints are the proof of life: one needs every task to
  acknowledge, so it shows what the job overview cannot (the JobManager reports a lost TaskManager's
  tasks as RUNNING until its heartbeat times out). After any intervention a checkpoint must complete
  before the job counts as running again, and a RUNNING job whose checkpoints are overdue is waited on.
- :func:`health` — state, age of the last completed checkpoint, Kafka consumer lag of the job's group
  (Flink commits offsets to Kafka when a checkpoint completes) and, for ``fraud_scoring``, a short
  alert-latency sample; thresholds in :class:`HealthThresholds`.
- :func:`periodic_savepoint` — a savepoint when the newest is older than ``max_age_s`` (a portable restore
  point for upgrades and disasters; checkpoints are tied to the state backend and the retained three).
- :func:`upgrade` — stop with a savepoint, start the current code from it, verify with a checkpoint; a
  failure to start names the savepoint to restore from.

Standard library only at import time (the DAG file and the scheduler stay light); the Kafka client and
the runtime are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hybrid_platform import flink_ops, job_lock, names
from hybrid_platform.config import PlatformConfig
from hybrid_platform.flink_ops import FlinkOpsError, JobInfo

log = logging.getLogger(__name__)

#: Flink is on its way somewhere: its restart strategy (or a cancel) is in charge for now.
TRANSITIONAL_STATES = frozenset({"CREATED", "INITIALIZING", "RESTARTING", "RECONCILING", "SUSPENDED"})
#: Going down; waiting is all one can do.
STOPPING_STATES = frozenset({"CANCELLING", "FAILING"})
#: The run is over: a streaming job that reached one of these must be started again.
TERMINAL_STATES = frozenset({"FAILED", "CANCELED", "FINISHED"})
#: Environments whose Flink processes this package started itself (``runtime.up``) and may start again.
LOCAL_ENVIRONMENTS = frozenset({"local", "ci"})
#: The local Flink services, in start order.
FLINK_SERVICES = ("flink-jobmanager", "flink-taskmanager", "flink-taskmanager-2")
#: A running job whose last checkpoint is older than 3 intervals plus this is suspect: tasks on a lost
#: TaskManager show as RUNNING until its heartbeat times out, but they checkpoint no more.
CHECKPOINT_GRACE_MS = 30_000


class LifecycleError(RuntimeError):
    """The job could not be brought to (or kept in) a healthy running state; the message says what to do."""


def _jsonable(result: Any) -> dict[str, Any]:
    """A result dataclass as plain JSON types (tuples become lists): Airflow stores and shows it as is."""
    plain: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(result)))
    return plain


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_job(job: str) -> None:
    if job not in flink_ops.JOBS:
        raise LifecycleError(f"unknown job {job!r}; choose one of: {', '.join(flink_ops.JOBS)}")


# --------------------------------------------------------------------------------------------------
# ensure_running: observe -> decide (pure) -> act


class Action(StrEnum):
    NONE = "none"  # the job runs: nothing to do
    WAIT = "wait"  # Flink is recovering on its own (or the first checkpoint after recovery is pending)
    RESTART_SERVICES = "restart_services"  # local runtime: start the Flink process(es) that died
    CANCEL = "cancel"  # recovery took too long: cancel (checkpoints are retained), then restore
    RESTORE = "restore"  # start from the newest retained checkpoint or savepoint
    DEPLOY = "deploy"  # nothing to restore from: a fresh start
    FAIL = "fail"  # nothing this function can do; the reason says what a human should look at


@dataclass(frozen=True)
class Policy:
    """How patient :func:`ensure_running` is, and whether it may start local Flink processes."""

    manage_local_services: bool
    #: Flink's own restart strategy gets this long (from the first unsettled observation, or from our last
    #: intervention) before the job is cancelled and restored.
    max_wait_s: float = 90.0
    #: After an intervention, a checkpoint must complete within this long.
    verify_timeout_s: float = 180.0
    poll_s: float = 2.0

    @classmethod
    def for_config(cls, cfg: PlatformConfig, **overrides: Any) -> Policy:
        """Local runtime (``local``, ``ci``): restart killed Flink processes here. Cluster: leave pods to Kubernetes."""
        return cls(manage_local_services=cfg.environment in LOCAL_ENVIRONMENTS, **overrides)


@dataclass(frozen=True)
class Observation:
    """Everything :func:`decide` looks at, gathered by :func:`observe` (plus the loop's own bookkeeping)."""

    job: str
    now_ms: int
    rest_reachable: bool = True
    services_down: tuple[str, ...] = ()  # local Flink services not running (empty when not managed)
    taskmanagers: int | None = None  # registered with the JobManager
    state: str | None = None  # None: no run of the job known to the JobManager
    job_id: str | None = None
    all_tasks_running: bool = False
    started_ms: int | None = None  # when this run was submitted
    checkpoint_interval_ms: int | None = None  # None: unknown or checkpointing off
    last_checkpoint_ms: int | None = None  # ack time of this run's newest completed checkpoint
    restore_point: str | None = None  # newest retained checkpoint/savepoint (looked up for absent/terminal jobs)
    unsettled_since_ms: int | None = None  # first seen not running during this call
    recovered_at_ms: int | None = None  # when this call last intervened (services started, job restored)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    restore_from: str | None = None
    services: tuple[str, ...] = ()


def checkpoint_overdue_s(obs: Observation) -> float | None:
    """How many seconds the running job's next checkpoint is overdue (None: it is not, or cannot tell)."""
    last = obs.last_checkpoint_ms or obs.started_ms
    if not obs.checkpoint_interval_ms or last is None:
        return None
    late_ms = obs.now_ms - last - (3 * obs.checkpoint_interval_ms + CHECKPOINT_GRACE_MS)
    return late_ms / 1000 if late_ms > 0 else None


def settled(obs: Observation) -> bool:
    """Running as it should: every task RUNNING and checkpoints on time (or terminal/absent: nothing to wait for)."""
    if obs.state is None or obs.state in TERMINAL_STATES:
        return True
    return obs.all_tasks_running and checkpoint_overdue_s(obs) is None


def decide(obs: Observation, policy: Policy) -> Decision:
    """What to do about ``obs``: a pure function, so every state can be tested without a cluster."""
    if obs.services_down and policy.manage_local_services:
        return Decision(
            Action.RESTART_SERVICES, f"local {' and '.join(obs.services_down)} not running", services=obs.services_down
        )
    if not obs.rest_reachable:
        where = "" if policy.manage_local_services else "; on a cluster the JobManager's Deployment restarts it"
        return Decision(Action.FAIL, f"the Flink REST API is not reachable{where}")
    if obs.state is None or obs.state in TERMINAL_STATES:
        what = "not known to the JobManager" if obs.state is None else obs.state
        if obs.restore_point:
            return Decision(
                Action.RESTORE,
                f"{obs.job} is {what}: restore from its newest retained checkpoint/savepoint",
                restore_from=obs.restore_point,
            )
        return Decision(Action.DEPLOY, f"{obs.job} is {what} and has no checkpoint or savepoint: fresh deploy")

    if obs.all_tasks_running:
        if obs.recovered_at_ms is None:
            overdue = checkpoint_overdue_s(obs)
            if overdue is None:
                return Decision(Action.NONE, "RUNNING, every task running")
            last = f"last checkpoint {(obs.now_ms - (obs.last_checkpoint_ms or 0)) / 1000:.0f} s ago"
            if obs.last_checkpoint_ms is None:
                last = "no checkpoint since the start"
            detail = f"tasks RUNNING but {last} (interval {(obs.checkpoint_interval_ms or 0) / 1000:g} s)"
            waited_s = (obs.now_ms - (obs.unsettled_since_ms or obs.now_ms)) / 1000
            if waited_s < policy.verify_timeout_s:
                return Decision(Action.WAIT, f"{detail}: waiting for one (a lost TaskManager looks RUNNING at first)")
            return Decision(Action.FAIL, f"{detail}, still after {waited_s:.0f} s")
        if obs.last_checkpoint_ms is not None and obs.last_checkpoint_ms >= obs.recovered_at_ms:
            return Decision(Action.NONE, "RUNNING again: a checkpoint completed after the recovery")
        if (obs.now_ms - obs.recovered_at_ms) / 1000 < policy.verify_timeout_s:
            return Decision(Action.WAIT, "tasks RUNNING; waiting for the first checkpoint after the recovery")
        return Decision(
            Action.FAIL,
            f"tasks RUNNING but no checkpoint completed within {policy.verify_timeout_s:.0f} s after the recovery",
        )

    # Active but not (yet) running: RESTARTING, INITIALIZING, ..., or RUNNING with tasks waiting for slots.
    detail = obs.state if obs.state != "RUNNING" else "RUNNING, tasks not all running (waiting for slots?)"
    since = max(obs.unsettled_since_ms or obs.now_ms, obs.recovered_at_ms or 0)
    waited_s = (obs.now_ms - since) / 1000
    if waited_s < policy.max_wait_s:
        return Decision(Action.WAIT, f"{detail}: Flink's restart strategy is recovering it")
    if obs.state in STOPPING_STATES:
        return Decision(Action.FAIL, f"stuck in {obs.state} for {waited_s:.0f} s")
    if obs.taskmanagers == 0:
        hint = "" if policy.manage_local_services else " (on a cluster: check the TaskManager pods)"
        return Decision(Action.FAIL, f"{detail} for {waited_s:.0f} s and no TaskManager is registered{hint}")
    return Decision(
        Action.CANCEL,
        f"{detail} for {waited_s:.0f} s (> {policy.max_wait_s:.0f} s): cancel, keeping its checkpoints, then restore",
    )


def _completed_checkpoint(cfg: PlatformConfig, job_id: str) -> dict[str, Any]:
    stats = flink_ops.checkpoints(cfg, job_id)
    completed: dict[str, Any] = (stats.get("latest") or {}).get("completed") or {}
    return completed


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent (Linux; elsewhere: cannot tell, so no)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _services_down(cfg: PlatformConfig) -> tuple[str, ...]:
    """The local Flink services whose recorded process is gone (or dead, waiting to be reaped)."""
    from hybrid_platform import runtime

    down = []
    for name in FLINK_SERVICES:
        state = runtime.running(cfg, name)
        if state is not None and _zombie(state.pid):
            with contextlib.suppress(ChildProcessError):  # reap it when it is our own child (we started it)
                os.waitpid(state.pid, os.WNOHANG)
            state = None
        if state is None:
            down.append(name)
    return tuple(down)


def observe(cfg: PlatformConfig, job: str, policy: Policy) -> Observation:
    """The job as Flink (and, locally, the process table) sees it now."""
    now = _now_ms()
    down = _services_down(cfg) if policy.manage_local_services else ()
    try:
        info = flink_ops.latest_job(cfg, job)
        taskmanagers = int(flink_ops.overview(cfg).get("taskmanagers", 0))
    except FlinkOpsError:
        return Observation(job, now, rest_reachable=False, services_down=down)
    obs = Observation(job, now, services_down=down, taskmanagers=taskmanagers)
    if info is None or info.state in TERMINAL_STATES:
        return dataclasses.replace(
            obs,
            state=info.state if info else None,
            job_id=info.job_id if info else None,
            restore_point=flink_ops.newest_restore_point(cfg, job),
        )
    obs = dataclasses.replace(
        obs, state=info.state, job_id=info.job_id, all_tasks_running=info.all_tasks_running, started_ms=info.start_time
    )
    if not info.all_tasks_running:
        return obs
    last = _completed_checkpoint(cfg, info.job_id).get("latest_ack_timestamp")
    return dataclasses.replace(
        obs,
        checkpoint_interval_ms=flink_ops.checkpoint_interval_ms(cfg, info.job_id),
        last_checkpoint_ms=int(last) if last else None,
    )


@dataclass(frozen=True)
class EnsureResult:
    """What :func:`ensure_running` found and did, and why (returned to Airflow as the task's XCom)."""

    job: str
    job_id: str
    state: str
    actions: tuple[str, ...]  # what was done, in order (empty: it was running)
    steps: tuple[dict[str, Any], ...]  # every distinct decision with its reason and the second it was made
    restored_from: str | None
    duration_s: float
    finished_at_ms: int  # epoch ms: when the job was found (or verified) running

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {**_jsonable(self), "changed": self.changed}

    def summary(self) -> str:
        if not self.actions:
            return f"{self.job} ({self.job_id}): {self.steps[-1]['reason']}"
        restored = f", restored from {self.restored_from}" if self.restored_from else ""
        return (
            f"{self.job} ({self.job_id}) RUNNING after {' -> '.join(self.actions)} in {self.duration_s:.1f} s{restored}"
        )


def ensure_running(
    cfg: PlatformConfig, job: str, args: Sequence[str] | None = None, policy: Policy | None = None
) -> EnsureResult:
    """Make sure ``job`` runs (idempotent): see the module docstring for the decisions.

    ``args`` are the job's arguments for a restore or deploy; None keeps those of its last deployment.
    Raises :class:`LifecycleError` when the job cannot be brought back; the message names the cause.
    """
    _check_job(job)
    policy = policy or Policy.for_config(cfg)
    job_args = list(args) if args is not None else flink_ops.last_args(cfg, job)
    started = time.monotonic()
    # Bounded overall: waiting, a service start (≈ 15-45 s each), a cancel, a restore (≤ 60 s) and a verification.
    deadline = started + policy.max_wait_s + policy.verify_timeout_s + 300
    steps: list[dict[str, Any]] = []
    actions: list[str] = []
    unsettled_since: int | None = None
    recovered_at: int | None = None
    restored_from: str | None = None
    started_job = False
    with contextlib.suppress(FlinkOpsError):  # a JobManager that is down has no duplicates: the loop handles it
        for duplicate in flink_ops.resolve_duplicates(cfg, job):
            actions.append("cancel_duplicate")
            steps.append({"at_s": 0.0, "action": "cancel_duplicate", "reason": f"second copy {duplicate}"})

    while True:
        obs = observe(cfg, job, policy)
        unsettled_since = None if settled(obs) else (unsettled_since or obs.now_ms)
        obs = dataclasses.replace(obs, unsettled_since_ms=unsettled_since, recovered_at_ms=recovered_at)
        decision = decide(obs, policy)
        elapsed = round(time.monotonic() - started, 1)
        if not steps or (steps[-1]["action"], steps[-1]["reason"]) != (decision.action.value, decision.reason):
            steps.append({"at_s": elapsed, "action": decision.action.value, "reason": decision.reason})
            log.info("%s: %s (%s)", job, decision.action.value, decision.reason)

        if decision.action is Action.NONE:
            assert obs.job_id is not None and obs.state is not None
            return EnsureResult(
                job, obs.job_id, obs.state, tuple(actions), tuple(steps), restored_from, elapsed, obs.now_ms
            )
        if decision.action is Action.FAIL:
            raise LifecycleError(f"{job}: {decision.reason}; {_history(steps)}{_cause(cfg, obs.job_id)}")
        if time.monotonic() > deadline:
            raise LifecycleError(f"{job}: still not running after {elapsed:.0f} s; {_history(steps)}")
        if decision.action is Action.WAIT:
            time.sleep(policy.poll_s)
            continue

        actions.append(decision.action.value)
        if decision.action is Action.RESTART_SERVICES:
            from hybrid_platform import runtime

            runtime.up(cfg, only=list(decision.services), echo=log.info)
            still_down = set(decision.services) & set(_services_down(cfg))
            if still_down:
                raise LifecycleError(
                    f"{job}: could not start {', '.join(sorted(still_down))} again; see {cfg.log_dir} "
                    "(a killed process is recorded until its parent reaps it)"
                )
        elif decision.action is Action.CANCEL:
            flink_ops.cancel(cfg, job)
            _await_state(cfg, job, TERMINAL_STATES, timeout_s=60)
            unsettled_since = None
        else:  # RESTORE or DEPLOY
            if started_job:
                raise LifecycleError(f"{job}: started once and it is not running again; {_history(steps)}")
            started_job = True
            if decision.action is Action.RESTORE:
                assert decision.restore_from is not None
                try:
                    flink_ops.restore(cfg, job, from_path=decision.restore_from, args=job_args)
                except flink_ops.AlreadyRunning:  # another actor started it meanwhile: observe it again
                    started_job = False
                    continue
                except Exception as error:  # FlinkOpsError, RuntimeFailure from `flink run`, a timeout
                    raise LifecycleError(
                        f"{job}: restore from {decision.restore_from} failed: {error}. Not deploying it fresh: "
                        "that would give up exactly-once continuity. Fix the cause, then rerun (or "
                        f"`hdp flink restore {job} --from <checkpoint or savepoint>`)"
                    ) from error
                restored_from = decision.restore_from
            else:
                flink_ops.deploy(cfg, job, args=job_args)
        recovered_at = _now_ms()


def _history(steps: list[dict[str, Any]]) -> str:
    return "steps: " + "; ".join(f"{s['at_s']}s {s['action']}: {s['reason']}" for s in steps)


def _cause(cfg: PlatformConfig, job_id: str | None) -> str:
    if job_id is None:
        return ""
    return f"; Flink's last failure: {flink_ops.root_cause(cfg, job_id)}"


def _await_state(cfg: PlatformConfig, job: str, states: frozenset[str], timeout_s: float) -> JobInfo:
    deadline = time.monotonic() + timeout_s
    while True:
        info = flink_ops.latest_job(cfg, job)
        if info is not None and info.state in states:
            return info
        if time.monotonic() > deadline:
            found = info.state if info else "absent"
            raise LifecycleError(f"{job} did not reach {'/'.join(sorted(states))} in {timeout_s:.0f} s ({found})")
        time.sleep(1)


def await_checkpoint(cfg: PlatformConfig, job_id: str, after_ms: int, timeout_s: float) -> dict[str, Any]:
    """Wait for a checkpoint of ``job_id`` completed at or after ``after_ms``; return its statistics."""
    deadline = time.monotonic() + timeout_s
    while True:
        completed = _completed_checkpoint(cfg, job_id)
        if completed and int(completed["latest_ack_timestamp"]) >= after_ms:
            return completed
        if time.monotonic() > deadline:
            raise LifecycleError(f"no checkpoint of {job_id} completed within {timeout_s:.0f} s{_cause(cfg, job_id)}")
        time.sleep(1)


# --------------------------------------------------------------------------------------------------
# health


@dataclass(frozen=True)
class HealthThresholds:
    max_checkpoint_age_s: float = 120.0
    #: Records behind the end of the job's topics (read committed), summed over partitions. Offsets are
    #: committed at checkpoints, so the lag is at least one checkpoint interval's worth of traffic.
    max_consumer_lag: int = 100_000
    max_alert_p99_ms: float = 10_000.0
    #: Length of fraud_scoring's alert-latency sample (plus 3 s for the last alerts); 0 turns it off.
    latency_sample_s: float = 10.0


@dataclass(frozen=True)
class HealthMetrics:
    """What :func:`health` measured (None: not measured, with the reason in ``notes``)."""

    job: str
    state: str | None
    all_tasks_running: bool = False
    checkpoint_age_s: float | None = None
    has_checkpoint: bool = False  # False: the age counts from the job's start
    consumer_lag: int | None = None
    alert_p99_ms: float | None = None
    notes: tuple[str, ...] = ()


def assess(metrics: HealthMetrics, thresholds: HealthThresholds) -> list[str]:
    """The problems in ``metrics`` (empty: healthy). Pure."""
    problems: list[str] = []
    if metrics.state != "RUNNING" or not metrics.all_tasks_running:
        state = metrics.state or "not running"
        problems.append(f"state {state}" + (", tasks not all running" if metrics.state == "RUNNING" else ""))
    age = metrics.checkpoint_age_s
    if age is not None and age > thresholds.max_checkpoint_age_s:
        what = "last completed checkpoint" if metrics.has_checkpoint else "no checkpoint completed since the start,"
        problems.append(f"{what} {age:.0f} s ago (> {thresholds.max_checkpoint_age_s:.0f} s)")
    if metrics.consumer_lag is not None and metrics.consumer_lag > thresholds.max_consumer_lag:
        problems.append(f"consumer lag {metrics.consumer_lag:,} records (> {thresholds.max_consumer_lag:,})")
    if metrics.alert_p99_ms is not None and metrics.alert_p99_ms > thresholds.max_alert_p99_ms:
        problems.append(f"alert latency p99 {metrics.alert_p99_ms:,.0f} ms (> {thresholds.max_alert_p99_ms:,.0f} ms)")
    return problems


@dataclass(frozen=True)
class HealthReport:
    job: str
    healthy: bool
    problems: tuple[str, ...]
    metrics: HealthMetrics
    job_id: str | None = None
    lag_by_topic: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)

    def summary(self) -> str:
        m = self.metrics
        facts = [f"state {m.state or 'not running'}"]
        if m.checkpoint_age_s is not None:
            facts.append(f"checkpoint age {m.checkpoint_age_s:.0f} s")
        if m.consumer_lag is not None:
            facts.append(f"lag {m.consumer_lag:,}")
        if m.alert_p99_ms is not None:
            facts.append(f"alert p99 {m.alert_p99_ms:,.0f} ms")
        verdict = "healthy" if self.healthy else "UNHEALTHY: " + "; ".join(self.problems)
        notes = f" (notes: {'; '.join(m.notes)})" if m.notes else ""
        return f"{self.job}: {verdict} [{', '.join(facts)}]{notes}"


def consumer_lag(cfg: PlatformConfig, group: str, timeout_s: float = 10.0) -> dict[str, int] | None:
    """Records behind per topic for consumer ``group``: end offsets (read committed) minus committed offsets.

    None when the group has committed nothing yet (a new job commits at its first checkpoint).
    """
    from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # re-exported, untyped

    admin = AdminClient(cfg.kafka_client("observer", log_level=3))
    request = [ConsumerGroupTopicPartitions(group)]
    committed = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group].result(timeout_s)
    partitions = [tp for tp in committed.topic_partitions or [] if tp.offset >= 0]
    if not partitions:
        return None
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    # Read committed: the group's consumers (Flink's sources) never see an open transaction's records.
    ends = admin.list_offsets(
        {TopicPartition(tp.topic, tp.partition): latest for tp in partitions},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout_s,
    )
    end_offsets = {(tp.topic, tp.partition): future.result(timeout_s).offset for tp, future in ends.items()}
    lag: dict[str, int] = {}
    for tp in partitions:
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, int(end_offsets[tp.topic, tp.partition]) - int(tp.offset))
    return lag


def health(cfg: PlatformConfig, job: str, thresholds: HealthThresholds | None = None) -> HealthReport:
    """One health evaluation of ``job``; a check that cannot run is a problem (or a note when not applicable)."""
    _check_job(job)
    thresholds = thresholds or HealthThresholds()
    notes: list[str] = []
    problems: list[str] = []
    metrics = HealthMetrics(job, None)
    try:
        info = flink_ops.active_job(cfg, job)
    except FlinkOpsError as error:
        return HealthReport(job, False, (str(error),), metrics)
    if info is not None:
        metrics = dataclasses.replace(metrics, state=info.state, all_tasks_running=info.all_tasks_running)
        try:
            completed = _completed_checkpoint(cfg, info.job_id)
        except FlinkOpsError as error:
            return HealthReport(job, False, (str(error),), metrics, info.job_id)
        since = int(completed["latest_ack_timestamp"]) if completed else info.start_time
        metrics = dataclasses.replace(
            metrics, checkpoint_age_s=round((_now_ms() - since) / 1000, 1), has_checkpoint=bool(completed)
        )
    lag_by_topic: dict[str, int] = {}
    try:
        found = consumer_lag(cfg, job)  # each job's consumer group id is its name (names.py)
    except Exception as error:  # the client raises KafkaException with a transport reason, or a timeout
        problems.append(f"consumer lag unknown: {error}")
    else:
        if found is None:
            notes.append(f"consumer group {job} has no committed offsets yet")
        else:
            lag_by_topic = found
            metrics = dataclasses.replace(metrics, consumer_lag=sum(found.values()))
    if job == names.JOB_FRAUD_SCORING and info is not None:
        p99, note = _alert_latency_p99(cfg, thresholds.latency_sample_s)
        metrics = dataclasses.replace(metrics, alert_p99_ms=p99)
        if note:
            notes.append(note)
    metrics = dataclasses.replace(metrics, notes=tuple(notes))
    problems = assess(metrics, thresholds) + problems
    return HealthReport(job, not problems, tuple(problems), metrics, info.job_id if info else None, lag_by_topic)


def _alert_latency_p99(cfg: PlatformConfig, sample_s: float) -> tuple[float | None, str | None]:
    if sample_s <= 0:
        return None, "alert latency sample turned off"
    from hybrid_platform import latency

    report = latency.measure(cfg, duration_s=sample_s)
    if report.decisions_seen == 0:
        return None, f"no decisions during the {sample_s:.0f} s latency sample: latency not measured"
    if report.alert.p99_ms is None:
        return None, f"no alerts among {report.decisions_seen} decisions in the {sample_s:.0f} s sample"
    return report.alert.p99_ms, None


def wait_healthy(
    cfg: PlatformConfig,
    job: str,
    thresholds: HealthThresholds | None = None,
    timeout_s: float = 180.0,
    poll_s: float = 10.0,
) -> HealthReport:
    """Evaluate :func:`health` until healthy or ``timeout_s`` passed (a just-restored job catches up first)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = health(cfg, job, thresholds)
        log.info("%s", report.summary())
        if report.healthy or time.monotonic() + poll_s > deadline:
            return report
        time.sleep(poll_s)


# --------------------------------------------------------------------------------------------------
# periodic savepoints


@dataclass(frozen=True)
class SavepointResult:
    job: str
    taken: bool
    location: str | None  # the new savepoint, else the newest existing one
    previous_age_s: float | None  # age of the newest savepoint before this call (None: there was none)
    reason: str
    pruned: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def _savepoint_age_ms(cfg: PlatformConfig, job: str, job_id: str) -> tuple[str | None, int | None]:
    """(location, completion time) of the newest savepoint: this run's (Flink's statistics, works for remote
    storage too) or an earlier run's on local disk."""
    candidates: list[tuple[int, str]] = []
    latest = (flink_ops.checkpoints(cfg, job_id).get("latest") or {}).get("savepoint") or {}
    if latest.get("external_path") and latest.get("status", "COMPLETED") == "COMPLETED":
        candidates.append((int(latest["latest_ack_timestamp"]), str(latest["external_path"])))
    local = flink_ops.local_savepoints(cfg, job)
    if local:
        candidates.append((int(local[0].stat().st_mtime * 1000), flink_ops.flink_uri(local[0])))
    if not candidates:
        return None, None
    at, location = max(candidates)
    return location, at


def periodic_savepoint(cfg: PlatformConfig, job: str, max_age_s: float, keep: int = 3) -> SavepointResult:
    """Take a savepoint of the running ``job`` when its newest one is older than ``max_age_s`` (0: always).

    Local savepoints of the job beyond the newest ``keep`` are deleted (never the one the running job was
    restored from); on object storage, retention is the bucket's lifecycle rule.
    """
    _check_job(job)
    info = flink_ops.active_job(cfg, job)
    if info is None or not info.all_tasks_running:
        raise LifecycleError(f"{job} is not running ({info.state if info else 'absent'}): no savepoint taken")
    newest, at = _savepoint_age_ms(cfg, job, info.job_id)
    age_s = round((_now_ms() - at) / 1000, 1) if at is not None else None
    if age_s is not None and age_s <= max_age_s:
        return SavepointResult(job, False, newest, age_s, f"newest savepoint is {age_s:.0f} s old (≤ {max_age_s:.0f})")
    location = flink_ops.savepoint(cfg, job)
    reason = "no savepoint yet" if age_s is None else f"newest savepoint was {age_s:.0f} s old (> {max_age_s:.0f})"
    log.info("%s: savepoint %s (%s)", job, location, reason)
    return SavepointResult(job, True, location, age_s, reason, tuple(prune_savepoints(cfg, job, info.job_id, keep)))


def prune_savepoints(cfg: PlatformConfig, job: str, running_job_id: str, keep: int) -> list[str]:
    """Delete ``job``'s local savepoints beyond the newest ``keep`` (at least 1); return what was deleted."""
    found = flink_ops.local_savepoints(cfg, job)
    restored = ((flink_ops.checkpoints(cfg, running_job_id).get("latest") or {}).get("restored") or {}).get(
        "external_path"
    )
    deleted = []
    for old in found[max(1, keep) :]:
        uri = flink_ops.flink_uri(old)
        if uri == restored:
            continue
        shutil.rmtree(old, ignore_errors=True)
        deleted.append(uri)
    # Copies made for earlier runs to claim (flink_ops.claimable_copy): a claiming run deletes its own once
    # subsumed; a run that does not claim leaves it, and only the running job's may still be needed.
    runs = flink_ops.deployments(cfg, job)
    in_use = {str(run.get("claimed_copy")) for run in runs if run["job_id"] == running_job_id}
    own = {str(run["claimed_copy"]) for run in runs if run.get("claimed_copy")}
    for uri in sorted(own - in_use):
        if uri.startswith("file:"):
            path = flink_ops.local_path(uri)
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                deleted.append(uri)
    return deleted


# --------------------------------------------------------------------------------------------------
# controlled upgrade


@dataclass(frozen=True)
class UpgradeResult:
    job: str
    previous_job_id: str
    job_id: str
    savepoint: str
    args: tuple[str, ...]
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def upgrade(
    cfg: PlatformConfig, job: str, args: Sequence[str] | None = None, verify_timeout_s: float = 180.0
) -> UpgradeResult:
    """Stop ``job`` with a savepoint and start the current code from it (``args``: None keeps the last ones).

    Verified by the first checkpoint of the new run. If the new run does not start, the job stays stopped
    and the error names the savepoint to restore from (after fixing or reverting the code).
    """
    _check_job(job)
    info = flink_ops.active_job(cfg, job)
    if info is None or not info.all_tasks_running:
        state = info.state if info else "not running"
        raise LifecycleError(f"{job} is {state}: nothing to upgrade safely; let ensure_running bring it back first")
    job_args = list(args) if args is not None else flink_ops.last_args(cfg, job)
    flink_ops.check_job_args(job, job_args)  # before the stop: a typo must not leave the job stopped
    started = time.monotonic()
    # Held from the stop to the new run: an ensure_running in between would restore the old code.
    with job_lock.held(cfg, job):
        location = flink_ops.stop(cfg, job)
        log.info("%s: stopped %s with savepoint %s", job, info.job_id, location)
        try:
            new, _ = flink_ops.deploy(cfg, job, args=job_args, restore_from=location)
            await_checkpoint(cfg, new.job_id, _now_ms(), verify_timeout_s)
        except Exception as error:  # whatever failed, the one thing the operator needs is the savepoint
            raise LifecycleError(
                f"upgrade of {job} failed after it was stopped with savepoint {location}: {error}. The job is "
                f"stopped; restore it from that savepoint: `hdp flink restore {job} --from {location}` once the code "
                "is fixed or reverted (the next `ensure` run of the flink_jobs DAG does the same with the previous "
                "arguments)"
            ) from error
    duration = round(time.monotonic() - started, 1)
    log.info("%s: upgraded %s -> %s from %s in %.1f s", job, info.job_id, new.job_id, location, duration)
    return UpgradeResult(job, info.job_id, new.job_id, location, tuple(job_args), duration)
