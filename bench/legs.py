"""The legs a profile can run, in the order they run, and the small ones that need no module of their own."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import batch as batch_leg
from bench import streaming
from bench.measure import Context, summarize, summarize_dag_parse

from hybrid_platform import airflow_client, config, runtime

DAG_IDS = ("flink_jobs", "fraud_model_training", "lakehouse_daily", "lakehouse_maintenance")


def footprint(ctx: Context) -> dict[str, Any]:
    """Resident memory of every service, idle: the whole runtime up, nothing submitted."""
    ctx.services("kafka", "flink", "spark", "airflow")
    time.sleep(6)  # let start-up settle (Airflow's first DAG parse, JIT) before sampling
    samples = []
    for _ in range(3):
        samples.append({s.name: s.rss_bytes for s in runtime.status(ctx.cfg) if s.pid})
        time.sleep(1)
    services = sorted(samples[0])
    idle_mb = {name: round(summarize([s.get(name, 0) for s in samples])["median"] / 2**20) for name in services}
    result: dict[str, Any] = {"idle_rss_mb": idle_mb, "idle_total_mb": sum(idle_mb.values())}
    if ctx.profile.measure_demo:
        ctx.services()  # the demo gets the machine to itself, not beside the bench's idle runtime
        result["demo"] = demo_wall_time(ctx)
    return result


def demo_wall_time(ctx: Context) -> dict[str, Any]:
    """`make demo` wall time from a fresh clone: with the caches warm, and with the jar and uv caches empty."""
    import shutil
    import tempfile

    timings: dict[str, Any] = {}
    for label, empty_cache in (("warm_cache", False), ("empty_cache", True)):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            clone = f"{tmp}/clone"
            subprocess.run(["git", "clone", "-q", str(config.REPO_ROOT), clone], check=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("HDP_")}
            # Own state and free ports, so neither the bench's runtime nor a user's `make demo` is touched.
            env.update(runtime.private_env(Path(tmp) / "platform"))
            if empty_cache:
                env["HDP_JAR_CACHE"] = f"{tmp}/jars"
                env["UV_CACHE_DIR"] = f"{tmp}/uv-cache"
            started = time.monotonic()
            done = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, check=False)
            timings[label] = {"wall_s": round(time.monotonic() - started, 1), "exit_code": done.returncode}
            if done.returncode:
                timings[label]["error"] = (done.stderr or done.stdout)[-600:]
            subprocess.run(["make", "down"], cwd=clone, env=env, capture_output=True, check=False)
            shutil.rmtree(clone, ignore_errors=True)
    return timings


def _parse(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def scheduling_latencies(
    task_instances: list[dict[str, Any]], tasks: list[dict[str, Any]], run: dict[str, Any]
) -> dict[str, Any]:
    """Queued -> running per task, the gap between a task's upstreams ending and it starting, Airflow's share.

    Airflow's share is the part of the run's wall time in which no task of it was executing.
    """
    upstream: dict[str, list[str]] = {}
    for task in tasks:
        for downstream in task.get("downstream_task_ids", []):
            upstream.setdefault(downstream, []).append(task["task_id"])
    times = {
        ti["task_id"]: (_parse(ti.get("queued_when")), _parse(ti.get("start_date")), _parse(ti.get("end_date")))
        for ti in task_instances
        if ti.get("start_date") and ti.get("end_date")
    }
    queued_to_running = [start - queued for queued, start, _ in times.values() if queued and start]
    gaps = []
    for task_id, (_, start, _) in times.items():
        ends = [times[u][2] for u in upstream.get(task_id, []) if u in times]
        if ends and start:
            gaps.append(start - max(e for e in ends if e))
    intervals = sorted((s, e) for _, s, e in times.values() if s and e)
    busy, current_start, current_end = 0.0, None, None
    for start, end in intervals:
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                busy += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        busy += current_end - current_start
    run_start, run_end = _parse(run.get("start_date")), _parse(run.get("end_date"))
    wall = (run_end - run_start) if run_start and run_end else None
    return {
        "tasks": len(times),
        "queued_to_running_s": summarize(queued_to_running),
        "gap_between_tasks_s": summarize(gaps),
        "run_wall_s": round(wall, 1) if wall else None,
        "tasks_busy_s": round(busy, 1),
        "airflow_share": round(1 - busy / wall, 3) if wall else None,
    }


def orchestration(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    # From here on, every leg takes one DAG parse sample once its services are up (Context.services); the
    # harness keeps parse_s up to date with all of them.
    ctx.dag_parse_samples = []
    ctx.services("kafka", "flink", "spark", "airflow")  # spark: the Spark Connect server dbt's tasks use
    result: dict[str, Any] = {"parse_s": summarize_dag_parse(ctx.dag_parse_samples)}

    client = airflow_client.AirflowClient.for_platform(ctx.cfg)
    client.wait_for_dags(list(DAG_IDS))
    if p.orchestration_full_dag:
        day = "2026-08-10"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "spark_jobs.seed_day",
                "--date",
                day,
                "--transactions",
                str(p.orchestration_day_transactions),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"seeding {day} failed: {done.stderr[-400:]}")
        dag_id, conf = "lakehouse_daily", {"date": day}
    else:
        # Quick profile: a light DAG (Spark maintenance on the catalog) gives the scheduler's latencies in
        # a minute; lakehouse_daily end to end (Spark, ten dbt tasks) takes many and runs in the full profile.
        dag_id, conf = "lakehouse_maintenance", {}
    # This run takes the schedule's due tick (trigger_and_unpause), so unpausing starts no run ahead of it:
    # with a logical date of its own, the scheduler ran the due tick first (it sorts earlier), and a scheduled
    # lakehouse_daily for a day without currency rates failed twice before the bench's run could start.
    # The bench's runtime persists between runs: when an earlier run already took that tick (HTTP 409), no
    # tick is due and a logical date of its own (now) is free.
    triggered_at = time.time()
    try:
        run_id = client.trigger_and_unpause(dag_id, conf)
    except airflow_client.AirflowError as error:
        if "HTTP 409" not in str(error):
            raise
        run_id = client.trigger(dag_id, conf, logical_date=datetime.now(UTC).isoformat())
        client.unpause(dag_id)
    state = client.wait(dag_id, run_id, timeout_s=3600, poll_s=2)
    client._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
    # Evidence that the bench's run had the DAG to itself: any other run started since the trigger.
    result["other_runs_started"] = [
        run["dag_run_id"]
        for run in client.dag_runs(dag_id)
        if run["dag_run_id"] != run_id and (_parse(run.get("start_date")) or 0) >= triggered_at
    ]
    result["dag_run"] = {
        "dag_id": dag_id,
        "state": state,
        **scheduling_latencies(
            client.task_instances(dag_id, run_id), client.tasks(dag_id), client.dag_run(dag_id, run_id)
        ),
    }
    return result


#: Fits per scikit-learn process after its warm-up fit; the process's median is one repeat.
SKLEARN_FITS = 3


def ml(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    ctx.services()  # nothing else running

    def run(*args: str) -> dict[str, Any]:
        return batch_leg.run_module("bench.ml_spark", *args)

    with tempfile.TemporaryDirectory(prefix="bench-ml-") as data:
        # scikit-learn starts once the Spark process and its JVM are gone. One repeat is one process (as in the
        # batch leg): three fits in one process agreed within a few percent while two runs' medians differed by
        # 15-30%, so a repeat has to include whatever changes from one process to the next.
        # MLlib's fits share one Spark process: a session per repeat would add ~40 s to the quick profile, and
        # its fits already vary by 20-30% within the process, which its interval shows.
        outcome = run(
            "spark",
            "--data",
            data,
            "--rows",
            str(p.ml_rows),
            "--seed",
            str(p.seed),
            "--repeats",
            str(p.repeats),
            "--warm-up-fits",
            str(p.mllib_warm_up_fits),
        )
        processes = [
            run("sklearn", "--data", data, "--repeats", str(SKLEARN_FITS))["sklearn"] for _ in range(p.repeats)
        ]
    outcome["sklearn"] = {
        **processes[0],
        "first_fit_s": [process["first_fit_s"] for process in processes],
        "fit_s": [statistics.median(process["fit_s"]) for process in processes],
        "fits_by_process": [process["fit_s"] for process in processes],
    }
    for engine in ("mllib", "sklearn"):
        outcome[engine]["fit_s_summary"] = summarize(outcome[engine]["fit_s"])
    mllib_fit = outcome["mllib"]["fit_s_summary"]["median"]
    sk_fit = outcome["sklearn"]["fit_s_summary"]["median"]
    outcome["fit_time_ratio_mllib_over_sklearn"] = round(mllib_fit / sk_fit, 2) if sk_fit else None
    return outcome


LEGS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "footprint": footprint,
    "orchestration": orchestration,
    "kafka_floor": streaming.kafka_floor,
    "flink_streaming": streaming.flink_streaming,
    "spark_streaming": streaming.spark_streaming,
    "batch": batch_leg.batch,
    "ml": ml,
}
