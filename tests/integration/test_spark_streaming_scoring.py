"""spark_jobs.streaming_scoring on a real Kafka: the same decisions as the Python definitions, dead letters kept.

The job runs as its own process (as deployed) on a generated stream with late, out-of-order and malformed
records. The reference reads the same records back from Kafka and decides them in arrival order (each
card's records in its partition's offset order) with ``hybrid_platform.decisions.ArrivalDecider``: the
features, scores, reasons and decisions the Flink job gives the same arrivals (its Java operator is held to
the same Python definitions by the conformance tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from spark_jobs.streaming_scoring import DEFAULT_ALERTS_TOPIC, DEFAULT_DECISIONS_TOPIC, DEFAULT_DLQ_TOPIC

from hybrid_platform import events, generator, names
from hybrid_platform.config import REPO_ROOT, PlatformConfig
from hybrid_platform.decisions import ArrivalDecider, decision_record

pytestmark = pytest.mark.integration


def _end_offsets(cfg: PlatformConfig, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": f"offsets-{uuid.uuid4().hex}"})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
            except KafkaException:  # a topic created a moment ago may not have its leader yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        consumer.close()


def _read(cfg: PlatformConfig, topic: str, since: dict[int, int], until: dict[int, int] | None = None) -> list[Any]:
    """Every record from ``since`` to ``until`` (or to the current end) of each partition."""
    until = until or _end_offsets(cfg, topic)
    wanted = {p: end for p, end in until.items() if end > since.get(p, 0)}
    consumer = Consumer(
        {"bootstrap.servers": cfg.kafka_bootstrap, "group.id": f"check-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in wanted])
    messages: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while any(wanted.values()) and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() or message.offset() >= wanted.get(message.partition(), 0):
                    continue
                messages.append(message)
                if message.offset() == wanted[message.partition()] - 1:
                    wanted[message.partition()] = 0
    finally:
        consumer.close()
    return messages


def _transaction(card_id: str, event_time: int) -> bytes:
    txn = events.Transaction(
        str(uuid.uuid4()), card_id, "m-test", "5411", Decimal("10.00"), "EUR", "FR", "pos", event_time
    )
    return txn.to_json().encode()


@pytest.fixture
def spark_job(kafka_runtime: PlatformConfig, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    cfg = kafka_runtime
    generator.ensure_topics(cfg, [*names.ALL_TOPICS, DEFAULT_DECISIONS_TOPIC, DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC])
    log = (tmp_path / "streaming_scoring.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "spark_jobs.streaming_scoring",
        "--trigger",
        "asap",
        "--checkpoint-dir",
        str(tmp_path / "checkpoint"),
        # Other tests share the topic: only what arrives from now on (the test waits until the job reads).
        "--starting-offsets",
        "latest",
        "--run-for-s",
        "900",  # a safety net: the test stops it
        # The reference scores with the rules alone; the session's registry may hold a champion that
        # earlier tests (fraud_model_training) promoted, so this job gets a registry of its own, empty.
        "--model-registry",
        str(tmp_path / "registry"),
    ]
    env = {**os.environ, "HDP_SPARK_DRIVER_MEMORY": os.environ.get("HDP_SPARK_DRIVER_MEMORY", "1g")}
    job = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield job
    job.terminate()
    try:
        job.wait(60)
    except subprocess.TimeoutExpired:
        job.kill()
        job.wait(30)
    log.close()


def _wait_ready(cfg: PlatformConfig, job: subprocess.Popen[bytes], dlq_start: dict[int, int]) -> None:
    """Produce a malformed record until one reaches the DLQ: then the job consumes. Repeated, because a job
    starting at the latest offsets does not see what was produced before it began reading."""
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    markers: set[str] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert job.poll() is None, f"the Spark job exited with {job.returncode}; see its log"
        marker = json.dumps({"warm_up": uuid.uuid4().hex})
        markers.add(marker)
        producer.produce(names.TOPIC_TRANSACTIONS, key=b"warm-up", value=marker.encode())
        producer.flush(10)
        time.sleep(3)
        if any(json.loads(m.value())["original"] in markers for m in _read(cfg, DEFAULT_DLQ_TOPIC, dlq_start)):
            return
    pytest.fail("the Spark job did not dead-letter the warm-up record within 300 s; see streaming_scoring.log")


def test_decisions_equal_the_python_definitions_and_malformed_records_reach_the_dlq(
    kafka_runtime: PlatformConfig, spark_job: subprocess.Popen[bytes]
) -> None:
    cfg = kafka_runtime
    dlq_start = _end_offsets(cfg, DEFAULT_DLQ_TOPIC)
    _wait_ready(cfg, spark_job, dlq_start)
    # From here on the stream is this test's: the warm-up records before it are not part of the reference.
    dlq_start = _end_offsets(cfg, DEFAULT_DLQ_TOPIC)
    decisions_start = _end_offsets(cfg, DEFAULT_DECISIONS_TOPIC)
    alerts_start = _end_offsets(cfg, DEFAULT_ALERTS_TOPIC)
    transactions_start = _end_offsets(cfg, names.TOPIC_TRANSACTIONS)

    report = generator.produce(cfg, rate=200, duration_s=20, seed=2026, late_fraction=0.02, malformed_fraction=0.01)
    assert report.malformed_count and report.counts["late"] > 0
    valid = set(report.txn_ids_valid)

    deadline = time.monotonic() + 180
    decided: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and set(decided) != valid:
        assert spark_job.poll() is None, f"the Spark job exited with {spark_job.returncode}"
        decided = {
            d["txn_id"]: d
            for d in (json.loads(m.value()) for m in _read(cfg, DEFAULT_DECISIONS_TOPIC, decisions_start))
        }
        time.sleep(3)
    assert set(decided) == valid, "every valid transaction decided, and nothing else"

    # The reference: the same records, in arrival order per card (each card's records share a partition).
    python = ArrivalDecider()
    arrivals = sorted(
        _read(cfg, names.TOPIC_TRANSACTIONS, transactions_start), key=lambda m: (m.partition(), m.offset())
    )
    malformed: dict[tuple[int, int], str] = {}
    expected_alerts = set()
    for message in arrivals:
        txn, reason = events.parse_transaction(message.value())
        if txn is None:
            malformed[message.partition(), message.offset()] = str(reason)
            continue
        served = decided[txn.txn_id]
        decision = python.decide(txn, served["scored_at"], None)
        expected = decision_record(txn, decision, served["scored_at"], message.partition(), message.offset(), 0)
        assert {k: v for k, v in served.items() if k != "source_ts"} == {
            k: v for k, v in expected.items() if k != "source_ts"
        }
        assert served["source_ts"] == message.timestamp()[1]
        if decision.score >= 0.5:
            expected_alerts.add(txn.txn_id)
    assert {d["decision"] for d in decided.values()} >= {"approve", "review"}
    alerts = [json.loads(m.value()) for m in _read(cfg, DEFAULT_ALERTS_TOPIC, alerts_start)]
    assert {a["txn_id"] for a in alerts} == expected_alerts

    dead = {
        (r["source_partition"], r["source_offset"]): r
        for r in (json.loads(m.value()) for m in _read(cfg, DEFAULT_DLQ_TOPIC, dlq_start))
        if '"warm_up"' not in r["original"]  # a readiness marker that arrived after the start was taken
    }
    assert {key: r["reason"] for key, r in dead.items()} == malformed
    assert all(r["source_topic"] == names.TOPIC_TRANSACTIONS and r["received_at"] > 0 for r in dead.values())
