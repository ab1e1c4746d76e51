"""Job settings the Flink jobs share, and how a job records the settings it ran with."""

from __future__ import annotations

import json
import os
import sysconfig

from hybrid_platform.config import REPO_ROOT

#: How a job prints its effective settings in the client output (the benchmark reads them back).
JOB_SETTINGS_PREFIX = "job settings: "


def python_thread_mode() -> dict[str, str]:
    """Run Python UDFs inside the TaskManager (PEMJA) instead of a separate Beam worker process.

    Measured here: ~3x the rows per CPU second of process mode, which matters on a 2-core machine. Thread
    mode imports from python.pythonpath (the editable install's .pth is not read there), so it lists the
    Flink environment's site-packages and this repository. HDP_FLINK_PYTHON_MODE=process switches back.
    """
    mode = os.environ.get("HDP_FLINK_PYTHON_MODE", "thread")
    if mode != "thread":
        return {"python.execution-mode": mode}
    paths = [sysconfig.get_paths()["purelib"], str(REPO_ROOT), str(REPO_ROOT / "src")]
    return {"python.execution-mode": "thread", "python.pythonpath": os.pathsep.join(paths)}


def changelog_settings() -> dict[str, str]:
    """The changelog state backend (HDP_FLINK_CHANGELOG, default on), and the restore mode it needs.

    A restore in Flink's default NO_CLAIM mode must take a full snapshot first, which the changelog backend
    cannot: with it the job claims the checkpoint or savepoint it starts from (CLAIM), and Flink deletes that
    snapshot once newer checkpoints subsume it.
    """
    if os.environ.get("HDP_FLINK_CHANGELOG", "true").lower() in {"0", "false", "no"}:
        return {"state.changelog.enabled": "false"}
    return {"state.changelog.enabled": "true", "execution.state-recovery.claim-mode": "CLAIM"}


def print_settings(settings: dict[str, str]) -> None:
    """One line in the client's output: Flink's REST API shows the cluster's settings, not job-level ones."""
    print(JOB_SETTINGS_PREFIX + json.dumps(settings, sort_keys=True), flush=True)
