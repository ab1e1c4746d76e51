"""
### flink_jobs

Keeps the long-lived Flink jobs `fraud_scoring` and `lake_ingest` alive, every 5 minutes. The logic lives
in `hybrid_platform.flink_lifecycle`; this file only wires it. Per job (one task group each):

1. **`ensure_running`** — idempotent: nothing when the job runs; while Flink restarts it, waits (bounded)
   for Flink's own restart strategy; when it is gone, FAILED or CANCELED, restores it from its newest
   retained checkpoint or savepoint (exactly once: Kafka offsets, Kafka transactions and Iceberg commits
   all ride on it), fresh only when there is none. On the local runtime a killed JobManager or TaskManager
   is started again first (on a cluster Kubernetes restarts pods). Returns what it did and why.
2. **`health_check`** — job state, age of the last completed checkpoint, Kafka consumer lag of the job's
   group, and for `fraud_scoring` an alert-latency sample; waits up to 3 minutes for a just-restored job
   to catch up, then **fails (red) if still unhealthy**, naming each problem.
3. **`savepoint`** — a savepoint when the newest is older than `flink_savepoint_max_age_h`: a recent,
   portable restore point for upgrades and disasters (older local ones beyond the newest 3 are deleted).

**Trigger with config** (params):
- `action`: `ensure` (default), `upgrade` — a controlled upgrade: stop with a savepoint, start the current
  code from it, verify with a checkpoint (if it fails to start, the error names the savepoint to restore
  from) — or `savepoint` — take one now;
- `jobs`: which jobs (default both);
- `job_args` (upgrade): new job arguments per job, e.g. `{"lake_ingest": ["--checkpoint-interval-ms", "5000"]}`;
  a job not listed keeps the arguments of its last deployment.

**Airflow Variables** (thresholds): `flink_max_checkpoint_age_s` (120), `flink_max_consumer_lag` (100000),
`flink_max_alert_p99_ms` (10000), `flink_savepoint_max_age_h` (6).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, TaskGroup, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from hybrid_platform import flink_ops

JOBS = list(flink_ops.JOBS)
ACTIONS = ["ensure", "upgrade", "savepoint"]
HEALTH_SETTLE = timedelta(minutes=3)


@dag(
    schedule=timedelta(minutes=5),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["flink", "streaming", "operations"],
    params={
        "action": Param("ensure", type="string", enum=ACTIONS, description="ensure | upgrade | savepoint"),
        "jobs": Param(
            JOBS,
            type="array",
            items={"type": "string", "enum": JOBS},
            minItems=1,
            uniqueItems=True,
            description="the Flink jobs to act on",
        ),
        "job_args": Param(
            {},
            type="object",
            description="upgrade only: new job arguments per job; a job not listed keeps its last ones",
            # Known jobs and their known options only; values are checked by type before anything stops.
            properties={
                job: {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^(?!--)|^(" + "|".join(options) + ")(=.*)?$"},
                }
                for job, options in flink_ops.JOB_OPTIONS.items()
            },
            additionalProperties=False,
        ),
    },
)
def flink_jobs() -> None:
    @task.branch
    def choose_action() -> list[str]:
        """ensure_running (actions `ensure`, `savepoint`) or upgrade, for the chosen jobs."""
        params = get_current_context()["params"]
        first = "upgrade" if params["action"] == "upgrade" else "ensure_running"
        return [f"{job}.{first}" for job in params["jobs"]]

    # One XCom per task (the result as a dict), not one per key.
    @task(multiple_outputs=False, execution_timeout=timedelta(minutes=15))
    def ensure_running(job: str) -> dict[str, Any]:
        from hybrid_platform import config, flink_lifecycle

        result = flink_lifecycle.ensure_running(config.load(), job)
        print(result.summary())
        return result.to_dict()

    # No retry: after a failed upgrade the job is stopped and the error names the savepoint; a human decides.
    @task(multiple_outputs=False, retries=0, execution_timeout=timedelta(minutes=15))
    def upgrade(job: str) -> dict[str, Any]:
        from hybrid_platform import config, flink_lifecycle

        args = get_current_context()["params"]["job_args"].get(job)  # None: the last deployment's arguments
        result = flink_lifecycle.upgrade(config.load(), job, args)
        print(f"{job}: upgraded {result.previous_job_id} -> {result.job_id} from savepoint {result.savepoint}")
        return result.to_dict()

    @task(
        multiple_outputs=False,
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        retries=0,  # it already waits for the job to settle; a red task is the signal
        execution_timeout=HEALTH_SETTLE + timedelta(minutes=2),
    )
    def health_check(job: str) -> dict[str, Any]:
        from hybrid_platform import config, flink_lifecycle
        from hybrid_platform.orchestration import variable

        thresholds = flink_lifecycle.HealthThresholds(
            max_checkpoint_age_s=float(variable("flink_max_checkpoint_age_s")),
            max_consumer_lag=int(variable("flink_max_consumer_lag")),
            max_alert_p99_ms=float(variable("flink_max_alert_p99_ms")),
        )
        report = flink_lifecycle.wait_healthy(config.load(), job, thresholds, HEALTH_SETTLE.total_seconds())
        print(report.summary())
        if not report.healthy:
            raise AirflowFailException(report.summary())
        return report.to_dict()

    @task(multiple_outputs=False, execution_timeout=timedelta(minutes=10))
    def savepoint(job: str) -> dict[str, Any]:
        from hybrid_platform import config, flink_lifecycle
        from hybrid_platform.orchestration import variable

        forced = get_current_context()["params"]["action"] == "savepoint"
        max_age_s = 0.0 if forced else float(variable("flink_savepoint_max_age_h")) * 3600
        result = flink_lifecycle.periodic_savepoint(config.load(), job, max_age_s)
        print(f"{job}: {'took ' if result.taken else 'kept '}{result.location} ({result.reason})")
        return result.to_dict()

    route = choose_action()
    for job in JOBS:
        with TaskGroup(group_id=job):
            started = [ensure_running(job), upgrade(job)]
            route >> started
            started >> health_check(job) >> savepoint(job)


flink_jobs()
