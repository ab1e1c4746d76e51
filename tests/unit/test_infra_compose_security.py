"""Compose's security properties: the object store's root user, scoped S3 users, the Airflow auth manager, and
Kafka: SASL_SSL on every listener with deny by default, the CA at one path in every client container, each
container with the passwords of its own principals only, `hdp kafka setup` for topics, users and ACLs."""

from __future__ import annotations

import json
import re

import pytest

# Generated projects without infra/ have no test_infra.py either (copier.yml).
pytest.importorskip("test_infra", reason="this project has no infra/ (generated target)")
from test_infra import (
    COMPOSE_DIR,
    kafka_broker_problems,
    kafka_image_properties,
    load_yaml_documents,
    main_compose,
    properties_text,
    scram_format_arguments,
    script_exports,
    walk,
)

from hybrid_platform import kafka_auth

if not (COMPOSE_DIR / "compose.yaml").is_file():
    pytest.skip("this project has no infra/compose (generated target)", allow_module_level=True)

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def test_compose_airflow_uses_the_fab_auth_manager_and_airflow3_keys() -> None:
    environment = main_compose()["x-airflow-env"]
    assert environment["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    assert not [k for k in environment if "SIMPLE_AUTH_MANAGER" in k]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert environment[key].startswith("${"), key
    for path in COMPOSE_DIR.glob("compose*.yaml"):
        for document in load_yaml_documents(path):
            for where, value in walk(document):
                assert "simple_auth_manager" not in f"{where}={value}".lower(), (path, where)


def test_only_minio_and_storage_init_hold_the_object_stores_root_user() -> None:
    services = main_compose()["services"]
    root = re.compile(r"\$\{MINIO_ROOT_(USER|PASSWORD)\b")
    holders = {
        name
        for name, service in services.items()
        for value in (service.get("environment") or {}).values()
        if root.search(str(value))
    }
    assert holders == {"minio", "storage-init"}
    for name in ("flink-jobmanager", "flink-taskmanager"):
        assert services[name]["environment"]["AWS_ACCESS_KEY_ID"].startswith("${S3_FLINK_ACCESS_KEY:?"), name
    assert "AWS_ACCESS_KEY_ID" not in services["spark-master"]["environment"]
    for name in ("spark-worker", "airflow-scheduler", "airflow-api-server"):
        assert services[name]["environment"]["AWS_ACCESS_KEY_ID"].startswith("${S3_PLATFORM_ACCESS_KEY:?"), name


def test_the_scoped_s3_users_reach_the_platforms_buckets_only() -> None:
    script = main_compose()["services"]["storage-init"]["command"][0]
    policy = json.loads(re.search(r"<<'POLICY'\n(.*?)\nPOLICY", script, re.DOTALL).group(1))  # type: ignore[union-attr]
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {
        "arn:aws:s3:::hdp-warehouse",
        "arn:aws:s3:::hdp-flink",
        "arn:aws:s3:::hdp-warehouse/*",
        "arn:aws:s3:::hdp-flink/*",
    }
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    # Objects and listings only: no wildcard, no bucket creation/deletion, no policy or admin action.
    assert actions <= {
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }, actions
    assert "S3_PLATFORM_ACCESS_KEY" in script and "S3_FLINK_ACCESS_KEY" in script


# --------------------------------------------------------------------------------------------------
# Kafka: TLS (files you generate) + SCRAM-SHA-512 per principal + ACLs

#: Every service that talks to Kafka, and the principals (kafka_auth.PRINCIPALS) whose passwords it holds.
KAFKA_PASSWORDS: dict[str, set[str]] = {
    # Formats the data volume with the SCRAM users the broker needs before any ACL exists.
    "kafka-format": {"broker", "admin"},
    # The broker's own user (its connections to itself, the health check); also the controller's PLAIN user.
    "kafka": {"broker"},
    # `hdp kafka setup`: the admin, and every principal whose SCRAM user it writes.
    "kafka-setup": {p.name for p in kafka_auth.PRINCIPALS} - {"broker"},
    # LocalExecutor: Airflow's tasks run in the scheduler; they submit both Flink jobs and read consumer lag.
    "airflow-scheduler": {"fraud-scoring", "lake-ingest", "observer"},
}
#: The services whose processes open Kafka connections (the Flink jobs' run in the TaskManagers and JobManager).
KAFKA_CLIENTS = {"kafka-setup", "airflow-scheduler", "airflow-init", "flink-jobmanager", "flink-taskmanager"}


def interpolated(value: str) -> str:
    """A Compose value's `$$` as the container sees it (`$`)."""
    return value.replace("$$", "$")


def test_every_kafka_client_uses_sasl_ssl_with_the_ca_at_one_path() -> None:
    services = main_compose()["services"]
    ca_files = set()
    for name, service in services.items():
        environment = service.get("environment") or {}
        if "HDP_KAFKA_SECURITY_PROTOCOL" not in environment:
            assert name not in KAFKA_CLIENTS, f"{name} talks to Kafka without HDP_KAFKA_SECURITY_PROTOCOL"
            continue
        assert environment["HDP_KAFKA_SECURITY_PROTOCOL"] == kafka_auth.SASL_SSL, name
        ca_file = environment["HDP_KAFKA_CA_FILE"]
        ca_files.add(ca_file)
        # The CA the broker's certificate was signed with (secrets/kafka/, generated as infra/README.md says).
        assert f"./secrets/kafka/ca.crt:{ca_file}:ro" in service.get("volumes", []), f"{name}: no CA at {ca_file}"
    assert len(ca_files) == 1, ca_files
    broker_volumes = services["kafka"]["volumes"]
    broker = kafka_image_properties(services["kafka"]["environment"])
    assert f"./secrets/kafka/ca.crt:{broker['ssl.truststore.location']}:ro" in broker_volumes


def test_each_service_holds_only_the_kafka_passwords_of_its_principals() -> None:
    by_variable = {p.password_variable: p.name for p in kafka_auth.PRINCIPALS}
    held: dict[str, set[str]] = {}
    for name, service in main_compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            mentioned = re.findall(r"\$\{(HDP_KAFKA_PASSWORD_\w+|KRAFT_CONTROLLER_PASSWORD)\b", str(value))
            if key == "KRAFT_CONTROLLER_PASSWORD":
                assert name == "kafka" and mentioned == [key], name
            elif key in by_variable:
                # From .env, under its own name: a variable holding another principal's password is caught.
                assert mentioned == [key], f"{name}: {key}={value}"
                held.setdefault(name, set()).add(by_variable[key])
            else:
                assert not mentioned, f"{name}: {key} carries a Kafka password"
    assert held == KAFKA_PASSWORDS


def test_the_broker_listens_sasl_ssl_only_and_denies_by_default() -> None:
    """No PLAINTEXT listener (the host's EXTERNAL one included); SCRAM for clients, PLAIN for the controller,
    StandardAuthorizer with nothing allowed without an ACL and the local runtime's super users."""
    kafka = main_compose()["services"]["kafka"]
    script = interpolated(kafka["command"][-1])
    settings = kafka_image_properties({**kafka["environment"], **script_exports(script)})
    assert kafka_broker_problems(settings) == []
    assert settings["advertised.listeners"].count("://") == 2  # the containers' and the host's
    unset = re.search(r"^\s*unset (.+)$", script, re.MULTILINE)
    assert unset and set(unset.group(1).split()) == {"HDP_KAFKA_PASSWORD_BROKER", "KRAFT_CONTROLLER_PASSWORD"}
    assert script.index(unset.group(0)) < script.index("exec /etc/kafka/docker/run")
    # The key and chain (one PEM file) and the CA, from the files you generate.
    for setting in ("ssl.keystore.location", "ssl.truststore.location"):
        assert any(v.startswith("./secrets/kafka/") and f":{settings[setting]}:ro" in v for v in kafka["volumes"])
    # Healthy means a SCRAM login over TLS, not an open port.
    health = interpolated(kafka["healthcheck"]["test"][-1])
    assert "security.protocol=SASL_SSL" in health and "--command-config" in health


def test_the_storage_format_writes_the_broker_and_admin_scram_users() -> None:
    services = main_compose()["services"]
    script = interpolated(services["kafka-format"]["command"][-1])
    tool, args_file = scram_format_arguments(script)
    assert "--ignore-formatted" in tool and f"rm -f {args_file}" in script
    # What formatting reads agrees with the broker, on the broker's data volume, before the broker starts.
    kafka = services["kafka"]
    settings = kafka_image_properties({**kafka["environment"], **script_exports(interpolated(kafka["command"][-1]))})
    heredoc = re.search(r"<<EOF\n(.*?)\n\s*EOF", script, re.DOTALL)
    assert heredoc
    formatted = properties_text(heredoc.group(1))
    assert formatted and all(settings.get(key) == value for key, value in formatted.items()), {
        key: (value, settings.get(key)) for key, value in formatted.items() if settings.get(key) != value
    }
    data = f"kafka-data:{settings['log.dirs']}"
    assert data in services["kafka-format"]["volumes"] and data in kafka["volumes"]
    assert kafka["depends_on"]["kafka-format"]["condition"] == "service_completed_successfully"
    assert services["kafka-setup"]["depends_on"]["kafka"]["condition"] == "service_healthy"
