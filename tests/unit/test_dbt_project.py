"""The dbt project and its runner, without Spark: profile rendering, project layout and docs, `dbt parse`."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybrid_platform import config, dbt_runner, engines, jars, names

PROJECT = dbt_runner.project_dir()
MODELS = PROJECT / "models"
GENERIC_TESTS = ("unique", "not_null", "accepted_values", "relationships")


@pytest.fixture
def cfg(tmp_path: Path) -> config.PlatformConfig:
    """Spark inside dbt's process (HDP_SPARK_REMOTE=none)."""
    cfg = config.load({"HDP_HOME": str(tmp_path / "home"), "HDP_SPARK_REMOTE": "none"})
    jars.ensure_all(cfg.jar_cache, ["spark"])
    return cfg


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _model_files() -> dict[str, Path]:
    return {path.stem: path for path in sorted(MODELS.rglob("*.sql"))}


def _property_files() -> list[Path]:
    return sorted(MODELS.rglob("*.yml"))


# --- the profile --------------------------------------------------------------------------------------------


def test_profile_hands_dbt_the_platform_spark_settings(cfg: config.PlatformConfig) -> None:
    path = dbt_runner.write_profile(cfg)
    assert path == cfg.home / "dbt" / "profile-in-process" / "profiles.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    profile = _load(path)[dbt_runner.PROFILE_NAME]
    output = profile["outputs"][profile["target"]]
    assert profile["target"] == cfg.environment
    assert (output["type"], output["method"]) == ("spark", "session")
    parameters = output["server_side_parameters"]
    # Exactly what every Spark job gets, plus the in-memory session catalog (no Hive metastore, no Derby).
    assert parameters == {**engines.spark_conf(cfg, "dbt"), "spark.sql.catalogImplementation": "in-memory"}
    assert parameters["spark.sql.defaultCatalog"] == cfg.catalog.name
    assert parameters[f"spark.sql.catalog.{cfg.catalog.name}.uri"] == cfg.catalog.uri
    assert "iceberg-spark-runtime" in parameters["spark.jars"]


def test_locally_dbt_runs_on_the_runtimes_spark_connect_server(tmp_path: Path) -> None:
    local = config.load({"HDP_HOME": str(tmp_path), "HDP_SPARK_CONNECT_PORT": "15999"})
    assert local.spark_remote == "sc://localhost:15999"
    # The server runs what it is sent: it takes a random token, private to this user, never in the profile.
    token_file = tmp_path / "secrets" / "spark-connect-token"
    assert local.spark_connect_token == token_file.read_text() and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    path = dbt_runner.write_profile(local)
    assert path == tmp_path / "dbt" / "profile-connect" / "profiles.yml"
    assert local.spark_connect_token not in path.read_text()
    output = _load(path)[dbt_runner.PROFILE_NAME]["outputs"][local.environment]
    assert (output["type"], output["method"]) == ("spark", "session")
    # The server has the jars and the catalog; pyspark refuses spark.master beside spark.remote.
    assert output["server_side_parameters"] == {
        "spark.remote": "sc://localhost:15999",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": engines.spark_conf(local, "dbt")["spark.sql.shuffle.partitions"],
    }


def test_spark_remote_is_a_connect_url_or_none(tmp_path: Path) -> None:
    assert config.load({"HDP_HOME": str(tmp_path), "HDP_ENV": "cluster"}).spark_remote == ""
    assert config.load({"HDP_HOME": str(tmp_path), "HDP_SPARK_REMOTE": "sc://spark:15002"}).spark_remote == (
        "sc://spark:15002"
    )
    with pytest.raises(config.ConfigError, match="HDP_SPARK_REMOTE"):
        config.load({"HDP_HOME": str(tmp_path), "HDP_SPARK_REMOTE": "spark:15002"})


def test_profile_is_rewritten_only_when_it_changes(cfg: config.PlatformConfig) -> None:
    path = dbt_runner.write_profile(cfg)
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    dbt_runner.write_profile(cfg)
    assert path.stat().st_mtime_ns == before - 10**9


def test_catalog_password_never_lands_in_the_profile(tmp_path: Path) -> None:
    cluster = config.load(
        {
            "HDP_HOME": str(tmp_path),
            "HDP_SPARK_REMOTE": "none",
            "HDP_CATALOG_URI": "jdbc:postgresql://catalog-db:5432/iceberg",
            "HDP_CATALOG_USER": "iceberg",
            "HDP_CATALOG_PASSWORD": "s3cret-value",  # pragma: allowlist secret (test-only)
        }
    )
    jars.ensure_all(cluster.jar_cache, ["spark", jars.CLUSTER_SET])  # a Postgres catalog puts the cluster jars on it
    text = dbt_runner.render_profile(cluster)
    assert "s3cret-value" not in text
    parameters = yaml.safe_load(text)[dbt_runner.PROFILE_NAME]["outputs"]["local"]["server_side_parameters"]
    assert parameters["spark.sql.catalog.lakehouse.jdbc.password"] == "{{ env_var('HDP_CATALOG_PASSWORD') }}"
    assert parameters["spark.sql.catalog.lakehouse.jdbc.user"] == "iceberg"


def test_secrets_must_be_in_the_environment_dbt_runs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HDP_CATALOG_PASSWORD", raising=False)
    cluster = config.load({"HDP_HOME": str(tmp_path), "HDP_CATALOG_USER": "u", "HDP_CATALOG_PASSWORD": "p"})
    with pytest.raises(RuntimeError, match="HDP_CATALOG_PASSWORD"):
        dbt_runner.invoke(cluster, ["parse"])


def test_dbt_writes_only_under_the_state_folder(cfg: config.PlatformConfig) -> None:
    argv = dbt_runner.command(cfg, ["build", "--select", "marts"])
    assert argv[:3] == ["build", "--select", "marts"]
    options = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert options == {
        "--project-dir": str(PROJECT),
        "--profiles-dir": str(cfg.home / "dbt" / "profile-in-process"),
        "--log-path": str(cfg.home / "dbt" / "logs"),
        "--target-path": str(cfg.home / "dbt" / "target"),
    }
    assert dbt_runner.manifest_path(cfg) == cfg.home / "dbt" / "target" / "manifest.json"
    assert "--target-path" not in dbt_runner.command(cfg, ["debug"])  # debug takes no --target-path


# --- the project --------------------------------------------------------------------------------------------


def test_models_land_in_the_dbt_namespaces_as_iceberg_tables() -> None:
    project = _load(PROJECT / "dbt_project.yml")
    assert project["name"] == project["profile"] == dbt_runner.PROFILE_NAME
    models = project["models"]["hybrid_platform"]
    assert (models["+file_format"], models["+materialized"]) == ("iceberg", "table")
    assert models["staging"]["+schema"] == names.DBT_STAGING_NAMESPACE
    assert models["marts"]["+schema"] == names.DBT_MARTS_NAMESPACE
    assert {path.parent.name for path in _model_files().values()} == {"staging", "marts"}


def test_sources_are_the_lakehouse_tables() -> None:
    from spark_jobs import tables

    sources = _load(MODELS / "staging" / "_sources.yml")["sources"]
    declared = {f"{source['schema']}.{table['name']}": table for source in sources for table in source["tables"]}
    expected = {
        names.RAW_TRANSACTIONS,
        names.RAW_FRAUD_ALERTS,
        names.RAW_FRAUD_LABELS,
        names.SILVER_TRANSACTIONS,
        *names.GOLD_TABLES,
        names.REF_CURRENCY_RATES,
    }
    assert set(declared) == expected
    for name, table in declared.items():
        ddl_columns = set(re.findall(r"(\w+) [A-Z]", tables.ALL[name][0]))
        documented = {column["name"] for column in table.get("columns", [])}
        assert documented <= ddl_columns, f"{name}: {documented - ddl_columns} not in spark_jobs/tables.py"
        assert table.get("description"), f"source table {name} has no description"
    freshness = [s for s in sources if "freshness" in s.get("config", {})]
    freshness += [t for s in sources for t in s["tables"] if "freshness" in t.get("config", {})]
    assert freshness, "no source declares freshness"


def test_every_model_has_exactly_one_yaml_with_descriptions_and_tests() -> None:
    documented: dict[str, list[Path]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for path in _property_files():
        for model in _load(path).get("models", []):
            documented.setdefault(model["name"], []).append(path)
            entries[model["name"]] = model
    models = _model_files()
    assert set(documented) == set(models), "models without YAML, or YAML without a model"
    for name, paths in documented.items():
        assert paths == [models[name].with_suffix(".yml")], f"{name} is documented in {paths}"
        model = entries[name]
        assert model.get("description"), f"{name} has no description"
        columns = model.get("columns", [])
        assert columns, f"{name} documents no column"
        undocumented = [c["name"] for c in columns if not c.get("description")]
        assert not undocumented, f"{name}: columns without description: {undocumented}"
        tests = [t for c in columns for t in c.get("data_tests", [])] + model.get("data_tests", [])
        kinds = {t if isinstance(t, str) else next(iter(t)) for t in tests}
        assert kinds & set(GENERIC_TESTS), f"{name} has none of {GENERIC_TESTS}"
        # Every documented column is named in the SQL (the integration test compares with the built tables).
        sql = models[name].read_text(encoding="utf-8")
        missing = [c["name"] for c in columns if not re.search(rf"\b{c['name']}\b", sql)]
        assert not missing, f"{name}: documented but not in the SQL: {missing}"


def test_the_grain_keys_are_tested_and_channel_values_are_pinned() -> None:
    def column_tests(model: str, column: str) -> list[Any]:
        entry = _load(_model_files()[model].with_suffix(".yml"))["models"][0]
        return next(c for c in entry["columns"] if c["name"] == column).get("data_tests", [])

    for model, key in [
        ("stg_transactions", "txn_id"),
        ("fct_transactions", "txn_id"),
        ("dim_merchants", "merchant_id"),
    ]:
        assert {"unique", "not_null"} <= {t for t in column_tests(model, key) if isinstance(t, str)}
    channel = next(t for t in column_tests("stg_transactions", "channel") if isinstance(t, dict))
    assert channel["accepted_values"]["arguments"]["values"] == ["pos", "online", "atm"]
    relationships = [t for t in column_tests("fct_transactions", "merchant_id") if isinstance(t, dict)]
    assert relationships[0]["relationships"]["arguments"]["to"] == "ref('dim_merchants')"


def test_mart_logic_has_unit_tests() -> None:
    unit_tests = [t for path in _property_files() for t in _load(path).get("unit_tests", [])]
    assert "mart_model_performance" in {t["model"] for t in unit_tests}
    for test in unit_tests:
        assert test["given"] and test["expect"]["rows"], test["name"]


def test_dbt_parse_needs_no_spark(cfg: config.PlatformConfig) -> None:
    """`dbt parse` in a fresh interpreter: a manifest for Cosmos, no JVM started, nothing written to the repo."""
    before = sorted(p.relative_to(PROJECT) for p in PROJECT.rglob("*"))
    script = (
        "import json\n"
        "from hybrid_platform import config, dbt_runner\n"
        "path = dbt_runner.parse(config.load())\n"
        "from pyspark import SparkContext\n"  # dbt-spark imports pyspark to check it is installed
        "print(json.dumps({'manifest': str(path), 'jvm': SparkContext._gateway is not None}))\n"
    )
    env = {**os.environ, "HDP_HOME": str(cfg.home)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"manifest": str(dbt_runner.manifest_path(cfg)), "jvm": False}
    assert sorted(p.relative_to(PROJECT) for p in PROJECT.rglob("*")) == before

    manifest = json.loads(dbt_runner.manifest_path(cfg).read_text(encoding="utf-8"))
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(models) == set(_model_files())
    for name, node in models.items():
        namespace = names.DBT_STAGING_NAMESPACE if name.startswith("stg_") else names.DBT_MARTS_NAMESPACE
        assert node["relation_name"] == f"{namespace}.{name}"
        assert node["config"]["file_format"] == "iceberg"
    sources = {n["relation_name"] for n in manifest["sources"].values()}
    assert names.SILVER_TRANSACTIONS in sources and names.RAW_FRAUD_ALERTS in sources
    assert {t["model"] for t in manifest["unit_tests"].values()} >= {"mart_model_performance"}
    assert any(n["resource_type"] == "test" for n in manifest["nodes"].values())


def test_dbt_with_spark_in_its_own_process_listens_on_the_bind_host_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark's web UI binds every interface unless SPARK_LOCAL_IP names one: in-process dbt sets it first."""
    import importlib
    import types

    from hybrid_platform import config, dbt_runner

    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    cfg = config.load({"HDP_HOME": str(tmp_path), "HDP_SPARK_REMOTE": "none", "HDP_AIRFLOW_PASSWORD": "x" * 20})
    seen: dict[str, str | None] = {}

    class Runner:
        def invoke(self, argv: list[str]) -> object:
            seen["SPARK_LOCAL_IP"] = os.environ.get("SPARK_LOCAL_IP")
            return types.SimpleNamespace(success=True)

    real_import = importlib.import_module
    monkeypatch.setattr(
        importlib,
        "import_module",
        lambda name: types.SimpleNamespace(dbtRunner=Runner) if name == "dbt.cli.main" else real_import(name),
    )
    assert dbt_runner.run(cfg, ["debug"])
    assert seen["SPARK_LOCAL_IP"] == "127.0.0.1"
