"""Shared fixtures. Integration tests run against a private runtime: own state folder, own free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybrid_platform import config, jars, runtime


@pytest.fixture(scope="session")
def platform_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """HDP_* variables for a private platform, exported for the whole test session.

    A running `make demo` on the default ports and state folder is left untouched.
    """
    env = runtime.private_env(tmp_path_factory.mktemp("platform"))
    env["HDP_AIRFLOW_PASSWORD"] = "test-password"  # pragma: allowlist secret (test-only)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def platform_cfg(platform_env: dict[str, str]) -> config.PlatformConfig:
    cfg = config.load()
    jars.ensure_all(cfg.jar_cache, repository=cfg.maven_repository)
    return cfg


@pytest.fixture(scope="session")
def local_runtime(platform_cfg: config.PlatformConfig) -> Iterator[config.PlatformConfig]:
    """The whole local runtime, started once per session; stopped and checked for leftovers at the end."""
    try:
        runtime.up(platform_cfg)
    except BaseException:
        runtime.down(platform_cfg)  # stop what did start before failing the session
        raise
    records = {s.name: runtime.running(platform_cfg, s.name) for s in runtime.services()}
    yield platform_cfg
    runtime.down(platform_cfg)
    leftovers = {name: runtime.session_members(state.pid) for name, state in records.items() if state}
    assert not any(leftovers.values()), f"processes left after down: {leftovers}"


@pytest.fixture(scope="session")
def kafka_runtime(platform_cfg: config.PlatformConfig) -> Iterator[config.PlatformConfig]:
    """Only the private runtime's Kafka, for tests that need nothing else (a Spark streaming job).

    The same private state folder and ports as ``local_runtime``: if both run in one session, ``up`` skips
    what already runs, and whichever finishes last stops everything and checks for leftovers.
    """
    try:
        runtime.up(platform_cfg, only=["kafka"])
    except BaseException:
        runtime.down(platform_cfg)
        raise
    state = runtime.running(platform_cfg, "kafka")
    yield platform_cfg
    runtime.down(platform_cfg)
    assert not (state and runtime.session_members(state.pid)), "Kafka processes left after down"


@pytest.fixture(scope="session")
def spark(platform_cfg: config.PlatformConfig) -> Iterator[object]:
    """One local[2] SparkSession on the private catalog for the whole session."""
    from spark_jobs.session import build_session

    session = build_session("tests", platform_cfg)
    yield session
    session.stop()


@pytest.fixture
def repo_root() -> Path:
    return config.REPO_ROOT
