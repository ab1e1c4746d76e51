"""The jar manifest is complete and consistent, and the fetcher fails with one clear line."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from hybrid_platform import jars
from hybrid_platform.config import REPO_ROOT


def _locked_version(package: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    versions = {p["version"] for p in lock["package"] if p["name"] == package}
    assert len(versions) == 1, f"{package}: {versions}"
    return versions.pop()


def test_every_jar_is_pinned_with_a_checksum_and_a_reason() -> None:
    text = jars.MANIFEST.read_text()
    _, entries = jars.load_manifest()
    assert entries
    for jar in entries:
        assert re.fullmatch(r"[0-9a-f]{64}", jar.sha256), jar.coordinates
        assert set(jar.sets) <= {*jars.LOCAL_SETS, jars.CLUSTER_SET}
        block = text.split(f'coordinates = "{jar.coordinates}"')[0].rstrip().splitlines()[-1]
        assert block.startswith("# "), f"{jar.coordinates} has no comment saying why"


def test_jvm_versions_match_the_python_engines() -> None:
    versions, entries = jars.load_manifest()
    by_artifact = {jar.artifact: jar for jar in entries}
    pyspark = _locked_version("pyspark")
    spark_line = ".".join(pyspark.split(".")[:2])
    assert versions["spark"] == pyspark
    assert by_artifact["spark-sql-kafka-0-10_2.13"].version == pyspark
    assert by_artifact[f"iceberg-spark-runtime-{spark_line}_2.13"].version == versions["iceberg"]
    assert by_artifact["kafka_2.13"].version == versions["kafka"]
    # [template:streaming]
    flink_line = ".".join(_locked_version("apache-flink").split(".")[:2])
    assert versions["flink"] == flink_line
    assert by_artifact[f"iceberg-flink-runtime-{flink_line}"].version == versions["iceberg"]
    assert by_artifact["flink-sql-connector-kafka"].version.endswith(("-2.0", f"-{flink_line}"))
    # [/template:streaming]


class _Repository(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        _Repository.requests.append(self.path)


@pytest.fixture
def maven(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server over a folder laid out like a Maven repository."""
    root = tmp_path / "repo"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Repository, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Repository.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def _publish(root: Path, content: bytes) -> jars.Jar:
    jar = jars.Jar("org.example", "thing", "1.0", ("spark",), hashlib.sha256(content).hexdigest())
    target = root / "org/example/thing/1.0/thing-1.0.jar"
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return jar


def test_download_is_verified_and_then_reused_offline(maven: tuple[str, Path], tmp_path: Path) -> None:
    url, root = maven
    jar = _publish(root, b"jar bytes")
    cache = tmp_path / "cache"
    assert jars.ensure(jar, cache, url).read_bytes() == b"jar bytes"
    assert len(_Repository.requests) == 1
    jars.ensure(jar, cache, url)
    assert len(_Repository.requests) == 1, "a verified cached jar must not be downloaded again"


def test_checksum_mismatch_is_one_clear_line(maven: tuple[str, Path], tmp_path: Path) -> None:
    url, root = maven
    jar = _publish(root, b"expected")
    (root / "org/example/thing/1.0/thing-1.0.jar").write_bytes(b"something else")
    with pytest.raises(jars.JarError, match=r"checksum mismatch for org\.example:thing:1\.0") as info:
        jars.ensure(jar, tmp_path / "cache", url)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "thing-1.0.jar").exists(), "a rejected jar must not stay usable"


def test_failed_download_is_one_clear_line(maven: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = maven
    jar = jars.Jar("org.example", "absent", "1.0", ("spark",), "0" * 64)
    with pytest.raises(jars.JarError, match=r"download failed: .*absent-1.0.jar .*make setup") as info:
        jars.ensure(jar, tmp_path / "cache", url)
    assert "\n" not in str(info.value)


def test_missing_cache_points_at_setup(tmp_path: Path) -> None:
    with pytest.raises(jars.JarError, match="run `make setup`"):
        jars.classpath(tmp_path, "kafka")


def test_a_jar_changed_in_the_cache_is_refused_at_use(
    maven: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = maven
    jar = _publish(root, b"jar bytes")
    cache = tmp_path / "cache"
    path = jars.ensure(jar, cache, url)
    assert not list(cache.glob(".*.part")), "the download's temporary file is gone"
    monkeypatch.setattr(jars, "load_manifest", lambda: ({}, [jar]))
    assert jars.classpath(cache, "spark") == [path]
    path.write_bytes(b"jar bytes, changed")
    with pytest.raises(jars.JarError, match=r"thing-1\.0\.jar .* does not match its SHA-256") as info:
        jars.classpath(cache, "spark")
    assert "\n" not in str(info.value)
