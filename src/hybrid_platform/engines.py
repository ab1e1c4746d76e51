"""How each engine reaches the shared lakehouse: Spark settings and Flink catalog DDL from one config.

Plain strings and dicts only (no engine import), so the same definitions serve the Spark environment,
the Flink environment, DAGs and tests.
"""

from __future__ import annotations

import os

from hybrid_platform import jars
from hybrid_platform.config import PlatformConfig
from hybrid_platform.sql_text import sql_literal


def spark_conf(cfg: PlatformConfig, app_name: str) -> dict[str, str]:
    """Settings for a SparkSession on the shared Iceberg catalog (the catalog is the default one)."""
    catalog = f"spark.sql.catalog.{cfg.catalog.name}"
    conf = {
        "spark.app.name": app_name,
        "spark.master": cfg.spark_master,
        # Local jar paths from the verified cache: Spark never resolves packages over the network.
        "spark.jars": ",".join(str(p) for p in jars.engine_classpath(cfg.jar_cache, "spark", cfg.catalog)),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.defaultCatalog": cfg.catalog.name,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.spark_shuffle_partitions),
        "spark.driver.memory": cfg.spark_driver_memory,
        "spark.ui.showConsoleProgress": "false",
        # Keep Hive/Derby by-products inside the state folder, not in the working directory.
        "spark.sql.warehouse.dir": str(cfg.home / "spark" / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={cfg.home / 'spark'}",
    }
    # Before pyspark's own jars: fixed copies of libraries it bundles in vulnerable versions (lz4-java).
    first = os.pathsep.join(str(p) for p in jars.first_classpath(cfg.jar_cache, "spark"))
    if first:
        conf["spark.driver.extraClassPath"] = first
        conf["spark.executor.extraClassPath"] = first
    if cfg.spark_master.startswith("local"):
        conf["spark.driver.host"] = cfg.bind_host
        conf["spark.driver.bindAddress"] = cfg.bind_host
    conf.update({f"{catalog}.{key}": value for key, value in cfg.catalog.java_properties().items()})
    return conf


def spark_process_environment(cfg: PlatformConfig) -> dict[str, str]:
    """What a process that starts Spark inside itself exports first: Spark's web UI binds every interface unless
    SPARK_LOCAL_IP names one, so the driver and its UI (4040) listen on the bind host only."""
    return {"SPARK_LOCAL_IP": cfg.bind_host}


def flink_catalog_ddl(cfg: PlatformConfig) -> str:
    """``CREATE CATALOG`` for Flink SQL / Table API on the same Iceberg catalog."""
    options = {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        **{k: v for k, v in cfg.catalog.java_properties().items() if k != "type"},
    }
    # Quoted as SQL literals: a password or path with a quote must not end the string (or inject an option).
    rendered = ",\n  ".join(f"{sql_literal(key)} = {sql_literal(value)}" for key, value in options.items())
    name = cfg.catalog.name.replace("`", "``")
    return f"CREATE CATALOG IF NOT EXISTS `{name}` WITH (\n  {rendered}\n)"
