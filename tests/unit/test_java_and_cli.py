"""One-line errors for the mistakes a user makes first: no Java, the wrong Java, a wrong CLI argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_platform import java


def _fake_jdk(root: Path, version_line: str) -> Path:
    """A JDK folder whose `java -version` prints ``version_line`` (the check only reads that line)."""
    binary = root / "bin" / "java"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    binary.chmod(0o755)
    return root


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(java.JavaError, match="Java not found: install a JDK 17"):
        java.java_home()


def test_wrong_java_version_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(_fake_jdk(tmp_path / "jdk11", 'openjdk version "11.0.2" 2019-01-15')))
    with pytest.raises(java.JavaError, match=r"Java 11 .* is not supported"):
        java.java_home()


def test_installed_java_is_supported() -> None:
    assert java.major_version(java.find_java()) in java.SUPPORTED_MAJORS


def _hdp(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybrid_platform.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


#: Wrong arguments for every subcommand. Each must be refused while parsing (exit 2), before anything runs.
CLI_MISTAKES = {
    "no_command": (),
    "unknown_command": ("upp",),
    "unknown_global_option": ("--verbose", "status"),
    "up_extra_argument": ("up", "now"),
    "up_only_without_service": ("up", "--only"),
    "up_only_unknown_service": ("up", "--only", "zookeeper"),
    "down_extra_argument": ("down", "--force"),
    "status_misspelt_option": ("status", "--jsn"),
    "jars_extra_argument": ("jars", "all"),
    "demo_extra_argument": ("demo", "--fast"),
    "generate_without_rate": ("generate", "--duration", "1"),
    "generate_fractions_over_one": (
        "generate",
        "--rate",
        "1",
        "--duration",
        "1",
        "--late-fraction",
        "0.6",
        "--malformed-fraction",
        "0.5",
    ),
    "kafka_unknown_action": ("kafka", "teardown"),
    "kafka_no_replicas": ("kafka", "setup", "--replication-factor", "0"),
    "flink_without_action": ("flink",),
    "flink_unknown_action": ("flink", "restart"),
    "flink_unknown_job": ("flink", "deploy", "fraud_scorer"),
    "flink_from_without_restore": ("flink", "savepoint", "fraud_scoring", "--from", "file:///tmp/sp"),
    "flink_restore_from_for_every_job": ("flink", "restore", "--from", "file:///tmp/sp"),
    "flink_job_arg_for_stop": ("flink", "stop", "lake_ingest", "--job-arg", "--x"),
    "flink_status_of_one_job": ("flink", "status", "lake_ingest"),
    "batch_without_job": ("batch",),
    "batch_unknown_job": ("batch", "backfill"),
    "batch_etl_without_date": ("batch", "etl"),
    "batch_etl_bad_date": ("batch", "etl", "--date", "2026-13-01"),
    "batch_seed_negative_transactions": ("batch", "seed", "--date", "2026-11-01", "--transactions", "-5"),
    "batch_train_holdout_over_one": ("batch", "train", "--as-of", "2026-11-01", "--holdout-share", "1.5"),
    "batch_maintenance_zero_retain_last": ("batch", "maintenance", "--retain-last", "0"),
    "batch_maintenance_negative_orphan_age": ("batch", "maintenance", "--orphan-min-age-hours", "-1"),
    "dbt_without_command": ("dbt",),
    "dbt_without_spark_connect_server": ("dbt", "build"),
    "latency_zero_duration": ("latency", "--duration", "0"),
    "latency_extra_argument": ("latency", "60"),
}
#: Where a mistake that slipped past the parser would go: nowhere real, and failing fast (exit 1, not 2).
UNREACHABLE = {
    "JAVA_HOME": "/nonexistent/jdk",
    "HDP_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "HDP_FLINK_REST_URL": "http://127.0.0.1:1",
    "HDP_AIRFLOW_URL": "http://127.0.0.1:1",
    "HDP_MAVEN_REPO": "http://127.0.0.1:1",
    "HDP_SPARK_MASTER": "spark://127.0.0.1:1",
    "HDP_SPARK_REMOTE": "sc://127.0.0.1:1",
}


def test_every_subcommand_has_a_mistake_case() -> None:
    from hybrid_platform import cli

    subcommands = next(action.choices for action in cli.build_parser()._actions if isinstance(action.choices, dict))
    covered = {args[0] for args in CLI_MISTAKES.values() if args and not args[0].startswith("-")}
    assert set(subcommands) <= covered


@pytest.mark.parametrize("args", list(CLI_MISTAKES.values()), ids=list(CLI_MISTAKES))
def test_cli_mistakes_print_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    result = _hdp(*args, HDP_HOME=str(tmp_path), HDP_JAR_CACHE=str(tmp_path / "jars"), **UNREACHABLE)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hdp"), lines[0]  # names the command it is about
    assert "--help" in lines[0] or "e.g." in lines[0] or "must" in lines[0], lines[0]  # says what to do
    assert not (tmp_path / "run").exists()  # nothing started


def test_bad_port_variable_is_one_line(tmp_path: Path) -> None:
    result = _hdp("status", HDP_HOME=str(tmp_path), HDP_FLINK_PORT="eighty")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "hdp status: HDP_FLINK_PORT='eighty' is not a port number; set it to an integer 1-65535"
    )


def test_status_of_a_stopped_platform(tmp_path: Path) -> None:
    result = _hdp("status", "--json", HDP_HOME=str(tmp_path))
    assert result.returncode == 0
    assert '"name": "kafka"' in result.stdout and '"pid": null' in result.stdout


def test_down_stops_a_process_of_the_runtime_that_no_record_names(tmp_path: Path) -> None:
    """A service started again by self-healing from another process (an Airflow task) is stopped by `down` too."""
    import time

    from hybrid_platform import config, runtime

    cfg = config.load({"HDP_HOME": str(tmp_path)})
    marked = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, runtime.SERVICE_MARK: str(cfg.home)},
        start_new_session=True,
    )
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, runtime.SERVICE_MARK: str(tmp_path / "another-runtime")},
    )
    try:
        deadline = time.monotonic() + 10
        while marked.pid not in runtime.marked_processes(cfg):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        runtime.down(cfg, echo=lambda _line: None, timeout_s=5)
        assert marked.wait(10) is not None
        assert other.poll() is None, "a process of another runtime was left alone"
    finally:
        other.kill()
        other.wait()
