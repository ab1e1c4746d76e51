"""A Kafka client the project did not write (librdkafka via confluent-kafka) works against the broker."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hybrid_platform.config import PlatformConfig

pytestmark = pytest.mark.integration


def _consume_all(bootstrap: str, topic: str, expected: int, isolation: str) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and not message.error():
            values.append(message.value())
        elif len(values) >= expected:
            break  # everything expected arrived and a poll came back empty: nothing more is coming
    consumer.close()
    return values


def test_produce_and_consume(local_runtime: PlatformConfig) -> None:
    bootstrap = local_runtime.kafka_bootstrap
    topic = f"test_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep a reference while the future resolves
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(500):
        producer.produce(topic, key=str(i % 7), value=f"event-{i}")
    assert producer.flush(30) == 0
    values = _consume_all(bootstrap, topic, 500, "read_committed")
    assert sorted(values) == sorted(f"event-{i}".encode() for i in range(500))


def test_transactions_hide_aborted_records(local_runtime: PlatformConfig) -> None:
    """Exactly-once sinks rely on broker transactions; a single KRaft node must support them."""
    bootstrap = local_runtime.kafka_bootstrap
    topic = f"test_tx_{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted")
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)
    assert _consume_all(bootstrap, topic, 1, "read_committed") == [b"committed"]
    assert sorted(_consume_all(bootstrap, topic, 2, "read_uncommitted")) == [b"aborted", b"committed"]


def test_unknown_broker_fails_clearly() -> None:
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "x", "socket.timeout.ms": 1000})
    with pytest.raises(KafkaException):
        consumer.committed([TopicPartition("t", 0)], timeout=2)
    consumer.close()
