from pathlib import Path

import pytest

from hybrid_platform import config


def test_local_defaults_live_under_one_state_folder(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path)})
    assert cfg.environment == "local"
    assert cfg.kafka_bootstrap == "127.0.0.1:9092"
    assert cfg.flink_rest_url == "http://127.0.0.1:8081"
    assert cfg.airflow_url == "http://127.0.0.1:8080"
    assert cfg.catalog.uri == f"jdbc:sqlite:{tmp_path / 'catalog' / 'iceberg_catalog.db'}"
    assert cfg.catalog.warehouse == (tmp_path / "warehouse").as_uri()
    assert cfg.run_dir.is_relative_to(cfg.home) and cfg.log_dir.is_relative_to(cfg.home)


def test_ports_and_endpoints_come_from_the_environment() -> None:
    cfg = config.load({"HDP_KAFKA_PORT": "19092", "HDP_FLINK_PORT": "18081", "CI": "true"})
    assert cfg.environment == "ci"
    assert cfg.kafka_bootstrap == "127.0.0.1:19092"
    assert cfg.flink_rest_url.endswith(":18081")
    cluster = config.load({"HDP_KAFKA_BOOTSTRAP": "kafka-0.kafka:9092", "HDP_ENV": "cluster"})
    assert cluster.kafka_bootstrap == "kafka-0.kafka:9092"
    assert cluster.environment == "cluster"


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_bad_port_names_the_variable(value: str) -> None:
    with pytest.raises(config.ConfigError, match="HDP_AIRFLOW_PORT"):
        config.load({"HDP_AIRFLOW_PORT": value})


def test_one_catalog_three_clients(tmp_path: Path) -> None:
    local = config.load({"HDP_HOME": str(tmp_path)}).catalog
    assert local.sqlalchemy_uri == f"sqlite:///{tmp_path / 'catalog' / 'iceberg_catalog.db'}"
    assert local.java_properties()["type"] == "jdbc"
    assert local.pyiceberg_properties()["warehouse"] == local.warehouse
    pg = config.load(
        {
            "HDP_CATALOG_URI": "jdbc:postgresql://db:5432/iceberg",
            "HDP_CATALOG_USER": "u",
            "HDP_CATALOG_PASSWORD": "p",
        }
    ).catalog
    assert pg.sqlalchemy_uri == "postgresql+psycopg2://u:p@db:5432/iceberg"
    assert pg.java_properties()["jdbc.user"] == "u"
    with pytest.raises(config.ConfigError, match="HDP_CATALOG_URI"):
        _ = config.load({"HDP_CATALOG_URI": "jdbc:h2:mem:x"}).catalog.sqlalchemy_uri


def test_local_catalog_needs_no_cluster_jars(tmp_path: Path) -> None:
    from hybrid_platform import jars

    cfg = config.load({"HDP_HOME": str(tmp_path)})
    assert not cfg.catalog.needs_cluster_jars
    assert jars.sets_for(cfg.catalog) == jars.LOCAL_SETS
    assert "io-impl" not in cfg.catalog.java_properties()


def test_postgres_catalog_and_s3_warehouse_for_a_cluster() -> None:
    from hybrid_platform import jars

    cfg = config.load(
        {
            "HDP_CATALOG_URI": "jdbc:postgresql://postgres:5432/iceberg",
            "HDP_CATALOG_USER": "iceberg",
            "HDP_CATALOG_PASSWORD": "pw",  # pragma: allowlist secret
            "HDP_WAREHOUSE": "s3://hdp-warehouse/warehouse",
            "HDP_S3_ENDPOINT": "http://minio:9000",
            "HDP_S3_REGION": "us-east-1",
        }
    )
    assert cfg.catalog.needs_cluster_jars and jars.CLUSTER_SET in jars.sets_for(cfg.catalog)
    java = cfg.catalog.java_properties()
    assert java["io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert java["s3.endpoint"] == "http://minio:9000" and java["s3.path-style-access"] == "true"
    assert java["client.region"] == "us-east-1"
    expected_uri = "postgresql+psycopg2://iceberg:pw@postgres:5432/iceberg"  # pragma: allowlist secret
    assert cfg.catalog.sqlalchemy_uri == expected_uri
    py = cfg.catalog.pyiceberg_properties()
    assert py["s3.endpoint"] == "http://minio:9000" and py["s3.region"] == "us-east-1"
    # Credentials stay with the AWS variables; the catalog properties never carry them.
    assert not any("secret" in key or "access-key" in key for key in {**java, **py})


def test_aws_s3_needs_no_endpoint() -> None:
    cfg = config.load({"HDP_WAREHOUSE": "s3://bucket/wh"})
    java = cfg.catalog.java_properties()
    assert java["io-impl"].endswith("S3FileIO") and "s3.endpoint" not in java and "s3.path-style-access" not in java


def test_demo_settings_are_read_when_the_demo_runs_and_refused_in_one_line() -> None:
    assert config.demo_settings({}) == config.DemoSettings(1000.0, 20.0, 60.0, 30000)
    assert config.demo_settings({"HDP_DEMO_RATE": "250", "HDP_DEMO_WARMUP": "0"}).rate == pytest.approx(250)
    for name, value in (("HDP_DEMO_RATE", "abc"), ("HDP_DEMO_DURATION", "0"), ("HDP_DEMO_RATE", "nan")):
        with pytest.raises(config.ConfigError, match=name) as info:
            config.demo_settings({name: value})
        assert "\n" not in str(info.value)


def test_a_bad_demo_setting_does_not_break_other_commands() -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "hybrid_platform.cli", "--help"],
        env={**os.environ, "HDP_DEMO_RATE": "abc"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_catalog_credentials_are_encoded_in_urls_and_never_passed_as_arguments(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from hybrid_platform import jars, orchestration

    secret = "p@ss/w:rd%"  # pragma: allowlist secret (test-only)
    env = {
        "HDP_HOME": str(tmp_path),
        "HDP_CATALOG_URI": "jdbc:postgresql://db:5432/iceberg",
        "HDP_CATALOG_USER": "iceberg",
        "HDP_CATALOG_PASSWORD": secret,
    }
    cfg = config.load(env)
    jars.ensure_all(cfg.jar_cache, ["spark"], cfg.maven_repository)  # spark-submit's settings name its jars
    url = make_url(cfg.catalog.sqlalchemy_uri)
    assert (url.host, url.password, url.database) == ("db", secret, "iceberg")
    conf, _ = orchestration.submit_settings(cfg, "daily_etl")
    assert secret not in " ".join(f"{k}={v}" for k, v in conf.items()), "spark-submit's argv is public (ps)"
    assert conf[f"spark.sql.catalog.{cfg.catalog.name}.jdbc.user"] == "iceberg"


def test_config_is_the_one_place_that_reads_platform_variables() -> None:
    """Every HDP_* variable is resolved by config.load at call time: a read elsewhere would escape validation."""
    import re

    read = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']HDP_""")
    offenders = []
    for folder in ("src", "spark_jobs", "flink_jobs", "dags", "bench"):
        for path in (config.REPO_ROOT / folder).rglob("*.py"):
            if path.name != "config.py" and read.search(path.read_text()):
                offenders.append(str(path.relative_to(config.REPO_ROOT)))
    assert not offenders, f"HDP_* read outside config.py: {offenders}"
    assert config.load({"HDP_MAVEN_REPO": "https://mirror.example/m2"}).maven_repository == "https://mirror.example/m2"
