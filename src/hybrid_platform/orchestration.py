"""What the DAGs call: Spark jobs through an Airflow connection, asset names, and Airflow's local defaults.

DAG files stay thin (the scheduler parses them constantly); everything here is standard library at
import time, and Airflow's own modules are imported inside the functions that run in a task.

**Laptop to cluster by configuration only.** Spark jobs are submitted with ``spark-submit`` through the
Airflow connection ``spark_default``: locally its host is ``local[2]``; on a cluster the same connection
(``AIRFLOW_CONN_SPARK_DEFAULT``) says ``k8s://https://...`` plus deploy mode and image, and the DAG
code does not change. The Iceberg catalog settings come from the platform config of the task's
environment (``engines.spark_conf``), the same resolution every job and dbt use.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hybrid_platform import config, engines

SPARK_CONN_ID = "spark_default"
#: Spark settings that only spark-submit can apply (they shape the launched JVM or pick the cluster).
_LAUNCH_ONLY = ("spark.master", "spark.app.name", "spark.jars")
#: Settings never passed as spark-submit arguments (argv is public: `ps`); the job's own session sets them from
#: the configuration (spark_jobs.session.build_session applies the same settings in-process).
_SECRET_SUFFIXES = (".jdbc.password",)

#: Airflow Variables the DAGs read, with their local defaults (override: ``AIRFLOW_VAR_<NAME>``).
VARIABLE_DEFAULTS = {
    # lakehouse_maintenance: time travel kept, and the safety margin for orphan files.
    "snapshot_retention_hours": "72",
    "orphan_min_age_hours": "24",
    # flink_jobs: when a job counts as unhealthy (checkpoint age, consumer lag, alert p99) and how old the
    # newest savepoint may get before the periodic one is taken.
    "flink_max_checkpoint_age_s": "120",
    "flink_max_consumer_lag": "100000",
    "flink_max_alert_p99_ms": "10000",
    "flink_savepoint_max_age_h": "6",
}


def variable(name: str) -> str:
    """An Airflow Variable the DAGs read, at task run time, falling back to its default above."""
    from airflow.sdk import Variable

    return str(Variable.get(name, default=VARIABLE_DEFAULTS[name]))


def asset_uri(table: str, catalog: str = "lakehouse") -> str:
    """The Airflow Asset URI of a lakehouse table (``iceberg://lakehouse/silver/transactions``)."""
    return f"iceberg://{catalog}/{table.replace('.', '/')}"


MODEL_ASSET_URI = "file://models/fraud/champion"


def airflow_defaults(cfg: config.PlatformConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` for the local runtime; a value already in the environment wins."""
    source = os.environ if environ is None else environ
    spark_connection = {
        "conn_type": "spark",
        "host": cfg.spark_master,  # local[2] here; k8s://https://<api-server> or spark://<master>:7077 on a cluster
        "extra": {"deploy-mode": "client", "spark-binary": "spark-submit"},
    }
    defaults = {f"AIRFLOW_CONN_{SPARK_CONN_ID.upper()}": json.dumps(spark_connection)}
    defaults.update({f"AIRFLOW_VAR_{name.upper()}": value for name, value in VARIABLE_DEFAULTS.items()})
    return {key: source.get(key, value) for key, value in defaults.items()}


def day_to_process(context: Mapping[str, Any]) -> str:
    """The UTC day a daily run works on: the ``date`` param if given, else the day before the run.

    A run at 00:00 on the 24th builds the 23rd, the last complete day. Runs triggered by an Asset have
    no logical date; their ``run_after`` is used instead.
    """
    chosen = (context.get("params") or {}).get("date")
    if chosen:
        return date.fromisoformat(str(chosen)).isoformat()
    moment: datetime = context.get("logical_date") or context["dag_run"].run_after
    return (moment.astimezone(UTC).date() - timedelta(days=1)).isoformat()


def job_application(module: str) -> str:
    """The file spark-submit runs for ``spark_jobs.<job>`` (the module itself: each has a ``__main__`` guard)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"no Spark job module {module!r}")
    return spec.origin


def submit_settings(cfg: config.PlatformConfig, app_name: str) -> tuple[dict[str, str], str]:
    """(``--conf`` settings, ``--jars``) for spark-submit; the master comes from the connection."""
    conf = engines.spark_conf(cfg, app_name)
    jars = conf["spark.jars"]
    passed = {
        key: value for key, value in conf.items() if key not in _LAUNCH_ONLY and not key.endswith(_SECRET_SUFFIXES)
    }
    return passed, jars


def spark_submit(module: str, args: Sequence[str], conn_id: str = SPARK_CONN_ID) -> None:
    """Run a Spark job with spark-submit through the Airflow connection ``conn_id``; raises if it fails.

    The job's stdout and stderr (its JSON report, or the quality gate's report) land in the task log.
    """
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    cfg = config.load()
    app_name = module.rsplit(".", 1)[-1]
    conf, jars = submit_settings(cfg, app_name)
    # spark-submit lives next to this interpreter (pyspark's launcher); the Airflow worker's PATH may not say so.
    bin_dir = str(Path(sys.executable).parent)
    if shutil.which("spark-submit") is None:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    hook = SparkSubmitHook(
        conf=conf,
        conn_id=conn_id,
        jars=jars,
        name=app_name,
        application_args=list(args),
        env_vars={"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)},
    )
    hook.submit(application=job_application(module))
