"""Who talks to Kafka, as whom, allowed to do what: one definition, rendered for every client.

By default the local Kafka is PLAINTEXT on loopback (``HDP_KAFKA_SECURITY_PROTOCOL=plaintext``: a laptop's
demo). With ``sasl_ssl`` every client connects over TLS and authenticates with SCRAM-SHA-512 as one of the
platform's principals below, and the broker grants each principal only its ACLs: the scoring job may read
``transactions`` and write its outputs, not delete a topic or read another job's transactions. The same
table renders librdkafka settings (CLI, generator, latency, reconcile, DAG checks), Java client properties
(Flink's Kafka connector, the Java operators, Spark's Kafka source) and the broker's ACLs.

Pure standard library: the Flink environment imports it to build its jobs' Kafka tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybrid_platform import names
from hybrid_platform.sql_text import sql_literal

SCRAM = "SCRAM-SHA-512"
PLAINTEXT = "plaintext"
SASL_SSL = "sasl_ssl"
PROTOCOLS = (PLAINTEXT, SASL_SSL)
#: Flink's SQL connector jar shades the Kafka client, login modules included.
FLINK_SHADED = "org.apache.flink.kafka.shaded."


@dataclass(frozen=True)
class Grant:
    """One ACL: ``operation`` on the ``resource`` (topic, group, transactional_id) named (or prefixed) ``name``."""

    operation: str  # READ (implies DESCRIBE), WRITE (implies DESCRIBE), DESCRIBE
    resource: str
    name: str
    prefixed: bool = False


@dataclass(frozen=True)
class Principal:
    name: str
    purpose: str
    grants: tuple[Grant, ...] = ()
    #: Super users bypass ACLs: the broker itself and the admin that creates topics, users and ACLs.
    super_user: bool = False

    @property
    def username(self) -> str:
        return f"hdp-{self.name}"

    @property
    def password_variable(self) -> str:
        return "HDP_KAFKA_PASSWORD_" + self.name.upper().replace("-", "_")


def _read(*topics: str) -> tuple[Grant, ...]:
    return tuple(Grant("READ", "topic", t) for t in topics)


def _write(*topics: str) -> tuple[Grant, ...]:
    return tuple(Grant("WRITE", "topic", t) for t in topics)


def _group(prefix: str, operation: str = "READ") -> Grant:
    return Grant(operation, "group", prefix, prefixed=True)


PRINCIPALS: tuple[Principal, ...] = (
    Principal("broker", "the broker's own connections to itself", super_user=True),
    Principal("admin", "creates topics, users and ACLs (hdp up, hdp flink deploy); health checks", super_user=True),
    Principal(
        "fraud-scoring",
        "the fraud_scoring Flink job: reads transactions, writes decisions, alerts (transactional) and dead letters",
        # READ on its own alerts: on a restore the exactly-once sink (pooled transactional ids) asks which
        # producers hold the alert partitions' transactions open, and DescribeProducers needs READ.
        _read(names.TOPIC_TRANSACTIONS, names.TOPIC_FRAUD_ALERTS)
        + _write(names.TOPIC_FRAUD_DECISIONS, names.TOPIC_FRAUD_ALERTS, names.TOPIC_TRANSACTIONS_DLQ)
        + (
            _group(names.JOB_FRAUD_SCORING),
            Grant("WRITE", "transactional_id", f"{names.JOB_FRAUD_SCORING}-", prefixed=True),
        ),
    ),
    Principal(
        "lake-ingest",
        "the lake_ingest Flink job: reads every platform topic into the lake",
        (*_read(*names.ALL_TOPICS), _group(names.JOB_LAKE_INGEST)),
    ),
    Principal(
        "producer",
        "sends transactions and labels (the generator, the demo, the benchmark's traffic)",
        _write(names.TOPIC_TRANSACTIONS, names.TOPIC_FRAUD_LABELS, names.TOPIC_SMOKE),
    ),
    Principal(
        "observer",
        "reads to measure and check: latency, reconciliation, consumer lag (the DAG's health checks), the demo",
        (
            *_read(*names.ALL_TOPICS, names.TOPIC_SMOKE, *names.SPARK_SCORING_TOPICS),
            _group("latency-"),
            _group("demo-"),
            _group("hdp-"),
            _group("bench-"),
            _group(names.JOB_FRAUD_SCORING, "DESCRIBE"),
            _group(names.JOB_LAKE_INGEST, "DESCRIBE"),
        ),
    ),
    Principal(
        "spark-scoring",
        "the Spark Structured Streaming scorer (the benchmark's comparison): reads transactions, writes its own topics",
        _read(names.TOPIC_TRANSACTIONS) + _write(*names.SPARK_SCORING_TOPICS) + (_group("spark-kafka-source"),),
    ),
)
BY_NAME = {p.name: p for p in PRINCIPALS}
#: The principal whose password the local runtime's controller listener uses (PLAIN: KRaft controllers
#: cannot check SCRAM, whose credentials live in the metadata they serve).
CONTROLLER_USER = "hdp-controller"


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients reach Kafka: ``protocol`` (plaintext | sasl_ssl), the CA that signed the broker's
    certificate (PEM), and the passwords of the principals this process may act as (by principal name)."""

    protocol: str = PLAINTEXT
    ca_file: str = ""
    passwords: tuple[tuple[str, str], ...] = ()

    @property
    def enabled(self) -> bool:
        return self.protocol == SASL_SSL

    def password(self, principal: str) -> str:
        found = dict(self.passwords).get(principal)
        if found is None:
            variable = BY_NAME[principal].password_variable
            raise KeyError(f"no Kafka password for principal {principal!r}; set {variable}")
        return found


def _principal(name: str) -> Principal:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown Kafka principal {name!r}; one of {', '.join(BY_NAME)}") from None


def librdkafka(bootstrap: str, security: KafkaSecurity, principal: str) -> dict[str, str]:
    """Settings for confluent-kafka's Producer, Consumer and AdminClient acting as ``principal``."""
    who = _principal(principal)
    settings = {"bootstrap.servers": bootstrap}
    if security.enabled:
        settings |= {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": SCRAM,
            "sasl.username": who.username,
            "sasl.password": security.password(principal),
            "ssl.ca.location": security.ca_file,
        }
    return settings


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def java(security: KafkaSecurity, principal: str, shaded: str = "") -> dict[str, str]:
    """Java Kafka client properties (without bootstrap) acting as ``principal``; ``shaded``: the package
    prefix of a client relocated inside a connector jar (``FLINK_SHADED``)."""
    who = _principal(principal)
    if not security.enabled:
        return {}
    module = f"{shaded}org.apache.kafka.common.security.scram.ScramLoginModule"
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": SCRAM,
        "sasl.jaas.config": (
            f"{module} required username={_jaas_quote(who.username)} "
            f"password={_jaas_quote(security.password(principal))};"
        ),
        # The CA as PEM: no keystore tool or keystore password on either side.
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": security.ca_file,
    }


def flink_sql_options(props: dict[str, str]) -> str:
    """Java client ``props`` as Kafka table options of Flink SQL's connector (``, 'properties.…' = '…'``)."""
    return "".join(f", {sql_literal('properties.' + k)} = {sql_literal(v)}" for k, v in props.items())


def spark_options(props: dict[str, str]) -> dict[str, str]:
    """Java client ``props`` as options of Spark's Kafka source and sink (``kafka.``-prefixed)."""
    return {f"kafka.{k}": v for k, v in props.items()}
