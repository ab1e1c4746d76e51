"""Streaming legs: the Kafka floor, Flink's fraud_scoring (and its variants), Spark Structured Streaming.

All three are measured the same way: the platform's generator produces open loop (each record's Kafka
timestamp is its scheduled send time), a probe process reads the results read-committed, and latency is
"result seen here - scheduled send time". The first ``stream_warmup_s`` of each run are excluded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Context, summarize

from hybrid_platform import config, flink_ops, generator, names, runtime
from hybrid_platform.latency import percentile

FLOOR_TOPIC = "bench_floor"
SPARK_ALERTS_TOPIC = "fraud_alerts_spark"
#: After the producer stops, keep reading until no result arrived for this long (a job that fell behind
#: still delivers; its late results count instead of being cut off).
QUIET_S = 3.0
#: Flink emits continuously (every transaction yields a result), so a shorter silence already means done;
#: Spark emits once per micro-batch, seconds apart, and keeps QUIET_S.
FLINK_QUIET_S = 1.5
MAX_DRAIN_S = 90.0
#: Until a job's first result, each warm-up run waits this long at most for one, then sends traffic again.
#: Not MAX_DRAIN_S: traffic sent before the query reads from "latest" (Spark's JVM was still starting) never
#: yields a result, and every Spark leg waited out 90 s of silence before its first real run.
FIRST_RESULT_WAIT_S = 12.0
#: A run whose results took longer than this after its traffic ended left a backlog worth a fresh cluster.
RESTART_AFTER_DRAIN_S = 20.0


def latency_stats(samples: list[list[float]], start_ms: float, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """Percentiles over the samples after the warm-up, plus whether the job kept up with the rate."""
    kept = sorted(s for s in samples if s[0] >= start_ms + warmup_s * 1000)
    latencies = sorted(s[1] for s in kept)
    if not latencies:
        return {"samples": 0}
    # Keeping up: latency at the end of the run is not far above latency at its start. A job below its
    # capacity has flat latency; above it, the backlog (and so the latency) grows for the whole run.
    fifth = max(1, len(kept) // 5)
    first = sorted(s[1] for s in kept[:fifth])
    last = sorted(s[1] for s in kept[-fifth:])
    first_p50, last_p50 = percentile(first, 0.5), percentile(last, 0.5)
    return {
        "samples": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "p999_ms": percentile(latencies, 0.999),
        "max_ms": latencies[-1],
        "first_fifth_p50_ms": first_p50,
        "last_fifth_p50_ms": last_p50,
        # ...and alerts arrived for records produced near the end (a job far behind has none by then).
        "kept_up": last_p50 <= max(2 * first_p50, first_p50 + 500) and kept[-1][0] >= start_ms + 800 * duration_s,
        "latencies_ms": [round(v, 1) for v in latencies],
    }


def _probe(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.probe", *args]


def _wait_ready(ready: Path, probe: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if probe.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the latency probe did not start reading")
        time.sleep(0.05)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}


# --------------------------------------------------------------------------------------------------
# Kafka floor


def kafka_floor(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    ctx.services("kafka")
    generator.ensure_topics(ctx.cfg, [FLOOR_TOPIC], partitions=2)
    results: dict[str, Any] = {"rate": p.floor_rate, "record_bytes": p.floor_record_bytes, "by_linger_ms": {}}
    for linger in p.floor_linger_ms:
        runs = []
        for _ in range(p.floor_repeats or p.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "floor.json"
                ready = Path(tmp) / "ready"
                start_ms = int(time.time() * 1000)
                consumer = subprocess.Popen(
                    _probe(
                        "floor-consume",
                        "--topic",
                        FLOOR_TOPIC,
                        "--start-ms",
                        str(start_ms),
                        # From when it is assigned: the producer's schedule, its connection, and a moment
                        # for the last records (end to end they take milliseconds).
                        "--duration",
                        str(p.floor_duration_s + 1.0),
                        "--out",
                        str(out),
                        "--ready-file",
                        str(ready),
                    )
                )
                _wait_ready(ready, consumer)
                produced = subprocess.run(
                    _probe(
                        "floor-produce",
                        "--topic",
                        FLOOR_TOPIC,
                        "--rate",
                        str(p.floor_rate),
                        "--duration",
                        str(p.floor_duration_s),
                        "--bytes",
                        str(p.floor_record_bytes),
                        "--linger-ms",
                        str(linger),
                    ),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                consumer.wait(timeout=p.floor_duration_s + 60)
                samples = _read_json(out).get("samples", [])
                stats = latency_stats(samples, start_ms, min(1.0, p.floor_duration_s / 4), p.floor_duration_s)
                stats["produced"] = json.loads(produced.stdout.strip().splitlines()[-1])
                stats.pop("latencies_ms", None)
                runs.append(stats)
        results["by_linger_ms"][str(linger)] = {
            "runs": runs,
            **{k: summarize([r.get(k) for r in runs]) for k in ("p50_ms", "p99_ms", "p999_ms")},
        }
    return results


# --------------------------------------------------------------------------------------------------
# One measured run against whatever job is deployed


def measured_run(
    ctx: Context,
    rate: int,
    seed: int,
    alerts_topic: str,
    duration_s: float | None = None,
    quiet_s: float = QUIET_S,
    max_wait_s: float = MAX_DRAIN_S,
) -> dict[str, Any]:
    """One open-loop run at ``rate``; after its traffic the probe reads until the results go quiet, at most
    ``max_wait_s`` (a job that fell behind is waited for)."""
    p = ctx.profile
    duration = duration_s or p.stream_duration_s
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "alerts.json"
        start_ms = int(time.time() * 1000)
        probe = subprocess.Popen(
            _probe(
                "alerts",
                "--alerts-topic",
                alerts_topic,
                "--start-ms",
                str(start_ms),
                "--duration",
                str(duration + max_wait_s),
                "--out",
                str(out),
                "--quiet-s",
                str(quiet_s),
                "--min-duration",
                str(duration + quiet_s),
                # Alert threshold 0: every transaction yields an alert, so the probe knows when a run's are in
                # (at most the last watermark delay's worth wait for the next event: 90% is "most").
                "--expect-fraction",
                "0.9" if p.alert_threshold <= 0 else "0",
            )
        )
        report = generator.produce(ctx.cfg, rate=rate, duration_s=duration, seed=seed)
        probe.wait(timeout=duration + max_wait_s + 60)
        probed = _read_json(out)
    stats = latency_stats(probed.get("samples", []), start_ms, p.stream_warmup_s, duration)
    # Results arrive when the engine emits them (Spark: a burst per micro-batch): the longest wait between two.
    stats["max_result_gap_s"] = probed.get("max_alert_gap_s")
    written = latency_stats(probed.get("samples_written", []), start_ms, p.stream_warmup_s, duration)
    # Written = seen by a read-uncommitted consumer: the engine's own latency, before delivery is committed.
    stats.update({f"written_{k}": written.get(k) for k in ("p50_ms", "p99_ms")})
    stats.update(
        rate=rate,
        produced=report.counts.get("valid", 0),
        producer_max_behind_ms=report.max_behind_schedule_ms,
        achieved_rate=report.achieved_rate,
        alerts_seen=probed.get("alerts_seen", 0),
        transactions_seen=probed.get("transactions_seen", 0),
        drain_s=probed.get("drain_s"),
    )
    return stats


#: A warm-up run this much faster (p50) than the one before means the engine is still speeding up.
STILL_SPEEDING_UP = 0.9


def _warm_up(
    ctx: Context, alerts_topic: str, rate: int, quiet_s: float = QUIET_S, duration_s: float = 4.0, max_runs: int = 6
) -> dict[str, Any]:
    """Traffic until the first result appears (the job is deployed and caught up), then runs, not measured,
    until the engine stops speeding up: a run whose p50 is not more than 10% below the one before it (at
    least two, at most ``max_runs``). How long a JIT takes depends on the host: on one 2-core VM Flink's first
    measured run was a few percent slower than the rest, on a slower one its p50 at 150/s went 858, 563,
    488, 469 and 444 ms over its first five runs.
    Returns the seconds until the first result (for Spark, most of it the query starting), the runs' p50s and
    p99s (ms), whether it ended steady, and the quiet time later runs should wait for results
    (``result_quiet_s``)."""
    started = time.monotonic()
    while True:
        run = measured_run(
            ctx,
            rate,
            seed=1,
            alerts_topic=alerts_topic,
            duration_s=3.0,
            quiet_s=quiet_s,
            max_wait_s=FIRST_RESULT_WAIT_S,
        )
        if run.get("samples", 0) > 0 or run.get("alerts_seen", 0) > 0:
            break
        if time.monotonic() - started > 240:
            raise RuntimeError(f"no result on {alerts_topic} after 4 minutes of warm-up traffic")
    first_result_s = round(time.monotonic() - started, 1)
    p50s: list[float | None] = []
    p99s: list[float | None] = []
    steady = False
    waits = quiet_s
    for i in range(max_runs):
        run = measured_run(ctx, rate, 2 + i, alerts_topic, duration_s=duration_s, quiet_s=waits)
        waits = result_quiet_s(run, at_least=quiet_s)  # the next run waits out the micro-batches seen in this one
        p50s.append(run.get("p50_ms"))
        p99s.append(run.get("p99_ms"))
        previous, latest = (p50s[-2], p50s[-1]) if len(p50s) > 1 else (None, None)
        if previous and latest and latest >= STILL_SPEEDING_UP * previous:
            steady = True
            break
    return {"first_result_s": first_result_s, "p50_ms": p50s, "p99_ms": p99s, "steady": steady, "quiet_s": waits}


def result_quiet_s(run: dict[str, Any], at_least: float) -> float:
    """How long a run waits, after its traffic, for no result to arrive before it ends: ``at_least``, or twice
    the longest gap between two results in ``run`` when that is longer. Spark emits once per micro-batch; on
    a slow host its results came up to 3.5 s apart, longer than QUIET_S, and runs ended between two batches:
    some read no result at all, others were taken for falling behind."""
    gap = run.get("max_result_gap_s") or 0.0
    return max(at_least, round(2 * gap, 1))


def left_a_backlog(runs: list[dict[str, Any]]) -> bool:
    """Whether a run fell behind and then drained for longer than RESTART_AFTER_DRAIN_S, or never delivered
    (a job that failed under the load). Not a run that fell a few seconds behind (2,000/s on a slow host):
    restarting for that would make the variants' conditions depend on which side of the line one run landed."""
    for run in runs:
        if run.get("kept_up"):
            continue
        drain_s = run.get("drain_s")
        if drain_s is None or drain_s > RESTART_AFTER_DRAIN_S:
            return True
    return False


def cdf_points(sorted_values: list[float], points: int = 500) -> list[float]:
    """At most ``points`` evenly spaced quantiles of an ascending list, always including its min and max."""
    if len(sorted_values) <= points:
        return sorted_values
    last = len(sorted_values) - 1
    return [sorted_values[round(i * last / (points - 1))] for i in range(points)]


def _summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": [{k: v for k, v in r.items() if k != "latencies_ms"} for r in runs],
        **{
            k: summarize([r.get(k) for r in runs if r.get("samples")])
            for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms", "written_p50_ms", "written_p99_ms")
        },
        "kept_up": all(r.get("kept_up", False) for r in runs),
        # The CDF of every post-warm-up latency of every repeat, for the plot: 500 quantiles are enough to
        # draw it, and keep results.json small (every sample of a full run would be megabytes).
        "latencies_ms": cdf_points(sorted(v for r in runs for v in r.get("latencies_ms", []))),
    }


# --------------------------------------------------------------------------------------------------
# Flink


FLINK_SQL_JOB = config.REPO_ROOT / "flink_jobs" / "fraud_scoring_sql.py"


def _python_mode_in_use(ctx: Context) -> str:
    """Which Python execution mode actually ran: process mode starts a Beam worker beside the TaskManager."""
    state = runtime.running(ctx.cfg, "flink-taskmanager")
    if state is None:
        return "unknown"
    for pid in runtime.session_members(state.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "pyflink" in cmdline and ("beam" in cmdline or "fn_execution" in cmdline):
            return "process"
    return "thread"


#: fraud_scoring's ``configure`` prints its job-level settings after this prefix (``flink_jobs`` needs pyflink,
#: which this environment does not have, so the prefix is repeated here; a unit test keeps the two equal).
JOB_SETTINGS_PREFIX = "job settings: "


def _printed_settings(client_output: str) -> dict[str, str]:
    for line in client_output.splitlines():
        if line.startswith(JOB_SETTINGS_PREFIX):
            printed: dict[str, str] = json.loads(line.removeprefix(JOB_SETTINGS_PREFIX))
            return printed
    return {}


def _job_settings(ctx: Context, job_id: str, client_output: str = "") -> dict[str, str]:
    """The settings the running job actually has, for the ones that decide latency: the cluster's (REST), the
    checkpointing the JobManager applies (REST), and the job-level ones the job printed when submitted."""
    interesting = (
        "python.execution-mode",
        "python.fn-execution.bundle.size",
        "python.fn-execution.bundle.time",
        "execution.buffer-timeout.interval",
        "execution.checkpointing.interval",
        "execution.checkpointing.mode",
        "state.backend.type",
        "state.changelog.enabled",
        "parallelism.default",
        "pipeline.auto-watermark-interval",
    )
    settings: dict[str, str] = {}
    try:
        entries = flink_ops._request(ctx.cfg, "GET", f"/jobs/{job_id}/jobmanager/config")
        for entry in entries or []:
            if entry.get("key") in interesting:
                settings[entry["key"]] = entry.get("value")
        applied = flink_ops._request(ctx.cfg, "GET", f"/jobs/{job_id}/checkpoints/config") or {}
        for key in ("mode", "interval", "state_backend", "state_changelog_enabled", "changelog_storage"):
            if key in applied:
                settings[f"checkpoints/config {key}"] = str(applied[key])
    except Exception as error:  # recorded, not fatal: the numbers stand without it
        settings["error"] = str(error)
    settings.update({k: v for k, v in _printed_settings(client_output).items() if k in interesting})
    return settings


def _stop_all(ctx: Context) -> dict[str, str]:
    """Stop every running job with a savepoint, so no exactly-once sink leaves an open Kafka transaction behind
    (``flink_ops.stop_job_id``: a cancelled fraud_scoring hid every later alert from read-committed readers
    of fraud_alerts, the probe among them, and the SQL variant, with a transactional-id prefix of its own,
    then got no result in four minutes). A job whose savepoint fails is cancelled; returns how each ended."""
    # Keyed "job <id>", not the bare id: a 32-digit hex key reads as a secret to the CI's secret scan.
    ended = {}
    for job in flink_ops.jobs(ctx.cfg):
        if job.state not in {"RUNNING", "CREATED", "RESTARTING", "INITIALIZING"}:
            continue
        try:
            flink_ops.stop_job_id(ctx.cfg, job.job_id, timeout_s=120)
            ended[f"job {job.job_id}"] = "stopped with a savepoint"
        except Exception as error:  # a cancel leaves the transaction open: recorded, so a result can say so
            flink_ops._request(ctx.cfg, "PATCH", f"/jobs/{job.job_id}?mode=cancel")
            ended[f"job {job.job_id}"] = f"cancelled, savepoint failed: {error}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        j.state not in {"CANCELED", "FAILED", "FINISHED"} for j in flink_ops.jobs(ctx.cfg)
    ):
        time.sleep(0.5)
    return ended


def _variant_arguments(variant: str) -> list[str]:
    """Job arguments beyond the defaults. ``tight``: the production job with its two latency knobs turned down,
    a commit every 100 ms instead of 300 and 50 ms of out-of-orderness instead of 200 (more late events,
    more checkpoint work)."""
    return ["--checkpoint-interval-ms", "100", "--watermark-delay-ms", "50"] if variant == "tight" else []


def _deploy_variant(ctx: Context, variant: str) -> tuple[str, str]:
    """Start one fraud_scoring variant on fresh state, reading only new records; returns its job id and the
    client's output."""
    _stop_all(ctx)
    generator.ensure_topics(ctx.cfg, names.ALL_TOPICS)
    env_overrides = {
        "thread": {"HDP_FLINK_PYTHON_MODE": "thread", "HDP_FLINK_STATE_BACKEND": "hashmap"},
        "process": {"HDP_FLINK_PYTHON_MODE": "process", "HDP_FLINK_STATE_BACKEND": "hashmap"},
        "rocksdb": {"HDP_FLINK_PYTHON_MODE": "thread", "HDP_FLINK_STATE_BACKEND": "rocksdb"},
        "sql": {"HDP_FLINK_PYTHON_MODE": "thread", "HDP_FLINK_STATE_BACKEND": "hashmap"},
        "tight": {"HDP_FLINK_PYTHON_MODE": "thread", "HDP_FLINK_STATE_BACKEND": "hashmap"},
        "p2": {"HDP_FLINK_PYTHON_MODE": "thread", "HDP_FLINK_STATE_BACKEND": "hashmap"},
    }[variant]
    knobs = _variant_arguments(variant)
    saved = {k: os.environ.get(k) for k in env_overrides}
    os.environ.update(env_overrides)
    try:
        script = FLINK_SQL_JOB if variant == "sql" else flink_ops.JOBS[names.JOB_FRAUD_SCORING]
        result = runtime.flink_run(
            ctx.cfg,
            script,
            ["--start-from", "latest-offset", "--alert-threshold", str(ctx.profile.alert_threshold), *knobs],
            detached=True,
            # p2: the production job on both cores (one subtask per Kafka partition) instead of one.
            extra_options=["-p", "2"] if variant == "p2" else None,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    job_id = flink_ops._job_id_from_output(result.stdout + result.stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = next((j for j in flink_ops.jobs(ctx.cfg) if j.job_id == job_id), None)
        if info and info.state == "RUNNING":
            return job_id, result.stdout
        if info and info.state in {"FAILED", "CANCELED"}:
            raise RuntimeError(f"{variant}: {flink_ops.root_cause(ctx.cfg, job_id)}")
        time.sleep(0.5)
    raise RuntimeError(f"{variant} is not RUNNING after 120 s")


def _rss_mb(ctx: Context) -> dict[str, float]:
    return {s.name: round(s.rss_bytes / 2**20) for s in runtime.status(ctx.cfg) if s.pid}


def flink_streaming(ctx: Context) -> dict[str, Any]:
    ctx.services("kafka", "flink")
    results: dict[str, Any] = {"by_rate": {}, "variants": {}, "sustain": {}}
    try:
        _flink_streaming(ctx, results)
    finally:
        # Also when a run failed: the next leg stops the cluster, and a job still running leaves its Kafka
        # transaction open for every later reader of its topic.
        results["stopped_at_end"] = _stop_all(ctx)
    return results


def _flink_streaming(ctx: Context, results: dict[str, Any]) -> None:
    p = ctx.profile
    seed = p.seed
    job_id, client_output = _deploy_variant(ctx, "thread")
    results["settings"] = _job_settings(ctx, job_id, client_output)
    results["warm_up"] = _warm_up(ctx, names.TOPIC_FRAUD_ALERTS, p.variant_rate, FLINK_QUIET_S)
    # After the warm-up: a process-mode Python worker starts with the first bundle, not at deployment.
    results["python_mode_in_use"] = _python_mode_in_use(ctx)
    # Repeats interleave the rates (300, 1000, 2000, 300, ...): a rate's repeats span the whole leg, so its
    # spread includes the machine's drift over minutes instead of three runs back to back.
    runs_by_rate: dict[int, list[dict[str, Any]]] = {rate: [] for rate in p.stream_rates}
    for _ in range(p.repeats):
        for rate in p.stream_rates:
            seed += 1
            runs_by_rate[rate].append(measured_run(ctx, rate, seed, names.TOPIC_FRAUD_ALERTS, quiet_s=FLINK_QUIET_S))
            if rate == max(p.stream_rates):
                results.setdefault("rss_mb_under_load", _rss_mb(ctx))
    for rate, runs in runs_by_rate.items():
        results["by_rate"][str(rate)] = _summarize_runs(runs)
        ctx.echo(f"   flink {rate}/s: p99 {results['by_rate'][str(rate)]['p99_ms']['median']} ms")
    for rate in p.sustain_rates:
        seed += 1
        run = measured_run(ctx, rate, seed, names.TOPIC_FRAUD_ALERTS, quiet_s=FLINK_QUIET_S)
        results["sustain"][str(rate)] = {k: v for k, v in run.items() if k != "latencies_ms"}
    tested = {int(r): v["kept_up"] for r, v in results["by_rate"].items()}
    tested.update({int(r): v.get("kept_up", False) for r, v in results["sustain"].items()})
    kept = [rate for rate, ok in sorted(tested.items()) if ok]
    results["max_sustained_rate"] = max(kept) if kept else None
    results["max_rate_tested"] = max(tested) if tested else None
    runs = [run for by_rate in results["by_rate"].values() for run in by_rate["runs"]]
    if left_a_backlog([*runs, *results["sustain"].values()]):
        # A rate far above capacity fills the TaskManager's heap with a growing backlog of per-card windows (the
        # full profile's 7,500/s ran a 3 GB TaskManager out of heap): the variants start on a fresh cluster.
        ctx.echo("   a rate left a backlog: restarting Flink before the variants")
        # Stopped with a savepoint first: a cluster stopped under a running job leaves its Kafka transaction open.
        results["stopped_before_restart"] = _stop_all(ctx)
        runtime.down(ctx.cfg, echo=lambda _line: None, only=["flink"])
        runtime.up(ctx.cfg, only=["flink"], echo=lambda _line: None)
        results["flink_restarted_before_variants"] = True
    for variant in p.flink_variants:
        if variant == "thread":
            results["variants"]["thread"] = {
                **results["by_rate"].get(str(p.variant_rate), {}),
                "settings": results["settings"],
                "python_mode_in_use": results["python_mode_in_use"],
            }
            continue
        job_id, client_output = _deploy_variant(ctx, variant)
        settings = _job_settings(ctx, job_id, client_output)
        if _variant_arguments(variant):
            settings["job arguments"] = " ".join(_variant_arguments(variant))
        warm_up = _warm_up(ctx, names.TOPIC_FRAUD_ALERTS, p.variant_rate, FLINK_QUIET_S)
        mode = "none (no Python UDF)" if variant == "sql" else _python_mode_in_use(ctx)
        runs = []
        for _ in range(p.repeats):
            seed += 1
            runs.append(measured_run(ctx, p.variant_rate, seed, names.TOPIC_FRAUD_ALERTS, quiet_s=FLINK_QUIET_S))
        results["variants"][variant] = {
            **_summarize_runs(runs),
            "settings": settings,
            "python_mode_in_use": mode,
            "warm_up": warm_up,
        }
        ctx.echo(f"   flink variant {variant}: p99 {results['variants'][variant]['p99_ms']['median']} ms")


# --------------------------------------------------------------------------------------------------
# Spark Structured Streaming (same stream, same logic: spark_jobs.streaming_scoring)


#: What spark_jobs.streaming_scoring prints its lines after (that module needs pyspark to import).
SPARK_JOB_NAME = "streaming_scoring"


def _wait_for_line(log: Path, prefix: str, job: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    """Until the job's log has a line starting with ``prefix``: traffic sent while its JVM is still starting
    precedes the offsets the query starts from ("latest") and never yields a result."""
    deadline = time.monotonic() + timeout_s
    while not any(line.startswith(prefix) for line in log.read_text(errors="replace").splitlines()):
        if job.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Spark job did not start its query (exit code {job.poll()}):\n{tail}")
        time.sleep(0.5)


def spark_streaming(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    ctx.services("kafka")  # Flink stopped: engine legs never share the machine
    generator.ensure_topics(ctx.cfg, [*names.ALL_TOPICS, SPARK_ALERTS_TOPIC, "transactions_dlq_spark"])
    job_module = [sys.executable, "-m", "spark_jobs.streaming_scoring"]
    refused = subprocess.run([*job_module, "--trigger", "realtime"], capture_output=True, text=True, check=False)
    results: dict[str, Any] = {
        "by_trigger": {},
        "realtime_mode": (refused.stderr or refused.stdout).strip().splitlines()[-1] if refused.returncode else "ran",
        "guarantee": "at-least-once Kafka sink (Flink: exactly once)",
    }
    seed = p.seed + 1000
    for trigger in p.spark_triggers:
        by_rate: dict[str, Any] = {}
        for rate in p.spark_rates:
            log = ctx.cfg.log_dir / f"bench-spark-streaming-{trigger}-{rate}.log"
            with tempfile.TemporaryDirectory(prefix="bench-spark-ckpt-") as checkpoints, log.open("w") as out:
                # A fresh query per rate: no backlog or state carried over from a rate it could not sustain.
                job = subprocess.Popen(
                    [
                        *job_module,
                        "--trigger",
                        trigger,
                        "--alerts-topic",
                        SPARK_ALERTS_TOPIC,
                        "--starting-offsets",
                        "latest",
                        "--checkpoint-dir",
                        checkpoints,
                        "--alert-threshold",
                        str(p.alert_threshold),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    _wait_for_line(log, f"{SPARK_JOB_NAME}: running (", job)
                    # Warm-up runs as long as measured ones: a Spark run must span several micro-batches.
                    warm_up = _warm_up(ctx, SPARK_ALERTS_TOPIC, rate, duration_s=p.stream_duration_s)
                    quiet_s = warm_up["quiet_s"]
                    runs = []
                    for _ in range(p.repeats):
                        seed += 1
                        runs.append(measured_run(ctx, rate, seed, SPARK_ALERTS_TOPIC, quiet_s=quiet_s))
                    by_rate[str(rate)] = {**_summarize_runs(runs), "warm_up": warm_up, "quiet_s": quiet_s}
                    ctx.echo(f"   spark {trigger} {rate}/s: p99 {by_rate[str(rate)]['p99_ms']['median']} ms")
                finally:
                    os.killpg(job.pid, 15)
                    job.wait(timeout=120)
        results["by_trigger"][trigger] = {"by_rate": by_rate}
    return results
