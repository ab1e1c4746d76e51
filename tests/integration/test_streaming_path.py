"""The streaming path on the real runtime: generator -> Kafka -> Flink (fraud_scoring, lake_ingest) -> Iceberg.

Reconciled exactly: every valid produced txn_id once in raw.transactions and decided (fraud_decisions and
raw.fraud_decisions, on the features the Python definitions give for the same arrivals), every malformed
record in the DLQ with a reason, alerts only for scored transactions and exactly once; then hot reload of a
newly promoted model, a restore that replays the same decisions with the model they were made with, and the
savepoint/stop/restore lifecycle.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from stream_checks import read_committed

from hybrid_platform import events, flink_ops, generator, names
from hybrid_platform.config import PlatformConfig
from hybrid_platform.decisions import ArrivalDecider
from hybrid_platform.features import FEATURE_SPEC_VERSION
from hybrid_platform.model import (
    KIND_LOGISTIC_REGRESSION,
    LogisticRegressionParameters,
    ModelArtifact,
    ModelRegistry,
    registry_root,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def streaming_jobs(local_runtime: PlatformConfig) -> Iterator[PlatformConfig]:
    cfg = local_runtime
    generator.ensure_topics(cfg, names.ALL_TOPICS)
    flink_ops.deploy(cfg, names.JOB_FRAUD_SCORING)
    flink_ops.deploy(cfg, names.JOB_LAKE_INGEST, ["--checkpoint-interval-ms", "2000"])
    yield cfg
    for job in flink_ops.JOBS:
        flink_ops.cancel(cfg, job)


def _end_offsets(cfg: PlatformConfig, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": f"offsets-{uuid.uuid4().hex}"})
    metadata = consumer.list_topics(topic, timeout=10)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.topics[topic].partitions
    }
    consumer.close()
    return ends


def _read_committed(cfg: PlatformConfig, topic: str, since: dict[int, int], idle_s: float = 5.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": cfg.kafka_bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
    messages: list[Any] = []
    last = time.monotonic()
    while time.monotonic() - last < idle_s:
        for message in consumer.consume(500, 0.5):
            if not message.error():
                messages.append(message)
                last = time.monotonic()
    consumer.close()
    return messages


def _txn_id(value: bytes) -> str | None:
    try:
        return str(json.loads(value)["txn_id"])
    except (ValueError, KeyError, TypeError):
        return None  # a malformed record has no usable txn_id


def _raw_table(cfg: PlatformConfig, table: str) -> list[dict[str, Any]]:
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    return catalog.load_table(table).scan().to_arrow().to_pylist()


def _wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            assert result, f"timed out after {timeout_s:.0f}s waiting for {what}"
            return result
        time.sleep(2)


def test_produced_equals_landed_exactly_once(streaming_jobs: PlatformConfig) -> None:
    cfg = streaming_jobs
    transactions_start = _end_offsets(cfg, names.TOPIC_TRANSACTIONS)
    alerts_start = _end_offsets(cfg, names.TOPIC_FRAUD_ALERTS)
    decisions_start = _end_offsets(cfg, names.TOPIC_FRAUD_DECISIONS)
    dlq_start = _end_offsets(cfg, names.TOPIC_TRANSACTIONS_DLQ)
    report = generator.produce(cfg, rate=300, duration_s=10, seed=7, late_fraction=0.05, malformed_fraction=0.05)
    valid = set(report.txn_ids_valid)
    assert report.counts["malformed"] > 0 and report.counts["late"] > 0 and len(valid) > 2000

    def landed() -> list[dict[str, Any]] | None:
        rows = [r for r in _raw_table(cfg, names.RAW_TRANSACTIONS) if r["txn_id"] in valid]
        return rows if {r["txn_id"] for r in rows} == valid else None

    rows = _wait_for(landed, 120, "every valid txn_id in raw.transactions")
    assert len(rows) == len(valid), "a txn_id landed more than once"

    def ours(row: dict[str, Any]) -> bool:
        """A DLQ row of this run: from `transactions`, at or after the offsets taken before producing."""
        return bool(
            row["source_topic"] == names.TOPIC_TRANSACTIONS
            and row["source_offset"] >= transactions_start[row["source_partition"]]
        )

    def dead_lettered() -> list[dict[str, Any]] | None:
        found = [r for r in _raw_table(cfg, names.RAW_TRANSACTIONS_DLQ) if ours(r)]
        return found if len(found) >= report.counts["malformed"] else None

    dlq_rows = _wait_for(dead_lettered, 120, "every malformed record in raw.transactions_dlq")
    assert len(dlq_rows) == report.counts["malformed"]
    assert all(r["reason"] for r in dlq_rows)
    assert len(valid) + len(dlq_rows) == report.counts["valid"] + report.counts["late"] + report.counts["malformed"]

    dlq_topic = [json.loads(m.value()) for m in _read_committed(cfg, names.TOPIC_TRANSACTIONS_DLQ, dlq_start)]
    assert len([d for d in dlq_topic if ours(d)]) == report.counts["malformed"], "DLQ topic: exactly once"

    # fraud_scoring resumes from its consumer group's offsets, so it may still be scoring records other tests
    # put on the shared topic before this one started: alerts for those are theirs. Of this run's records,
    # only valid ones may alert.
    earlier = {
        _txn_id(m.value())
        for m in _read_committed(cfg, names.TOPIC_TRANSACTIONS, dict.fromkeys(transactions_start, 0), idle_s=2.0)
        if m.offset() < transactions_start[m.partition()]
    }
    alerts = [
        json.loads(m.value())
        for m in _read_committed(cfg, names.TOPIC_FRAUD_ALERTS, alerts_start)
        if json.loads(m.value())["txn_id"] not in earlier
    ]
    alert_ids = [a["txn_id"] for a in alerts]
    assert alert_ids, "fraud patterns were injected: some must alert"
    assert set(alert_ids) <= valid, "alerts only for scored (valid) transactions"
    assert len(alert_ids) == len(set(alert_ids)), "an alert was delivered twice to a read-committed consumer"
    assert all(0.0 <= a["score"] <= 1.0 and a["reasons"] for a in alerts)

    # Every valid transaction decided (at least once: deduplicated on txn_id), nothing else.
    decided: dict[str, dict[str, Any]] = {}
    for message in read_committed(cfg, names.TOPIC_FRAUD_DECISIONS, decisions_start):
        record = json.loads(message.value())
        if record["txn_id"] not in earlier:
            decided.setdefault(record["txn_id"], record)
    assert set(decided) == valid, "every valid transaction has a decision, and only those"
    assert {d["decision"] for d in decided.values()} >= {"approve", "review"}
    assert {a["txn_id"] for a in alerts} == {t for t, d in decided.items() if d["score"] >= 0.5}
    # Served features: what the Python definitions compute for the same arrivals (each card's records in
    # its partition's offset order), out-of-order and late events included.
    arrivals = sorted(
        (m for m in read_committed(cfg, names.TOPIC_TRANSACTIONS, transactions_start)),
        key=lambda m: (m.partition(), m.offset()),
    )
    python = ArrivalDecider()
    compared = 0
    for message in arrivals:
        txn, _ = events.parse_transaction(message.value())
        if txn is None:
            continue
        served = decided[txn.txn_id]
        expected = python.decide(txn, served["scored_at"], None)
        assert served["features"] == expected.features, txn.txn_id
        compared += 1
    assert compared == len(valid)

    def landed_decisions() -> set[str] | None:
        ids = {r["txn_id"] for r in _raw_table(cfg, names.RAW_FRAUD_DECISIONS)} & valid
        return ids if ids == valid else None

    _wait_for(landed_decisions, 120, "every decision in raw.fraud_decisions")


def test_maintenance_compacts_what_flink_wrote_and_keeps_the_data(streaming_jobs: PlatformConfig, spark: Any) -> None:
    """lake_ingest commits files at every checkpoint; Spark's maintenance job bin-packs them."""
    from datetime import UTC, datetime, timedelta

    from spark_jobs import maintenance

    cfg = streaming_jobs
    # Bursts further apart than lake_ingest's checkpoint interval (2 s): each lands in a commit of its own.
    produced: set[str] = set()
    for burst in range(4):
        produced |= set(generator.produce(cfg, rate=100, duration_s=1, seed=500 + burst).txn_ids_valid)
        time.sleep(3)
    _wait_for(
        lambda: produced <= {r["txn_id"] for r in _raw_table(cfg, names.RAW_TRANSACTIONS)}, 120, "the bursts landed"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    table = f"{cfg.catalog.name}.{names.RAW_TRANSACTIONS}"
    report = maintenance.maintain(spark, table, now - timedelta(hours=1), 5, now - timedelta(days=1))
    assert report["before"]["data_files"] >= 4, "lake_ingest commits files at every checkpoint"
    assert report["after"]["data_files"] < report["before"]["data_files"]
    assert report["content_unchanged"], report
    # raw.fraud_decisions logs the served features as a map: compacted and checked the same way.
    decisions = maintenance.maintain(
        spark, f"{cfg.catalog.name}.{names.RAW_FRAUD_DECISIONS}", now - timedelta(hours=1), 5, now - timedelta(days=1)
    )
    assert decisions["content_unchanged"] and decisions["rows_and_checksum_after"][0] > 0, decisions


def test_newly_promoted_model_is_picked_up_without_restart(streaming_jobs: PlatformConfig) -> None:
    cfg = streaming_jobs
    job_before = flink_ops.active_job(cfg, names.JOB_FRAUD_SCORING)
    registry = ModelRegistry(registry_root(cfg))
    version = f"test-always-alert-{uuid.uuid4().hex[:6]}"
    # A model that scores every transaction ~1.0: its version must appear on alerts once it is picked up.
    artifact = ModelArtifact(
        model_version=version,
        kind=KIND_LOGISTIC_REGRESSION,
        feature_names=("log1p_amount",),
        feature_spec_version=FEATURE_SPEC_VERSION,
        parameters=LogisticRegressionParameters(means=(0.0,), stds=(1.0,), coefficients=(0.0,), intercept=20.0),
        threshold=0.5,
        code_version="test",
        created_at="2026-11-24T00:00:00Z",
    )
    registry.register(artifact)
    registry.promote(version)
    alerts_start = _end_offsets(cfg, names.TOPIC_FRAUD_ALERTS)
    time.sleep(3)  # the job reads the champion pointer at every checkpoint (each second)
    generator.produce(cfg, rate=100, duration_s=5, seed=99)
    alerts = [json.loads(m.value()) for m in _read_committed(cfg, names.TOPIC_FRAUD_ALERTS, alerts_start)]
    assert any(a["model_version"] == version for a in alerts), {a["model_version"] for a in alerts}
    job_after = flink_ops.active_job(cfg, names.JOB_FRAUD_SCORING)
    assert job_before and job_after and job_before.job_id == job_after.job_id, "the job must not restart"


def _promote_constant_model(cfg: PlatformConfig, intercept: float) -> str:
    registry = ModelRegistry(registry_root(cfg))
    version = f"test-constant-{uuid.uuid4().hex[:6]}"
    registry.register(
        ModelArtifact(
            model_version=version,
            kind=KIND_LOGISTIC_REGRESSION,
            feature_names=("log1p_amount",),
            feature_spec_version=FEATURE_SPEC_VERSION,
            parameters=LogisticRegressionParameters(
                means=(0.0,), stds=(1.0,), coefficients=(0.0,), intercept=intercept
            ),
            threshold=0.99,
            code_version="test",
            created_at="2026-12-04T00:00:00Z",
        )
    )
    registry.promote(version)
    return version


def test_a_restore_replays_the_same_decisions_with_the_model_they_were_made_with(
    streaming_jobs: PlatformConfig,
) -> None:
    """Decisions after a checkpoint are replayed on restore; the model in force is part of the checkpoint."""
    cfg = streaming_jobs
    first = _promote_constant_model(cfg, -2.0)
    time.sleep(3)  # in force from the next checkpoint
    savepoint = flink_ops.savepoint(cfg, names.JOB_FRAUD_SCORING)
    decisions_start = _end_offsets(cfg, names.TOPIC_FRAUD_DECISIONS)
    report = generator.produce(cfg, rate=100, duration_s=3, seed=123)
    time.sleep(3)
    second = _promote_constant_model(cfg, 2.0)  # a restore must not score the replay with this one
    flink_ops.cancel(cfg, names.JOB_FRAUD_SCORING)
    _wait_for(lambda: flink_ops.active_job(cfg, names.JOB_FRAUD_SCORING) is None, 60, "the job to stop")
    # A long checkpoint interval: the whole replay is decided before the first checkpoint after the restore.
    flink_ops.restore(cfg, names.JOB_FRAUD_SCORING, from_path=savepoint, args=["--checkpoint-interval-ms", "20000"])
    ours = set(report.txn_ids_valid)

    def twice() -> dict[str, list[dict[str, Any]]] | None:
        by_txn: dict[str, list[dict[str, Any]]] = {}
        for message in read_committed(cfg, names.TOPIC_FRAUD_DECISIONS, decisions_start):
            record = json.loads(message.value())
            if record["txn_id"] in ours:
                by_txn.setdefault(record["txn_id"], []).append(record)
        return by_txn if len(by_txn) == len(ours) and all(len(v) >= 2 for v in by_txn.values()) else None

    by_txn = _wait_for(twice, 120, "every decision of the replayed traffic twice")
    for copies in by_txn.values():
        original, replayed = copies[0], copies[-1]
        assert original["model_version"] == replayed["model_version"] == first != second
        same = ("score", "decision", "reasons", "features", "source_partition", "source_offset")
        assert {k: original[k] for k in same} == {k: replayed[k] for k in same}
    # Back to the deployment's own arguments for the tests that follow.
    flink_ops.stop(cfg, names.JOB_FRAUD_SCORING)
    flink_ops.restore(cfg, names.JOB_FRAUD_SCORING, args=[])


def test_stop_with_savepoint_and_restore(streaming_jobs: PlatformConfig) -> None:
    cfg = streaming_jobs
    location = flink_ops.stop(cfg, names.JOB_FRAUD_SCORING)
    assert location.startswith("file:")
    assert flink_ops.active_job(cfg, names.JOB_FRAUD_SCORING) is None
    info, restored_from = flink_ops.restore(cfg, names.JOB_FRAUD_SCORING, args=[])
    assert info.state == "RUNNING"
    assert restored_from == location
    assert flink_ops.deployments(cfg, names.JOB_FRAUD_SCORING)[-1]["restored_from"] == location
