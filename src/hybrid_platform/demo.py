"""The end-to-end scenario `make demo` runs on the local runtime.

A Kafka round trip; Spark -> Iceberg -> Flink -> Iceberg -> Spark through the one catalog, with pyiceberg
reading both tables; the streaming path: both Flink jobs deployed (or restored from their checkpoints) by
Airflow's flink_jobs DAG, synthetic payments at HDP_DEMO_RATE for HDP_DEMO_DURATION seconds with the
alert latency measured alongside, and the lake reconciled against what was produced; then the batch path
driven through Airflow's REST API like a user in the UI: a past day is landed in raw.*, `lakehouse_daily`
builds it (Spark ETL with quality gates, dbt marts) and `fraud_model_training` trains and promotes the
model the running Flink job hot-reloads. Each step is a real job on a real engine; the summary reports
what each step measured, and a failed check fails the demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hybrid_platform import (
    airflow_client,
    names,
    runtime,  # [template:streaming]
)
from hybrid_platform.config import REPO_ROOT, PlatformConfig, demo_settings

SPARK_TABLE = "demo.cards_from_spark"
FLINK_TABLE = "demo.cards_from_flink"  # [template:streaming]
SMOKE_TOPIC = names.TOPIC_SMOKE
# The streaming part of the demo (config.demo_settings): HDP_DEMO_WARMUP seconds of traffic (the
# just-deployed jobs JIT-compile and fill their state; reported, not hidden), then HDP_DEMO_RATE events/s
# for HDP_DEMO_DURATION seconds, measured. The batch part: a past day (all its labels known) of
# HDP_DEMO_BATCH_TRANSACTIONS, built and trained on through Airflow.
DEMO_HISTORY_DAYS_AGO = 35
DEMO_DAG_TIMEOUT_S = 1800.0
#: The latency meter starts this long before the traffic (its process starts and its consumers are assigned).
METER_LEAD_S = 3.0


class DemoFailure(RuntimeError):
    """A demo step ran but its check failed."""


def kafka_round_trip(cfg: PlatformConfig, messages: int = 100) -> dict[str, Any]:
    """Produce ``messages`` records and read them back with librdkafka (confluent-kafka)."""
    from confluent_kafka import Consumer, Producer

    from hybrid_platform import generator

    # Created by the admin: with ACLs on (HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl) the producer may not create topics.
    generator.ensure_topics(cfg, [SMOKE_TOPIC])
    run_id = uuid.uuid4().hex
    # log_level 3: errors only; a fresh broker answers "coordinator load in progress" once, then recovers.
    producer = Producer({**cfg.kafka_client("producer"), "enable.idempotence": True, "linger.ms": 5, "log_level": 3})
    for i in range(messages):
        producer.produce(SMOKE_TOPIC, key=run_id, value=json.dumps({"run": run_id, "seq": i}))
    if producer.flush(30) != 0:
        raise DemoFailure(f"Kafka: {messages} messages not acknowledged within 30 s")
    consumer = Consumer(
        {
            **cfg.kafka_client("observer"),
            "group.id": f"demo-{run_id}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([SMOKE_TOPIC])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < messages and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        value = json.loads(message.value() or b"{}")
        if value.get("run") == run_id:
            seen.add(value["seq"])
    consumer.close()
    if len(seen) != messages:
        raise DemoFailure(f"Kafka: read back {len(seen)} of {messages} messages")
    return {"topic": SMOKE_TOPIC, "produced": messages, "consumed": len(seen)}


def _spark(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "spark_jobs.lakehouse_roundtrip", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    last = result.stdout.strip().splitlines()[-1:] or ["{}"]
    if result.returncode != 0 and not last[0].startswith("{"):
        raise DemoFailure(f"Spark job `{' '.join(args[:1])}` failed: {result.stderr.strip()[-400:]}")
    report: dict[str, Any] = json.loads(last[0])
    if result.returncode != 0:
        raise DemoFailure(f"Spark verify found differences: {report}")
    return report


def pyiceberg_read(cfg: PlatformConfig, tables: list[str]) -> dict[str, int]:
    import logging

    from pyiceberg.catalog import load_catalog

    # The Java JdbcCatalog writes the V0 layout on purpose (both sides read it); pyiceberg notes it on every load.
    logging.getLogger("pyiceberg.catalog.sql").setLevel(logging.ERROR)

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    return {name: catalog.load_table(name).scan().to_arrow().num_rows for name in tables}


def run(cfg: PlatformConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    settings = demo_settings()
    summary: dict[str, Any] = {}

    def step(name: str, action: Callable[[], Any]) -> None:
        started = time.monotonic()
        summary[name] = action()
        shown = summary[name]
        if isinstance(shown, dict):  # keys starting with "_" carry data between steps, not for display
            shown = {k: v for k, v in shown.items() if not k.startswith("_")}
        echo(f"  {name:28} {time.monotonic() - started:6.1f}s  {shown}")

    echo("scenario:")
    step("kafka round trip", lambda: kafka_round_trip(cfg))
    step("spark writes iceberg", lambda: _spark("write", "--table", SPARK_TABLE))
    # [template:streaming]
    step(
        "flink reads + writes iceberg",
        lambda: (
            runtime.flink_run(
                cfg,
                REPO_ROOT / "flink_jobs" / "lakehouse_roundtrip.py",
                ["--source", SPARK_TABLE, "--sink", FLINK_TABLE],
            )
            .stdout.strip()
            .splitlines()[-1]
        ),
    )
    step("spark reads flink's table", lambda: _spark("verify", "--source", SPARK_TABLE, "--table", FLINK_TABLE))
    step("pyiceberg reads both", lambda: pyiceberg_read(cfg, [SPARK_TABLE, FLINK_TABLE]))
    # [/template:streaming]
    # [template:!streaming] step("pyiceberg reads it", lambda: pyiceberg_read(cfg, [SPARK_TABLE]))
    client = airflow_client.AirflowClient.for_platform(cfg)
    # [template:streaming]
    # Airflow's flink_jobs DAG deploys both jobs (or restores them from their checkpoints) and checks health.
    step("airflow: flink_jobs", lambda: {**run_dag(client, "flink_jobs", {"action": "ensure"}), **flink_states(cfg)})
    if settings.warmup_s > 0:
        step("stream: warm-up", lambda: stream_and_measure(cfg, settings.rate, settings.warmup_s))
    step("stream + measure latency", lambda: stream_and_measure(cfg, settings.rate, settings.duration_s))
    streamed = summary["stream + measure latency"]
    step(
        "lake reconciled",
        lambda: reconcile_stream(cfg, streamed),
    )
    # [/template:streaming]
    history = (datetime.now(UTC) - timedelta(days=DEMO_HISTORY_DAYS_AGO)).date().isoformat()
    step("historical day in raw.*", lambda: seed_day(history, settings.batch_transactions))
    step("airflow: lakehouse_daily", lambda: run_dag(client, "lakehouse_daily", {"date": history}))
    step("airflow: fraud_model_training", lambda: run_dag(client, "fraud_model_training"))  # [template:ml]
    return summary


def seed_day(day: str, transactions: int) -> dict[str, Any]:
    """A past day whose chargebacks have all arrived, landed in raw.* (as lake_ingest would have)."""
    done = subprocess.run(
        [sys.executable, "-m", "spark_jobs.seed_day", "--date", day, "--transactions", str(transactions)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailure(f"seeding {day} failed: {done.stderr.strip()[-400:]}")
    report: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    return {k: report[k] for k in ("date", "transactions", "fraud", "labels")}


def run_dag(client: airflow_client.AirflowClient, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trigger a DAG through the REST API, as a user would from the UI, and wait for its end."""
    client.wait_for_dags([dag_id])
    run_id = client.trigger_and_unpause(dag_id, conf)
    state = client.wait(dag_id, run_id, timeout_s=DEMO_DAG_TIMEOUT_S)
    if state != "success":
        failed = [task for task, task_state in client.task_states(dag_id, run_id).items() if task_state == "failed"]
        raise DemoFailure(f"{dag_id} ended {state} (failed tasks: {failed}); see {client.run_url(dag_id, run_id)}")
    return {"state": state, "ui": client.run_url(dag_id, run_id)}


# [template:streaming]
def flink_states(cfg: PlatformConfig) -> dict[str, str]:
    from hybrid_platform import flink_ops

    states = {}
    for job in flink_ops.JOBS:
        info = flink_ops.active_job(cfg, job)
        states[job] = f"{info.state} {info.job_id[:8]}" if info else "absent"
    return states


def stream_and_measure(cfg: PlatformConfig, rate: float, duration_s: float) -> dict[str, Any]:
    """Send synthetic payments at ``rate`` for ``duration_s`` while measuring both latencies alongside:
    decisions (at least once) and alerts (exactly once)."""
    from hybrid_platform import generator, latency, names, reconcile

    since = reconcile.end_offsets(cfg, names.TOPIC_TRANSACTIONS)
    # The meter is a process of its own: in a thread of the generator's process it would take the GIL from the
    # sender, and a late send counts as latency (open loop: latency runs from the scheduled send time).
    meter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybrid_platform.cli",
            "latency",
            "--duration",
            str(duration_s + METER_LEAD_S),
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(METER_LEAD_S)  # its consumers are assigned before the first record is sent
    report = generator.produce(
        cfg, rate=rate, duration_s=duration_s, seed=int(time.time()), late_fraction=0.02, malformed_fraction=0.01
    )
    out, _ = meter.communicate(timeout=duration_s + 120)
    if meter.returncode != 0:
        raise DemoFailure(f"`hdp latency` failed (exit code {meter.returncode})")
    latencies = latency.LatencyReport.from_dict(json.loads(out))
    return {
        "generated": report.summary(),
        "decision": latencies.decision.summary(),
        "alert": latencies.alert.summary(),
        "_valid": set(report.txn_ids_valid),
        "_malformed": report.counts["malformed"],
        "_since": since,
    }


def reconcile_stream(cfg: PlatformConfig, streamed: dict[str, Any]) -> dict[str, Any]:
    from hybrid_platform import reconcile

    result = reconcile.wait_until_landed(cfg, streamed["_valid"], streamed["_malformed"], streamed["_since"])
    if not result.exact:
        raise DemoFailure(f"the lake does not match what was produced: {result.to_dict()}")
    return result.to_dict()


# [/template:streaming]
