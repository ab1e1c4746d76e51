"""The one place a Spark job's entrypoint builds its SparkSession (transforms never do)."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from hybrid_platform import config, runtime
from hybrid_platform.engines import spark_conf, spark_process_environment


def build_session(app_name: str, cfg: config.PlatformConfig | None = None) -> SparkSession:
    cfg = cfg or config.load()
    runtime.prepare_catalog(cfg)  # a batch job may run before `hdp up` ever did
    # Workers must run this environment's interpreter, not whatever python3 is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name, value in spark_process_environment(cfg).items():
        os.environ.setdefault(name, value)
    conf = spark_conf(cfg, app_name)
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Launched by spark-submit (Airflow's connection): the master and jars it was given are the truth.
        for launch_only in ("spark.master", "spark.jars"):
            conf.pop(launch_only)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
