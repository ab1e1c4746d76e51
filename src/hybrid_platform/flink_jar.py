"""The platform's Flink operators in Java (``flink_jobs/jvm``), compiled by the JDK against the pinned Flink jars.

No build tool: ``javac`` and ``jar`` from the JDK the engines already need, against the Flink
distribution of the PyFlink wheel and the pinned Kafka connector (``jars.toml``). The jar is named by a
digest of its sources and classpath, so a source change builds a new jar and an unchanged tree reuses the
cached one (``make setup`` builds it; the job submission builds it if missing).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hybrid_platform import jars
from hybrid_platform.config import REPO_ROOT, PlatformConfig
from hybrid_platform.java import JavaError, java_home

SOURCE_DIR = REPO_ROOT / "flink_jobs" / "jvm" / "src"
JAR_PREFIX = "dataplatform-flink"
#: The connector jar the operators compile against (and that the cluster's lib/ holds at run time).
KAFKA_CONNECTOR = "flink-sql-connector-kafka"


class BuildError(RuntimeError):
    """The operators could not be compiled; the message says what to do."""


def sources() -> list[Path]:
    return sorted(SOURCE_DIR.rglob("*.java"))


def compile_classpath(cfg: PlatformConfig, flink_home: Path | None = None) -> list[Path]:
    """flink-dist and the Table API of the PyFlink wheel, and the pinned Kafka connector."""
    if flink_home is None:
        from hybrid_platform.runtime import pyflink_home

        flink_home = pyflink_home(cfg)
    dist = sorted((flink_home / "lib").glob("flink-dist-*.jar"))
    table = sorted((flink_home / "lib").glob("flink-table-api-java-uber-*.jar"))
    connector = [p for p in jars.classpath(cfg.jar_cache, "flink") if p.name.startswith(KAFKA_CONNECTOR)]
    if not dist or not table or not connector:
        raise BuildError(f"Flink's jars or the Kafka connector jar are missing under {flink_home}; run `make setup`")
    return [dist[-1], table[-1], connector[0]]


def jar_path(cfg: PlatformConfig, classpath: list[Path]) -> Path:
    digest = hashlib.sha256()
    for path in [*sources(), *classpath]:
        digest.update(path.name.encode())
        if path.suffix == ".java":
            digest.update(path.read_bytes())
    return cfg.jar_cache.parent / "build" / f"{JAR_PREFIX}-{digest.hexdigest()[:16]}.jar"


def _tool(name: str) -> str:
    try:
        tool = java_home() / "bin" / name
    except JavaError as error:
        raise BuildError(str(error)) from None
    if not tool.exists():
        raise BuildError(f"{tool} not found: the Flink operators need a JDK 17 (not only a JRE); install one")
    return str(tool)


def ensure_built(cfg: PlatformConfig, flink_home: Path | None = None) -> Path:
    """The operators' jar, compiled first when its sources changed. Safe to call concurrently."""
    classpath = compile_classpath(cfg, flink_home)
    target = jar_path(cfg, classpath)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work:
        classes = Path(work) / "classes"
        compiled = subprocess.run(
            [
                _tool("javac"),
                "--release",
                "17",
                "-nowarn",
                "-encoding",
                "UTF-8",
                "-d",
                str(classes),
                "-cp",
                os.pathsep.join(map(str, classpath)),
                *map(str, sources()),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if compiled.returncode != 0:
            raise BuildError(f"javac failed on {SOURCE_DIR}: {(compiled.stderr or compiled.stdout).strip()[:800]}")
        built = Path(work) / target.name
        packed = subprocess.run(
            [_tool("jar"), "--create", "--file", str(built), "-C", str(classes), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if packed.returncode != 0:
            raise BuildError(f"jar failed: {packed.stderr.strip()[:400]}")
        built.replace(target)  # atomic: a concurrent build of the same sources writes the same bytes
    return target


def java_command(cfg: PlatformConfig, main_class: str, *args: str) -> list[str]:
    """``java -cp <jar and its classpath> <main_class> args``: the operators' classes outside Flink (tests)."""
    classpath = compile_classpath(cfg)
    jar = ensure_built(cfg)
    java = shutil.which("java", path=str(java_home() / "bin")) or "java"
    return [java, "-cp", os.pathsep.join(map(str, [jar, *classpath])), main_class, *args]
