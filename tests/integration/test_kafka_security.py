"""Kafka with TLS, SCRAM and ACLs on (``HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl``), on a broker of its own.

Each platform principal can do what ``kafka_auth.PRINCIPALS`` grants it and nothing else; a client without
credentials, with a wrong password or without TLS gets nothing. (The chaos suite runs the whole streaming
path, both Flink jobs included, on such a broker.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from hybrid_platform import config, generator, jars, names, runtime

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[config.PlatformConfig]:
    home = tmp_path_factory.mktemp("kafka-sasl")
    env = {**runtime.private_env(home), "HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "HDP_AIRFLOW_PASSWORD": "x" * 20}
    cfg = config.load(env)
    jars.ensure_all(cfg.jar_cache)
    try:
        runtime.up(cfg, only=["kafka"], echo=lambda line: None)
        generator.ensure_topics(cfg, names.ALL_TOPICS)
        yield cfg
    finally:
        runtime.down(cfg, echo=lambda line: None)


def _produce(cfg: config.PlatformConfig, principal: str, topic: str) -> Any:
    """The delivery error of one record sent as ``principal`` (None: written)."""
    outcome: list[Any] = []
    producer = Producer(cfg.kafka_client(principal, log_level=0, **{"message.timeout.ms": 10000}))
    producer.produce(topic, b'{"probe": true}', on_delivery=lambda error, message: outcome.append(error))
    producer.flush(15)
    assert outcome, f"no delivery report for {principal} -> {topic}"
    return outcome[0]


def _consume(cfg: config.PlatformConfig, principal: str, topic: str, group: str) -> Any:
    """The first error or record value ``principal`` gets reading ``topic`` in ``group``."""
    consumer = Consumer(
        cfg.kafka_client(principal, log_level=0, **{"group.id": group, "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    try:
        for _ in range(20):
            message = consumer.poll(1.0)
            if message is not None:
                return message.error() or message.value()
        return None
    finally:
        consumer.close()


def test_clients_without_valid_credentials_get_nothing(secured: config.PlatformConfig) -> None:
    cfg = secured
    wrong = "not-the-password"  # pragma: allowlist secret (a wrong one)
    attempts = {
        "plaintext": {"bootstrap.servers": cfg.kafka_bootstrap},
        "wrong password": {**cfg.kafka_client("observer"), "sasl.password": wrong},
        "no TLS": {**cfg.kafka_client("observer"), "security.protocol": "SASL_PLAINTEXT"},
        "unknown CA": {**cfg.kafka_client("observer"), "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt"},
    }
    for settings in attempts.values():
        with pytest.raises(KafkaException):
            AdminClient({**settings, "log_level": 0}).list_topics(timeout=4)
    assert (
        names.TOPIC_TRANSACTIONS in AdminClient(cfg.kafka_client("admin", log_level=0)).list_topics(timeout=10).topics
    )


def test_each_principal_may_do_what_it_is_granted_and_nothing_more(secured: config.PlatformConfig) -> None:
    cfg = secured
    denied_topic = KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The generator's principal sends transactions and labels, and nothing else.
    assert _produce(cfg, "producer", names.TOPIC_TRANSACTIONS) is None
    assert _produce(cfg, "producer", names.TOPIC_FRAUD_LABELS) is None
    assert _produce(cfg, "producer", names.TOPIC_FRAUD_ALERTS).code() == denied_topic, "forged alert"
    # The scoring job writes its outputs; it cannot forge transactions.
    assert _produce(cfg, "fraud-scoring", names.TOPIC_FRAUD_DECISIONS) is None
    assert _produce(cfg, "fraud-scoring", names.TOPIC_TRANSACTIONS).code() == denied_topic
    # Readers read, in their own groups, and write nothing.
    assert _produce(cfg, "observer", names.TOPIC_FRAUD_LABELS).code() == denied_topic, "poisoned labels"
    assert _produce(cfg, "lake-ingest", names.TOPIC_TRANSACTIONS).code() == denied_topic
    assert _consume(cfg, "observer", names.TOPIC_TRANSACTIONS, f"hdp-{uuid.uuid4().hex}") == b'{"probe": true}'
    assert _consume(cfg, "lake-ingest", names.TOPIC_TRANSACTIONS, names.JOB_LAKE_INGEST) == b'{"probe": true}'
    stolen = _consume(cfg, "producer", names.TOPIC_TRANSACTIONS, f"hdp-{uuid.uuid4().hex}")
    assert isinstance(stolen, KafkaError) and stolen.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    hijack = _consume(cfg, "observer", names.TOPIC_TRANSACTIONS, names.JOB_FRAUD_SCORING)
    assert isinstance(hijack, KafkaError), "the observer cannot join (and move) the scoring job's group"
    # No platform principal but the admin deletes a topic.
    for principal in ("fraud-scoring", "lake-ingest", "producer", "observer"):
        admin = AdminClient(cfg.kafka_client(principal, log_level=0))
        future = admin.delete_topics([names.TOPIC_TRANSACTIONS], operation_timeout=10)[names.TOPIC_TRANSACTIONS]
        with pytest.raises(KafkaException, match="AUTHORIZATION"):
            future.result(15)
    assert (
        names.TOPIC_TRANSACTIONS in AdminClient(cfg.kafka_client("admin", log_level=0)).list_topics(timeout=10).topics
    )


def test_the_brokers_secrets_stay_in_private_files(secured: config.PlatformConfig) -> None:
    cfg = secured
    state = runtime.running(cfg, "kafka")
    assert state is not None
    argv = Path(f"/proc/{state.pid}/cmdline").read_bytes().decode(errors="replace")
    for principal, password in cfg.kafka_security.passwords:
        assert password not in argv, f"{principal}'s password in the broker's argv"
    for path in (cfg.home / "kafka" / "server.properties", config.kafka_ca_file(cfg.home).parent / "broker.pem"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert not (cfg.home / "kafka" / "format.args").exists(), "the format step's argument file is removed"


def test_a_restart_keeps_users_and_acls_and_refuses_a_protocol_switch(secured: config.PlatformConfig) -> None:
    cfg = secured
    runtime.down(cfg, echo=lambda line: None)
    plain = config.load({**_env_of(cfg), "HDP_KAFKA_SECURITY_PROTOCOL": "plaintext"})
    with pytest.raises(runtime.RuntimeFailure, match="created with HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl"):
        runtime.up(plain, only=["kafka"], echo=lambda line: None)
    runtime.up(cfg, only=["kafka"], echo=lambda line: None)
    assert _produce(cfg, "producer", names.TOPIC_TRANSACTIONS) is None
    assert _produce(cfg, "producer", names.TOPIC_FRAUD_ALERTS).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _env_of(cfg: config.PlatformConfig) -> dict[str, str]:
    return {
        "HDP_HOME": str(cfg.home),
        "HDP_KAFKA_PORT": str(cfg.ports.kafka),
        "HDP_KAFKA_CONTROLLER_PORT": str(cfg.ports.kafka_controller),
        "HDP_AIRFLOW_PASSWORD": "x" * 20,
    }


def test_hdp_kafka_setup_applies_topics_users_and_acls_idempotently(secured: config.PlatformConfig) -> None:
    """What a cluster's setup Job runs (as the admin principal): the same table, applied again, changes nothing."""
    env = {**os.environ, **_env_of(secured), "HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hdp"), "kafka", "setup"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "topics: all present" in result.stdout
    assert "hdp-fraud-scoring" in result.stdout and "hdp-broker" not in result.stdout
    assert _produce(secured, "producer", names.TOPIC_FRAUD_ALERTS).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_demos_round_trip_works_with_acls_on(secured: config.PlatformConfig) -> None:
    """`hdp demo`'s first step: its topic is created by the admin, the producer writes, the observer reads."""
    from hybrid_platform import demo

    assert demo.kafka_round_trip(secured, messages=20) == {"topic": names.TOPIC_SMOKE, "produced": 20, "consumed": 20}
