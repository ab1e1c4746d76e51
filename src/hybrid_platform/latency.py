"""End-to-end alert latency as a user sees it: transaction produced -> alert visible to a read-committed consumer.

Both ends are read from Kafka on this machine's clock: the transaction's produce time is its record
timestamp (CreateTime, stamped by the producer when it sent the record, so queueing in the pipeline is
counted, not hidden), and the alert's time is the moment this consumer received it, reading committed
only (what any downstream consumer would see, after fraud_scoring's checkpoint commits the transaction).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from hybrid_platform import names
from hybrid_platform.config import PlatformConfig


@dataclass(frozen=True)
class LatencyReport:
    duration_s: float
    transactions_seen: int
    alerts_seen: int
    alerts_matched: int
    throughput_tx_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.p50_ms is None:
            return f"no alerts matched in {self.duration_s:.0f}s ({self.transactions_seen} transactions seen)"
        return (
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms "
            f"over {self.alerts_matched} alerts; {self.throughput_tx_per_s:,.0f} transactions/s"
        )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (no interpolation: a reported p99 is a real sample)."""
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def consumer_from(cfg: PlatformConfig, topic: str, start_ms: int, read_committed: bool) -> Any:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": cfg.kafka_bootstrap,
            "group.id": f"latency-{topic}-{start_ms}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "fetch.wait.max.ms": 5,
            "log_level": 3,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p, start_ms) for p in metadata.topics[topic].partitions]
    # Start at the first record produced at or after start_ms; an empty partition starts at its end.
    offsets = consumer.offsets_for_times(partitions, timeout=10)
    consumer.assign([TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else -1) for tp in offsets])
    return consumer


def receive(consumer: Any, max_messages: int, timeout_s: float) -> list[Any]:
    """The messages waiting now, returning as soon as one is there (or after ``timeout_s`` with none).

    ``Consumer.consume(n, timeout)`` blocks until it has ``n`` messages *or* the timeout passed, so at a rate
    below ``n`` per timeout every receive time it reports is late by up to the timeout: measurement error
    that would be counted as latency.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)]


def measure(
    cfg: PlatformConfig,
    duration_s: float,
    start_ms: int | None = None,
    grace_s: float = 3.0,
    alerts_topic: str = names.TOPIC_FRAUD_ALERTS,
) -> LatencyReport:
    """Read both topics for ``duration_s`` (+ ``grace_s`` for the last alerts) and match alerts to transactions.

    ``alerts_topic`` selects the engine measured: Flink's ``fraud_alerts`` by default, or another job's
    alerts topic in the same contract (``spark_jobs.streaming_scoring`` writes ``fraud_alerts_spark``).
    """
    start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
    produced_at: dict[str, int] = {}
    alert_seen_at: dict[str, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def read_transactions() -> None:
        consumer = consumer_from(cfg, names.TOPIC_TRANSACTIONS, start_ms, read_committed=False)
        try:
            while not stop.is_set():
                for message in receive(consumer, 500, 0.1):
                    if message.error():
                        continue
                    try:
                        txn_id = json.loads(message.value())["txn_id"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a malformed record: it has no latency to measure
                    with lock:
                        produced_at[str(txn_id)] = message.timestamp()[1]
        finally:
            consumer.close()

    def read_alerts() -> None:
        consumer = consumer_from(cfg, alerts_topic, start_ms, read_committed=True)
        try:
            while not stop.is_set():
                for message in receive(consumer, 500, 0.05):
                    received = time.time() * 1000
                    if message.error():
                        continue
                    with lock:
                        alert_seen_at.setdefault(json.loads(message.value())["txn_id"], received)
        finally:
            consumer.close()

    threads = [
        threading.Thread(target=read_transactions, daemon=True),
        threading.Thread(target=read_alerts, daemon=True),
    ]
    for thread in threads:
        thread.start()
    time.sleep(duration_s + grace_s)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    with lock:
        # An alert seen before its transaction was produced answers an earlier run that reused the txn_id
        # (same generator seed): it is not a sample of this one.
        latencies = sorted(
            alert_seen_at[txn] - produced_at[txn]
            for txn in alert_seen_at
            if txn in produced_at and alert_seen_at[txn] >= produced_at[txn]
        )
        seen_transactions = len(produced_at)
        seen_alerts = len(alert_seen_at)
    return LatencyReport(
        duration_s=duration_s,
        transactions_seen=seen_transactions,
        alerts_seen=seen_alerts,
        alerts_matched=len(latencies),
        throughput_tx_per_s=seen_transactions / duration_s if duration_s else 0.0,
        p50_ms=percentile(latencies, 0.50) if latencies else None,
        p95_ms=percentile(latencies, 0.95) if latencies else None,
        p99_ms=percentile(latencies, 0.99) if latencies else None,
        max_ms=latencies[-1] if latencies else None,
    )
