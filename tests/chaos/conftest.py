"""Chaos tests (``make chaos``): the streaming runtime without Airflow, and a report of every fault's numbers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fault_report import FAULT_RESULTS

from hybrid_platform import config, runtime


@pytest.fixture(scope="session")
def platform_env(platform_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The faults run on Kafka as a cluster runs it: TLS, SCRAM and ACLs (``HDP_KAFKA_SECURITY_PROTOCOL=sasl_ssl``),
    so every platform client in the streaming path (both Flink jobs, the generator, reconciliation, the
    lifecycle's lag checks) is held to its principal's grants under every fault."""
    extra = {"HDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}
    os.environ.update(extra)
    yield {**platform_env, **extra}
    os.environ.pop("HDP_KAFKA_SECURITY_PROTOCOL", None)


@pytest.fixture(scope="session")
def streaming_runtime(platform_cfg: config.PlatformConfig) -> Iterator[config.PlatformConfig]:
    """Kafka and the Flink session cluster of the private runtime (the Iceberg catalog needs no process).

    Airflow is left out: recovery here is ``flink_lifecycle.ensure_running``, the code the ``flink_jobs``
    DAG's task runs (the DAG itself is tested in tests/integration/test_flink_jobs_dag.py).
    """
    try:
        runtime.up(platform_cfg, only=["kafka", "flink"])
    except BaseException:
        runtime.down(platform_cfg)
        raise
    yield platform_cfg
    runtime.down(platform_cfg)
    if FAULT_RESULTS:
        (platform_cfg.home / "chaos-report.json").write_text(json.dumps(FAULT_RESULTS, indent=2))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FAULT_RESULTS:
        return
    terminalreporter.section("faults: produced, lost, duplicated, recovery")
    for result in FAULT_RESULTS:
        terminalreporter.write_line(json.dumps(result))
