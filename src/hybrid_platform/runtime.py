"""The local runtime: Kafka (KRaft), a Flink session cluster, the Iceberg catalog and Airflow 3.

Every service runs as a real process in its own session (``setsid``), with its PID, command line and
log under ``PlatformConfig.home``. ``down`` signals only the sessions recorded there, so it stops what
``up`` started and nothing else; ``up`` skips what already runs, so running it twice is harmless.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse  # [template:streaming]
import urllib.request
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hybrid_platform import jars, kafka_auth, orchestration
from hybrid_platform.config import (
    LOOPBACK_HOSTS,
    REPO_ROOT,
    PlatformConfig,
    kafka_protocol_record,
    local_secret,
    write_private,
)
from hybrid_platform.java import java_home


class RuntimeFailure(RuntimeError):
    """A service could not be started or prepared; the message says what to do."""


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


@dataclass
class Service:
    name: str
    command: Callable[[PlatformConfig], list[str]]
    env: Callable[[PlatformConfig], dict[str, str]]
    health: Callable[[PlatformConfig], Health]
    url: Callable[[PlatformConfig], str] = lambda cfg: ""
    ports: Callable[[PlatformConfig], list[int]] = lambda cfg: []
    prepare: Callable[[PlatformConfig], None] = lambda cfg: None
    #: Called once the service is healthy (e.g. Kafka's users and ACLs).
    ready: Callable[[PlatformConfig], None] = lambda cfg: None
    start_timeout_s: float = 120.0


# --------------------------------------------------------------------------------------------------
# Small helpers


def _http_json(url: str, timeout: float = 3.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_env(home: Path) -> dict[str, str]:
    """``HDP_*`` variables for a runtime of its own: ``home`` as state folder and free ports.

    What the integration tests and the benchmark use, so a running ``make demo`` is never touched.
    """
    return {
        "HDP_HOME": str(home),
        "HDP_KAFKA_PORT": str(free_port()),
        "HDP_KAFKA_CONTROLLER_PORT": str(free_port()),
        "HDP_FLINK_PORT": str(free_port()),
        "HDP_FLINK_RPC_PORT": str(free_port()),
        "HDP_AIRFLOW_PORT": str(free_port()),
        "HDP_SPARK_CONNECT_PORT": str(free_port()),  # [template:dbt]
    }


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _java_env() -> dict[str, str]:
    home = java_home()
    return {"JAVA_HOME": str(home), "PATH": f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def _classpath(cfg: PlatformConfig, set_name: str) -> str:
    return os.pathsep.join(str(p) for p in jars.classpath(cfg.jar_cache, set_name))


# --------------------------------------------------------------------------------------------------
# Kafka: a single KRaft node (broker + controller) from the official jars on Maven Central


def _kafka_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "kafka"


def kafka_server_properties(cfg: PlatformConfig) -> dict[str, str]:
    """The broker's ``server.properties``: one KRaft node whose listeners bind ``cfg.bind_host`` only."""
    base = _kafka_dir(cfg)
    host = cfg.bind_host
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{cfg.ports.kafka_controller}",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(base / "data"),
        # One node: every internal topic has a single replica (transactions need this for exactly-once).
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "num.partitions": "2",
        "group.initial.rebalance.delay.ms": "0",
        # Flink's exactly-once sink keeps transactions open up to a checkpoint plus its timeout.
        "transaction.max.timeout.ms": "900000",
        "log.retention.hours": "48",
        # Two cores: a few request threads, not the defaults' 3 network + 8 I/O threads contending for them.
        "num.network.threads": "2",
        "num.io.threads": "2",
        **_kafka_listener_properties(cfg),
    }


def _kafka_listener_properties(cfg: PlatformConfig) -> dict[str, str]:
    """PLAINTEXT listeners by default; with HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl, TLS on both listeners, SCRAM
    for clients (each a principal of kafka_auth with its ACLs, nothing allowed without one), PLAIN for the
    controller's own listener (KRaft cannot check SCRAM there), and the broker a super user of its own."""
    host, port, controller = cfg.bind_host, cfg.ports.kafka, cfg.ports.kafka_controller
    if not cfg.kafka_security.enabled:
        return {
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    from hybrid_platform.kafka_admin import broker_pem

    security = cfg.kafka_security
    broker = kafka_auth.BY_NAME["broker"]
    controller_password = local_secret(cfg.home, "kafka-controller")
    quote = kafka_auth._jaas_quote
    super_users = [f"User:{p.username}" for p in kafka_auth.PRINCIPALS if p.super_user]
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL",
        "sasl.enabled.mechanisms": kafka_auth.SCRAM,
        "sasl.mechanism.inter.broker.protocol": kafka_auth.SCRAM,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username={quote(broker.username)} password={quote(security.password('broker'))};"
        ),
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f"username={quote(kafka_auth.CONTROLLER_USER)} password={quote(controller_password)} "
            f"user_{kafka_auth.CONTROLLER_USER}={quote(controller_password)};"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(broker_pem(cfg)),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": security.ca_file,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": ";".join([*super_users, f"User:{kafka_auth.CONTROLLER_USER}"]),
        "allow.everyone.if.no.acl.found": "false",
    }


def _escape_property(value: str) -> str:
    """A value as java.util.Properties reads it back (backslash is its escape character)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _kafka_ready(cfg: PlatformConfig) -> None:
    if cfg.kafka_security.enabled:
        from hybrid_platform.kafka_admin import ensure_principals

        ensure_principals(cfg)


def _kafka_prepare(cfg: PlatformConfig) -> None:
    base = _kafka_dir(cfg)
    base.mkdir(parents=True, exist_ok=True)
    if cfg.kafka_security.enabled:
        from hybrid_platform.kafka_admin import ensure_local_tls

        ensure_local_tls(cfg)
    properties = kafka_server_properties(cfg)
    # Private from its first byte: with SASL on it holds the broker's and the controller's passwords.
    (base / "server.properties").unlink(missing_ok=True)
    write_private(base / "server.properties", "".join(f"{k}={_escape_property(v)}\n" for k, v in properties.items()))
    (base / "log4j2.properties").write_text(
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.stdout.ref = STDOUT\n"
        "appender.stdout.type = Console\n"
        "appender.stdout.name = STDOUT\n"
        "appender.stdout.layout.type = PatternLayout\n"
        "appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
        "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
        "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
    )
    protocol = cfg.kafka_security.protocol
    record = kafka_protocol_record(cfg.home)
    if (base / "data" / "meta.properties").exists():
        created_with = record.read_text() if record.exists() else kafka_auth.PLAINTEXT
        if created_with != protocol:
            raise RuntimeFailure(
                f"this state folder's Kafka was created with HDP_KAFKA_SECURITY_PROTOCOL={created_with}; unset the "
                f"variable (or set {created_with}), or start afresh with `make clean` to use {protocol}"
            )
        return
    cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    tool = [
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",  # `=`: a generated id may start with "-"
        f"--config={base / 'server.properties'}",
    ]
    if cfg.kafka_security.enabled:
        # The broker's and the admin's SCRAM users exist from the first start (the admin makes the others).
        for name in ("broker", "admin"):
            principal = kafka_auth.BY_NAME[name]
            secret = cfg.kafka_security.password(name)
            tool.append(f"--add-scram=SCRAM-SHA-512=[name={principal.username},password={secret}]")
    # The arguments go through a private @file, not argv: they carry passwords, and argv is public (ps).
    arguments = base / "format.args"
    arguments.unlink(missing_ok=True)
    write_private(arguments, "".join(f'"{argument}"\n' for argument in tool))
    try:
        result = subprocess.run(
            [
                str(java_home() / "bin" / "java"),
                "-Xmx256m",
                f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}",
                "-cp",
                _classpath(cfg, "kafka"),
                f"@{arguments}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        arguments.unlink(missing_ok=True)
    record.write_text(protocol)
    if result.returncode != 0:
        raise RuntimeFailure(f"formatting Kafka storage failed: {result.stderr.strip() or result.stdout.strip()}")


def _kafka_command(cfg: PlatformConfig) -> list[str]:
    base = _kafka_dir(cfg)
    return [
        str(java_home() / "bin" / "java"),
        # 1 GB: with 512 MB the broker's collector paused for up to 0.8 s under 5,000 events/s (in and out of
        # four topics), and every such pause is latency for every record in flight.
        "-Xms1g",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={cfg.log_dir}",
        "-cp",
        _classpath(cfg, "kafka"),
        "kafka.Kafka",
        str(base / "server.properties"),
    ]


def _kafka_health(cfg: PlatformConfig) -> Health:
    host, _, port = cfg.kafka_bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return Health(False, f"no listener on {cfg.kafka_bootstrap}")
    try:
        from confluent_kafka.admin import AdminClient  # lazy: only the Spark environment has it
    except ImportError:
        return Health(True, "port open")
    try:
        metadata = AdminClient(cfg.kafka_client("admin", log_level=0)).list_topics(timeout=3)
    except Exception as exc:  # the client raises KafkaException with a transport reason
        return Health(False, f"metadata request failed: {exc}")
    return Health(True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)")


# [template:streaming]
# --------------------------------------------------------------------------------------------------
# Flink: a standalone session cluster from the scripts and jars inside the apache-flink wheel


def pyflink_home(cfg: PlatformConfig) -> Path:
    """The ``pyflink`` folder of the Flink environment (it holds bin/, lib/, opt/)."""
    result = subprocess.run(
        [str(cfg.flink_python), "-c", "import pyflink, os; print(os.path.dirname(pyflink.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeFailure(
            f"the PyFlink environment is missing ({cfg.flink_python}); run `make setup` to create .venv-flink"
        )
    return Path(result.stdout.strip())


def _flink_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "flink"


def flink_env(cfg: PlatformConfig) -> dict[str, str]:
    base = _flink_dir(cfg)
    return {
        **_java_env(),
        "FLINK_CONF_DIR": str(base / "conf"),
        "FLINK_LIB_DIR": str(base / "lib"),
        "FLINK_LOG_DIR": str(cfg.log_dir / "flink"),
    }


def _flink_prepare(cfg: PlatformConfig) -> None:
    base = _flink_dir(cfg)
    wheel = pyflink_home(cfg)
    lib = base / "lib"
    conf = base / "conf"
    for folder in (lib, conf, cfg.log_dir / "flink", base / "checkpoints", base / "savepoints"):
        folder.mkdir(parents=True, exist_ok=True)
    for old in lib.iterdir():
        old.unlink()
    # The wheel's distribution jars, flink-python (Python UDFs on the TaskManager) and our pinned jars.
    for jar in [*sorted((wheel / "lib").glob("*.jar")), *sorted((wheel / "opt").glob("flink-python-*.jar"))]:
        (lib / jar.name).symlink_to(jar)
    for jar in jars.engine_classpath(cfg.jar_cache, "flink", cfg.catalog):
        (lib / jar.name).symlink_to(jar)
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "logback.xml"):
        source = wheel / "conf" / name
        if source.exists():
            (conf / name).write_text(source.read_text())
    java_opts = ""
    for line in (wheel / "conf" / "config.yaml").read_text().splitlines():
        if line.strip().startswith("all: --add"):  # the JDK 17 module flags Flink ships with
            java_opts = line.split("all:", 1)[1].strip()
    settings = {**flink_settings(cfg, java_opts), **flink_rest_client_tls(cfg)}
    (conf / "config.yaml").unlink(missing_ok=True)
    write_private(conf / "config.yaml", "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))


def flink_rest_client_tls(cfg: PlatformConfig) -> dict[str, str]:
    """``flink run``'s side of a REST API with mutual TLS (HDP_FLINK_REST_TLS_DIR): its keystore and truststore."""
    if not cfg.flink_rest_tls_dir:
        return {}
    folder = Path(cfg.flink_rest_tls_dir)
    password = cfg.flink_rest_keystore_password
    return {
        "security.ssl.rest.enabled": "true",
        "security.ssl.rest.authentication-enabled": "true",
        "security.ssl.rest.keystore": str(folder / "keystore.jks"),
        "security.ssl.rest.truststore": str(folder / "truststore.jks"),
        "security.ssl.rest.keystore-password": password,
        "security.ssl.rest.key-password": password,
        "security.ssl.rest.truststore-password": password,
    }


def flink_settings(cfg: PlatformConfig, java_opts: str = "") -> dict[str, str]:
    """The session cluster's ``config.yaml``: every endpoint binds ``cfg.bind_host`` only."""
    base = _flink_dir(cfg)
    host = cfg.bind_host
    python = str(cfg.flink_python)
    return {
        "env.java.opts.all": java_opts,
        "env.pid.dir": str(cfg.run_dir),
        "jobmanager.rpc.address": host,
        "jobmanager.bind-host": host,
        "jobmanager.rpc.port": str(cfg.ports.flink_rpc),
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.bind-host": host,
        "taskmanager.host": host,
        # Two TaskManagers of 2 GB and 2 slots each (see TASKMANAGERS): the two long-lived jobs plus ad-hoc
        # ones. fraud_scoring's state is compact (14 bytes an event of history); the heap (~1.1 GB) leaves
        # room for the Kafka clients' buffers so the collector runs rarely (at 1.5 GB it took 2-5% of the
        # time). Managed memory only serves RocksDB and process-mode Python workers, neither used by default.
        "taskmanager.memory.process.size": cfg.flink_taskmanager_memory,
        "taskmanager.memory.managed.fraction": "0.1",
        "taskmanager.numberOfTaskSlots": "2",
        # A new job takes a slot on the least loaded TaskManager: the two long-lived jobs run in separate
        # JVMs, so lake_ingest's Iceberg writers and their collector pauses never stop a decision (measured
        # at 5,000 events/s: decision p99 39-41 ms apart, 55-211 ms sharing one JVM).
        "taskmanager.load-balance.mode": "SLOTS",
        "parallelism.default": "1",
        "rest.address": host,
        "rest.bind-address": host,
        "rest.port": str(cfg.ports.flink_rest),
        # Heap state locally (fast checkpoints for small state); RocksDB on clusters (HDP_FLINK_STATE_BACKEND).
        "state.backend.type": cfg.flink_state_backend,
        "execution.checkpointing.dir": (base / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (base / "savepoints").as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        # Where jobs with the changelog state backend (fraud_scoring) write their state changes.
        "state.changelog.storage": "filesystem",
        "state.changelog.dstl.dfs.base-path": (base / "changelog").as_uri(),
        "restart-strategy.type": "exponential-delay",
        # Iceberg 1.11 always reads Parquet with vectored IO; on the local filesystem Hadoop serves it from
        # the JVM's shared asynchronous-file-channel pool, whose threads keep the class loader of the job that
        # created them. A batch job started after that job ended hung 300 s on its first read (the pool
        # thread failed on the closed loader). Every jar is in lib/ here, so the parent loader serves them.
        "classloader.check-leaked-classloader": "false",
        # The same pool reads each Parquet range into a heap buffer through a temporary direct buffer of the
        # range's size (~12 MB), which the JDK caches per pool thread without bound. Over a few batch jobs
        # those caches filled the TaskManager's ~400 MB of direct memory; the next read died with "Cannot
        # reserve ... direct buffer memory" and its job waited 300 s on the lost range. Larger temporary
        # buffers are now freed right after use instead of cached.
        # GC: a collector pause stops every task of the TaskManager, the scorer's included. G1 with a 20 ms
        # pause goal (its default goal, 200 ms, let young collections of ~50 ms into the decision p99; 10 ms
        # made them so frequent that the collector took more CPU than it saved).
        "env.java.opts.taskmanager": "-Djdk.nio.maxCachedBufferSize=262144 -XX:+UseG1GC -XX:MaxGCPauseMillis=20",
        "python.executable": python,
        "python.client.executable": python,
        "web.cancel.enable": "true",
        # No jar upload or run through the REST API: with it, anyone (or any web page, cross-site) reaching the
        # port runs code as this user. `flink run` submits through /jobs, which this does not touch.
        "web.submit.enable": "false",
        # Cross-origin requests only from the Web UI's own origin (Flink's default is any origin).
        "web.access-control-allow-origin": f"http://{host}:{cfg.ports.flink_rest}",
    }


def prepare_flink_client(cfg: PlatformConfig) -> None:
    """The Flink client's lib/ and conf/ under ``HDP_HOME`` (what ``flink run`` needs), without starting a cluster:
    the deployments in infra/ call it once where Airflow runs, so `hdp flink deploy` reaches a remote cluster."""
    _flink_prepare(cfg)


def _flink_command(script: str) -> Callable[[PlatformConfig], list[str]]:
    def command(cfg: PlatformConfig) -> list[str]:
        return ["bash", str(pyflink_home(cfg) / "bin" / script), "start-foreground"]

    return command


def _flink_jobmanager_health(cfg: PlatformConfig) -> Health:
    try:
        config = _http_json(f"{cfg.flink_rest_url}/config")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Health(False, f"REST API not answering ({exc})")
    assert isinstance(config, dict)
    return Health(True, f"Flink {config.get('flink-version', '?')} REST API and Web UI")


#: The local TaskManager processes (services). The JobManager counts registrations, not which is which.
TASKMANAGERS = ("flink-taskmanager", "flink-taskmanager-2")


def _flink_taskmanager_health(count: int) -> Callable[[PlatformConfig], Health]:
    """Healthy once ``count`` TaskManagers are registered (the n-th service waits for the n-th registration)."""

    def health(cfg: PlatformConfig) -> Health:
        try:
            overview = _http_json(f"{cfg.flink_rest_url}/overview")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Health(False, f"REST API not answering ({exc})")
        assert isinstance(overview, dict)
        registered = int(overview.get("taskmanagers", 0))
        return Health(
            registered >= count,
            f"{registered} of {len(TASKMANAGERS)} registered, {overview.get('slots-available', 0)}/"
            f"{overview.get('slots-total', 0)} slots free, {overview.get('jobs-running', 0)} job(s) running",
        )

    return health


# [/template:streaming]
# --------------------------------------------------------------------------------------------------
# Iceberg catalog: JDBC on an embedded SQLite file (no process), shared by Spark, Flink and pyiceberg


def prepare_catalog(cfg: PlatformConfig) -> None:
    if cfg.catalog.uri.startswith("jdbc:sqlite:"):
        Path(cfg.catalog.uri.removeprefix("jdbc:sqlite:")).parent.mkdir(parents=True, exist_ok=True)
    if cfg.catalog.warehouse.startswith("file:"):
        Path(cfg.catalog.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


def catalog_health(cfg: PlatformConfig) -> Health:
    if not cfg.catalog.uri.startswith("jdbc:sqlite:"):
        return Health(True, f"external catalog {cfg.catalog.uri}")
    path = Path(cfg.catalog.uri.removeprefix("jdbc:sqlite:"))
    if not path.parent.is_dir():
        return Health(False, f"{path.parent} missing; run `hdp up`")
    try:
        with sqlite3.connect(f"file:{path}?mode=rwc", uri=True, timeout=5) as db:
            exists = db.execute("select count(*) from sqlite_master where name = 'iceberg_tables'").fetchone()[0]
            tables = db.execute("select count(*) from iceberg_tables").fetchone()[0] if exists else 0
    except sqlite3.Error as exc:
        return Health(False, f"cannot open {path}: {exc}")
    return Health(True, f"{tables} table(s) in {path.name}")


# --------------------------------------------------------------------------------------------------
# Airflow 3: api-server, scheduler, dag-processor and triggerer on a SQLite metadata database


def _airflow_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "airflow"


def airflow_env(cfg: PlatformConfig) -> dict[str, str]:
    base = _airflow_dir(cfg)
    secrets_file = base / "secrets.json"
    local_secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    url = cfg.airflow_url
    return {
        "AIRFLOW_HOME": str(base),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # A 2-core laptop: a few concurrent tasks, not the default 32 worker processes.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{base / 'airflow.db'}",
        "AIRFLOW__API__HOST": cfg.bind_host,
        "AIRFLOW__API__PORT": str(cfg.ports.airflow),
        # Tasks reach the execution API through this URL; without it they call localhost:8080.
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{cfg.airflow_user}:admin",
        # Sign-in stays on unless the dev-only HDP_AIRFLOW_NO_AUTH=1 says otherwise; set explicitly so an
        # AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS left in the caller's environment cannot turn it off.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True" if cfg.airflow_no_auth else "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(base / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": local_secrets.get("jwt_secret", ""),
        "AIRFLOW__API__SECRET_KEY": local_secrets.get("secret_key", ""),
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(cfg.log_dir / "airflow"),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": cfg.bind_host,
        "HDP_HOME": str(cfg.home),
        # Tasks call spark-submit and dbt from this environment.
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        **orchestration.airflow_defaults(cfg),
        # Cosmos would report usage to a third party from every dbt task: not from this platform.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "SCARF_NO_ANALYTICS": "true",
        # dbt's tasks reach the runtime's Spark Connect server with its token (config resolves it once here,
        # so a DAG file's config.load() reads no secret file).
        "HDP_SPARK_CONNECT_TOKEN": cfg.spark_connect_token,  # [template:dbt]
        **spark_connect_client_env(cfg),  # [template:dbt]
        # dbt-spark asks every new session for Hive support; through Spark Connect that static setting is
        # refused with a warning per query (the server's catalog is Iceberg's, no Hive): not worth a log line.
        "PYTHONWARNINGS": "ignore:Failed to set spark.sql.catalogImplementation",  # [template:dbt]
        **_java_env(),
    }


def _airflow_prepare(cfg: PlatformConfig) -> None:
    base = _airflow_dir(cfg)
    base.mkdir(parents=True, exist_ok=True)
    (cfg.log_dir / "airflow").mkdir(parents=True, exist_ok=True)
    # Generated once per state folder: stable across restarts, never in the repository; private from the
    # first byte (no moment in which another user could read them).
    write_private(
        base / "secrets.json",
        json.dumps({"jwt_secret": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(32)}),
    )
    passwords = base / "passwords.json"
    passwords.unlink(missing_ok=True)
    write_private(passwords, json.dumps({cfg.airflow_user: cfg.airflow_password}))
    env = {**os.environ, **airflow_env(cfg)}
    result = subprocess.run([_airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeFailure(f"`airflow db migrate` failed: {tail[0] if tail else 'no output'}")
    _dbt_manifest_prepare(cfg)  # [template:dbt]


# [template:dbt]
def _dbt_manifest_prepare(cfg: PlatformConfig) -> None:
    """Compile dbt's manifest when the project changed: Cosmos renders the dbt tasks from it at parse time,
    so the scheduler never runs dbt itself."""
    from hybrid_platform import dbt_runner

    manifest = dbt_runner.manifest_path(cfg)
    sources = [path for path in dbt_runner.project_dir().rglob("*") if path.is_file()]
    newest = max((path.stat().st_mtime for path in sources), default=0.0)
    if manifest.is_file() and manifest.stat().st_mtime >= newest:
        dbt_runner.write_profile(cfg)
        return
    code = "from hybrid_platform import config, dbt_runner; dbt_runner.parse(config.load())"
    env = {**os.environ, "HDP_HOME": str(cfg.home)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeFailure(f"`dbt parse` failed: {tail[0] if tail else 'no output'}")


# --------------------------------------------------------------------------------------------------
# Spark Connect: one long-lived Spark driver that dbt's models run on (config.spark_remote)

#: The server's driver heap (a resident JVM, so smaller than a batch job's ``HDP_SPARK_DRIVER_MEMORY``).
SPARK_CONNECT_MEMORY = "1g"
#: The server's main class, in the pyspark wheel's jars: spark-submit runs it with no application file.
SPARK_CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _spark_connect_settings_file(cfg: PlatformConfig) -> Path:
    return cfg.run_dir / "spark-connect.properties"


def _spark_connect_prepare(cfg: PlatformConfig) -> None:
    """Every Spark job's settings (jars, Iceberg catalog, memory) as a private properties file: on a cluster
    they include the catalog password, which a command line would show to every user of the machine."""
    from hybrid_platform import engines

    conf = engines.spark_conf(cfg, "spark-connect")
    conf.update(
        {
            "spark.sql.catalogImplementation": "in-memory",  # the lakehouse is Iceberg's; no Derby metastore
            # dbt's models aggregate a day of silver: 1 GB of heap is plenty, and the server stays resident.
            "spark.driver.memory": SPARK_CONNECT_MEMORY,
            "spark.connect.grpc.binding.address": "127.0.0.1",  # only dbt on this machine uses it
            "spark.connect.grpc.binding.port": str(cfg.ports.spark_connect),
            # No web UI: it would be one more unauthenticated listener; each job's own UI is still there.
            "spark.ui.enabled": "false",
        }
    )
    path = _spark_connect_settings_file(cfg)
    path.unlink(missing_ok=True)
    # Java properties: a backslash escapes, so it is doubled; keys never contain separators.
    lines = [f"{key}=" + value.replace("\\", "\\\\") for key, value in sorted(conf.items())]
    write_private(path, "\n".join(lines) + "\n")


def _spark_connect_command(cfg: PlatformConfig) -> list[str]:
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    return [spark_submit, "--properties-file", str(_spark_connect_settings_file(cfg)), "--class", SPARK_CONNECT_CLASS]


def _spark_connect_health(cfg: PlatformConfig) -> Health:
    if port_open("127.0.0.1", cfg.ports.spark_connect):
        return Health(True, f"listening on 127.0.0.1:{cfg.ports.spark_connect}")
    return Health(False, f"no listener on 127.0.0.1:{cfg.ports.spark_connect}")


def spark_connect_client_env(cfg: PlatformConfig) -> dict[str, str]:
    """What a Spark Connect client of this runtime needs in its environment: pyspark reads the token there."""
    return {"SPARK_CONNECT_AUTHENTICATE_TOKEN": cfg.spark_connect_token} if cfg.spark_remote else {}


# [/template:dbt]
def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _airflow_command(*args: str) -> Callable[[PlatformConfig], list[str]]:
    return lambda cfg: [_airflow_bin(), *args]


def _airflow_component_health(component: str) -> Callable[[PlatformConfig], Health]:
    def health(cfg: PlatformConfig) -> Health:
        try:
            report = _http_json(f"{cfg.airflow_url}/api/v2/monitor/health")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Health(False, f"API not answering ({exc})")
        assert isinstance(report, dict)
        if component == "api-server":
            db = report.get("metadatabase", {}).get("status")
            return Health(db == "healthy", f"metadatabase {db}")
        entry = report.get(component.replace("-", "_"), {}) or {}
        status = entry.get("status")
        return Health(status == "healthy", f"{status or 'unknown'}")

    return health


# --------------------------------------------------------------------------------------------------
# The service table, in start order


def services() -> list[Service]:

    def airflow_url(cfg: PlatformConfig) -> str:
        return cfg.airflow_url

    return [
        Service(
            name="kafka",
            command=_kafka_command,
            env=lambda cfg: _java_env(),
            health=_kafka_health,
            url=lambda cfg: f"kafka://{cfg.kafka_bootstrap}",
            ports=lambda cfg: [cfg.ports.kafka, cfg.ports.kafka_controller],
            prepare=_kafka_prepare,
            ready=_kafka_ready,
        ),
        # [template:streaming]
        Service(
            name="flink-jobmanager",
            command=_flink_command("jobmanager.sh"),
            env=flink_env,
            health=_flink_jobmanager_health,
            url=lambda cfg: cfg.flink_rest_url,
            ports=lambda cfg: [cfg.ports.flink_rest, cfg.ports.flink_rpc],
            prepare=_flink_prepare,
        ),
        *(
            Service(
                name=name,
                command=_flink_command("taskmanager.sh"),
                env=flink_env,
                health=_flink_taskmanager_health(index + 1),
            )
            for index, name in enumerate(TASKMANAGERS)
        ),
        # [/template:streaming]
        # [template:dbt]
        Service(
            name="spark-connect",
            command=_spark_connect_command,
            # The server requires the token (Spark's spark.connect.authenticate.token, read from here).
            env=lambda cfg: {
                **_java_env(),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "PYSPARK_PYTHON": sys.executable,
                "SPARK_CONNECT_AUTHENTICATE_TOKEN": cfg.spark_connect_token,
            },
            health=_spark_connect_health,
            url=lambda cfg: f"sc://localhost:{cfg.ports.spark_connect}",
            ports=lambda cfg: [cfg.ports.spark_connect],
            prepare=_spark_connect_prepare,
            start_timeout_s=180,
        ),
        # [/template:dbt]
        Service(
            name="airflow-api-server",
            command=_airflow_command("api-server"),
            env=airflow_env,
            health=_airflow_component_health("api-server"),
            url=airflow_url,
            ports=lambda cfg: [cfg.ports.airflow],
            prepare=_airflow_prepare,
            start_timeout_s=180,
        ),
        # The scheduler's and triggerer's log servers bind every interface and are not needed: the API
        # server reads task logs from the same disk. Skipping them keeps every listener on localhost.
        *(
            Service(
                name=f"airflow-{component}",
                command=_airflow_command(component, *extra_args),
                env=airflow_env,
                health=_airflow_component_health(component),
                start_timeout_s=180,
            )
            for component, extra_args in (
                ("scheduler", ["--skip-serve-logs"]),
                ("dag-processor", []),
                ("triggerer", ["--skip-serve-logs"]),
            )
        ),
    ]


# --------------------------------------------------------------------------------------------------
# Process bookkeeping


@dataclass(frozen=True)
class Running:
    pid: int
    started: str  # /proc start time: tells our process from a later one that reused the PID


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # A killed process whose parent has not reaped it yet is a zombie: dead, not running.
    return None if fields[0] == "Z" else fields[19]


def _record(cfg: PlatformConfig, name: str) -> Path:
    return cfg.run_dir / f"{name}.json"


def running(cfg: PlatformConfig, name: str) -> Running | None:
    record = _record(cfg, name)
    if not record.exists():
        return None
    data = json.loads(record.read_text())
    if _proc_start_time(data["pid"]) != data["started"]:
        return None
    return Running(data["pid"], data["started"])


def session_members(sid: int) -> list[int]:
    """Every live process whose session id is ``sid`` (a service and all the children it spawned)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def resident_memory_bytes(pids: list[int]) -> int:
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def _wait_healthy(cfg: PlatformConfig, service: Service, log: Path) -> None:
    deadline = time.monotonic() + service.start_timeout_s
    while time.monotonic() < deadline:
        if running(cfg, service.name) is None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise RuntimeFailure(f"{service.name} exited during start; see {log}: {' | '.join(tail)[-300:]}")
        if service.health(cfg).ok:
            return
        time.sleep(1)
    raise RuntimeFailure(
        f"{service.name} did not become healthy in {service.start_timeout_s:.0f}s "
        f"({service.health(cfg).detail}); see {log}"
    )


def up(cfg: PlatformConfig, only: list[str] | None = None, echo: Callable[[str], None] = print) -> None:
    """Start every service (or ``only`` those) that is not already running, and wait until healthy."""
    java_home()  # fail early, with the one-line message, when Java is missing or unsupported
    for folder in (cfg.home, cfg.run_dir, cfg.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    cfg.home.chmod(0o700)  # data, logs, secrets and the catalog: this user's only
    prepare_catalog(cfg)
    if cfg.bind_host not in LOOPBACK_HOSTS:
        echo(
            f"WARNING: HDP_EXPOSE_UNAUTHENTICATED=1: the services listen on {cfg.bind_host}, Kafka and Flink without "
            "authentication; anyone who reaches them can read and write topics and control jobs"
        )
    if cfg.airflow_no_auth and (not only or any("airflow".startswith(prefix[:7]) for prefix in only)):
        echo("WARNING: HDP_AIRFLOW_NO_AUTH=1: Airflow lets anyone on this machine in as admin, no sign-in (dev only)")
    for service in services():
        if only and not any(service.name.startswith(prefix) for prefix in only):
            continue
        if running(cfg, service.name):
            echo(f"{service.name}: already running")
            continue
        for port in service.ports(cfg):
            if port_open(cfg.bind_host, port):
                raise RuntimeFailure(
                    f"port {port} ({service.name}) is already in use by another process; stop it or "
                    f"choose another port (see `hdp status --help` for the HDP_*_PORT variables)"
                )
        service.prepare(cfg)
        log = cfg.log_dir / f"{service.name}.log"
        started_at = time.monotonic()
        with log.open("ab") as out:
            process = subprocess.Popen(
                service.command(cfg),
                env={**os.environ, **service.env(cfg), SERVICE_MARK: str(cfg.home)},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cfg.home,
            )
        started = _proc_start_time(process.pid)
        _record(cfg, service.name).write_text(
            json.dumps({"pid": process.pid, "started": started, "command": service.command(cfg)})
        )
        _wait_healthy(cfg, service, log)
        service.ready(cfg)
        echo(f"{service.name}: started (pid {process.pid}, {time.monotonic() - started_at:.0f}s)")


#: Set in every service's environment (and so inherited by everything it spawns): ``down`` finds a process of
#: this runtime by it even when no record names it (a service that self-healing started from another process,
#: whose record was overwritten or lost).
SERVICE_MARK = "HDP_SERVICE_OF"


def marked_processes(cfg: PlatformConfig) -> list[int]:
    """Live processes carrying this runtime's mark (never this process)."""
    mark = f"{SERVICE_MARK}={cfg.home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0") and _proc_start_time(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def down(
    cfg: PlatformConfig,
    echo: Callable[[str], None] = print,
    timeout_s: float = 30.0,
    only: list[str] | None = None,
) -> None:
    """Stop every service recorded under ``cfg.home`` (or ``only`` those), in reverse start order, and nothing else."""
    for service in reversed(services()):
        if only and not any(service.name.startswith(prefix) for prefix in only):
            continue
        state = running(cfg, service.name)
        record = _record(cfg, service.name)
        if state is None:
            record.unlink(missing_ok=True)
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while session_members(state.pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        leftovers = session_members(state.pid)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        record.unlink(missing_ok=True)
        echo(f"{service.name}: stopped" + (f" ({len(leftovers)} killed after {timeout_s:.0f}s)" if leftovers else ""))
    if only:
        return
    strays = marked_processes(cfg)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while (left := [pid for pid in strays if _proc_start_time(pid)]) and time.monotonic() < deadline:
        time.sleep(0.3)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if strays:
        echo(f"stopped {len(strays)} process(es) of this runtime that no record named: {strays}")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    healthy: bool
    detail: str
    url: str
    rss_bytes: int


def status(cfg: PlatformConfig) -> list[ServiceStatus]:
    report = []
    catalog = catalog_health(cfg)
    report.append(ServiceStatus("iceberg-catalog", None, catalog.ok, catalog.detail, cfg.catalog.uri, 0))
    for service in services():
        state = running(cfg, service.name)
        if state is None:
            report.append(ServiceStatus(service.name, None, False, "not running", service.url(cfg), 0))
            continue
        health = service.health(cfg)
        rss = resident_memory_bytes(session_members(state.pid))
        report.append(ServiceStatus(service.name, state.pid, health.ok, health.detail, service.url(cfg), rss))
    return report


# [template:streaming]
# --------------------------------------------------------------------------------------------------
# Submitting PyFlink jobs to the session cluster


def flink_run(
    cfg: PlatformConfig,
    script: Path,
    args: list[str],
    detached: bool = False,
    timeout_s: float = 600,
    extra_options: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``flink run -py script args`` against the local session cluster (client in the Flink env)."""
    command = ["bash", str(pyflink_home(cfg) / "bin" / "flink"), "run"]
    if detached:
        command.append("--detached")
    rest = urllib.parse.urlsplit(cfg.flink_rest_url)
    if rest.hostname != cfg.bind_host:
        # A remote session cluster (Compose, Kubernetes): HDP_FLINK_REST_URL wins over the client's conf file.
        command += ["-m", rest.netloc]
    command += extra_options or []
    command += ["-py", str(script), "-pyexec", str(cfg.flink_python), "-pyclientexec", str(cfg.flink_python)]
    env = {**os.environ, **flink_env(cfg), "HDP_HOME": str(cfg.home)}
    # The client reads rest.address/rest.port from FLINK_CONF_DIR, i.e. this platform's cluster.
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).splitlines()
        # The first exception message names the cause (e.g. a SQL parse error); stack frames do not.
        messages = [
            line.strip(" :")
            for line in output
            if ("Exception:" in line or "Error:" in line) and not line.strip().startswith(("at ", "Caused by"))
        ]
        raise RuntimeFailure(f"flink run {script.name} failed: {(messages or output[-1:] or ['no output'])[0][:400]}")
    return result


# [/template:streaming]
