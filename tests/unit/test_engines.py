from pathlib import Path

from hybrid_platform import config, jars
from hybrid_platform.engines import flink_catalog_ddl, spark_conf


def test_spark_uses_cached_jars_and_the_shared_catalog(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path)})
    jars.ensure_all(cfg.jar_cache, ["spark"])
    conf = spark_conf(cfg, "t")
    assert conf["spark.sql.defaultCatalog"] == "lakehouse"
    assert conf["spark.sql.catalog.lakehouse.uri"] == cfg.catalog.uri
    assert all(Path(p).is_file() for p in conf["spark.jars"].split(","))
    assert "iceberg-spark-runtime" in conf["spark.jars"]


def test_flink_ddl_names_the_same_catalog(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path)})
    ddl = flink_catalog_ddl(cfg)
    assert ddl.startswith("CREATE CATALOG IF NOT EXISTS `lakehouse`")
    assert f"'uri' = '{cfg.catalog.uri}'" in ddl
    assert "'catalog-impl' = 'org.apache.iceberg.jdbc.JdbcCatalog'" in ddl


def test_flink_ddl_quotes_values_so_none_ends_its_string(tmp_path: Path) -> None:
    cfg = config.load(
        {
            "HDP_HOME": str(tmp_path),
            "HDP_CATALOG_URI": "jdbc:postgresql://db/iceberg",
            "HDP_CATALOG_USER": "iceberg",
            "HDP_CATALOG_PASSWORD": "it's', 'warehouse' = 'file:/elsewhere",  # pragma: allowlist secret (test-only)
        }
    )
    ddl = flink_catalog_ddl(cfg)
    quoted = "'jdbc.password' = 'it''s'', ''warehouse'' = ''file:/elsewhere'"  # pragma: allowlist secret (test-only)
    assert quoted in ddl
    assert ddl.count("'warehouse' = ") == 1, "the password injected no option"


def test_fixed_copies_of_bundled_libraries_come_first_on_sparks_class_path(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path)})
    jars.ensure_all(cfg.jar_cache, ["spark"])
    conf = spark_conf(cfg, "t")
    assert Path(conf["spark.driver.extraClassPath"]).name == "lz4-java-1.10.4.jar"
    assert conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"]
