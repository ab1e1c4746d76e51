"""Find a Java runtime the pinned engines support and say clearly when there is none."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

#: Spark 4.1 runs on Java 17 and 21, Flink 2.1 on 11/17/21, Kafka 4.1 on 17+: the intersection.
SUPPORTED_MAJORS = (17, 21)


class JavaError(RuntimeError):
    """No usable Java; the message is one line saying what to install or set."""


def find_java() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java")
    if not found:
        raise JavaError(
            "Java not found: install a JDK 17 (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME to one"
        )
    return Path(found).resolve()


def major_version(java: Path) -> int:
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise JavaError(f"could not read the version of {java}; set JAVA_HOME to a JDK 17")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_home() -> Path:
    """JAVA_HOME of a supported Java, or JavaError with what to do."""
    java = find_java()
    major = major_version(java)
    if major not in SUPPORTED_MAJORS:
        raise JavaError(
            f"Java {major} at {java} is not supported (need {' or '.join(map(str, SUPPORTED_MAJORS))}); "
            "install JDK 17 or point JAVA_HOME at one"
        )
    return java.parent.parent
