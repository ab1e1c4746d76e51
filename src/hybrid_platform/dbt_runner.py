"""dbt on the shared lakehouse: profiles.yml rendered from the platform config, dbt run in-process.

The adapter is dbt-spark in ``session`` mode, which calls ``SparkSession.builder...getOrCreate()`` with the
profile's ``server_side_parameters``. Two ways, chosen by ``HDP_SPARK_REMOTE`` (``config.spark_remote``):

- **Spark Connect** (locally the default: ``hdp up`` runs the server): the parameters hold ``spark.remote``
  and the session is a thin client of one long-lived Spark driver that already has the jars and the Iceberg
  catalog. Each Airflow task of a model is a dbt process of its own, and a JVM per task cost ~20 s of each.
- **In this process** (``HDP_SPARK_REMOTE=none``, the cluster default): the parameters are exactly the
  settings every Spark job gets from ``engines.spark_conf`` (jars from the verified cache, the Iceberg JDBC
  catalog as the default catalog). In a fresh process they configure a new session and its JVM; in a process
  that already has a session (a test, a Spark job) it is reused and only its runtime SQL settings change.

Everything dbt writes (the rendered profile, ``target/`` with ``manifest.json``, ``logs/``) goes to
``<HDP_HOME>/dbt``; the repository's ``dbt/`` folder holds only what is committed.

Pure standard library at import time: dbt is imported inside :func:`invoke`.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_platform import engines, names
from hybrid_platform.config import REPO_ROOT, PlatformConfig

#: ``profile:`` in dbt/dbt_project.yml and the top-level key of the rendered profiles.yml.
PROFILE_NAME = "hybrid_platform"
#: The Spark application name of dbt's session (when dbt creates it).
APP_NAME = "dbt"
#: Catalog properties that are secrets: rendered as ``env_var()`` lookups, never written to the profile.
_SECRET_PROPERTIES = {"jdbc.password": "HDP_CATALOG_PASSWORD"}  # pragma: allowlist secret (a variable name)
#: Subcommands without ``--target-path`` (they write no artifacts).
_NO_TARGET_PATH = frozenset({"debug", "deps", "init"})


def project_dir() -> Path:
    """The dbt project in the repository (``dbt_project.yml``, models, tests)."""
    return REPO_ROOT / "dbt"


def state_dir(cfg: PlatformConfig) -> Path:
    """Where dbt's by-products live: ``<HDP_HOME>/dbt`` (git-ignored with the rest of the state)."""
    return cfg.home / "dbt"


def profiles_dir(cfg: PlatformConfig) -> Path:
    """One folder per way of running Spark, so a dbt run of one kind never rewrites the other's profile under
    the Airflow tasks that read it."""
    return state_dir(cfg) / ("profile-connect" if cfg.spark_remote else "profile-in-process")


def target_path(cfg: PlatformConfig) -> Path:
    return state_dir(cfg) / "target"


def log_path(cfg: PlatformConfig) -> Path:
    return state_dir(cfg) / "logs"


def manifest_path(cfg: PlatformConfig) -> Path:
    """The compiled manifest :func:`parse` (and every other dbt command) writes; Cosmos loads it from here."""
    return target_path(cfg) / "manifest.json"


#: dbt threads against a Spark Connect server: a few concurrent queries, on a driver of two cores.
CONNECT_THREADS = 4
#: Settings a Spark Connect client may set per session; the server was started with every other one.
_CONNECT_SESSION_SETTINGS = ("spark.sql.session.timeZone", "spark.sql.shuffle.partitions")


def spark_parameters(cfg: PlatformConfig) -> dict[str, str]:
    """The Spark settings of dbt's session: the platform's own, plus an in-memory session catalog.

    dbt-spark's session mode calls ``enableHiveSupport()``; the lakehouse is the Iceberg default catalog and
    needs no Hive metastore, so ``in-memory`` (applied after it) keeps Derby's ``metastore_db`` from being
    created at all. Through Spark Connect only the server's address and the per-session SQL settings.
    """
    conf = engines.spark_conf(cfg, APP_NAME)
    if cfg.spark_remote:
        # spark.master beside spark.remote is refused by pyspark; jars and the catalog are the server's.
        return {"spark.remote": cfg.spark_remote, **{key: conf[key] for key in _CONNECT_SESSION_SETTINGS}}
    conf["spark.sql.catalogImplementation"] = "in-memory"
    return conf


def render_profile(cfg: PlatformConfig) -> str:
    """profiles.yml for the dbt-spark session method (YAML; every scalar is a JSON-quoted string)."""
    catalog_prefix = f"spark.sql.catalog.{cfg.catalog.name}."
    lines = [
        "# Rendered by hybrid_platform.dbt_runner from the platform config on every run: do not edit.",
        f"{PROFILE_NAME}:",
        f"  target: {_quote(cfg.environment)}",
        "  outputs:",
        f"    {_quote(cfg.environment)}:",
        '      type: "spark"',
        '      method: "session"',
        '      host: "session"',  # required by dbt-spark, unused by the session method
        # Models set their own schema (namespace); this one only applies to anything that sets none.
        f"      schema: {_quote(names.DBT_STAGING_NAMESPACE)}",
        # Through Spark Connect each thread is a query on the shared server (the test step runs ~100 small ones);
        # in dbt's own process one session, one query at a time.
        f"      threads: {CONNECT_THREADS if cfg.spark_remote else 1}",
        "      server_side_parameters:",
    ]
    for key, value in spark_parameters(cfg).items():
        secret = _SECRET_PROPERTIES.get(key.removeprefix(catalog_prefix)) if key.startswith(catalog_prefix) else None
        rendered = "{{ env_var('" + secret + "') }}" if secret else value
        lines.append(f"        {_quote(key)}: {_quote(rendered)}")
    return "\n".join(lines) + "\n"


def write_profile(cfg: PlatformConfig) -> Path:
    """Write ``<HDP_HOME>/dbt/profiles.yml`` (owner-only) and return it."""
    path = profiles_dir(cfg) / "profiles.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_profile(cfg)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        temporary = path.with_suffix(".yml.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o600)
        temporary.replace(path)
    return path


def command(cfg: PlatformConfig, args: Sequence[str]) -> list[str]:
    """dbt's arguments with the project, the rendered profile and the state folders added."""
    argv = list(args)
    argv += ["--project-dir", str(project_dir()), "--profiles-dir", str(profiles_dir(cfg))]
    argv += ["--log-path", str(log_path(cfg))]
    if argv and argv[0] not in _NO_TARGET_PATH:
        argv += ["--target-path", str(target_path(cfg))]
    return argv


def invoke(cfg: PlatformConfig, args: Sequence[str]) -> Any:
    """Run dbt in this process (``dbtRunner``) and return its ``dbtRunnerResult``.

    ``args`` are dbt's own, e.g. ``["build", "--select", "marts"]`` or ``["docs", "generate"]``.
    """
    missing = [name for name in _secret_variables(cfg) if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"dbt reads the catalog credentials from the environment: set {', '.join(missing)}")
    write_profile(cfg)
    if cfg.spark_remote:
        if cfg.spark_connect_token:
            os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = cfg.spark_connect_token  # where pyspark's client reads it
        # dbt-spark asks each session for Hive support; the server refuses that static setting with a warning
        # per query (its catalog is Iceberg's).
        warnings.filterwarnings("ignore", message="Failed to set spark.sql.catalogImplementation")
    else:
        for name, value in engines.spark_process_environment(cfg).items():  # Spark in this process
            os.environ.setdefault(name, value)
    target_path(cfg).mkdir(parents=True, exist_ok=True)
    log_path(cfg).mkdir(parents=True, exist_ok=True)
    # Imported here so that the package stays pure standard library (and importable next to Flink).
    main = importlib.import_module("dbt.cli.main")
    return main.dbtRunner().invoke(command(cfg, args))


def run(cfg: PlatformConfig, args: Sequence[str]) -> bool:
    """Run a dbt command in-process; True when dbt reports success."""
    return bool(invoke(cfg, args).success)


def parse(cfg: PlatformConfig) -> Path:
    """``dbt parse``: write the manifest (no Spark session is needed) and return :func:`manifest_path`."""
    result = invoke(cfg, ["parse"])
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception or 'see ' + str(log_path(cfg) / 'dbt.log')}")
    return manifest_path(cfg)


def _secret_variables(cfg: PlatformConfig) -> list[str]:
    """Environment variables the rendered profile reads secrets from."""
    return [_SECRET_PROPERTIES[key] for key in cfg.catalog.java_properties() if key in _SECRET_PROPERTIES]


def _quote(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: no escaping rules of our own.
    return json.dumps(value)
