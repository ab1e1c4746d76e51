"""A small client for Airflow 3's REST API (v2): what the demo and the tests use to drive the platform.

Standard library only. Authentication is the API server's own: ``POST /auth/token`` with the local
credentials returns a JWT for ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hybrid_platform.config import PlatformConfig

TERMINAL_STATES = {"success", "failed"}


class AirflowError(RuntimeError):
    """The API refused a call or a run did not end as expected; the message says which and where."""


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    _token: str | None = None

    @classmethod
    def for_platform(cls, cfg: PlatformConfig) -> AirflowClient:
        return cls(cfg.airflow_url, cfg.airflow_user, cfg.airflow_password)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise AirflowError(f"{method} {path}: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise AirflowError(f"{method} {path}: {error.reason} (is Airflow up? `hdp status`)") from None
        return json.loads(text) if text else None

    def token(self) -> str:
        if self._token is None:
            reply = self._call(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = str(reply["access_token"])
        return self._token

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v2/importErrors")["import_errors"])

    def dag_ids(self) -> list[str]:
        return sorted(d["dag_id"] for d in self._call("GET", "/api/v2/dags?limit=100")["dags"])

    def wait_for_dags(self, dag_ids: list[str], timeout_s: float = 180) -> None:
        """The dag processor has parsed these DAGs (a fresh runtime needs a moment)."""
        deadline = time.monotonic() + timeout_s
        while not set(dag_ids) <= set(self.dag_ids()):
            if time.monotonic() > deadline:
                missing = sorted(set(dag_ids) - set(self.dag_ids()))
                raise AirflowError(
                    f"DAGs {missing} not parsed after {timeout_s:.0f}s; see `airflow dags list-import-errors`"
                )
            time.sleep(3)

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def dag(self, dag_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = self._call("GET", f"/api/v2/dags/{dag_id}")
        return reply

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        run = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def trigger_and_unpause(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run and switch the DAG on, without the scheduler also starting the tick it has due.

        Unpausing a DAG whose schedule has a tick due makes the scheduler start that run as well (a
        daily DAG would process a day nobody asked for). Giving the manual run the due tick's logical
        date makes it *that* run; then unpausing starts nothing else.
        """
        info = self.dag(dag_id)
        due = info.get("next_dagrun_logical_date") if info.get("is_paused") else None
        if due and datetime.fromisoformat(str(due).replace("Z", "+00:00")) > datetime.now(UTC):
            due = None  # not due yet: unpausing starts nothing now, and a future logical date is refused
        run_id = self.trigger(dag_id, conf, logical_date=due)
        if info.get("is_paused"):
            self.unpause(dag_id)
        return run_id

    def dag_runs(self, dag_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The DAG's most recently started runs, newest first."""
        reply = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit={limit}&order_by=-start_date")
        return list(reply["dag_runs"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.dag_run(dag_id, run_id)["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, with its state and its queued/start/end times."""
        reply = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
        return list(reply["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {ti["task_id"]: str(ti["state"]) for ti in self.task_instances(dag_id, run_id)}

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return reply

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's tasks with their ``downstream_task_ids``."""
        return list(self._call("GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"])

    def wait(self, dag_id: str, run_id: str, timeout_s: float = 1800, poll_s: float = 5) -> str:
        """Block until the run ends; returns its state (raises on timeout)."""
        deadline = time.monotonic() + timeout_s
        while (state := self.run_state(dag_id, run_id)) not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise AirflowError(f"{dag_id} run {run_id} still {state} after {timeout_s:.0f}s")
            time.sleep(poll_s)
        return state

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.base_url}/dags/{dag_id}/runs/{run_id}"
