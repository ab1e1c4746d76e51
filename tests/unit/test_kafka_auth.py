"""Kafka security as configured: every principal's settings for each client library, and the broker's listeners."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid_platform import config, kafka_admin, kafka_auth, names, runtime


def _cfg(tmp_path: Path, **extra: str) -> config.PlatformConfig:
    return config.load({"HDP_HOME": str(tmp_path), "HDP_AIRFLOW_PASSWORD": "x" * 20, **extra})


def test_plaintext_by_default_gives_only_the_bootstrap(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert not cfg.kafka_security.enabled
    assert cfg.kafka_client("producer") == {"bootstrap.servers": cfg.kafka_bootstrap}
    assert cfg.kafka_java("fraud-scoring") == {}
    assert not (tmp_path / "secrets" / "kafka-producer").exists()


def test_sasl_ssl_locally_generates_a_private_password_per_principal(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, HDP_KAFKA_SECURITY_PROTOCOL="sasl_ssl")
    client = cfg.kafka_client("producer", log_level=0)
    assert client["security.protocol"] == "SASL_SSL"
    assert client["sasl.mechanism"] == "SCRAM-SHA-512"
    assert client["sasl.username"] == "hdp-producer"
    assert client["ssl.ca.location"] == str(config.kafka_ca_file(tmp_path))
    assert client["log_level"] == 0
    password = (tmp_path / "secrets" / "kafka-producer").read_text().strip()
    assert client["sasl.password"] == password and len(password) >= 16
    assert (tmp_path / "secrets" / "kafka-producer").stat().st_mode & 0o077 == 0
    assert (
        config.load({"HDP_HOME": str(tmp_path), "HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}).kafka_client("producer")[
            "sasl.password"
        ]
        == password
    ), "generated once, then stable"
    others = {cfg.kafka_client(p.name)["sasl.password"] for p in kafka_auth.PRINCIPALS}
    assert len(others) == len(kafka_auth.PRINCIPALS), "each principal has a password of its own"


def test_the_state_folder_remembers_how_its_broker_was_made(tmp_path: Path) -> None:
    config.kafka_protocol_record(tmp_path).parent.mkdir(parents=True)
    config.kafka_protocol_record(tmp_path).write_text("sasl_ssl")
    assert _cfg(tmp_path).kafka_security.enabled, "unset: what the local broker listens with"
    assert not _cfg(tmp_path, HDP_KAFKA_SECURITY_PROTOCOL="plaintext").kafka_security.enabled


def test_java_and_flink_sql_and_spark_renderings_escape_what_they_quote(tmp_path: Path) -> None:
    security = kafka_auth.KafkaSecurity(
        kafka_auth.SASL_SSL, "/ca.pem", (("fraud-scoring", "pa\"ss\\wo'rd-0123456789"),)
    )
    props = kafka_auth.java(security, "fraud-scoring", shaded=kafka_auth.FLINK_SHADED)
    assert props["sasl.jaas.config"] == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="hdp-fraud-scoring" password="pa\\"ss\\\\wo\'rd-0123456789";'  # pragma: allowlist secret (test-only)
    )
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == "/ca.pem"
    sql = kafka_auth.flink_sql_options(props)
    assert "'properties.security.protocol' = 'SASL_SSL'" in sql
    assert "password=\"pa\\\"ss\\\\wo''rd" in sql, "a quote inside a SQL literal is doubled"
    assert kafka_auth.spark_options(props)["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    with pytest.raises(KeyError, match="HDP_KAFKA_PASSWORD_LAKE_INGEST"):
        kafka_auth.java(security, "lake-ingest")
    with pytest.raises(ValueError, match="unknown Kafka principal"):
        kafka_auth.librdkafka("x:1", security, "nobody")


def test_on_a_cluster_a_process_holds_only_the_passwords_it_is_given(tmp_path: Path) -> None:
    strong = "s" * 32
    env = {
        "HDP_ENV": "cluster",
        "HDP_HOME": str(tmp_path),
        "HDP_AIRFLOW_PASSWORD": strong,
        "HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "HDP_KAFKA_CA_FILE": "/etc/kafka-ca/ca.crt",
        "HDP_KAFKA_PASSWORD_LAKE_INGEST": strong,
    }
    cfg = config.load(env)
    assert cfg.kafka_java("lake-ingest")["ssl.truststore.location"] == "/etc/kafka-ca/ca.crt"
    with pytest.raises(config.ConfigError, match="HDP_KAFKA_PASSWORD_ADMIN"):
        cfg.kafka_client("admin")
    assert not (tmp_path / "secrets").exists(), "nothing generated on a cluster"
    assert not kafka_admin.admin_available(cfg), "an Airflow worker deploys jobs without creating topics"
    assert kafka_admin.admin_available(config.load({**env, "HDP_KAFKA_PASSWORD_ADMIN": strong}))
    with pytest.raises(config.ConfigError, match="HDP_KAFKA_CA_FILE"):
        config.load({k: v for k, v in env.items() if k != "HDP_KAFKA_CA_FILE"})
    with pytest.raises(config.ConfigError, match="HDP_KAFKA_PASSWORD_LAKE_INGEST"):
        config.load({**env, "HDP_KAFKA_PASSWORD_LAKE_INGEST": "change-me"})  # pragma: allowlist secret (a placeholder)
    with pytest.raises(config.ConfigError, match="HDP_KAFKA_SECURITY_PROTOCOL"):
        config.load({**env, "HDP_KAFKA_SECURITY_PROTOCOL": "ssl-please"})


def test_every_grant_names_a_platform_resource() -> None:
    topics = {*names.ALL_TOPICS, names.TOPIC_SMOKE, *names.SPARK_SCORING_TOPICS}
    for principal in kafka_auth.PRINCIPALS:
        assert principal.super_user or principal.grants, principal.name
        for grant in principal.grants:
            assert grant.operation in {"READ", "WRITE", "DESCRIBE"}
            if grant.resource == "topic":
                assert grant.name in topics and not grant.prefixed, (principal.name, grant)
            else:
                assert grant.resource in {"group", "transactional_id"}, grant
    scoring = kafka_auth.BY_NAME["fraud-scoring"]
    assert not scoring.super_user
    assert {g.name for g in scoring.grants if g.operation == "WRITE" and g.resource == "topic"} == {
        names.TOPIC_FRAUD_ALERTS,
        names.TOPIC_FRAUD_DECISIONS,
        names.TOPIC_TRANSACTIONS_DLQ,
    }
    assert [p.name for p in kafka_auth.PRINCIPALS if p.super_user] == ["broker", "admin"]


def test_the_secured_broker_has_no_plaintext_listener_and_denies_by_default(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, HDP_KAFKA_SECURITY_PROTOCOL="sasl_ssl")
    props = runtime.kafka_server_properties(cfg)
    assert "PLAINTEXT" not in props["listeners"] and "PLAINTEXT:" not in props["listener.security.protocol.map"]
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:hdp-broker;User:hdp-admin;User:hdp-controller"
    plain = runtime.kafka_server_properties(_cfg(tmp_path / "plain"))
    assert plain["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
