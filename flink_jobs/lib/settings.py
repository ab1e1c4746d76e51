"""Job settings the Flink jobs share, and how a job records the settings it ran with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybrid_platform import config

#: How a job prints its effective settings in the client output (the benchmark reads them back).
JOB_SETTINGS_PREFIX = "job settings: "


def use_operators(t_env: Any) -> None:
    """Make the platform's Java operators (``flink_jobs/jvm``) available to the job: built if needed, shipped
    with the job (``pipeline.jars``) and loaded in this client for planning."""
    import pyflink
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from hybrid_platform import config, flink_jar

    jar = flink_jar.ensure_built(config.load(), flink_home=Path(pyflink.__file__).parent).as_uri()
    add_jars_to_context_class_loader([jar])
    t_env.get_config().set("pipeline.jars", jar)


def register_record_parsers(t_env: Any, functions: dict[str, str]) -> None:
    """Register ``{sql_name: record}`` parsers (``dataplatform.flink.ParseRecord``): the contract's parser in
    Java, same verdicts as ``hybrid_platform.events`` (conformance tests), a fraction of a Python UDF's cost."""
    from pyflink.java_gateway import get_gateway

    from hybrid_platform import decision_spec

    jvm = get_gateway().jvm
    for sql_name, record in functions.items():
        parser = jvm.dataplatform.flink.ParseRecord(decision_spec.record_spec_json(record))
        t_env._j_tenv.createTemporarySystemFunction(sql_name, parser)


def changelog_settings(cfg: config.PlatformConfig) -> dict[str, str]:
    """The changelog state backend (HDP_FLINK_CHANGELOG, default on), and the restore mode it needs.

    A restore in Flink's default NO_CLAIM mode must take a full snapshot first, which the changelog backend
    cannot: with it the job claims the checkpoint or savepoint it starts from (CLAIM), and Flink deletes that
    snapshot once newer checkpoints subsume it.
    """
    if not cfg.flink_changelog:
        return {"state.changelog.enabled": "false"}
    return {"state.changelog.enabled": "true", "execution.state-recovery.claim-mode": "CLAIM"}


def print_settings(settings: dict[str, str]) -> None:
    """One line in the client's output: Flink's REST API shows the cluster's settings, not job-level ones."""
    print(JOB_SETTINGS_PREFIX + json.dumps(settings, sort_keys=True), flush=True)
