"""infra/ validated without a Docker engine or a cluster: schemas, the one version matrix, ports, secrets.

- Compose files against the Compose Specification JSON schema committed in infra/schemas.
- Kubernetes manifests against the Kubernetes OpenAPI schemas bundled by ``kubernetes-validate`` (strict: an
  unknown field fails), and the Flink Kubernetes Operator's and cert-manager's resources against their CRD
  schemas committed in infra/schemas (made strict the same way the API server's field validation is).
- Every image tag, build argument and jar version in infra/ equals the one in pyproject.toml / uv.lock /
  jars.toml / the Makefile; no version number is repeated here.
- Published ports bind 127.0.0.1; credentials come from .env interpolation or Secrets, never literals.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hybrid_platform import cli, jars, kafka_auth
from hybrid_platform.config import REPO_ROOT

INFRA = REPO_ROOT / "infra"
COMPOSE_DIR = INFRA / "compose"
K8S_DIR = INFRA / "k8s"
SCHEMAS = INFRA / "schemas"
DOCKER_DIR = INFRA / "docker"
HELM_VALUES = K8S_DIR / "airflow" / "values.yaml"
#: The Kubernetes minor the manifests target (bundled by kubernetes-validate); the oldest still supported upstream.
KUBERNETES_VERSION = "1.33.0"
#: Variable names that carry credentials: their values must come from .env or a Secret.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|ACCESS_KEY|_KEY$|JAAS", re.IGNORECASE)
SECRET_KEYWORDS = re.compile(r"password|secret|token|fernet", re.IGNORECASE)
#: The one literal "password" Kubernetes manifests may hold: the password of the Java keystores cert-manager
#: writes for the Flink REST API's mutual TLS. Not a secret (infra/k8s/flink/tls.yaml): cert-manager stores the
#: private key unencrypted (tls.key) in the same Secret as the keystore, and Flink's configuration takes
#: keystore passwords as literal values only. test_infra_k8s_security.py holds every use to this value and these
#: fields, and each keystore to a cert-manager Secret.
KEYSTORE_PASSWORD = "hdp-flink-rest-keystore"  # pragma: allowlist secret
KEYSTORE_PASSWORD_FIELDS = (
    ".spec.flinkConfiguration.security.ssl.rest.keystore-password",
    ".spec.flinkConfiguration.security.ssl.rest.key-password",
    ".spec.flinkConfiguration.security.ssl.rest.truststore-password",
    ".spec.keystores.jks.password",
)

# A project generated for one target has only that deployment (copier.yml): the other's checks are skipped.
HAS_COMPOSE = COMPOSE_DIR.is_dir()
HAS_K8S = K8S_DIR.is_dir()
needs_compose = pytest.mark.skipif(not HAS_COMPOSE, reason="this project has no infra/compose (generated target)")
needs_k8s = pytest.mark.skipif(not HAS_K8S, reason="this project has no infra/k8s (generated target)")

COMPOSE_FILES = sorted(COMPOSE_DIR.glob("compose*.yaml"))
K8S_MANIFESTS = sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml" and p != HELM_VALUES)


# --------------------------------------------------------------------------------------------------
# The version matrix, read from its sources


@functools.cache
def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"] if "version" in package}


@functools.cache
def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*[:?]?=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"{name} not found in the Makefile"
    return match.group(1)


def project_version() -> str:
    return str(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"])


def platform_image() -> str:
    return f"hybrid-platform:{project_version()}"


def flink_image() -> str:
    return f"hybrid-platform-flink:{project_version()}"


def flink_version() -> str:
    return locked_versions()["apache-flink"]


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def main_compose() -> dict[str, Any]:
    return compose(COMPOSE_DIR / "compose.yaml")


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, scalar) of a loaded YAML/JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")
    else:
        yield path, node


# --------------------------------------------------------------------------------------------------
# Validators


@functools.cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.schema.json").read_text())
    # The schema declares draft-07 (as "https://json-schema.org/draft-07/schema", which jsonschema does not map).
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def compose_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in compose_validator().iter_errors(document)]


def _strict(schema: Any) -> Any:
    """Reject unknown fields wherever the CRD lists the fields (as the API server's strict field validation does)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


#: The operator's CRDs on Maven Central stop at 1.10.0 (flinkVersion up to v1_20); the releases that run Flink 2.x
#: (>= 1.12: v2_0, >= 1.13: v2_1) add enum values only. That is the one amendment, applied here, not in the file.
FLINK_VERSION_AMENDMENT = ("v2_0", "v2_1")


#: The committed CRD schemas (infra/schemas/README.md says where each comes from).
CRD_SCHEMAS = (
    *sorted((SCHEMAS / "flink-kubernetes-operator").glob("*.yml")),
    *sorted((SCHEMAS / "cert-manager").glob("*.yaml")),
)


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in CRD_SCHEMAS:
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            flink_version_enum = schema["properties"]["spec"]["properties"].get("flinkVersion", {}).get("enum")
            if flink_version_enum is not None:
                flink_version_enum.extend(v for v in FLINK_VERSION_AMENDMENT if v not in flink_version_enum)
            # The API server fills apiVersion/kind/metadata; a manifest must name them correctly.
            schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
            schema["properties"]["kind"] = {"const": kind}
            schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
            schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
            validators[f"{group}/{version['name']}", kind] = jsonschema.Draft7Validator(_strict(schema))
    return validators


def manifest_errors(document: dict[str, Any]) -> list[str]:
    """Schema errors of one Kubernetes object: built-in kinds by kubernetes-validate, the operator's by its CRD."""
    key = (document.get("apiVersion", ""), document.get("kind", ""))
    if key in crd_validators():
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validators()[key].iter_errors(document)
        ]
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[0]} {key[1]}: add its CRD schema under infra/schemas"]
    return []


# --------------------------------------------------------------------------------------------------
# Kafka's broker configuration, as the apache/kafka image renders it (both targets run that image)

#: Variables the image's start script leaves out of server.properties (kafka.docker.KafkaDockerWrapper, the same
#: list in Kafka 4.1.1's jar).
KAFKA_IMAGE_NOT_RENDERED = frozenset(
    {
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_JMX_HOSTNAME",
    }
)
#: The security settings the infra brokers share with the local runtime's broker with
#: HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl (runtime._kafka_listener_properties, the reference).
KAFKA_SECURITY_SETTINGS = (
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    "listener.name.controller.sasl.enabled.mechanisms",
    "ssl.keystore.type",
    "ssl.truststore.type",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
)


def kafka_image_properties(environment: dict[str, str]) -> dict[str, str]:
    """server.properties as the image's start script writes it from KAFKA_* variables: the prefix dropped, lower
    case, `_` -> `.`, then `...` -> `-` and `..` -> `_` (KafkaDockerWrapper.getServerConfigsFromEnv)."""
    rendered = {}
    for key, value in environment.items():
        if key.startswith("KAFKA_") and key not in KAFKA_IMAGE_NOT_RENDERED:
            name = key.replace("KAFKA_", "").lower().replace("_", ".").replace("...", "-").replace("..", "_")
            rendered[name] = str(value)
    return rendered


def script_exports(script: str) -> dict[str, str]:
    """The `export NAME="value"` lines of a start script, with \\" unescaped (${...} left unexpanded)."""
    return {
        name: value.replace('\\"', '"')
        for name, value in re.findall(r'^\s*export (\w+)="(.*)"\s*$', script, re.MULTILINE)
    }


def properties_text(text: str) -> dict[str, str]:
    """`key=value` lines (a properties file written by a script), comments and other lines ignored."""
    return dict(re.findall(r"^\s*([a-z][\w.-]*)=(.*?)\s*$", text, re.MULTILINE))


def listener_names(value: str) -> list[str]:
    return [item.split("://", 1)[0] for item in value.split(",") if item]


@functools.cache
def local_runtime_kafka_security() -> dict[str, str]:
    """The local runtime's broker settings with HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl (in a throwaway home)."""
    import tempfile

    from hybrid_platform import config, runtime

    with tempfile.TemporaryDirectory() as home:
        cfg = config.load(
            {
                "HDP_HOME": home,
                "HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                "HDP_KAFKA_CA_FILE": f"{home}/ca.pem",
                **{p.password_variable: f"{p.name}-password-for-a-test" for p in kafka_auth.PRINCIPALS},
            }
        )
        return runtime._kafka_listener_properties(cfg)


def kafka_broker_problems(settings: dict[str, str]) -> list[str]:
    """What makes a broker's server.properties less than the platform's Kafka security: a listener that is not
    SASL_SSL, a listener name the image's start script would treat as its own TLS set-up, SCRAM/PLAIN or the
    JAAS settings not where they belong, an authorizer that allows by default, other super users, keystore
    passwords. Empty when the broker is as the local runtime's with sasl_ssl."""
    problems = []
    protocols = dict(
        item.split(":", 1) for item in settings.get("listener.security.protocol.map", "").split(",") if item
    )
    listeners = listener_names(settings.get("listeners", ""))
    advertised = listener_names(settings.get("advertised.listeners", ""))
    controllers = settings.get("controller.listener.names", "").split(",")
    if not listeners or not set(advertised) <= set(listeners) or not set(controllers) <= set(listeners):
        problems.append(f"listeners {listeners}, advertised {advertised}, controller {controllers}")
    for name in dict.fromkeys([*listeners, *advertised, *protocols]):
        if protocols.get(name) != "SASL_SSL":
            problems.append(f"listener {name} is {protocols.get(name)}, not SASL_SSL")
        if "SSL" in name or "SASL" in name:
            problems.append(f"listener {name}: the image's start script runs its own TLS set-up for *SSL* names")
    reference = local_runtime_kafka_security()
    for key in KAFKA_SECURITY_SETTINGS:
        if settings.get(key) != reference[key]:
            problems.append(f"{key}={settings.get(key)!r}, the local runtime's is {reference[key]!r}")
    inter_broker = settings.get("inter.broker.listener.name", "")
    if inter_broker in controllers or inter_broker not in listeners:
        problems.append(f"inter-broker listener {inter_broker!r}")
    broker = kafka_auth.BY_NAME["broker"]
    for name in listeners:
        if name in controllers:
            jaas = settings.get(f"listener.name.{name.lower()}.plain.sasl.jaas.config", "")
            user = kafka_auth.CONTROLLER_USER
            expected = ["PlainLoginModule required", f'username="{user}"', f'user_{user}="']
        else:
            jaas = settings.get(f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config", "")
            expected = ["scram.ScramLoginModule required"]
            if name == inter_broker:
                expected.append(f'username="{broker.username}" password="${{{broker.password_variable}}}"')
        if not all(part in jaas for part in expected):
            problems.append(f"listener {name}: JAAS {jaas!r} lacks {expected}")
        if re.search(r'password="(?!\$\{)', jaas):
            problems.append(f"listener {name}: a literal password in its JAAS settings")
    for key in ("ssl.keystore.password", "ssl.key.password", "ssl.truststore.password"):
        if key in settings:
            problems.append(f"{key} is set (a PEM store takes none)")
    return problems


def test_the_broker_check_refuses_what_weakens_kafka() -> None:
    """kafka_broker_problems, run on a broker like the local runtime's, then on each weakening."""
    good = {
        **local_runtime_kafka_security(),
        "listeners": "INTERNAL://:9092,CONTROLLER://:9093",
        "advertised.listeners": "INTERNAL://kafka:9092",
        "listener.security.protocol.map": "INTERNAL:SASL_SSL,CONTROLLER:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "listener.name.internal.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram."
        'ScramLoginModule required username="hdp-broker" password="${HDP_KAFKA_PASSWORD_BROKER}";',
        "listener.name.controller.plain.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule "
        'required username="hdp-controller" password="${P}" user_hdp-controller="${P}";',
    }
    assert kafka_broker_problems(good) == []
    for change in (
        {"listener.security.protocol.map": "INTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT"},
        {"listeners": "INTERNAL://:9092,CONTROLLER://:9093,PLAINTEXT://:9094"},
        {"allow.everyone.if.no.acl.found": "true"},
        {"authorizer.class.name": ""},
        {"super.users": "User:hdp-broker;User:hdp-admin;User:hdp-controller;User:hdp-producer"},
        {"sasl.enabled.mechanisms": "PLAIN"},
        {"sasl.mechanism.inter.broker.protocol": "PLAIN"},
        {"listener.name.internal.scram-sha-512.sasl.jaas.config": "x"},
        {
            "listener.name.controller.plain.sasl.jaas.config": 'PlainLoginModule required username="hdp-controller" '
            'password="abc" user_hdp-controller="abc";'
        },
        {"ssl.keystore.password": "x"},
        {
            "listeners": "SASL_SSL://:9092,CONTROLLER://:9093",
            "advertised.listeners": "SASL_SSL://kafka:9092",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL",
            "inter.broker.listener.name": "SASL_SSL",
        },
    ):
        assert kafka_broker_problems({**good, **change}), change


# --------------------------------------------------------------------------------------------------
# Compose


def test_there_is_something_to_validate() -> None:
    assert HAS_COMPOSE or HAS_K8S
    assert not HAS_COMPOSE or (COMPOSE_DIR / "compose.yaml") in COMPOSE_FILES
    assert not HAS_K8S or len(K8S_MANIFESTS) >= 8


@needs_compose
@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    assert compose_errors(compose(path)) == []


@needs_compose
def test_the_compose_validator_rejects_what_compose_would_reject() -> None:
    broken = copy.deepcopy(main_compose())
    broken["services"]["kafka"]["port"] = ["127.0.0.1:9092:9092"]  # a typo of `ports`
    broken["services"]["postgres"]["restart"] = 3
    errors = compose_errors(broken)
    assert any("port" in e for e in errors) and any("restart" in e for e in errors), errors


@needs_compose
def test_compose_runs_every_platform_service() -> None:
    services = set(main_compose()["services"])
    assert {
        "kafka",
        "flink-jobmanager",
        "flink-taskmanager",
        "spark-master",
        "spark-worker",
        "postgres",
        "minio",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= services


@needs_compose
def test_every_published_port_binds_localhost() -> None:
    published = 0
    for path in COMPOSE_FILES:
        for name, service in compose(path)["services"].items():
            for port in service.get("ports", []):
                assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{path.name}: {name} publishes {port}"
                published += 1
    assert published >= 5


@needs_compose
def test_compose_credentials_come_from_the_env_file() -> None:
    env_example = (COMPOSE_DIR / ".env.example").read_text()
    example_keys = set(re.findall(r"^([A-Z0-9_]+)=", env_example, re.MULTILINE))
    interpolated: set[str] = set()
    for path in COMPOSE_FILES:
        text = path.read_text()
        # `$${X}` is an escaped dollar (the container's shell expands it), not a Compose interpolation.
        interpolated |= set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
        for name, service in compose(path)["services"].items():
            environment = service.get("environment") or {}
            assert isinstance(environment, dict), f"{name}: use the mapping form for environment"
            for key, value in environment.items():
                if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                    assert re.fullmatch(r".*\$\{[A-Z0-9_]+(:\?[^}]*)?\}.*", str(value), re.DOTALL), (
                        f"{path.name}: {name}.{key} is a credential and must come from .env, not a literal"
                    )
    # Every variable Compose interpolates is documented in .env.example, and the example holds no real secret.
    assert interpolated <= example_keys, interpolated - example_keys
    for key, value in re.findall(r"^([A-Z0-9_]+)=(.*)$", env_example, re.MULTILINE):
        if SECRET_NAME.search(key) or key == "KAFKA_CLUSTER_ID":
            assert value == "change-me", f".env.example: {key} must be a placeholder"
    assert ".env" in (REPO_ROOT / ".gitignore").read_text()


@needs_compose
def test_the_metadata_connection_string_takes_its_password_from_env() -> None:
    connection = main_compose()["x-airflow-env"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "${AIRFLOW_DB_PASSWORD" in connection


@needs_compose
def test_compose_uses_the_same_configuration_variables_as_local_mode() -> None:
    """Every HDP_* variable infra/ sets is one the code reads (a typo would silently fall back to a local default)."""
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "src" / "hybrid_platform").glob("*.py"))
    read_by_code = set(re.findall(r"\"(HDP_[A-Z0-9_]+)\"", sources))
    # Built from the principals' table, not spelled out: HDP_KAFKA_PASSWORD_<PRINCIPAL> (config._kafka_security).
    read_by_code |= {p.password_variable for p in kafka_auth.PRINCIPALS}
    used = set()
    for path in [*COMPOSE_FILES, *K8S_MANIFESTS, HELM_VALUES]:
        used |= set(re.findall(r"\b(HDP_[A-Z0-9_]+)\b(?!\*)", path.read_text()))  # HDP_SPARK_* is prose
    assert used, "infra/ sets no HDP_* variable"
    assert used <= read_by_code, f"not read by hybrid_platform: {sorted(used - read_by_code)}"


@needs_compose
def test_compose_switches_spark_through_the_airflow_connection() -> None:
    environment = main_compose()["x-airflow-env"]
    connection = json.loads(environment["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert connection["conn_type"] == "spark"
    assert connection["host"] == environment["HDP_SPARK_MASTER"] == "spark://spark-master:7077"


# --------------------------------------------------------------------------------------------------
# Images and the version matrix


def compose_images() -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{name}", service["image"])
        for path in COMPOSE_FILES
        for name, service in compose(path)["services"].items()
        if "image" in service
    ]


def k8s_images() -> list[tuple[str, str]]:
    found = []
    for path in K8S_MANIFESTS:
        for document in load_yaml_documents(path):
            for where, value in walk(document):
                if where.endswith((".image", ".images.airflow.repository")):
                    found.append((f"{path.relative_to(K8S_DIR)}{where}", str(value)))
    return found


def test_every_image_is_pinned_to_a_version() -> None:
    for where, image in [*compose_images(), *k8s_images()]:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and re.search(r"\d", tag), f"{where}: {image} is not pinned"


def test_images_follow_the_version_matrix() -> None:
    kafka = jars.load_manifest()[0]["kafka"]
    expected_by_repository = {
        "apache/kafka": kafka,
        "hybrid-platform": project_version(),
        "hybrid-platform-flink": project_version(),
    }
    seen = set()
    for where, image in [*compose_images(), *k8s_images()]:
        repository, _, tag = image.rpartition(":")
        if repository in expected_by_repository:
            assert tag == expected_by_repository[repository], f"{where}: {image}"
            seen.add(repository)
    assert seen == set(expected_by_repository)


def dockerfile_args(name: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", (DOCKER_DIR / name).read_text(), re.MULTILINE))


def test_dockerfiles_and_build_args_follow_the_version_matrix() -> None:
    expected = {
        "PYTHON_VERSION": makefile_variable("PYTHON_VERSION"),
        "UV_VERSION": makefile_variable("UV_VERSION"),
        "FLINK_VERSION": flink_version(),
    }
    for dockerfile in ("platform.Dockerfile", "flink.Dockerfile"):
        for arg, value in dockerfile_args(dockerfile).items():
            assert value == expected[arg], f"{dockerfile}: ARG {arg}={value}, the matrix says {expected[arg]}"
    for name, service in main_compose()["services"].items():
        for arg, value in (service.get("build") or {}).get("args", {}).items():
            assert value == expected[arg], f"compose {name}: build arg {arg}={value}"
    # The official Flink base image is the same Flink as the PyFlink wheel in uv.lock.
    assert re.search(
        r"^FROM flink:\$\{FLINK_VERSION\}-scala_2\.12-java17(@sha256:[0-9a-f]{64})?$",
        (DOCKER_DIR / "flink.Dockerfile").read_text(),
        re.M,
    )


def test_images_install_python_packages_from_the_lockfile_and_bake_the_jars() -> None:
    sets_in_manifest = {s for jar in jars.load_manifest()[1] for s in jar.sets}
    for dockerfile, needed in (
        ("platform.Dockerfile", {"spark", "flink", "cluster"}),
        ("flink.Dockerfile", {"flink", "cluster"}),
    ):
        text = (DOCKER_DIR / dockerfile).read_text()
        syncs = re.findall(r"uv sync ([^\n\\]*)", text)
        assert syncs and all("--locked" in s for s in syncs), f"{dockerfile}: every uv sync must be --locked"
        baked = set(re.findall(r"--set (\w+)", text))
        assert baked == needed and baked <= sets_in_manifest, f"{dockerfile}: bakes {baked}"
        assert not re.search(r"https?://|curl |wget ", text), f"{dockerfile}: fetch through uv.lock/jars.toml only"


@pytest.mark.parametrize("dockerfile", ["platform.Dockerfile", "flink.Dockerfile"])
def test_dockerfile_variables_are_declared_in_the_build_stage(dockerfile: str) -> None:
    """An ARG declared before FROM is empty after it: every ${X} a build step uses must be (re)declared."""
    text = (DOCKER_DIR / dockerfile).read_text()
    stage = text[text.rindex("\nFROM ") :]
    stage_body = stage.split("\n", 1)[1]
    declared = set(re.findall(r"^(?:ARG|ENV) (\w+)", stage_body, re.MULTILINE))
    declared |= set(re.findall(r"^\s+(\w+)=", stage_body, re.MULTILINE))  # continuation lines of ENV
    used = set(re.findall(r"\$\{(\w+)\}", stage_body)) - {"PATH"}
    assert used <= declared, f"{dockerfile}: {sorted(used - declared)} not declared after FROM"


def test_cluster_jars_follow_the_engine_versions() -> None:
    versions, entries = jars.load_manifest()
    cluster = {jar.artifact: jar for jar in entries if jars.CLUSTER_SET in jar.sets}
    assert cluster["iceberg-aws-bundle"].version == versions["iceberg"]
    assert "postgresql" in cluster


def test_every_jar_version_named_in_infra_is_in_the_matrix() -> None:
    """A jar version written into infra/ (e.g. flink-python in the session jobs) must be the matrix's."""
    _, entries = jars.load_manifest()
    known = {(jar.artifact, jar.version) for jar in entries} | {
        ("flink-python", flink_version()),
        ("flink-s3-fs-hadoop", flink_version()),
    }
    mentioned = set()
    for path in [*COMPOSE_FILES, *K8S_MANIFESTS, HELM_VALUES, *DOCKER_DIR.glob("*")]:
        for artifact, version in re.findall(r"([a-z][\w.-]*?)-(\d+\.\d+\.\d+(?:[.-][\w.]+?)?)\.jar", path.read_text()):
            mentioned.add((artifact, version))
    assert mentioned, "no jar named in infra/"
    assert mentioned <= known, mentioned - known


@needs_k8s
def test_flink_resources_follow_the_version_matrix() -> None:
    major, minor = flink_version().split(".")[:2]
    deployment = load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]
    assert deployment["spec"]["flinkVersion"] == f"v{major}_{minor}"
    for job in load_yaml_documents(K8S_DIR / "flink" / "sessionjobs.yaml"):
        assert job["spec"]["deploymentName"] == deployment["metadata"]["name"]
        assert f"/flink-python/{flink_version()}/" in job["spec"]["job"]["jarURI"]
        script = job["spec"]["job"]["args"][job["spec"]["job"]["args"].index("-py") + 1]
        assert (REPO_ROOT / Path(script).relative_to("/opt/hybrid-platform")).is_file(), script


# --------------------------------------------------------------------------------------------------
# Kubernetes


@needs_k8s
@pytest.mark.parametrize("path", K8S_MANIFESTS, ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_kubernetes_manifest_matches_its_schema(path: Path) -> None:
    documents = load_yaml_documents(path)
    assert documents
    for document in documents:
        assert manifest_errors(document) == [], f"{document.get('kind')} {document.get('metadata', {}).get('name')}"


@needs_k8s
def test_the_manifest_validators_reject_invalid_objects() -> None:
    job = load_yaml_documents(K8S_DIR / "kafka" / "topics-job.yaml")[0]
    typo = copy.deepcopy(job)
    typo["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    typo["spec"]["template"]["spec"]["container"] = typo["spec"]["template"]["spec"].pop("containers")
    assert manifest_errors(typo)
    deployment = load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]
    for mutate in (
        lambda d: d["spec"].update(flinkVersion="v3_0"),
        lambda d: d["spec"].update(upgradeMode="savepoint"),  # belongs under spec.job
        lambda d: d["spec"]["flinkConfiguration"].update({"parallelism.default": 4}),  # strings only
        lambda d: d["spec"].update(mode="standalone-ish"),
    ):
        broken = copy.deepcopy(deployment)
        mutate(broken)
        assert manifest_errors(broken), broken["spec"]
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert manifest_errors(unknown)


@needs_k8s
def test_every_manifest_is_part_of_the_kustomization() -> None:
    referenced: set[Path] = set()
    pending = [K8S_DIR / "kustomization.yaml"]
    while pending:
        kustomization = pending.pop()
        document = yaml.safe_load(kustomization.read_text())
        assert document["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and document["kind"] == "Kustomization"
        for resource in document["resources"]:
            target = (kustomization.parent / resource).resolve()
            assert target.exists(), f"{kustomization}: {resource} does not exist"
            if target.is_dir():
                pending.append(target / "kustomization.yaml")
            else:
                referenced.add(target)
    assert referenced == {p.resolve() for p in K8S_MANIFESTS}


@needs_k8s
def test_kubernetes_manifests_reference_secrets_and_never_inline_them() -> None:
    for path in [*K8S_MANIFESTS, HELM_VALUES]:
        for document in load_yaml_documents(path):
            assert document.get("kind") != "Secret", f"{path}: Secrets are created outside the repository"
            for where, value in walk(document):
                leaf = where.rsplit(".", 1)[-1]
                if where in KEYSTORE_PASSWORD_FIELDS and value == KEYSTORE_PASSWORD:
                    continue  # not a credential: see KEYSTORE_PASSWORD
                if leaf == "automountServiceAccountToken" and isinstance(value, bool):
                    continue  # a switch, not a token
                if SECRET_KEYWORDS.search(leaf) and not leaf.endswith(
                    ("SecretName", "secretName", "secretKey", "_file")
                ):
                    raise AssertionError(f"{path}: {where} holds a literal credential ({value!r})")
                if isinstance(value, str) and re.search(r"(?i)(password|secret)\s*[=:]\s*[^\s$'\"{}]{6,}", value):
                    raise AssertionError(f"{path}: {where} looks like an inline credential")
            for where, value in walk(document):
                if where.endswith(".name") and isinstance(value, str) and SECRET_NAME.search(value):
                    parent = where.rsplit(".", 1)[0]
                    siblings = dict((w.rsplit(".", 1)[-1], v) for w, v in walk(document) if w.startswith(parent + "."))
                    assert "value" not in siblings, f"{path}: env {value} must come from a Secret (valueFrom)"


def setup_arguments(command: list[str]) -> argparse.Namespace:
    """A Kafka setup command as the platform's CLI parses it (it must be `hdp kafka setup ...`)."""
    assert command[:3] == ["hdp", "kafka", "setup"], command
    arguments = cli.build_parser().parse_args(command[1:])
    assert arguments.func is cli.cmd_kafka and arguments.action == "setup"
    return arguments


@needs_k8s
def test_the_kafka_setup_job_runs_hdp_kafka_setup_for_three_brokers() -> None:
    """Topics (cmd_kafka: names.ALL_TOPICS), SCRAM users and ACLs come from the platform's own CLI and table."""
    job = load_yaml_documents(K8S_DIR / "kafka" / "topics-job.yaml")[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == platform_image()
    arguments = setup_arguments([*container.get("command", []), *container.get("args", [])])
    brokers = next(d for d in load_yaml_documents(K8S_DIR / "kafka" / "statefulset.yaml") if d["kind"] == "StatefulSet")
    env = {e["name"]: e.get("value") for e in brokers["spec"]["template"]["spec"]["containers"][0]["env"]}
    # Every broker holds a replica, and the topics' min.insync.replicas (replication - 1) is the brokers' own.
    assert arguments.replication_factor == brokers["spec"]["replicas"] == int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"])
    assert arguments.replication_factor - 1 == int(env["KAFKA_MIN_INSYNC_REPLICAS"])
    assert arguments.partitions == int(env["KAFKA_NUM_PARTITIONS"]) == 12
    assert "kafka-topics.sh" not in yaml.safe_dump(job)


@needs_compose
def test_compose_sets_kafka_up_with_hdp_kafka_setup_for_one_broker() -> None:
    services = main_compose()["services"]
    arguments = setup_arguments(services["kafka-setup"]["command"])
    assert arguments.replication_factor == 1 and arguments.partitions >= 1
    assert services["kafka-setup"]["image"] == platform_image()
    # The DAGs deploy the Flink jobs only once the topics exist (Airflow holds no admin password).
    assert services["airflow-init"]["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"


@needs_k8s
def test_flink_session_cluster_is_configured_for_a_cluster() -> None:
    settings = load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]["spec"]["flinkConfiguration"]
    assert settings["state.backend.type"] == "rocksdb"
    assert settings["execution.checkpointing.incremental"] == "true"
    assert settings["high-availability.type"] == "kubernetes"
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir", "high-availability.storageDir"):
        assert settings[key].startswith("s3://"), key


@needs_k8s
def test_flink_rest_service_matches_the_platform_config() -> None:
    deployment = load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]
    platform = load_yaml_documents(K8S_DIR / "platform" / "configmap.yaml")[0]["data"]
    # The operator names the REST service <deployment>-rest; the API takes HTTPS with client certificates only.
    assert platform["HDP_FLINK_REST_URL"].startswith(f"https://{deployment['metadata']['name']}-rest.")


# --------------------------------------------------------------------------------------------------
# Airflow Helm values (the chart's values.schema.json is not on a registry reachable here: structure only)


@needs_k8s
def test_helm_values_follow_the_matrix_and_switch_spark_by_connection() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["airflowVersion"] == locked_versions()["apache-airflow"]
    assert f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}" == platform_image()
    assert f"{values['defaultAirflowRepository']}:{values['defaultAirflowTag']}" == platform_image()
    assert values["executor"] in {"KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryKubernetesExecutor"}
    env = {item["name"]: item["value"] for item in values["env"]}
    connection = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
    platform = load_yaml_documents(K8S_DIR / "platform" / "configmap.yaml")[0]["data"]
    assert connection["host"] == platform["HDP_SPARK_MASTER"] and connection["host"].startswith("k8s://")
    for item in values["secret"]:
        assert set(item) == {"envName", "secretName", "secretKey"}
    # Airflow 3's names: [api] secret_key and [api_auth] jwt_secret (the Airflow 2 webserver key is gone).
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert isinstance(values[key], str)
    assert "webserverSecretKeySecretName" not in values and "webserverSecretKey" not in values
    assert isinstance(values["data"]["metadataSecretName"], str) and values["postgresql"]["enabled"] is False
    # extraEnv/extraEnvFrom are templated strings in the chart: they must parse as lists of env entries.
    for key in ("extraEnv", "extraEnvFrom"):
        assert isinstance(yaml.safe_load(values[key]), list)
    mounted = {m["name"] for m in values["volumeMounts"]}
    assert mounted == {v["name"] for v in values["volumes"]}


@needs_k8s
def test_spark_defaults_name_the_platform_image() -> None:
    conf = load_yaml_documents(K8S_DIR / "spark" / "spark-defaults.yaml")[0]["data"]["spark-defaults.conf"]
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))
    assert settings["spark.kubernetes.container.image"] == platform_image()
    assert settings["spark.kubernetes.authenticate.executor.serviceAccountName"] == "spark-executor"


@needs_k8s
def test_flink_image_is_used_for_the_flink_cluster() -> None:
    assert main_compose()["services"]["flink-jobmanager"]["image"] == flink_image()
    assert load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]["spec"]["image"] == flink_image()


def scram_format_arguments(script: str) -> tuple[str, str]:
    """A storage-format script's kafka-storage.sh arguments and the @file it reads: the file holds the broker's and
    the admin's SCRAM users, and no password is on the command line. Shared by the Compose and Kubernetes tests."""
    for name in ("broker", "admin"):
        principal = kafka_auth.BY_NAME[name]
        argument = (
            f"--add-scram={kafka_auth.SCRAM}=[name={principal.username},password=${{{principal.password_variable}}}]"
        )
        assert f'"{argument}"' in script, argument
    args_file = re.search(r"> (/tmp/\S+)$", script[: script.index("kafka-storage.sh")], re.MULTILINE)
    assert args_file, "the SCRAM arguments are not written to a file"
    tool = re.search(r"kafka-storage\.sh format (.*?)(\|\||$)", script.replace("\\\n", " "), re.MULTILINE)
    assert tool and f"@{args_file.group(1)}" in tool.group(1) and "password" not in tool.group(1)
    return tool.group(1), args_file.group(1)
