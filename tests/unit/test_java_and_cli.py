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


@pytest.mark.parametrize("args", [(), ("upp",), ("status", "--jsn")])
def test_cli_mistakes_print_one_line(args: tuple[str, ...]) -> None:
    result = _hdp(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--help" in result.stderr


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
