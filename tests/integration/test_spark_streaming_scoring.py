"""spark_jobs.streaming_scoring on a real Kafka: alerts equal an offline reference, malformed records dead-lettered.

The job runs as its own process (as deployed) on a generated stream with late, out-of-order and malformed
records. The reference reads the same records back from Kafka and computes, with a brute-force pure Python
feature definition (tests/streaming_reference.py) and the same rules, what the Flink job would alert on:
on-time events through the windows, events behind the watermark through the stateless rules.

The watermark delay is 1 s here (Flink's default is 200 ms) so that lateness is decided by the data, not
by timing: the generator's out-of-order events are at most 300 ms behind (on time for both engines) and
its late ones at least 5 s (late for both), and the test checks that no event lies near the boundary.
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
from streaming_reference import RefEvent, reference_alerts

from spark_jobs.streaming_scoring import DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC, EVENT_TIME_MAX_AHEAD_MS

from hybrid_platform import events, generator, names
from hybrid_platform.config import REPO_ROOT, PlatformConfig
from hybrid_platform.model import RULES_ONLY_VERSION

pytestmark = pytest.mark.integration

WATERMARK_DELAY_MS = 1_000
#: No event may be this close to the watermark in the reference, or its lateness would depend on timing.
LATENESS_MARGIN_MS = (500, 3_000)


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
    generator.ensure_topics(cfg, [*names.ALL_TOPICS, DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC])
    log = (tmp_path / "streaming_scoring.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "spark_jobs.streaming_scoring",
        "--trigger",
        "asap",
        "--checkpoint-dir",
        str(tmp_path / "checkpoint"),
        "--watermark-delay-ms",
        str(WATERMARK_DELAY_MS),
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
    """Produce a valid and a malformed record on one partition until a malformed one reaches the DLQ: then the
    job consumes and has a watermark (the valid one was in the same or an earlier micro-batch). Repeated,
    because a job starting at the latest offsets does not see what was produced before it began reading.
    The warm-up card never alerts (10.00 at a grocer scores at most 0.4)."""
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    markers: set[str] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert job.poll() is None, f"the Spark job exited with {job.returncode}; see its log"
        marker = json.dumps({"warm_up": uuid.uuid4().hex})
        markers.add(marker)
        producer.produce(
            names.TOPIC_TRANSACTIONS, key=b"warm-up", value=_transaction("warm-up", int(time.time() * 1000))
        )
        producer.produce(names.TOPIC_TRANSACTIONS, key=b"warm-up", value=marker.encode())
        producer.flush(10)
        time.sleep(3)
        if any(json.loads(m.value())["original"] in markers for m in _read(cfg, DEFAULT_DLQ_TOPIC, dlq_start)):
            return
    pytest.fail("the Spark job did not dead-letter the warm-up record within 300 s; see streaming_scoring.log")


def _reference(
    cfg: PlatformConfig, since: dict[int, int]
) -> tuple[list[RefEvent], list[RefEvent], dict[tuple[int, int], str]]:
    """On-time and late valid events, and malformed records' reasons, from the records as Kafka holds them."""
    records = sorted(
        _read(cfg, names.TOPIC_TRANSACTIONS, since), key=lambda m: (m.timestamp()[1], m.partition(), m.offset())
    )
    on_time: list[RefEvent] = []
    late: list[RefEvent] = []
    malformed: dict[tuple[int, int], str] = {}
    max_ts = None
    for message in records:
        kafka_ms = message.timestamp()[1]
        txn, reason = events.parse_transaction(message.value())
        declared = txn.event_time if txn else None
        if declared is None:
            try:
                declared = int(json.loads(message.value())["event_time"])
            except Exception:
                declared = None
        ts = declared if declared is not None and declared <= kafka_ms + EVENT_TIME_MAX_AHEAD_MS else kafka_ms
        if txn is None:
            malformed[message.partition(), message.offset()] = str(reason)
        else:
            event = RefEvent(
                txn.txn_id,
                txn.card_id,
                txn.mcc,
                txn.channel,
                txn.country,
                int(txn.amount * 100),
                txn.event_time,
                ts,
                message.partition(),
                message.offset(),
            )
            lag = (max_ts - ts) if max_ts is not None else -1
            assert not WATERMARK_DELAY_MS - LATENESS_MARGIN_MS[0] < lag < WATERMARK_DELAY_MS + LATENESS_MARGIN_MS[1], (
                f"{txn.txn_id} is {lag} ms behind: too close to the watermark for an exact reference"
            )
            (late if lag >= WATERMARK_DELAY_MS else on_time).append(event)
        max_ts = ts if max_ts is None else max(max_ts, ts)
    return on_time, late, malformed


def test_alerts_equal_the_reference_and_malformed_records_reach_the_dlq(
    kafka_runtime: PlatformConfig, spark_job: subprocess.Popen[bytes]
) -> None:
    cfg = kafka_runtime
    alerts_start = _end_offsets(cfg, DEFAULT_ALERTS_TOPIC)
    dlq_start = _end_offsets(cfg, DEFAULT_DLQ_TOPIC)
    _wait_ready(cfg, spark_job, dlq_start)
    # From here on the stream is this test's: the warm-up records before it are not part of the reference.
    dlq_start = _end_offsets(cfg, DEFAULT_DLQ_TOPIC)
    transactions_start = _end_offsets(cfg, names.TOPIC_TRANSACTIONS)

    report = generator.produce(cfg, rate=200, duration_s=20, seed=2026, late_fraction=0.02, malformed_fraction=0.01)
    # Advance the watermark past the whole stream, so the job releases its last events (Flink needs the same).
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    flush_time = int(time.time() * 1000) + 5 * WATERMARK_DELAY_MS
    producer.produce(names.TOPIC_TRANSACTIONS, key=b"flush", value=_transaction("flush", flush_time))
    producer.flush(10)

    on_time, late, malformed = _reference(cfg, transactions_start)
    expected = reference_alerts(on_time, late)
    assert report.malformed_count and len(late) >= report.counts["late"] > 0
    assert any(set(reasons) & {"card_testing", "geo_velocity", "velocity_burst"} for _, reasons, _ in expected.values())

    deadline = time.monotonic() + 180
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        assert spark_job.poll() is None, f"the Spark job exited with {spark_job.returncode}"
        alerts = [json.loads(m.value()) for m in _read(cfg, DEFAULT_ALERTS_TOPIC, alerts_start)]
        if {a["txn_id"] for a in alerts} >= set(expected):
            break
        time.sleep(3)
    time.sleep(5)  # anything extra would show up now
    alerts = [json.loads(m.value()) for m in _read(cfg, DEFAULT_ALERTS_TOPIC, alerts_start)]

    by_txn = {a["txn_id"]: a for a in alerts}
    assert len(by_txn) == len(alerts), "an alert was written twice (no failure happened, so none should be)"
    assert set(by_txn) == set(expected)
    for txn_id, (score, reasons, version) in expected.items():
        alert = by_txn[txn_id]
        assert (alert["score"], alert["reasons"], alert["model_version"]) == (round(score, 6), reasons, version)
        assert version == RULES_ONLY_VERSION
    events_by_txn = {e.txn_id: e for e in [*on_time, *late]}
    assert all(
        a["card_id"] == events_by_txn[t].card_id and a["event_time"] == events_by_txn[t].event_time
        for t, a in by_txn.items()
    )

    dead = {
        (r["source_partition"], r["source_offset"]): r
        for r in (json.loads(m.value()) for m in _read(cfg, DEFAULT_DLQ_TOPIC, dlq_start))
        if '"warm_up"' not in r["original"]  # a readiness marker that arrived after the start was taken
    }
    assert {key: r["reason"] for key, r in dead.items()} == malformed
    assert all(r["source_topic"] == names.TOPIC_TRANSACTIONS and r["received_at"] > 0 for r in dead.values())
