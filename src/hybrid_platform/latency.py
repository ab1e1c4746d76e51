"""End-to-end latency as a user sees it, by guarantee: decisions (at least once) and alerts (exactly once).

Both start at the transaction's Kafka timestamp: the time its producer sent it (CreateTime; the generator
stamps the *scheduled* send time, so queueing anywhere is counted, not hidden). Each decision carries that
time (``source_ts``) and is stamped by the broker when appended (``fraud_decisions`` uses LogAppendTime):
**decision latency** = append time - send time, however late this reader gets to it. **Alert latency** =
the moment a read-committed reader here received the alert - send time: exactly-once alerts become
visible only when the scoring job's checkpoint commits their Kafka transaction.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from hybrid_platform import names
from hybrid_platform.config import PlatformConfig


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (no interpolation: a reported p99 is a real sample)."""
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Percentiles:
    samples: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, values: list[float]) -> Percentiles:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None)
        return cls(
            len(ordered),
            percentile(ordered, 0.50),
            percentile(ordered, 0.99),
            percentile(ordered, 0.999),
            ordered[-1],
        )

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        return (
            f"p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, p99.9 {self.p999_ms:.0f} ms, "
            f"max {self.max_ms:.0f} ms over {self.samples:,}"
        )


@dataclass(frozen=True)
class LatencyReport:
    duration_s: float
    decisions_seen: int
    alerts_seen: int
    decision: Percentiles  # at least once
    alert: Percentiles  # exactly once, read committed

    @property
    def throughput_per_s(self) -> float:
        return self.decisions_seen / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "throughput_per_s": round(self.throughput_per_s, 1)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyReport:
        """The report :meth:`to_dict` wrote (e.g. ``hdp latency --json`` in another process)."""
        return cls(
            float(data["duration_s"]),
            int(data["decisions_seen"]),
            int(data["alerts_seen"]),
            Percentiles(**data["decision"]),
            Percentiles(**data["alert"]),
        )

    def summary(self) -> str:
        return (
            f"decisions (at least once): {self.decision.summary()}; "
            f"alerts (exactly once, read committed): {self.alert.summary()}; "
            f"{self.throughput_per_s:,.0f} decisions/s"
        )


def consumer_from(cfg: PlatformConfig, topic: str, start_ms: int, read_committed: bool, lazy: bool = False) -> Any:
    """A consumer of ``topic`` from the first record at or after ``start_ms``.

    ``lazy``: large, rare fetches, for records whose latency the broker stamped (reading them later changes
    nothing measured, and costs the broker less); otherwise each record is fetched as soon as it is there.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            **cfg.kafka_client("observer"),
            "group.id": f"latency-{topic}-{start_ms}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            **({"fetch.min.bytes": 65536, "fetch.wait.max.ms": 200} if lazy else {"fetch.wait.max.ms": 5}),
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
    decisions_topic: str = names.TOPIC_FRAUD_DECISIONS,
    alerts_topic: str = names.TOPIC_FRAUD_ALERTS,
) -> LatencyReport:
    """Read decisions and alerts for ``duration_s`` (+ ``grace_s`` for the last ones) and time both."""
    start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
    decided: dict[str, int] = {}  # txn_id -> send time, first copy (the topic is at least once)
    decision_latencies: list[float] = []
    alert_seen_at: dict[str, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def read_decisions() -> None:
        consumer = consumer_from(cfg, decisions_topic, start_ms, read_committed=False, lazy=True)
        try:
            while not stop.is_set():
                for message in consumer.consume(1000, 0.2):
                    if message.error():
                        continue
                    record = json.loads(message.value())
                    with lock:
                        if record["txn_id"] in decided:
                            continue
                        decided[record["txn_id"]] = record["source_ts"]
                        decision_latencies.append(message.timestamp()[1] - record["source_ts"])
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

    threads = [threading.Thread(target=read_decisions, daemon=True), threading.Thread(target=read_alerts, daemon=True)]
    for thread in threads:
        thread.start()
    time.sleep(duration_s + grace_s)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    with lock:
        alert_latencies = [seen - decided[txn] for txn, seen in alert_seen_at.items() if txn in decided]
        return LatencyReport(
            duration_s=duration_s,
            decisions_seen=len(decided),
            alerts_seen=len(alert_seen_at),
            decision=Percentiles.of(decision_latencies),
            alert=Percentiles.of(alert_latencies),
        )
