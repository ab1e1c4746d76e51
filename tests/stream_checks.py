"""Reading back what the streaming path wrote to Kafka, as a downstream consumer would (shared by tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hybrid_platform.config import PlatformConfig


def read_committed(cfg: PlatformConfig, topic: str, since: dict[int, int], timeout_s: float = 90) -> list[Any]:
    """Every committed record from ``since`` up to the end of each partition (read committed: what any
    downstream consumer sees; an aborted transaction's records never show). Ends when each partition has
    reported reaching its end once, so the result is a snapshot, not a wait for more."""
    consumer = Consumer(
        {
            **cfg.kafka_client("observer"),
            "group.id": f"hdp-check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.message.max.bytes": 4 * 1024 * 1024,  # the DLQ keeps records up to ~1 MB whole
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
    messages: list[Any] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while at_end != set(since):
            assert time.monotonic() < deadline, f"{topic}: did not reach the end of every partition in {timeout_s} s"
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is None:
                    messages.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
    finally:
        consumer.close()
    return messages
