"""What ensure_running decides for each observed state, and how health is judged: pure functions, no cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hybrid_platform import flink_lifecycle as fl
from hybrid_platform import flink_ops
from hybrid_platform.config import load
from hybrid_platform.flink_lifecycle import Action, Decision, HealthMetrics, HealthThresholds, Observation, Policy

NOW = 1_800_000_000_000
LOCAL = Policy(manage_local_services=True, max_wait_s=90, verify_timeout_s=180)
CLUSTER = dataclasses.replace(LOCAL, manage_local_services=False)
CHECKPOINT = "file:/state/flink/checkpoints/abc/chk-42"


def observed(**fields: object) -> Observation:
    """A healthy running job, with ``fields`` changed."""
    base = Observation(
        job="lake_ingest",
        now_ms=NOW,
        taskmanagers=1,
        state="RUNNING",
        job_id="abc",
        all_tasks_running=True,
        last_checkpoint_ms=NOW - 5_000,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_running_job_is_left_alone() -> None:
    assert fl.decide(observed(), LOCAL).action is Action.NONE
    assert fl.decide(observed(), CLUSTER).action is Action.NONE


@pytest.mark.parametrize("state", [None, "FAILED", "CANCELED", "FINISHED"])
def test_absent_or_terminated_job_is_restored_from_its_newest_restore_point(state: str | None) -> None:
    decision = fl.decide(observed(state=state, all_tasks_running=False, restore_point=CHECKPOINT), LOCAL)
    assert decision == Decision(Action.RESTORE, decision.reason, restore_from=CHECKPOINT)
    assert ("not known" if state is None else state) in decision.reason


@pytest.mark.parametrize("state", [None, "FAILED", "CANCELED"])
def test_without_a_restore_point_the_job_is_deployed_fresh(state: str | None) -> None:
    decision = fl.decide(observed(state=state, all_tasks_running=False, restore_point=None), LOCAL)
    assert decision.action is Action.DEPLOY
    assert decision.restore_from is None


@pytest.mark.parametrize("state", ["RESTARTING", "INITIALIZING", "CREATED", "RECONCILING", "CANCELLING"])
def test_flinks_own_recovery_gets_a_bounded_wait(state: str) -> None:
    just_seen = observed(state=state, all_tasks_running=False, unsettled_since_ms=NOW - 10_000)
    assert fl.decide(just_seen, LOCAL).action is Action.WAIT
    too_long = dataclasses.replace(just_seen, unsettled_since_ms=NOW - 91_000)
    expected = Action.FAIL if state == "CANCELLING" else Action.CANCEL  # cancelling twice would not help
    assert fl.decide(too_long, LOCAL).action is expected


def test_running_with_tasks_waiting_for_slots_is_not_running() -> None:
    """After a TaskManager died the job is RUNNING while its tasks wait for slots (SCHEDULED)."""
    waiting = observed(all_tasks_running=False, unsettled_since_ms=NOW - 30_000)
    decision = fl.decide(waiting, CLUSTER)
    assert decision.action is Action.WAIT
    assert "waiting for slots" in decision.reason
    stuck = dataclasses.replace(waiting, unsettled_since_ms=NOW - 120_000, taskmanagers=0)
    failed = fl.decide(stuck, CLUSTER)
    assert failed.action is Action.FAIL, "cancelling cannot help while no TaskManager is registered"
    assert "TaskManager pods" in failed.reason


def test_an_intervention_restarts_the_wait() -> None:
    """Flink gets the whole wait again after the local TaskManager was started (it restarts from there)."""
    obs = observed(all_tasks_running=False, unsettled_since_ms=NOW - 200_000, recovered_at_ms=NOW - 20_000)
    assert fl.decide(obs, LOCAL).action is Action.WAIT


@pytest.mark.parametrize("service", ["flink-taskmanager", "flink-jobmanager"])
def test_a_dead_local_service_is_started_first(service: str) -> None:
    # The JobManager still reports the tasks as RUNNING until the dead TaskManager's heartbeat times out.
    obs = observed(services_down=(service,))
    decision = fl.decide(obs, LOCAL)
    assert decision.action is Action.RESTART_SERVICES
    assert decision.services == (service,)


def test_on_a_cluster_services_are_left_to_kubernetes() -> None:
    assert fl.decide(observed(services_down=("flink-taskmanager",)), CLUSTER).action is Action.NONE
    unreachable = fl.decide(observed(rest_reachable=False, state=None), CLUSTER)
    assert unreachable.action is Action.FAIL
    assert "Deployment" in unreachable.reason


def test_after_an_intervention_a_new_checkpoint_proves_the_job_runs() -> None:
    recovered = NOW - 10_000
    stale = observed(recovered_at_ms=recovered, last_checkpoint_ms=recovered - 1)
    assert fl.decide(stale, LOCAL).action is Action.WAIT, "tasks may be RUNNING on a dead TaskManager"
    assert fl.decide(dataclasses.replace(stale, last_checkpoint_ms=recovered + 500), LOCAL).action is Action.NONE
    never = dataclasses.replace(stale, recovered_at_ms=NOW - 181_000, last_checkpoint_ms=None)
    assert fl.decide(never, LOCAL).action is Action.FAIL


def test_a_running_job_whose_checkpoints_stopped_is_suspect() -> None:
    """Right after a TaskManager is lost the JobManager still shows its tasks RUNNING; checkpoints stop."""
    interval = 1_000  # overdue after 3 intervals + 30 s
    on_time = observed(checkpoint_interval_ms=interval, last_checkpoint_ms=NOW - 32_000)
    assert fl.checkpoint_overdue_s(on_time) is None and fl.settled(on_time)
    assert fl.decide(on_time, CLUSTER).action is Action.NONE
    late = dataclasses.replace(on_time, last_checkpoint_ms=NOW - 43_000)
    assert fl.checkpoint_overdue_s(late) == pytest.approx(10.0) and not fl.settled(late)
    decision = fl.decide(dataclasses.replace(late, unsettled_since_ms=NOW), CLUSTER)
    assert decision.action is Action.WAIT
    assert "last checkpoint 43 s ago (interval 1 s)" in decision.reason
    gave_up = fl.decide(dataclasses.replace(late, unsettled_since_ms=NOW - 181_000), CLUSTER)
    assert gave_up.action is Action.FAIL
    never = observed(checkpoint_interval_ms=interval, last_checkpoint_ms=None, started_ms=NOW - 60_000)
    assert "no checkpoint since the start" in fl.decide(never, CLUSTER).reason
    young = dataclasses.replace(never, started_ms=NOW - 5_000)
    assert fl.decide(young, CLUSTER).action is Action.NONE, "a new job gets time for its first checkpoint"


def test_settled_states() -> None:
    assert fl.settled(observed(state=None)) and fl.settled(observed(state="FAILED"))
    assert not fl.settled(observed(state="RESTARTING", all_tasks_running=False))
    assert not fl.settled(observed(all_tasks_running=False))


def test_policy_follows_the_environment() -> None:
    assert Policy.for_config(load({"HDP_ENV": "local"})).manage_local_services
    assert Policy.for_config(load({"HDP_ENV": "ci"})).manage_local_services
    assert not Policy.for_config(load({"HDP_ENV": "cluster"})).manage_local_services
    assert Policy.for_config(load({"HDP_ENV": "local"}), max_wait_s=5).max_wait_s == 5


def test_unknown_job_is_refused() -> None:
    with pytest.raises(fl.LifecycleError, match="unknown job"):
        fl.ensure_running(load({}), "nope")


THRESHOLDS = HealthThresholds(max_checkpoint_age_s=60, max_consumer_lag=1000, max_alert_p99_ms=5000)


def healthy_metrics(**fields: object) -> HealthMetrics:
    base = HealthMetrics(
        "fraud_scoring",
        "RUNNING",
        all_tasks_running=True,
        checkpoint_age_s=3,
        has_checkpoint=True,
        consumer_lag=10,
        alert_p99_ms=800,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_health_thresholds() -> None:
    assert fl.assess(healthy_metrics(), THRESHOLDS) == []
    assert fl.assess(healthy_metrics(checkpoint_age_s=61), THRESHOLDS) == [
        "last completed checkpoint 61 s ago (> 60 s)"
    ]
    assert (
        "no checkpoint completed since the start"
        in fl.assess(healthy_metrics(checkpoint_age_s=90, has_checkpoint=False), THRESHOLDS)[0]
    )
    assert fl.assess(healthy_metrics(consumer_lag=1001), THRESHOLDS) == ["consumer lag 1,001 records (> 1,000)"]
    assert fl.assess(healthy_metrics(alert_p99_ms=5001), THRESHOLDS) == ["alert latency p99 5,001 ms (> 5,000 ms)"]
    assert fl.assess(healthy_metrics(all_tasks_running=False), THRESHOLDS) == ["state RUNNING, tasks not all running"]
    assert fl.assess(healthy_metrics(state=None, checkpoint_age_s=None), THRESHOLDS) == ["state not running"]


def test_unmeasured_checks_are_not_problems() -> None:
    """No traffic (no latency sample) or no committed offsets yet: noted by health(), not judged."""
    assert fl.assess(healthy_metrics(alert_p99_ms=None, consumer_lag=None), THRESHOLDS) == []


def test_results_are_json_ready_for_xcom() -> None:
    import json

    result = fl.EnsureResult("lake_ingest", "abc", "RUNNING", ("restart_services",), ({"at_s": 0.0},), None, 31.5, NOW)
    assert json.loads(json.dumps(result.to_dict()))["changed"] is True
    assert "restart_services" in result.summary()
    report = fl.HealthReport("lake_ingest", True, (), healthy_metrics(job="lake_ingest"), "abc", {"transactions": 3})
    assert json.loads(json.dumps(report.to_dict()))["metrics"]["consumer_lag"] == 10
    assert report.summary().startswith("lake_ingest: healthy")


def _argparse_options(script: Path) -> dict[str, object]:
    """``--option`` -> its ``type`` name or ``choices`` tuple, read from the job's own ``add_argument`` calls."""
    import ast

    found: dict[str, object] = {}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            option = ast.literal_eval(node.args[0])
            keywords = {k.arg: k.value for k in node.keywords}
            if "choices" in keywords:
                found[option] = tuple(ast.literal_eval(keywords["choices"]))
            else:
                found[option] = getattr(keywords.get("type"), "id", "str")
    return found


@pytest.mark.parametrize("job", list(flink_ops.JOBS))
def test_the_declared_job_options_are_the_jobs_own(job: str) -> None:
    declared = {o: k if isinstance(k, tuple) else k.__name__ for o, k in flink_ops.JOB_OPTIONS[job].items()}
    assert declared == _argparse_options(flink_ops.JOBS[job])


def test_job_arguments_are_checked_before_anything_stops() -> None:
    flink_ops.check_job_args("lake_ingest", ["--checkpoint-interval-ms", "2000", "--start-from=latest-offset"])
    flink_ops.check_job_args("fraud_scoring", ["--alert-threshold", "0.8", "--model-registry", "/tmp/m"])
    for args, message in [
        (["--checkpoint-interval-ms"], "pairs"),
        (["--checkpoint-intervall-ms", "1"], "unknown option '--checkpoint-intervall-ms'"),
        (["--checkpoint-interval-ms", "1s"], "takes int, not '1s'"),
        (["--start-from", "earliest"], "takes one of group-offsets, latest-offset"),
        (["--alert-threshold", "0.5"], "unknown option"),
    ]:
        with pytest.raises(flink_ops.FlinkOpsError, match=message):
            flink_ops.check_job_args("lake_ingest", args)
