"""JVM jars: the pinned manifest (``jars.toml``), the download into a local cache, checksum checks.

Jars are fetched once from Maven Central into ``PlatformConfig.jar_cache`` and reused offline afterwards;
a jar already in the cache with the pinned SHA-256 is never downloaded again.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hybrid_platform.config import REPO_ROOT, CatalogConfig

MANIFEST = REPO_ROOT / "jars.toml"
DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2"
#: The sets the local runtime needs. ``cluster`` (Postgres JDBC driver, Iceberg's S3FileIO: ~65 MB) is fetched
#: only when the configuration points at a Postgres catalog or an s3:// warehouse, and baked into infra/ images.
LOCAL_SETS = ("kafka", "spark", "flink")
CLUSTER_SET = "cluster"


class JarError(RuntimeError):
    """A jar could not be provided; the message is one line saying what to do."""


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sets: tuple[str, ...]
    sha256: str
    #: Sets in which this jar goes before the engine's own jars (it replaces a vulnerable copy the engine ships).
    first_in: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def url(self, repository: str) -> str:
        return f"{repository}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"


def load_manifest(path: Path = MANIFEST) -> tuple[dict[str, str], list[Jar]]:
    data = tomllib.loads(path.read_text())
    jars = []
    for entry in data["jar"]:
        group, artifact, version = entry["coordinates"].split(":")
        jars.append(
            Jar(group, artifact, version, tuple(entry["sets"]), entry["sha256"], tuple(entry.get("first_in", ())))
        )
    return data["versions"], jars


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, partial: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise JarError(
            f"download failed: {url} ({reason}); check network access to Maven Central "
            "or set HDP_MAVEN_REPO to a mirror, then rerun `make setup`"
        ) from None


def ensure(jar: Jar, cache: Path, repository: str | None = None) -> Path:
    """Return the cached jar, downloading it first if needed; the SHA-256 must match the manifest.

    A download lands under a temporary name and takes the jar's name only once verified: no engine ever
    sees an unverified file under a classpath name.
    """
    repository = repository or DEFAULT_REPOSITORY
    target = cache / jar.filename
    if target.exists() and _verified(target, jar.sha256):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{jar.filename}.{os.getpid()}.part"
    _download(jar.url(repository), partial)
    actual = sha256_of(partial)
    if actual != jar.sha256:
        bad = target.with_suffix(".jar.rejected")
        partial.replace(bad)
        raise JarError(
            f"checksum mismatch for {jar.coordinates}: expected sha256 {jar.sha256}, got {actual} "
            f"(kept as {bad}); a proxy or mirror served a different file, do not use it"
        )
    partial.replace(target)
    return target


#: (path, size, mtime_ns, inode) -> digest: a jar is hashed once per process, again if it changed on disk.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _verified(path: Path, expected: str) -> bool:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_of(path)
    return _DIGESTS[key] == expected


def sets_for(catalog: CatalogConfig) -> tuple[str, ...]:
    """The jar sets this configuration needs: the local ones, plus ``cluster`` for Postgres/S3."""
    return (*LOCAL_SETS, CLUSTER_SET) if catalog.needs_cluster_jars else LOCAL_SETS


def engine_classpath(cache: Path, engine: str, catalog: CatalogConfig) -> list[Path]:
    """An engine's jars (``spark`` or ``flink``) plus the ``cluster`` jars when the catalog needs them."""
    extra = classpath(cache, CLUSTER_SET) if catalog.needs_cluster_jars else []
    return [*classpath(cache, engine), *extra]


def ensure_all(cache: Path, sets: Iterable[str] | None = None, repository: str | None = None) -> dict[str, list[Path]]:
    """Fetch every jar of ``sets`` (default: all) from ``repository`` (default: Maven Central; the config's
    ``maven_repository``, HDP_MAVEN_REPO) and return the classpath of each set."""
    _, jars = load_manifest()
    wanted = set(sets) if sets is not None else {s for jar in jars for s in jar.sets}
    classpaths: dict[str, list[Path]] = {name: [] for name in wanted}
    for jar in jars:
        if wanted.isdisjoint(jar.sets):
            continue
        path = ensure(jar, cache, repository)
        for name in wanted.intersection(jar.sets):
            classpaths[name].append(path)
    return classpaths


def first_classpath(cache: Path, set_name: str) -> list[Path]:
    """The jars of ``set_name`` that go before the engine's own (``first_in``): a fixed copy of a library the
    engine bundles in a vulnerable version."""
    _, jars = load_manifest()
    return [
        path
        for path in classpath(cache, set_name)
        if any(path.name == j.filename for j in jars if set_name in j.first_in)
    ]


def classpath(cache: Path, set_name: str) -> list[Path]:
    """The cached jars of one set, without any network access (raises if one is missing)."""
    _, jars = load_manifest()
    wanted = [jar for jar in jars if set_name in jar.sets]
    paths = [cache / jar.filename for jar in wanted]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise JarError(f"{len(missing)} jar(s) of '{set_name}' not in {cache} (e.g. {missing[0]}); run `make setup`")
    # Verified at use as at download: a jar changed in the cache since (corrupted, replaced) is refused.
    changed = [jar.filename for jar, path in zip(wanted, paths, strict=True) if not _verified(path, jar.sha256)]
    if changed:
        raise JarError(
            f"{changed[0]} in {cache} does not match its SHA-256 in jars.toml ({len(changed)} jar(s) changed since "
            "download); delete it and run `make setup`"
        )
    return paths
