"""Streaming legs: the Kafka floor, Flink's fraud_scoring beside lake_ingest and Airflow, Spark Structured Streaming.

Both engines are measured the same way: a fixed card population (``generator.TrafficPool``) is produced open
loop (each record's Kafka timestamp is its scheduled send time, so a producer that falls behind adds to the
latency instead of hiding it), and a probe process reads the results. Decision latency = the broker's
append time of the decision (``LogAppendTime``) - the transaction's scheduled send time: a point the probe
cannot distort. Exactly-once latency = when a read-committed reader received the alert - the same send
time. The first ``stream_warmup_s`` of each run are excluded; each run ends once every transaction of it
is decided, so the next starts on a drained pipeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import Context, summarize

from hybrid_platform import config, flink_ops, generator, names, runtime
from hybrid_platform.java import java_home
from hybrid_platform.latency import percentile

FLOOR_TOPIC = "bench_floor"
#: How long after its traffic a run waits for its last decisions (a job that fell behind is waited for).
MAX_DRAIN_S = 120.0


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
# CPU: per service (process), and per Flink job inside the TaskManagers (threads)


def _process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (every thread of each) since they started."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def service_cpu_s(cfg: config.PlatformConfig) -> dict[str, float]:
    """CPU seconds used so far by each running service (its whole process session)."""
    used = {}
    for service in runtime.services():
        state = runtime.running(cfg, service.name)
        if state is not None:
            used[service.name] = _process_cpu_s(runtime.session_members(state.pid))
    return used


_THREAD_CPU = re.compile(r'^"(?P<name>[^"]+)".*?cpu=(?P<ms>[\d.]+)ms', re.MULTILINE)


def thread_cpu_ms(pid: int) -> dict[str, float]:
    """CPU milliseconds per thread name of a JVM, from its thread dump (``jcmd <pid> Thread.print``)."""
    jcmd = str(java_home() / "bin" / "jcmd")
    dump = subprocess.run([jcmd, str(pid), "Thread.print"], capture_output=True, text=True, check=False).stdout
    found: dict[str, float] = {}
    for match in _THREAD_CPU.finditer(dump):
        found[match["name"]] = found.get(match["name"], 0.0) + float(match["ms"])
    return found


def _java_pid(cfg: config.PlatformConfig, service: str) -> int | None:
    state = runtime.running(cfg, service)
    if state is None:
        return None
    for pid in runtime.session_members(state.pid):
        try:
            if Path(f"/proc/{pid}/exe").resolve().name == "java":
                return pid
        except OSError:
            continue
    return None


def job_of_thread(name: str, vertices: dict[str, list[str]], hosted: list[str]) -> str:
    """Which job a TaskManager thread works for: a task thread carries its task's name (also the fetcher and
    flusher threads of a task); a transactional producer names its job; any other thread (Kafka producers
    of at-least-once sinks, GC, JIT) counts for the job when the TaskManager runs only that one."""
    for job, names_of_tasks in vertices.items():
        if any(task in name for task in names_of_tasks) or f"producer-{job}-" in name:
            return job
    return hosted[0] if len(hosted) == 1 else "shared"


def flink_placement(cfg: config.PlatformConfig) -> dict[str, Any]:
    """For each running job: its task names and the TaskManager services (by pid) that run it."""
    listening = _listening_ports()
    pids = {service: _java_pid(cfg, service) for service in runtime.TASKMANAGERS}
    placement: dict[str, Any] = {"vertices": {}, "hosts": {}}
    for job in flink_ops.jobs(cfg):
        if job.state != "RUNNING":
            continue
        detail = flink_ops.request(cfg, "GET", f"/jobs/{job.job_id}")
        placement["vertices"][job.name] = [v["name"].split(" -> ")[0] for v in detail.get("vertices", [])]
        for vertex in detail.get("vertices", []):
            managers = flink_ops.request(cfg, "GET", f"/jobs/{job.job_id}/vertices/{vertex['id']}/taskmanagers")
            for manager in managers.get("taskmanagers", []):
                port = int(manager["taskmanager-id"].split(":", 1)[1].split("-", 1)[0])
                for service, pid in pids.items():
                    if pid is not None and port in listening.get(pid, set()):
                        placement["hosts"].setdefault(service, {"pid": pid, "jobs": []})
                        if job.name not in placement["hosts"][service]["jobs"]:
                            placement["hosts"][service]["jobs"].append(job.name)
    return placement


def _listening_ports() -> dict[int, set[int]]:
    """pid -> the TCP ports it listens on (from /proc/net/tcp{,6} and each process's socket inodes)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    ports: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    ports.setdefault(int(entry.name), set()).add(inodes[target[8:-1]])
        except OSError:
            continue
    return ports


class CpuMeter:
    """CPU of every service, and of each Flink job inside the TaskManagers, between ``start`` and ``stop``."""

    def __init__(self, cfg: config.PlatformConfig) -> None:
        self.cfg = cfg
        self.placement = flink_placement(cfg) if runtime.running(cfg, "flink-jobmanager") else {"hosts": {}}

    def start(self) -> None:
        self.wall = time.monotonic()
        self.services = service_cpu_s(self.cfg)
        self.threads = {s: thread_cpu_ms(h["pid"]) for s, h in self.placement["hosts"].items()}

    def stop(self, events: int) -> dict[str, Any]:
        """Cores used per service and per job, and microseconds of CPU per event for each job."""
        seconds = time.monotonic() - self.wall
        after = service_cpu_s(self.cfg)
        cores = {k: round((v - self.services.get(k, v)) / seconds, 3) for k, v in after.items()}
        by_job: dict[str, float] = {}
        for service, host in self.placement["hosts"].items():
            before = self.threads.get(service, {})
            for name, ms in thread_cpu_ms(host["pid"]).items():
                job = job_of_thread(name, self.placement["vertices"], host["jobs"])
                by_job[job] = by_job.get(job, 0.0) + max(0.0, ms - before.get(name, 0.0)) / 1000
        return {
            "seconds": round(seconds, 1),
            "cores_by_service": cores,
            "cores_by_job": {job: round(s / seconds, 3) for job, s in by_job.items()},
            "us_per_event_by_job": {job: round(s / events * 1e6, 1) for job, s in by_job.items() if events},
        }


# --------------------------------------------------------------------------------------------------
# One measured run: open-loop traffic from the pool, a probe process reading the results


def measured_run(
    ctx: Context,
    pool: generator.TrafficPool,
    rate: int,
    duration_s: float,
    decisions_topic: str,
    alerts_topic: str | None,
    warmup_s: float,
    max_drain_s: float = MAX_DRAIN_S,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """One run at ``rate``; the probe reads until every transaction's decision is in (a job that fell behind
    is waited for, up to ``max_drain_s``), so the next run starts on a drained pipeline."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        out, ready = Path(tmp) / "probe.json", Path(tmp) / "ready"
        start_ms = int(time.time() * 1000)
        expect = round(rate * duration_s)
        probe = subprocess.Popen(
            _probe(
                "decisions",
                "--decisions-topic",
                decisions_topic,
                *(["--alerts-topic", alerts_topic] if alerts_topic else []),
                "--start-ms",
                str(start_ms),
                "--expect",
                str(expect),
                "--max-s",
                str(duration_s + max_drain_s),
                "--warmup-s",
                str(warmup_s),
                "--out",
                str(out),
                "--ready-file",
                str(ready),
            )
        )
        _wait_ready(ready, probe)
        if meter:
            meter.start()
        before = resource.getrusage(resource.RUSAGE_SELF)
        sent = pool.produce(ctx.cfg, rate, duration_s)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = meter.stop(expect) if meter else None
        probe.wait(timeout=duration_s + max_drain_s + 60)
        probed = _read_json(out)
    generator_cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "rate": rate,
        "duration_s": duration_s,
        **{k: v for k, v in probed.items() if k not in {"decision", "alert_visible"}},
        "decision": probed.get("decision", {"samples": 0}),
        "alert_visible": probed.get("alert_visible"),
        "producer_max_behind_ms": sent["max_behind_schedule_ms"],
        "harness_cores": {
            "generator": round(generator_cpu_s / duration_s, 3),
            "probe": round(probed.get("probe_cpu_s", 0.0) / max(duration_s, 1.0), 3),
        },
        "cpu": cpu,
    }


def _summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and rerun intervals over a rate's repeats, for the decision and the exactly-once latency."""
    summary: dict[str, Any] = {"runs": [_without_cdf(r) for r in runs]}
    for kind in ("decision", "alert_visible"):
        measured = [r[kind] for r in runs if r.get(kind) and r[kind].get("samples")]
        if not measured:
            continue
        summary[kind] = {
            **{k: summarize([m.get(k) for m in measured]) for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")},
            "kept_up": all(m.get("kept_up", False) for m in measured),
            "cdf_ms": cdf_points(sorted(v for m in measured for v in m.get("cdf_ms", []))),
        }
    cpu_runs = [r["cpu"] for r in runs if r.get("cpu")]
    if cpu_runs:
        services = sorted({k for c in cpu_runs for k in c["cores_by_service"]})
        jobs = sorted({k for c in cpu_runs for k in c["us_per_event_by_job"]})
        summary["cores_by_service"] = {s: summarize([c["cores_by_service"].get(s) for c in cpu_runs]) for s in services}
        summary["us_per_event_by_job"] = {
            j: summarize([c["us_per_event_by_job"].get(j) for c in cpu_runs]) for j in jobs
        }
    summary["harness_cores"] = {
        part: summarize([r["harness_cores"][part] for r in runs]) for part in ("generator", "probe")
    }
    summary["complete"] = all(r.get("complete") for r in runs)
    return summary


def _without_cdf(run: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ({kk: vv for kk, vv in v.items() if kk != "cdf_ms"} if isinstance(v, dict) else v) for k, v in run.items()
    }


def cdf_points(sorted_values: list[float], points: int = 500) -> list[float]:
    """At most ``points`` evenly spaced quantiles of an ascending list, always including its min and max."""
    if len(sorted_values) <= points:
        return sorted_values
    last = len(sorted_values) - 1
    return [sorted_values[round(i * last / (points - 1))] for i in range(points)]


#: The latency objectives the frontier is drawn for (milliseconds of p99).
SLOS_MS = (50, 1000)


def frontier(by_rate: dict[str, Any], kind: str, cores: int) -> dict[str, Any]:
    """The highest rate measured (and per core) whose median p99 held each objective and kept up."""
    result: dict[str, Any] = {}
    for slo in SLOS_MS:
        held = [
            int(rate)
            for rate, summary in by_rate.items()
            if summary.get(kind, {}).get("kept_up") and (summary[kind]["p99_ms"].get("median") or float("inf")) <= slo
        ]
        best = max(held) if held else None
        result[f"p99_under_{slo}_ms"] = {"rate": best, "per_core": round(best / cores) if best else None}
    return result


# --------------------------------------------------------------------------------------------------
# Flink: fraud_scoring (decisions at least once, alerts exactly once) beside lake_ingest and Airflow


#: fraud_scoring prints its job-level settings after this prefix (``flink_jobs.lib.settings``; that module
#: needs pyflink, which this environment does not have, so the prefix is repeated here; a test keeps them equal).
JOB_SETTINGS_PREFIX = "job settings: "


def _printed_settings(client_output: str) -> dict[str, str]:
    for line in client_output.splitlines():
        if line.startswith(JOB_SETTINGS_PREFIX):
            printed: dict[str, str] = json.loads(line.removeprefix(JOB_SETTINGS_PREFIX))
            return printed
    return {}


def _job_settings(ctx: Context, job_id: str, client_output: str = "") -> dict[str, str]:
    """The settings the running job has, for the ones that decide latency: the cluster's (REST), the
    checkpointing the JobManager applies (REST), and the job-level ones the job printed when submitted."""
    interesting = (
        "execution.buffer-timeout.interval",
        "execution.checkpointing.interval",
        "execution.checkpointing.mode",
        "state.backend.type",
        "state.changelog.enabled",
        "parallelism.default",
        "pipeline.object-reuse",
        "taskmanager.memory.process.size",
        "env.java.opts.taskmanager",
        "alert_threshold",
    )
    settings: dict[str, str] = {}
    try:
        for entry in flink_ops.request(ctx.cfg, "GET", f"/jobs/{job_id}/jobmanager/config") or []:
            if entry.get("key") in interesting:
                settings[entry["key"]] = entry.get("value")
        applied = flink_ops.request(ctx.cfg, "GET", f"/jobs/{job_id}/checkpoints/config") or {}
        for key in ("mode", "interval", "state_backend", "state_changelog_enabled"):
            if key in applied:
                settings[f"checkpoints/config {key}"] = str(applied[key])
    except Exception as error:  # recorded, not fatal: the numbers stand without it
        settings["error"] = str(error)
    settings.update({k: v for k, v in _printed_settings(client_output).items() if k in interesting})
    return settings


def _stop_all(ctx: Context) -> dict[str, str]:
    """Stop every running job with a savepoint, so no exactly-once sink leaves an open Kafka transaction
    behind (a cancelled one hides every later record from read-committed readers until it times out)."""
    ended = {}
    for job in flink_ops.jobs(ctx.cfg):
        if job.state not in flink_ops.ACTIVE_STATES:
            continue
        # Keyed "job <id>", not the bare id: a 32-digit hex key reads as a secret to the CI's secret scan.
        try:
            flink_ops.stop_job_id(ctx.cfg, job.job_id, timeout_s=120)
            ended[f"job {job.job_id}"] = "stopped with a savepoint"
        except Exception as error:
            flink_ops.request(ctx.cfg, "PATCH", f"/jobs/{job.job_id}?mode=cancel")
            ended[f"job {job.job_id}"] = f"cancelled, savepoint failed: {error}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(j.state in flink_ops.ACTIVE_STATES for j in flink_ops.jobs(ctx.cfg)):
        time.sleep(0.5)
    return ended


def _submit(ctx: Context, job: str, args: list[str]) -> tuple[str, str]:
    """Submit ``job`` fresh; wait until every task runs; returns its id and the client's output."""
    result = runtime.flink_run(ctx.cfg, flink_ops.JOBS[job], args, detached=True)
    job_id = flink_ops.job_id_from_output(result.stdout + result.stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = next((j for j in flink_ops.jobs(ctx.cfg) if j.job_id == job_id), None)
        if info and info.all_tasks_running:
            return job_id, result.stdout
        if info and info.state in {"FAILED", "CANCELED"}:
            raise RuntimeError(f"{job}: {flink_ops.root_cause(ctx.cfg, job_id)}")
        time.sleep(0.5)
    raise RuntimeError(f"{job} is not running after 120 s")


def _wait_drained(ctx: Context, group: str, topic: str, timeout_s: float) -> float:
    """Seconds until consumer group ``group`` has committed the end of ``topic`` (Flink commits at checkpoints)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**ctx.cfg.kafka_client("observer", log_level=0), "group.id": group})
    started = time.monotonic()
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        while time.monotonic() - started < timeout_s:
            committed = consumer.committed(partitions, timeout=10)
            lag = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] - max(tp.offset, 0) for tp in committed)
            if lag <= 0:
                return round(time.monotonic() - started, 1)
            time.sleep(2)
    finally:
        consumer.close()
    raise RuntimeError(f"{group} did not drain {topic} within {timeout_s:.0f} s")


def _heap_after_gc(ctx: Context, service: str) -> dict[str, Any]:
    """Heap in use by a TaskManager right after a full collection: the state it keeps, plus its baseline."""
    pid = _java_pid(ctx.cfg, service)
    if pid is None:
        return {}
    jcmd = str(java_home() / "bin" / "jcmd")
    subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, text=True, check=False, timeout=120)
    info = subprocess.run([jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"used (\d+)K", info)
    return {"service": service, "heap_used_mb": round(int(match.group(1)) / 1024) if match else None}


def flink_streaming(ctx: Context) -> dict[str, Any]:
    # The whole platform, as the target has it: Kafka, Flink with both jobs, and Airflow, on the same cores.
    ctx.services("kafka", "flink", "airflow")
    results: dict[str, Any] = {"by_rate": {}}
    try:
        _flink_streaming(ctx, results)
    finally:
        # Also when a run failed: a job still running leaves its Kafka transaction open for later readers.
        results["stopped_at_end"] = _stop_all(ctx)
    return results


def _flink_streaming(ctx: Context, results: dict[str, Any]) -> None:
    p = ctx.profile
    cfg = ctx.cfg
    _stop_all(ctx)
    generator.ensure_topics(cfg, names.ALL_TOPICS)
    top_rate = max(p.stream_rates)
    started = time.monotonic()
    pool = generator.TrafficPool(p.seed, top_rate, p.pool_seconds)
    results["traffic"] = {
        "pool_records": len(pool.records),
        "pool_build_s": round(time.monotonic() - started, 1),
        "cards": "fixed population sized for the top rate (hybrid_platform.generator._Population)",
    }
    job_id, client_output = _submit(ctx, names.JOB_FRAUD_SCORING, ["--start-from", "latest-offset"])
    results["settings"] = _job_settings(ctx, job_id, client_output)
    # State as traffic at the top rate would have left it: the prefill's event times span prefill_minutes.
    count = int(p.prefill_minutes * 60 * top_rate)
    produce_s = pool.prefill(cfg, count, int(p.prefill_minutes * 60_000))
    drain_s = _wait_drained(ctx, names.JOB_FRAUD_SCORING, names.TOPIC_TRANSACTIONS, timeout_s=1800)
    placement = flink_placement(cfg)
    scorer_tm = next((s for s, h in placement["hosts"].items() if names.JOB_FRAUD_SCORING in h["jobs"]), None)
    results["prefill"] = {
        "events": count,
        "event_time_span_minutes": p.prefill_minutes,
        "produce_s": round(produce_s, 1),
        "decided_after_s": drain_s,
        "events_per_s": round(count / (produce_s + drain_s)),
        "heap_after_gc": _heap_after_gc(ctx, scorer_tm) if scorer_tm else {},
        "checkpoint": _latest_checkpoint_size(ctx, job_id),
    }
    ctx.echo(f"   prefill: {count:,} events in {produce_s + drain_s:.0f} s; {results['prefill']['heap_after_gc']}")
    # lake_ingest from here on (the prefill is not what it is measured on), in its own TaskManager.
    _submit(ctx, names.JOB_LAKE_INGEST, ["--start-from", "latest-offset"])
    results["placement"] = flink_placement(cfg)["hosts"]
    for rate in p.stream_rates:  # JIT and caches at every rate before anything is measured
        measured_run(ctx, pool, rate, p.stream_warm_up_s, names.TOPIC_FRAUD_DECISIONS, None, 0.0)
    meter = CpuMeter(cfg)
    runs_by_rate: dict[int, list[dict[str, Any]]] = {rate: [] for rate in p.stream_rates}
    # Repeats interleave the rates: a rate's repeats span the whole leg, so its spread includes the drift.
    for _ in range(p.repeats):
        for rate in p.stream_rates:
            run = measured_run(
                ctx,
                pool,
                rate,
                p.stream_duration_s,
                names.TOPIC_FRAUD_DECISIONS,
                names.TOPIC_FRAUD_ALERTS,
                p.stream_warmup_s,
                meter=meter,
            )
            runs_by_rate[rate].append(run)
            ctx.echo(
                f"   flink {rate}/s: decision p99 {run['decision'].get('p99_ms')} ms, exactly-once p99 "
                f"{(run.get('alert_visible') or {}).get('p99_ms')} ms, cores {run['cpu']['cores_by_service']}"
            )
    for rate, runs in runs_by_rate.items():
        results["by_rate"][str(rate)] = _summarize_runs(runs)
    results["frontier"] = {
        "decision (at least once)": frontier(results["by_rate"], "decision", os.cpu_count() or 1),
        "alert visible (exactly once)": frontier(results["by_rate"], "alert_visible", os.cpu_count() or 1),
    }
    results["rss_mb"] = {s.name: round(s.rss_bytes / 2**20) for s in runtime.status(cfg) if s.pid}


def _latest_checkpoint_size(ctx: Context, job_id: str) -> dict[str, Any]:
    stats = flink_ops.checkpoints(ctx.cfg, job_id)
    completed = (stats.get("latest") or {}).get("completed") or {}
    return {
        "full_state_mb": round(completed.get("state_size", 0) / 2**20, 1),
        "checkpointed_mb": round(completed.get("checkpointed_size", 0) / 2**20, 2),
        "duration_ms": completed.get("end_to_end_duration"),
    }


# --------------------------------------------------------------------------------------------------
# Spark Structured Streaming (same stream, same logic: spark_jobs.streaming_scoring)


#: What spark_jobs.streaming_scoring prints its lines after (that module needs pyspark to import).
SPARK_JOB_NAME = "streaming_scoring"
SPARK_TOPICS = names.SPARK_SCORING_TOPICS


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
    generator.ensure_topics(ctx.cfg, [*names.ALL_TOPICS, *SPARK_TOPICS])
    generator.set_topic_config(ctx.cfg, SPARK_TOPICS[0], generator.topic_config(names.TOPIC_FRAUD_DECISIONS))
    job_module = [sys.executable, "-m", "spark_jobs.streaming_scoring"]
    refused = subprocess.run([*job_module, "--trigger", "realtime"], capture_output=True, text=True, check=False)
    results: dict[str, Any] = {
        "by_trigger": {},
        "realtime_mode": (refused.stderr or refused.stdout).strip().splitlines()[-1] if refused.returncode else "ran",
        "guarantee": "at least once (Spark's Kafka sink), like Flink's decisions",
    }
    pool = generator.TrafficPool(p.seed, max(p.spark_rates), p.pool_seconds)
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
                        "--decisions-topic",
                        SPARK_TOPICS[0],
                        "--alerts-topic",
                        SPARK_TOPICS[1],
                        "--dlq-topic",
                        SPARK_TOPICS[2],
                        "--starting-offsets",
                        "latest",
                        "--checkpoint-dir",
                        checkpoints,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    _wait_for_line(log, f"{SPARK_JOB_NAME}: running (", job)
                    measured_run(ctx, pool, rate, p.stream_warm_up_s, SPARK_TOPICS[0], None, 0.0)
                    runs = [
                        measured_run(ctx, pool, rate, p.spark_duration_s, SPARK_TOPICS[0], None, p.stream_warmup_s)
                        for _ in range(p.repeats)
                    ]
                    by_rate[str(rate)] = _summarize_runs(runs)
                    ctx.echo(
                        f"   spark {trigger} {rate}/s: p99 {by_rate[str(rate)]['decision']['p99_ms']['median']} ms"
                    )
                finally:
                    os.killpg(job.pid, 15)
                    job.wait(timeout=120)
        results["by_trigger"][trigger] = {
            "by_rate": by_rate,
            "frontier": frontier(by_rate, "decision", os.cpu_count() or 1),
        }
    return results
