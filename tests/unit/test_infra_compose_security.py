"""Compose's security properties: the object store's root user, scoped S3 users, the Airflow auth manager."""

from __future__ import annotations

import json
import re

import pytest

# Generated projects without infra/ have no test_infra.py either (copier.yml).
pytest.importorskip("test_infra", reason="this project has no infra/ (generated target)")
from test_infra import COMPOSE_DIR, load_yaml_documents, main_compose, walk

if not (COMPOSE_DIR / "compose.yaml").is_file():
    pytest.skip("this project has no infra/compose (generated target)", allow_module_level=True)

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def test_compose_airflow_uses_the_fab_auth_manager_and_airflow3_keys() -> None:
    environment = main_compose()["x-airflow-env"]
    assert environment["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    assert not [k for k in environment if "SIMPLE_AUTH_MANAGER" in k]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert environment[key].startswith("${"), key
    for path in COMPOSE_DIR.glob("compose*.yaml"):
        for document in load_yaml_documents(path):
            for where, value in walk(document):
                assert "simple_auth_manager" not in f"{where}={value}".lower(), (path, where)


def test_only_minio_and_storage_init_hold_the_object_stores_root_user() -> None:
    services = main_compose()["services"]
    root = re.compile(r"\$\{MINIO_ROOT_(USER|PASSWORD)\b")
    holders = {
        name
        for name, service in services.items()
        for value in (service.get("environment") or {}).values()
        if root.search(str(value))
    }
    assert holders == {"minio", "storage-init"}
    for name in ("flink-jobmanager", "flink-taskmanager"):
        assert services[name]["environment"]["AWS_ACCESS_KEY_ID"].startswith("${S3_FLINK_ACCESS_KEY:?"), name
    assert "AWS_ACCESS_KEY_ID" not in services["spark-master"]["environment"]
    for name in ("spark-worker", "airflow-scheduler", "airflow-api-server"):
        assert services[name]["environment"]["AWS_ACCESS_KEY_ID"].startswith("${S3_PLATFORM_ACCESS_KEY:?"), name


def test_the_scoped_s3_users_reach_the_platforms_buckets_only() -> None:
    script = main_compose()["services"]["storage-init"]["command"][0]
    policy = json.loads(re.search(r"<<'POLICY'\n(.*?)\nPOLICY", script, re.DOTALL).group(1))  # type: ignore[union-attr]
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {
        "arn:aws:s3:::hdp-warehouse",
        "arn:aws:s3:::hdp-flink",
        "arn:aws:s3:::hdp-warehouse/*",
        "arn:aws:s3:::hdp-flink/*",
    }
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    # Objects and listings only: no wildcard, no bucket creation/deletion, no policy or admin action.
    assert actions <= {
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }, actions
    assert "S3_PLATFORM_ACCESS_KEY" in script and "S3_FLINK_ACCESS_KEY" in script
