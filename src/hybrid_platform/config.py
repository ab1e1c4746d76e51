"""The one place that turns the environment into typed configuration.

Everything is resolved at call time from environment variables (``HDP_*``) with local defaults, so the
same job code runs on a laptop, in CI and on a cluster: a cluster only sets other variables.
Nothing here imports an engine; the module is pure standard library and is installed in both the Spark
and the Flink environments.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from hybrid_platform import kafka_auth

#: Root of the repository (src/hybrid_platform/config.py -> repo). Used only for local defaults.
REPO_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """A configuration value is present but unusable; the message says which variable to fix."""


def _env(name: str, default: str, environ: dict[str, str] | None) -> str:
    source = os.environ if environ is None else environ
    value = source.get(name, "")
    return value if value != "" else default


def _port(name: str, default: int, environ: dict[str, str] | None) -> int:
    raw = _env(name, str(default), environ)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number; set it to an integer 1-65535") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={port} is out of range; set it to an integer 1-65535")
    return port


@dataclass(frozen=True)
class Ports:
    kafka: int
    kafka_controller: int
    flink_rest: int
    flink_rpc: int
    airflow: int
    spark_connect: int = 15002


@dataclass(frozen=True)
class CatalogConfig:
    """The Iceberg catalog all three readers share (Spark, Flink, pyiceberg).

    Locally a JDBC catalog on an embedded SQLite file; on a cluster ``HDP_CATALOG_URI`` points at
    Postgres (JDBC) and ``HDP_WAREHOUSE`` at object storage (``s3://``, with ``HDP_S3_ENDPOINT`` for an
    S3-compatible store such as MinIO). S3 credentials never pass through here: every reader takes them from
    the standard AWS variables (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or the pod's identity).
    """

    name: str
    uri: str
    warehouse: str
    jdbc_user: str
    jdbc_password: str
    s3_endpoint: str = ""
    s3_region: str = ""

    @property
    def on_object_storage(self) -> bool:
        return self.warehouse.startswith(("s3://", "s3a://"))

    @property
    def needs_cluster_jars(self) -> bool:
        """True when the engines need the ``cluster`` jars of jars.toml (Postgres driver, Iceberg's S3FileIO)."""
        return self.uri.startswith("jdbc:postgresql:") or self.on_object_storage

    @property
    def sqlalchemy_uri(self) -> str:
        """The same database as a SQLAlchemy URL, for pyiceberg's SqlCatalog."""
        if self.uri.startswith("jdbc:sqlite:"):
            return "sqlite:///" + self.uri.removeprefix("jdbc:sqlite:")
        if self.uri.startswith("jdbc:postgresql://"):
            # Percent-encoded: a password with @, / or : would otherwise be read as part of the host.
            user, password = (urllib.parse.quote(part, safe="") for part in (self.jdbc_user, self.jdbc_password))
            auth = f"{user}:{password}@" if self.jdbc_user else ""
            return "postgresql+psycopg2://" + auth + self.uri.removeprefix("jdbc:postgresql://")
        raise ConfigError(f"HDP_CATALOG_URI={self.uri!r}: only jdbc:sqlite: and jdbc:postgresql: are supported")

    def java_properties(self) -> dict[str, str]:
        """Catalog properties as Iceberg's Java JdbcCatalog takes them (Spark and Flink)."""
        props = {
            "type": "jdbc",
            "uri": self.uri,
            "warehouse": self.warehouse,
            # V0 is the table layout pyiceberg's SqlCatalog reads and writes too.
            "jdbc.schema-version": "V0",
        }
        if self.jdbc_user:
            props["jdbc.user"] = self.jdbc_user
            props["jdbc.password"] = self.jdbc_password
        if self.on_object_storage:
            # Iceberg's own S3 client (iceberg-aws-bundle): no Hadoop S3A needed by either engine.
            props["io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
            if self.s3_endpoint:
                props["s3.endpoint"] = self.s3_endpoint
                # S3-compatible stores (MinIO, Ceph) address buckets by path, not by virtual host.
                props["s3.path-style-access"] = "true"
            if self.s3_region:
                props["client.region"] = self.s3_region
        return props

    def pyiceberg_properties(self) -> dict[str, str]:
        props = {"type": "sql", "uri": self.sqlalchemy_uri, "warehouse": self.warehouse}
        if self.on_object_storage:
            if self.s3_endpoint:
                props["s3.endpoint"] = self.s3_endpoint
            if self.s3_region:
                props["s3.region"] = self.s3_region
        return props


@dataclass(frozen=True)
class PlatformConfig:
    environment: str  # local | ci | cluster: informational, chosen by HDP_ENV
    home: Path  # all runtime state (git-ignored): data, logs, pids, catalog, warehouse
    jar_cache: Path  # downloaded jars, shared by every clone on the machine
    ports: Ports
    bind_host: str
    kafka_bootstrap: str
    flink_rest_url: str
    airflow_url: str
    airflow_user: str
    airflow_password: str
    #: HDP_AIRFLOW_NO_AUTH=1, a dev-only switch: every Airflow visitor is an admin without signing in.
    airflow_no_auth: bool
    catalog: CatalogConfig
    spark_master: str
    flink_python: Path  # interpreter of the PyFlink environment
    #: Sizing: Spark's shuffle partitions and driver heap; Flink's TaskManager process size (local runtime),
    #: state backend (``hashmap`` on the heap, ``rocksdb`` for state larger than memory) and changelog.
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "2g"
    flink_taskmanager_memory: str = "2048m"
    flink_state_backend: str = "hashmap"
    flink_changelog: bool = True
    #: The Spark Connect server (``sc://host:port``) dbt runs its models on, or "" for a SparkSession in dbt's
    #: own process (a JVM per dbt invocation, so per Airflow task). Locally the runtime's own server.
    spark_remote: str = ""
    #: The bearer token that server requires (a server that runs code it is sent needs one, even on loopback:
    #: other users of the machine reach loopback too). Locally random, generated once.
    spark_connect_token: str = ""
    #: A folder with this client's certificate for a Flink REST API that requires one (mutual TLS on clusters):
    #: ``ca.crt``, ``tls.crt``, ``tls.key`` (PEM, for Python) and ``keystore.jks``/``truststore.jks`` (``flink
    #: run``), as cert-manager writes them; "" for plain HTTP (the local runtime: loopback only, no jar upload).
    flink_rest_tls_dir: str = ""
    #: The source revision this deployment runs (HDP_CODE_VERSION, set when an image is built; "" in a clone,
    #: where git knows it).
    code_version: str = ""
    #: Where jars are fetched from (HDP_MAVEN_REPO, a mirror); "" for Maven Central.
    maven_repository: str = ""
    flink_rest_keystore_password: str = ""
    #: How clients authenticate to Kafka (kafka_auth): plaintext by default, SASL_SSL + SCRAM when configured.
    kafka_security: kafka_auth.KafkaSecurity = field(default_factory=kafka_auth.KafkaSecurity)

    def kafka_client(self, principal: str, **settings: str | int | float | bool) -> dict[str, str | int | float | bool]:
        """librdkafka settings to reach Kafka as ``principal`` (kafka_auth.PRINCIPALS), plus ``settings``."""
        try:
            return {**kafka_auth.librdkafka(self.kafka_bootstrap, self.kafka_security, principal), **settings}
        except KeyError as missing:
            raise ConfigError(str(missing.args[0])) from None

    def kafka_java(self, principal: str, shaded: str = "") -> dict[str, str]:
        """Java Kafka client properties (bootstrap not included) to reach Kafka as ``principal``."""
        try:
            return kafka_auth.java(self.kafka_security, principal, shaded)
        except KeyError as missing:
            raise ConfigError(str(missing.args[0])) from None

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _number(name: str, default: float, environ: dict[str, str] | None, minimum: float = 0.0) -> float:
    raw = _env(name, str(default), environ)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to a number (default {default:g})") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{name}={raw!r} is below {minimum:g}; set it to at least {minimum:g}")
    return value


@dataclass(frozen=True)
class DemoSettings:
    """What `hdp demo` runs: the stream's rate, warm-up and measured duration, and the past day's size."""

    rate: float
    warmup_s: float
    duration_s: float
    batch_transactions: int


def demo_settings(environ: dict[str, str] | None = None) -> DemoSettings:
    """From ``HDP_DEMO_*`` at call time: a bad value is one clear line from `hdp demo`, not a crash of every command."""
    return DemoSettings(
        rate=_number("HDP_DEMO_RATE", 1000, environ, minimum=1),
        warmup_s=_number("HDP_DEMO_WARMUP", 20, environ),
        duration_s=_number("HDP_DEMO_DURATION", 60, environ, minimum=1),
        batch_transactions=int(_number("HDP_DEMO_BATCH_TRANSACTIONS", 30000, environ, minimum=1000)),
    )


def _choice(name: str, choices: tuple[str, ...], environ: dict[str, str] | None) -> str:
    """One of ``choices`` (the first is the default)."""
    value = _env(name, choices[0], environ).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}; set one of them or unset it")
    return value


def _flag(name: str, environ: dict[str, str] | None) -> bool:
    raw = _env(name, "", environ).strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name}={raw!r} is not a switch; set it to 1 (on) or 0 (off)")


def write_private(path: Path, text: str) -> bool:
    """Create ``path`` readable by this user only, from its first byte; False when it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def local_airflow_password(home: Path) -> str:
    """The local Airflow password: random, generated once per state folder into a private file.

    HDP_AIRFLOW_PASSWORD wins over it; `hdp status` and the demo print where to find it.
    """
    return local_secret(home, "airflow-password")


def local_secret(home: Path, name: str) -> str:
    """A random secret of the local runtime, generated once per state folder into a private file."""
    path = home / "secrets" / name
    write_private(path, secrets.token_urlsafe(18))
    for _ in range(50):  # a concurrent first start may have created it a moment before writing
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
        time.sleep(0.02)
    raise ConfigError(f"{path} is empty; delete it and run the command again")


#: What a cluster deployment's secrets may not be: the placeholders its examples ship with, and the obvious.
WEAK_SECRETS = frozenset({"change-me", "changeme", "admin", "password", "secret", "minioadmin"})
MIN_SECRET_LENGTH = 16
CLUSTER_SECRETS = (
    "HDP_AIRFLOW_PASSWORD",
    "HDP_CATALOG_PASSWORD",
    "HDP_SPARK_CONNECT_TOKEN",
    "AIRFLOW__API_AUTH__JWT_SECRET",  # signs the API's tokens: a guessable one lets anyone forge them
    "AIRFLOW__API__SECRET_KEY",
    "AWS_SECRET_ACCESS_KEY",
    *(p.password_variable for p in kafka_auth.PRINCIPALS),
)


def _refuse_weak_secrets(environ: dict[str, str] | None) -> None:
    """On a cluster, a placeholder or short secret is refused: a template's examples get deployed as they are."""
    for name in CLUSTER_SECRETS:
        value = _env(name, "", environ)
        if value and (value.lower() in WEAK_SECRETS or len(value) < MIN_SECRET_LENGTH):
            raise ConfigError(
                f"{name} is a placeholder or shorter than {MIN_SECRET_LENGTH} characters; on a cluster "
                "(HDP_ENV=cluster) set a random one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )


def load(environ: dict[str, str] | None = None) -> PlatformConfig:
    """Resolve the configuration from ``environ`` (default: the process environment)."""
    home = Path(_env("HDP_HOME", str(REPO_ROOT / ".platform"), environ)).expanduser().resolve()
    cache_root = _env("XDG_CACHE_HOME", str(Path.home() / ".cache"), environ)
    jar_cache = Path(_env("HDP_JAR_CACHE", str(Path(cache_root) / "hybrid-platform" / "jars"), environ))
    bind_host = _env("HDP_BIND_HOST", "127.0.0.1", environ)
    ports = Ports(
        kafka=_port("HDP_KAFKA_PORT", 9092, environ),
        kafka_controller=_port("HDP_KAFKA_CONTROLLER_PORT", 9093, environ),
        flink_rest=_port("HDP_FLINK_PORT", 8081, environ),
        flink_rpc=_port("HDP_FLINK_RPC_PORT", 6123, environ),
        airflow=_port("HDP_AIRFLOW_PORT", 8080, environ),
        spark_connect=_port("HDP_SPARK_CONNECT_PORT", 15002, environ),
    )
    airflow_no_auth = _flag("HDP_AIRFLOW_NO_AUTH", environ)
    if airflow_no_auth and bind_host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"HDP_AIRFLOW_NO_AUTH=1 makes every visitor an Airflow admin, so it only works on localhost; "
            f"unset it or set HDP_BIND_HOST=127.0.0.1 (it is {bind_host!r})"
        )
    if bind_host not in LOOPBACK_HOSTS and not _flag("HDP_EXPOSE_UNAUTHENTICATED", environ):
        raise ConfigError(
            f"HDP_BIND_HOST={bind_host!r} would open Kafka and Flink's REST API (no authentication: whoever reaches "
            "them controls jobs) beyond this machine; keep 127.0.0.1, or also set HDP_EXPOSE_UNAUTHENTICATED=1 on a "
            "network you trust"
        )
    warehouse_dir = home / "warehouse"
    catalog = CatalogConfig(
        name=_env("HDP_CATALOG_NAME", "lakehouse", environ),
        uri=_env("HDP_CATALOG_URI", f"jdbc:sqlite:{home / 'catalog' / 'iceberg_catalog.db'}", environ),
        warehouse=_env("HDP_WAREHOUSE", warehouse_dir.as_uri(), environ),
        jdbc_user=_env("HDP_CATALOG_USER", "", environ),
        jdbc_password=_env("HDP_CATALOG_PASSWORD", "", environ),
        s3_endpoint=_env("HDP_S3_ENDPOINT", "", environ),
        s3_region=_env("HDP_S3_REGION", "", environ),
    )
    environment = _env("HDP_ENV", "ci" if _env("CI", "", environ) else "local", environ)
    if environment == "cluster":
        _refuse_weak_secrets(environ)
    spark_remote = _spark_remote(environment, ports, environ)
    kafka_security = _kafka_security(environment, home, environ)
    return PlatformConfig(
        environment=environment,
        home=home,
        jar_cache=jar_cache.expanduser().resolve(),
        ports=ports,
        bind_host=bind_host,
        kafka_bootstrap=_env("HDP_KAFKA_BOOTSTRAP", f"{bind_host}:{ports.kafka}", environ),
        flink_rest_url=_env("HDP_FLINK_REST_URL", f"http://{bind_host}:{ports.flink_rest}", environ),
        airflow_url=_env("HDP_AIRFLOW_URL", f"http://{bind_host}:{ports.airflow}", environ),
        airflow_user=_env("HDP_AIRFLOW_USER", "admin", environ),
        airflow_password=_env("HDP_AIRFLOW_PASSWORD", "", environ) or local_airflow_password(home),
        airflow_no_auth=airflow_no_auth,
        catalog=catalog,
        spark_master=_env("HDP_SPARK_MASTER", "local[2]", environ),
        flink_python=Path(_env("HDP_FLINK_PYTHON", str(REPO_ROOT / ".venv-flink" / "bin" / "python"), environ)),
        spark_shuffle_partitions=int(_number("HDP_SPARK_SHUFFLE_PARTITIONS", 4, environ, minimum=1)),
        spark_driver_memory=_env("HDP_SPARK_DRIVER_MEMORY", "2g", environ),
        flink_taskmanager_memory=_env("HDP_FLINK_TASKMANAGER_MEMORY", "2048m", environ),
        flink_state_backend=_choice("HDP_FLINK_STATE_BACKEND", ("hashmap", "rocksdb"), environ),
        flink_changelog=_env("HDP_FLINK_CHANGELOG", "true", environ).strip().lower() not in {"0", "false", "no"},
        spark_remote=spark_remote,
        spark_connect_token=_env("HDP_SPARK_CONNECT_TOKEN", "", environ)
        or (local_secret(home, "spark-connect-token") if spark_remote and environment != "cluster" else ""),
        kafka_security=kafka_security,
        flink_rest_tls_dir=_env("HDP_FLINK_REST_TLS_DIR", "", environ),
        maven_repository=_env("HDP_MAVEN_REPO", "", environ),
        code_version=_env("HDP_CODE_VERSION", "", environ),
        # cert-manager's keystores carry the key unencrypted beside them (tls.key): this password protects
        # nothing, so infra/ uses one documented constant (infra/k8s/flink/tls.yaml).
        flink_rest_keystore_password=_env("HDP_FLINK_REST_KEYSTORE_PASSWORD", "hdp-flink-rest-keystore", environ),
    )


def kafka_protocol_record(home: Path) -> Path:
    """Where the local runtime records the security protocol its broker was created with."""
    return home / "kafka" / "security-protocol"


def kafka_ca_file(home: Path) -> Path:
    """Where the local runtime keeps the CA that signs its broker's certificate (generated by `hdp up`)."""
    return home / "secrets" / "kafka" / "ca.pem"


def _kafka_security(environment: str, home: Path, environ: dict[str, str] | None) -> kafka_auth.KafkaSecurity:
    """HDP_KAFKA_SECURITY_PROTOCOL: plaintext (default), or sasl_ssl: TLS (CA in HDP_KAFKA_CA_FILE) and SCRAM
    with a password per principal (HDP_KAFKA_PASSWORD_<PRINCIPAL>); locally both are generated once into the
    private state folder. A process on a cluster holds only the passwords of the principals it acts as."""
    local = environment != "cluster"
    recorded = kafka_protocol_record(home)
    if local and not _env("HDP_KAFKA_SECURITY_PROTOCOL", "", environ) and recorded.exists():
        # Unset: what this state folder's broker was created with, so every later command (hdp flink deploy,
        # the DAGs' tasks, hdp demo) talks to it as it listens.
        environ = {**(os.environ if environ is None else environ), "HDP_KAFKA_SECURITY_PROTOCOL": recorded.read_text()}
    protocol = _choice("HDP_KAFKA_SECURITY_PROTOCOL", kafka_auth.PROTOCOLS, environ)
    if protocol == kafka_auth.PLAINTEXT:
        return kafka_auth.KafkaSecurity()
    ca_file = _env("HDP_KAFKA_CA_FILE", str(kafka_ca_file(home)) if local else "", environ)
    if not ca_file:
        raise ConfigError(
            "HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl needs HDP_KAFKA_CA_FILE: the PEM file of the CA that signed the "
            "brokers' certificates"
        )
    passwords = []
    for principal in kafka_auth.PRINCIPALS:
        value = _env(principal.password_variable, "", environ)
        if not value and local:
            value = local_secret(home, f"kafka-{principal.name}")
        if value:
            passwords.append((principal.name, value))
    return kafka_auth.KafkaSecurity(kafka_auth.SASL_SSL, ca_file, tuple(passwords))


def _spark_remote(environment: str, ports: Ports, environ: dict[str, str] | None) -> str:
    """HDP_SPARK_REMOTE: ``sc://host:port``, or ``none`` for Spark inside dbt's process; unset, the local
    runtime's server (``hdp up`` runs one, on loopback whatever HDP_BIND_HOST says: only dbt here uses it; the
    client sends its token without TLS only to ``localhost``), and on a cluster none."""
    local_server = f"sc://localhost:{ports.spark_connect}" if environment != "cluster" else "none"
    value = _env("HDP_SPARK_REMOTE", local_server, environ)
    if value == "none":
        return ""
    if not value.startswith("sc://"):
        raise ConfigError(f"HDP_SPARK_REMOTE={value!r} is neither sc://host:port nor none; set one of them or unset it")
    return value
