"""The local runtime is real, healthy, reachable on localhost, and within its memory budget."""

from __future__ import annotations

import json
import os
import subprocess  # [template:dbt]
import sys  # [template:dbt]
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hybrid_platform import runtime
from hybrid_platform.config import PlatformConfig

pytestmark = pytest.mark.integration

#: Kafka, a JobManager and two TaskManagers, dbt's Spark Connect server and Airflow's four processes, idle.
IDLE_MEMORY_BUDGET = 7 * 2**30


def test_every_service_is_healthy_and_reports_memory(local_runtime: PlatformConfig) -> None:
    report = {item.name: item for item in runtime.status(local_runtime)}
    assert {"iceberg-catalog", "kafka", "airflow-api-server"} <= set(report)
    assert {"flink-jobmanager", "flink-taskmanager"} <= set(report)  # [template:streaming]
    unhealthy = {name: item.detail for name, item in report.items() if not item.healthy}
    assert not unhealthy
    for name, item in report.items():
        if name != "iceberg-catalog":
            assert item.pid and item.rss_bytes > 10 * 2**20, name
    total = sum(item.rss_bytes for item in report.values())
    print(f"idle resident memory of the local runtime: {total / 2**20:,.0f} MB")
    assert total < IDLE_MEMORY_BUDGET


def test_up_twice_is_harmless(local_runtime: PlatformConfig) -> None:
    before = {s.name: runtime.running(local_runtime, s.name) for s in runtime.services()}
    messages: list[str] = []
    runtime.up(local_runtime, echo=messages.append)
    after = {s.name: runtime.running(local_runtime, s.name) for s in runtime.services()}
    assert before == after
    assert all(message.endswith("already running") for message in messages)


# [template:streaming]
def test_flink_rest_overview_answers(local_runtime: PlatformConfig) -> None:
    with urllib.request.urlopen(f"{local_runtime.flink_rest_url}/overview", timeout=5) as response:
        overview = json.loads(response.read())
    # one TaskManager per long-lived job, so the scorer and lake_ingest do not share a JVM's collector
    assert overview["taskmanagers"] == len(runtime.TASKMANAGERS)
    assert overview["slots-total"] >= 2 * len(runtime.TASKMANAGERS)


def test_flink_rest_runs_no_uploaded_jar_and_answers_no_foreign_origin(local_runtime: PlatformConfig) -> None:
    """Jar upload would let anyone (or any web page, cross-site) who reaches the port run code as this user."""
    upload = urllib.request.Request(
        f"{local_runtime.flink_rest_url}/jars/upload", data=b"x", method="POST", headers={"Content-Type": "x"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(upload, timeout=5)
    assert refused.value.code in (404, 405), refused.value.code
    foreign = urllib.request.Request(f"{local_runtime.flink_rest_url}/overview", headers={"Origin": "http://evil.test"})
    with urllib.request.urlopen(foreign, timeout=5) as response:
        allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed == local_runtime.flink_rest_url, allowed


# [/template:streaming]


# [template:dbt]
_CONNECT_CLIENT = """
import json, sys
from pyspark.sql.connect.session import SparkSession
try:
    answer = SparkSession.builder.remote(sys.argv[1]).create().sql("select 1 as x").collect()[0].x
except Exception as error:  # the client raises a gRPC exception with the server's status
    answer = "UNAUTHENTICATED" if "UNAUTHENTICATED" in str(error) else repr(error)
print(json.dumps(answer))
"""


def test_spark_connect_refuses_a_client_without_the_token(local_runtime: PlatformConfig) -> None:
    """The server runs what it is sent (SQL, Python functions): loopback alone would admit every local user."""

    def ask(env: dict[str, str]) -> object:
        done = subprocess.run(
            [sys.executable, "-c", _CONNECT_CLIENT, local_runtime.spark_remote],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    without = {k: v for k, v in os.environ.items() if k != "SPARK_CONNECT_AUTHENTICATE_TOKEN"}
    assert ask(without) == "UNAUTHENTICATED"
    assert ask({**without, **runtime.spark_connect_client_env(local_runtime)}) == 1
    assert runtime.port_open("127.0.0.1", local_runtime.ports.spark_connect)


# [/template:dbt]


def test_airflow_login_with_documented_credentials(local_runtime: PlatformConfig) -> None:
    def token_for(password: str) -> int:
        request = urllib.request.Request(
            f"{local_runtime.airflow_url}/auth/token",
            data=json.dumps({"username": local_runtime.airflow_user, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                token = json.loads(response.read())["access_token"]
        except urllib.error.HTTPError as error:
            return error.code
        dags = urllib.request.Request(
            f"{local_runtime.airflow_url}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(dags, timeout=10) as response:
            return int(response.status)

    assert token_for(local_runtime.airflow_password) == 200
    assert token_for("wrong-password") in (401, 403)
    anonymous = urllib.request.Request(f"{local_runtime.airflow_url}/api/v2/dags")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)
    assert refused.value.code in (401, 403)


def _listening_sockets() -> dict[str, tuple[str, int]]:
    """inode -> (hex address, port) of every TCP socket in LISTEN state on this machine."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A":  # LISTEN
                sockets[fields[9]] = (address, int(port, 16))
    return sockets


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_every_listener_of_ours_is_on_localhost(local_runtime: PlatformConfig) -> None:
    listening = _listening_sockets()
    ours: dict[int, tuple[str, str]] = {}
    for service in runtime.services():
        state = runtime.running(local_runtime, service.name)
        assert state is not None
        for pid in runtime.session_members(state.pid):
            try:
                links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue
            for link in links:
                inode = link.removeprefix("socket:[").removesuffix("]")
                if inode in listening:
                    address, port = listening[inode]
                    ours[port] = (service.name, address)
    assert {local_runtime.ports.kafka, local_runtime.ports.airflow} <= set(ours)
    assert local_runtime.ports.flink_rest in ours  # [template:streaming]
    exposed = {port: owner for port, owner in ours.items() if owner[1] not in LOOPBACK}
    assert not exposed, f"listening beyond localhost: {exposed}"


def test_state_and_secrets_are_this_users_only(local_runtime: PlatformConfig) -> None:
    assert local_runtime.home.stat().st_mode & 0o777 == 0o700
    secret_files = [
        p for p in (local_runtime.home / "airflow").glob("*.json") if p.name in {"secrets.json", "passwords.json"}
    ]
    assert len(secret_files) == 2
    for path in secret_files:
        assert path.stat().st_mode & 0o777 == 0o600, path
