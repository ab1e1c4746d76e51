"""Security properties infra/ shares between its targets: images pinned by digest (or listed with the
reason they are not), and the Python package the deployed Airflow's auth manager needs."""

from __future__ import annotations

import re

import pytest
import yaml

# Generated projects without infra/ have no test_infra.py either (copier.yml).
pytest.importorskip("test_infra", reason="this project has no infra/ (generated target)")
from test_infra import (
    DOCKER_DIR,
    HAS_COMPOSE,
    HAS_K8S,
    HELM_VALUES,
    INFRA,
    K8S_DIR,
    compose_images,
    k8s_images,
    load_yaml_documents,
    locked_versions,
    makefile_variable,
)


def test_the_auth_manager_the_deployments_name_is_installed() -> None:
    """The FAB auth manager of infra/ is in the lock, and the class the deployments name imports."""
    import importlib

    assert "apache-airflow-providers-fab" in locked_versions()
    named = set()
    for path in INFRA.rglob("*.y*ml"):
        named |= set(re.findall(r"airflow\.providers\.fab\.[\w.]+", path.read_text()))
    assert named, "no deployment names the FAB auth manager"
    for dotted in named:
        module, _, attribute = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), dotted


#: Images pinned by digest, and where each digest was read (the tag's own record, never a guess).
DIGEST_SOURCES = {
    "flink:2.1.3-scala_2.12-java17": "docker-library/repo-info repos/flink/remote/2.1.3-scala_2.12-java17.md "
    "@ 19c193b9fd144931441c0a20aa9591a5e1ca84cc",
    "python:3.11-slim-bookworm": "docker-library/repo-info repos/python/remote/3.11-slim-bookworm.md "
    "@ 33a22f41ac7bf613bc03380b0317536a9a7fb5e8",
}
#: Images pinned by tag only, and why: no registry is reachable from this project's machines, and no public
#: record of these tags' digests was found (docker-library/repo-info covers Docker's official images only).
NOT_PINNED = {
    "hybrid-platform": "built from infra/docker; a digest exists once pushed to your registry",
    "hybrid-platform-flink": "built from infra/docker by the deployer; as above",
    "apache/kafka": "published by Apache, not a Docker official image: no repo-info record of the 4.1.1 digest",
    "minio/minio": "published by MinIO, not a Docker official image: no repo-info record of the release's digest",
    "postgres": "repo-info keeps the current 17.x tags only; 17.6-bookworm's digest is not in the records found",
}


def dockerfile_bases() -> list[tuple[str, str]]:
    found = []
    for dockerfile in sorted(DOCKER_DIR.glob("*.Dockerfile")):
        text = dockerfile.read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
        for base in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
            for name, value in args.items():
                base = base.replace(f"${{{name}}}", value)
            found.append((dockerfile.name, base))
    return found


def all_images() -> list[tuple[str, str]]:
    images = [*compose_images(), *k8s_images(), *dockerfile_bases()]
    if HAS_K8S:
        values = yaml.safe_load(HELM_VALUES.read_text())
        airflow = values["images"]["airflow"]
        images.append(("airflow/values.yaml", f"{airflow['repository']}:{airflow['tag']}"))
        data = load_yaml_documents(K8S_DIR / "spark" / "spark-defaults.yaml")[0]["data"]["spark-defaults.conf"]
        image = re.search(r"^\s*spark\.kubernetes\.container\.image\s+(\S+)$", data, re.MULTILINE)
        assert image, "spark-defaults.conf names no image"
        images.append(("spark-defaults.conf", image.group(1)))
    return images


def test_every_image_is_pinned_by_digest_or_listed_with_a_reason() -> None:
    seen_pins, seen_exceptions = set(), set()
    for where, image in all_images():
        reference, _, digest = image.partition("@")
        repository = reference.rsplit(":", 1)[0]
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (where, image)
            assert reference in DIGEST_SOURCES, f"{where}: {image}: say where the digest comes from"
            seen_pins.add(reference)
        else:
            assert repository in NOT_PINNED, f"{where}: {image} is pinned by tag only and not listed in NOT_PINNED"
            assert reference not in DIGEST_SOURCES, f"{where}: {image}: a digest is known, pin it"
            seen_exceptions.add(repository)
    assert seen_pins == set(DIGEST_SOURCES), "a digest source no image uses"
    if HAS_COMPOSE and HAS_K8S:  # a generated project keeps one of them: some exceptions are then unused
        assert seen_exceptions == set(NOT_PINNED), "an exception no image needs"


def test_pinned_base_images_follow_the_version_matrix() -> None:
    """A digest belongs to one tag: the Dockerfiles' version ARGs must still name the tag it was read for."""
    bases = dict((name, image.partition("@")[0]) for name, image in dockerfile_bases())
    assert bases["platform.Dockerfile"] == f"python:{makefile_variable('PYTHON_VERSION')}-slim-bookworm"
    assert bases["flink.Dockerfile"] == f"flink:{locked_versions()['apache-flink']}-scala_2.12-java17"
    assert set(bases.values()) == set(DIGEST_SOURCES)
