"""Safe defaults of the local runtime, checked on the configuration it generates (no service is started).

The integration test ``test_every_listener_of_ours_is_on_localhost`` checks the sockets of a running
platform; this checks every place the configuration names an address, so a new listener cannot be added
bound to all interfaces unnoticed. Also: Airflow sign-in is on unless the dev-only switch says otherwise,
and the secret scan that `make security` runs catches a planted secret with the committed baseline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_platform import config, engines, runtime
from hybrid_platform.config import REPO_ROOT

LOOPBACK = "127.0.0.1"
#: Keys whose value names an address something binds to, or advertises to clients.
ADDRESS_KEY = re.compile(r"(listeners|quorum\.voters|address|bind-host|\.host$|HOST$|LOCAL_IP$|bindAddress)")


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.PlatformConfig:
    for name in ("HDP_BIND_HOST", "HDP_AIRFLOW_NO_AUTH", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    return config.load({"HDP_HOME": str(tmp_path)})


def _hosts(value: str) -> list[str]:
    """Every host in a listener list like ``PLAINTEXT://h:1,CONTROLLER://h:2`` or ``1@h:2``, or a bare host."""
    found = re.findall(r"(?:://|@)([^:/,]+):\d+", value)
    return found or [value]


def _bound_addresses(settings: dict[str, str]) -> dict[str, list[str]]:
    return {key: _hosts(value) for key, value in settings.items() if ADDRESS_KEY.search(key)}


def test_every_configured_address_is_localhost(cfg: config.PlatformConfig) -> None:
    kafka = _bound_addresses(runtime.kafka_server_properties(cfg))
    flink = _bound_addresses(runtime.flink_settings(cfg))
    airflow = _bound_addresses(runtime.airflow_env(cfg))
    spark = _bound_addresses(engines.spark_conf(cfg, "safe_defaults"))
    # The keys that must be there: a rename must not make this test pass vacuously.
    assert {"listeners", "advertised.listeners", "controller.quorum.voters"} <= set(kafka)
    assert {"rest.address", "rest.bind-address", "jobmanager.bind-host", "taskmanager.bind-host"} <= set(flink)
    assert {"AIRFLOW__API__HOST", "SPARK_LOCAL_IP"} <= set(airflow)
    assert {"spark.driver.host", "spark.driver.bindAddress"} <= set(spark)
    for service, addresses in {"kafka": kafka, "flink": flink, "airflow": airflow, "spark": spark}.items():
        exposed = {key: hosts for key, hosts in addresses.items() if set(hosts) != {LOOPBACK}}
        assert not exposed, f"{service} binds beyond localhost: {exposed}"
    assert [cfg.kafka_bootstrap, cfg.flink_rest_url, cfg.airflow_url] == [
        f"{LOOPBACK}:9092",
        f"http://{LOOPBACK}:8081",
        f"http://{LOOPBACK}:8080",
    ]


def test_airflow_log_servers_that_bind_every_interface_are_not_started() -> None:
    commands = {service.name: service.command for service in runtime.services()}
    cfg = config.load({"HDP_HOME": "/nonexistent"})
    for component in ("airflow-scheduler", "airflow-triggerer"):
        assert "--skip-serve-logs" in commands[component](cfg)


def test_airflow_sign_in_is_on_by_default(cfg: config.PlatformConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    env = runtime.airflow_env(cfg)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    # Set explicitly, so the caller's environment cannot switch sign-in off behind the platform's back.
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    service = next(service for service in runtime.services() if service.name == "airflow-api-server")
    assert {**os.environ, **service.env(cfg)}["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"


def test_no_auth_is_an_explicit_dev_switch_for_localhost_only(tmp_path: Path) -> None:
    on = config.load({"HDP_HOME": str(tmp_path), "HDP_AIRFLOW_NO_AUTH": "1"})
    assert on.airflow_no_auth
    assert runtime.airflow_env(on)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert not config.load({"HDP_HOME": str(tmp_path), "HDP_AIRFLOW_NO_AUTH": "0"}).airflow_no_auth
    with pytest.raises(config.ConfigError, match="only works on localhost"):
        config.load({"HDP_AIRFLOW_NO_AUTH": "1", "HDP_BIND_HOST": "0.0.0.0"})
    with pytest.raises(config.ConfigError, match="HDP_AIRFLOW_NO_AUTH='maybe' is not a switch"):
        config.load({"HDP_AIRFLOW_NO_AUTH": "maybe"})


def test_generated_secrets_live_in_the_ignored_state_folder() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".platform/airflow/secrets.json"], cwd=REPO_ROOT, check=False
    )
    assert ignored.returncode == 0


def test_the_secret_scan_catches_a_planted_secret(tmp_path: Path) -> None:
    hook = Path(sys.executable).parent / "detect-secrets-hook"
    baseline = REPO_ROOT / ".secrets.baseline"
    planted = tmp_path / "settings.py"
    # A private key header and an AWS key id: what the scan must never let into the repository.
    # (Assembled here, so this file itself holds no key header for the scan to find.)
    header = "-----BEGIN RSA " + "PRIVATE KEY-----"
    planted.write_text(f'KEY = """{header}"""\naws_access_key_id = "AKIA' + "Q" * 16 + '"\n')
    clean = tmp_path / "clean.py"
    clean.write_text('password = os.environ["HDP_AIRFLOW_PASSWORD"]\n')
    found = subprocess.run([hook, "--baseline", str(baseline), str(planted)], capture_output=True, text=True)
    assert found.returncode != 0 and "Private Key" in found.stdout and "AWS Access Key" in found.stdout
    passed = subprocess.run([hook, "--baseline", str(baseline), str(clean)], capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout


def test_a_bind_beyond_localhost_needs_the_loud_switch(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="HDP_EXPOSE_UNAUTHENTICATED=1"):
        config.load({"HDP_HOME": str(tmp_path), "HDP_BIND_HOST": "0.0.0.0"})
    exposed = config.load({"HDP_HOME": str(tmp_path), "HDP_BIND_HOST": "0.0.0.0", "HDP_EXPOSE_UNAUTHENTICATED": "1"})
    assert exposed.bind_host == "0.0.0.0"


def test_flink_rest_takes_no_jar_and_no_foreign_origin(cfg: config.PlatformConfig) -> None:
    settings = runtime.flink_settings(cfg)
    assert settings["web.submit.enable"] == "false"
    assert settings["web.access-control-allow-origin"] == f"http://127.0.0.1:{cfg.ports.flink_rest}"


def test_the_local_airflow_password_is_random_private_and_stable(tmp_path: Path) -> None:
    first = config.load({"HDP_HOME": str(tmp_path)}).airflow_password
    assert len(first) >= 20 and first != "admin"
    assert config.load({"HDP_HOME": str(tmp_path)}).airflow_password == first, "generated once per state folder"
    secret = tmp_path / "secrets" / "airflow-password"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert config.load({"HDP_HOME": str(tmp_path / "other")}).airflow_password != first
    chosen = config.load({"HDP_HOME": str(tmp_path), "HDP_AIRFLOW_PASSWORD": "chosen-one"})  # pragma: allowlist secret
    assert chosen.airflow_password == "chosen-one"  # pragma: allowlist secret


def test_the_uv_bootstrap_is_pinned_by_hash() -> None:
    makefile = (config.REPO_ROOT / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert version, "UV_VERSION in the Makefile"
    requirements = (config.REPO_ROOT / "tools" / "uv-requirements.txt").read_text()
    assert re.search(rf"^uv=={re.escape(version.group(1))} \\$", requirements, re.M)
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", requirements)) >= 10
    assert "--require-hashes -r tools/uv-requirements.txt" in makefile


def test_make_clean_asks_before_deleting_data(tmp_path: Path) -> None:
    shutil.copy(config.REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".platform" / "warehouse").mkdir(parents=True)
    refused = subprocess.run(
        ["make", "clean"], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0 and "nothing deleted" in refused.stdout
    assert (tmp_path / ".platform" / "warehouse").exists()


@pytest.mark.parametrize("name", config.CLUSTER_SECRETS)
def test_a_cluster_refuses_placeholder_and_short_secrets(name: str, tmp_path: Path) -> None:
    base = {"HDP_HOME": str(tmp_path), "HDP_ENV": "cluster"}
    for weak in ("change-me", "Admin", "short-secret"):
        with pytest.raises(config.ConfigError, match=f"{name} is a placeholder or shorter than 16"):
            config.load({**base, name: weak})
    assert config.load({**base, name: "a-random-secret-of-some-length"}).environment == "cluster"
    assert config.load({"HDP_HOME": str(tmp_path), name: "change-me"}).environment != "cluster"  # a laptop
