"""Known-vulnerability audit of the JVM classpath, offline (`make security`).

What is audited (the inventory):

- every jar pinned in ``jars.toml``, by its coordinates (no download needed), and, when the jar is in the
  jar cache (``hdp jars``), the libraries it bundles (shaded fat jars such as the Iceberg runtimes);
- the engines' bundled jars, when their environment exists: pyspark's ``jars/`` in ``.venv`` and pyflink's
  ``lib/`` and ``opt/`` in ``.venv-flink``, with the libraries each jar bundles.

A bundled jar is identified by the ``META-INF/maven/*/*/pom.properties`` it carries; a jar without one by the
``- group:artifact:version`` lines of its ``META-INF/NOTICE`` (Apache Flink lists what each jar bundles
there), and only then by its file name (artifact and version; the group from the manifest's
``Implementation-Vendor-Id`` or else unknown). The report says how many were identified which way.

Against what: ``security/jvm-advisories.json``, a committed snapshot of the GitHub Advisory Database (its
GitHub-reviewed OSV records for the Maven ecosystem), reduced to the packages of the inventory and dated. CI
reaches package registries only, and no registry serves this data, so the audit never goes online; it prints
the snapshot's date. Refreshing it needs a copy of the database (a checkout, or a bare git directory):

    python tools/audit_jvm.py --refresh /path/to/advisory-database

Policy: every finding fails the audit unless ``security/jvm-audit-allow.toml`` lists it (advisory id, jar,
and the reason it does not apply or cannot be fixed yet). The snapshot lists the packages it holds advisory
data for (``packages``); a package of the inventory outside it is not audited, and the report names it
("NOT COVERED") on every run rather than passing it silently.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / "jars.toml"
SNAPSHOT = REPO_ROOT / "security" / "jvm-advisories.json"
ALLOWLIST = REPO_ROOT / "security" / "jvm-audit-allow.toml"
#: Where the engines keep their bundled jars, relative to the repository (globs).
ENGINE_JARS = {
    "pyspark": (".venv/lib/python3*/site-packages/pyspark/jars/*.jar",),
    "pyflink": (
        ".venv-flink/lib/python3*/site-packages/pyflink/lib/*.jar",
        ".venv-flink/lib/python3*/site-packages/pyflink/opt/*.jar",
    ),
}
MIN_REASON = 40


# ---------------------------------------------------------------------------------------------------------
# Maven version order (Maven's ComparableVersion: 1.9.4 < 1.11.0, 2.0.0-M1 < 2.0.0, 1.0-SNAPSHOT < 1.0 < 1.0-sp)

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE = str(_QUALIFIERS.index(""))


def _qualifier_key(value: str) -> str:
    value = _ALIASES.get(value, value)
    if value in _QUALIFIERS:
        return str(_QUALIFIERS.index(value))
    return f"{len(_QUALIFIERS)}-{value}"  # unknown qualifiers: after every known one, in lexical order


class _Int(int):
    pass


class _Str(str):
    pass


class _List(list):  # type: ignore[type-arg]
    pass


def _is_null(item: object) -> bool:
    if isinstance(item, _Int):
        return int(item) == 0
    if isinstance(item, _Str):
        return _qualifier_key(str(item)) == _RELEASE
    assert isinstance(item, _List)
    return len(item) == 0


def _string_item(value: str, followed_by_digit: bool) -> _Str:
    if followed_by_digit and len(value) == 1:
        value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
    return _Str(value)


def _parse(version: str) -> _List:
    version = version.strip().lower()
    items = current = _List()
    stack = [current]
    is_digit = False
    start = 0

    def token(end: int) -> _Int | _Str:
        text = version[start:end]
        return _Int(int(text)) if is_digit else _string_item(text, False)

    for index, char in enumerate(version):
        if char in ".-":
            current.append(_Int(0) if index == start else token(index))
            start = index + 1
            if char == "-":
                child = _List()
                current.append(child)
                current = child
                stack.append(current)
        elif char.isdigit():
            if not is_digit and index > start:  # "rc1" -> "rc-1"
                current.append(_string_item(version[start:index], True))
                start = index
                child = _List()
                current.append(child)
                current = child
                stack.append(current)
            is_digit = True
        else:
            if is_digit and index > start:  # "1rc" -> "1-rc"
                current.append(token(index))
                start = index
                child = _List()
                current.append(child)
                current = child
                stack.append(current)
            is_digit = False
    if len(version) > start:
        current.append(token(len(version)))
    for item in reversed(stack):
        _normalize(item)
    return items


def _normalize(items: _List) -> None:
    for index in range(len(items) - 1, -1, -1):
        if _is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], _List):
            break


def _compare_items(left: object, right: object) -> int:
    """Maven's Item.compareTo; ``right`` may be None (a missing item)."""
    if isinstance(left, _Int):
        if right is None:
            return 0 if int(left) == 0 else 1
        if isinstance(right, _Int):
            return (int(left) > int(right)) - (int(left) < int(right))
        return 1  # a number is newer than a qualifier or a sub-list
    if isinstance(left, _Str):
        key = _qualifier_key(str(left))
        if right is None:
            return (key > _RELEASE) - (key < _RELEASE)
        if isinstance(right, _Str):
            other = _qualifier_key(str(right))
            return (key > other) - (key < other)
        return -1
    assert isinstance(left, _List)
    if right is None:
        return 0 if not left else _compare_items(left[0], None)
    if isinstance(right, _Int):
        return -1
    if isinstance(right, _Str):
        return 1
    assert isinstance(right, _List)
    for index in range(max(len(left), len(right))):
        mine = left[index] if index < len(left) else None
        theirs = right[index] if index < len(right) else None
        if mine is None:
            result = -_compare_items(theirs, None) if theirs is not None else 0
        else:
            result = _compare_items(mine, theirs)
        if result:
            return result
    return 0


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as Maven orders the two versions."""
    return _compare_items(_parse(left), _parse(right))


# ---------------------------------------------------------------------------------------------------------
# Advisories (OSV records) and matching


def _event_order(event: Mapping[str, str]) -> tuple[int, str]:
    kind, value = next(iter(event.items()))
    return {"introduced": 0, "fixed": 1, "last_affected": 1, "limit": 1}.get(kind, 2), value


def in_range(version: str, events: Sequence[Mapping[str, str]]) -> bool:
    """Whether ``version`` is affected by one OSV ECOSYSTEM range (introduced/fixed/last_affected events)."""
    affected = False
    parsed = [next(iter(event.items())) for event in events]
    introduced = sorted((v for k, v in parsed if k == "introduced"), key=_version_key)
    ends = [(k, v) for k, v in parsed if k in ("fixed", "last_affected")]
    for start in introduced:
        if start != "0" and compare_versions(version, start) < 0:
            continue
        # The end of this interval: the smallest fixed/last_affected not below its start.
        candidates = [(k, v) for k, v in ends if start == "0" or compare_versions(v, start) >= 0]
        if not candidates:
            affected = True
            break
        kind, end = min(candidates, key=lambda item: _version_key(item[1]))
        below = compare_versions(version, end)
        if (kind == "fixed" and below < 0) or (kind == "last_affected" and below <= 0):
            affected = True
            break
    return affected


class _VersionKey:
    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _VersionKey) -> bool:
        if self.version == "0":
            return other.version != "0"
        if other.version == "0":
            return False
        return compare_versions(self.version, other.version) < 0


def _version_key(version: str) -> _VersionKey:
    return _VersionKey(version)


def affects(affected: Mapping[str, Any], version: str) -> bool:
    """Whether one OSV ``affected[]`` entry names ``version`` (its ``versions`` list or an ECOSYSTEM range)."""
    if any(compare_versions(version, listed) == 0 for listed in affected.get("versions", [])):
        return True
    return any(
        in_range(version, item.get("events", []))
        for item in affected.get("ranges", [])
        if item.get("type") == "ECOSYSTEM"
    )


@dataclass(frozen=True)
class Component:
    """One library on a classpath: Maven coordinates (group may be unknown), and where it was found."""

    group: str | None
    artifact: str
    version: str
    source: str  # "jars.toml", "pyspark", "pyflink"
    jar: str  # the jar's file name (or the pin's coordinates for jars.toml)
    how: str  # "pinned", "pom.properties", "NOTICE", "file name", "file name + manifest"
    pinned: bool = False
    module: str | None = None  # the manifest's Automatic-Module-Name or Bundle-SymbolicName (file-name jars)

    @property
    def package(self) -> str:
        return f"{self.group or '?'}:{self.artifact}"


@dataclass(frozen=True)
class Finding:
    component: Component
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    severity: str
    fixed: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.advisory, self.component.jar


@dataclass
class Snapshot:
    source: dict[str, Any]
    packages: set[str]
    advisories: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path = SNAPSHOT) -> Snapshot:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["source"], set(data["packages"]), data["advisories"])

    def by_package(self) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
        index: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for advisory in self.advisories:
            for affected in advisory["affected"]:
                index.setdefault(affected["package"], []).append((advisory, affected))
        return index


def _fixed_versions(affected: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        value
        for item in affected.get("ranges", [])
        for event in item.get("events", [])
        for kind, value in event.items()
        if kind == "fixed"
    )


def candidate_groups(component: Component, snapshot: Snapshot) -> list[str]:
    """The groups to match a component against: its own, or (identified by file name only) every group of
    the snapshot with a package of that artifact name: a conservative guess, reported as one."""
    if component.group:
        return [component.group]
    groups = {name.split(":")[0] for name in snapshot.packages if name.split(":")[1] == component.artifact}
    if component.module:  # e.g. lz4-java 1.8.0 says org.lz4.java: not the at.yawk.lz4 fork's group
        groups = {group for group in groups if component.module.startswith(group)}
    return sorted(groups)


def find(components: Iterable[Component], snapshot: Snapshot) -> list[Finding]:
    index = snapshot.by_package()
    findings = []
    for component in components:
        for advisory, affected in (
            entry
            for group in candidate_groups(component, snapshot)
            for entry in index.get(f"{group}:{component.artifact}", [])
        ):
            if affects(affected, component.version):
                findings.append(
                    Finding(
                        component,
                        advisory["id"],
                        tuple(advisory.get("aliases", [])),
                        advisory.get("summary", ""),
                        advisory.get("severity", ""),
                        _fixed_versions(affected),
                    )
                )
    return sorted(findings, key=lambda item: (item.component.source, item.component.jar, item.advisory))


# ---------------------------------------------------------------------------------------------------------
# Inventory


def _pom_properties(archive: zipfile.ZipFile) -> list[tuple[str, str, str]]:
    found = []
    for name in archive.namelist():
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            values = {}
            for line in archive.read(name).decode("utf-8", "replace").splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    key, value = line.split("=", 1)
                    values[key.strip()] = value.strip()
            if {"groupId", "artifactId", "version"} <= values.keys():
                found.append((values["groupId"], values["artifactId"], values["version"]))
    return found


_NOTICE_LINE = re.compile(r"^\s*-\s+([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-+]+)\s*$")


def _notice_coordinates(archive: zipfile.ZipFile) -> list[tuple[str, str, str]]:
    found = []
    for name in archive.namelist():
        if name.rsplit("/", 1)[-1] == "NOTICE" and name.count("/") <= 1:
            for line in archive.read(name).decode("utf-8", "replace").splitlines():
                if match := _NOTICE_LINE.match(line):
                    found.append((match[1], match[2], match[3]))
    return found


def parse_jar_name(name: str) -> tuple[str, str] | None:
    """(artifact, version) from ``artifact-version.jar``.

    The version starts at the first ``-<digit>``, unless what follows holds another ``-<digit>.<digit>``: then
    the artifact has a version-like part of its own (``log4j-1.2-api-2.24.3``, ``hive-shims-0.23-2.3.10``).
    A suffix without a dot stays in the version (``zstd-jni-1.5.7-6``).
    """
    if not name.endswith(".jar"):
        return None
    stem = name[: -len(".jar")]
    starts = [match.start() for match in re.finditer(r"-(?=\d)", stem)]
    for index, start in enumerate(starts):
        rest = stem[start + 1 :]
        if index + 1 < len(starts) and re.search(r"-\d+\.\d", rest):
            continue
        return stem[:start], rest
    return None


def _manifest(archive: zipfile.ZipFile) -> dict[str, str]:
    try:
        text = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except KeyError:
        return {}
    return {match[1]: match[2] for match in re.finditer(r"^([A-Za-z-]+):\s*(\S+)", text, re.MULTILINE)}


def jar_components(path: Path, source: str, *, own: tuple[str, str, str] | None = None) -> list[Component]:
    """The libraries one jar file holds: its own coordinates and those of every library bundled in it.

    ``own`` (a pinned jar's coordinates) is left out of the result: the pin already stands for it.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return []
    with archive:
        poms = _pom_properties(archive)
        notices = _notice_coordinates(archive)
        manifest = _manifest(archive) if not poms else {}
    manifest_group = manifest.get("Implementation-Vendor-Id")
    module = manifest.get("Automatic-Module-Name") or manifest.get("Bundle-SymbolicName")
    components = [Component(*coordinates, source, path.name, "pom.properties") for coordinates in poms]
    seen = {(c.group, c.artifact) for c in components}
    components += [
        Component(*coordinates, source, path.name, "NOTICE")
        for coordinates in dict.fromkeys(notices)
        if coordinates[:2] not in seen
    ]
    parsed = parse_jar_name(path.name)
    if own is None and parsed and not any(c.artifact == parsed[0] for c in components):
        # The jar itself declares nothing about its own coordinates: fall back to its file name.
        how = "file name + manifest" if manifest_group else "file name"
        components.append(Component(manifest_group, parsed[0], parsed[1], source, path.name, how, module=module))
    if own is not None:
        components = [c for c in components if (c.group, c.artifact) != own[:2]]
    return components


def jar_cache() -> Path:
    sys.path.insert(0, str(REPO_ROOT / "src"))
    try:
        from hybrid_platform.config import load

        return load().jar_cache
    except Exception:  # any configuration problem: no cache to read, the pins still count
        return Path.home() / ".cache" / "hybrid-platform" / "jars"


@dataclass
class Inventory:
    components: list[Component]
    notes: list[str]


def inventory(root: Path = REPO_ROOT, cache: Path | None = None, manifest: Path | None = None) -> Inventory:
    components: list[Component] = []
    notes = []
    data = tomllib.loads((manifest or root / "jars.toml").read_text(encoding="utf-8"))
    pins = [tuple(entry["coordinates"].split(":")) for entry in data["jar"]]
    cache = cache if cache is not None else jar_cache()
    unfetched = 0
    for group, artifact, version in pins:
        components.append(Component(group, artifact, version, "jars.toml", f"{artifact}-{version}.jar", "pinned", True))
        path = cache / f"{artifact}-{version}.jar"
        if path.exists():
            components += jar_components(path, "jars.toml", own=(group, artifact, version))
        else:
            unfetched += 1
    line = f"jars.toml: {len(pins)} pinned jars"
    if unfetched:
        line += f"; {unfetched} not in the jar cache ({cache}), so what they bundle is not inventoried (`hdp jars`)"
    notes.append(line)
    for engine, patterns in ENGINE_JARS.items():
        paths = sorted({Path(p) for pattern in patterns for p in glob.glob(str(root / pattern))})
        if not paths:
            notes.append(f"{engine}: not installed here, its bundled jars are not inventoried")
            continue
        found = [c for path in paths for c in jar_components(path, engine)]
        components += found
        how: dict[str, int] = {}
        for component in found:
            how[component.how] = how.get(component.how, 0) + 1
        detail = ", ".join(f"{count} by {name}" for name, count in sorted(how.items()))
        notes.append(f"{engine}: {len(paths)} jars holding {len(found)} libraries ({detail})")
    return Inventory(components, notes)


# ---------------------------------------------------------------------------------------------------------
# Allowlist


@dataclass(frozen=True)
class Allowed:
    advisory: str
    jar: str
    reason: str


def load_allowlist(path: Path = ALLOWLIST) -> list[Allowed]:
    """The allowed findings; an entry without an id, a jar or a real reason is an error."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for entry in data.get("allow", []):
        advisory, jar, reason = entry.get("id", ""), entry.get("jar", ""), " ".join(entry.get("reason", "").split())
        if not advisory or not jar or len(reason) < MIN_REASON:
            raise ValueError(f"{path.name}: entry {entry!r} needs an id, a jar and a reason (`reason`)")
        entries.append(Allowed(advisory, jar, reason))
    return entries


def _allowed_keys(finding: Finding) -> set[tuple[str, str]]:
    ids = {finding.advisory, *finding.aliases}
    return {(advisory, finding.component.jar) for advisory in ids}


def not_allowed(findings: Iterable[Finding], allowed: Iterable[Allowed]) -> list[Finding]:
    keys = {(item.advisory, item.jar) for item in allowed}
    return [finding for finding in findings if not (_allowed_keys(finding) & keys)]


# ---------------------------------------------------------------------------------------------------------
# Refresh: rebuild the snapshot from a copy of the GitHub Advisory Database


def _advisory_files(database: Path) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every GitHub-reviewed advisory in a checkout or a (bare) git directory."""
    reviewed = database / "advisories" / "github-reviewed"
    if reviewed.is_dir():
        for path in sorted(reviewed.rglob("GHSA-*.json")):
            yield str(path.relative_to(database)), path.read_bytes()
        return
    git = ["git", f"--git-dir={database}"]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", "HEAD", "advisories/github-reviewed/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = [name for name in listing if name.endswith(".json")]
    batch = subprocess.run(
        [*git, "cat-file", "--batch"],
        input="".join(f"HEAD:{name}\n" for name in names).encode(),
        capture_output=True,
        check=True,
    ).stdout
    offset = 0
    for name in names:
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        yield name, batch[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1


def _database_revision(database: Path) -> tuple[str | None, str | None]:
    git = ["git", f"--git-dir={database / '.git'}" if (database / ".git").exists() else f"--git-dir={database}"]
    result = subprocess.run([*git, "log", "-1", "--format=%H %cI"], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return None, None
    commit, date = result.stdout.split()
    return commit, date


def _severity(record: Mapping[str, Any]) -> str:
    specific = record.get("database_specific") or {}
    return str(specific.get("severity") or "")


def reduce_advisory(record: Mapping[str, Any], packages: set[str], artifacts: set[str]) -> dict[str, Any] | None:
    """The part of one OSV record the audit needs, or None when it names none of the inventory's packages."""
    if record.get("withdrawn"):
        return None
    affected = []
    for entry in record.get("affected", []):
        package = entry.get("package", {})
        name = package.get("name", "")
        if package.get("ecosystem") != "Maven" or ":" not in name:
            continue
        if name not in packages and name.split(":", 1)[1] not in artifacts:
            continue
        reduced: dict[str, Any] = {"package": name}
        ranges = [
            {"type": r["type"], "events": r["events"]} for r in entry.get("ranges", []) if r.get("type") == "ECOSYSTEM"
        ]
        if ranges:
            reduced["ranges"] = ranges
        if entry.get("versions"):
            reduced["versions"] = entry["versions"]
        affected.append(reduced)
    if not affected:
        return None
    return {
        "id": record["id"],
        "aliases": record.get("aliases", []),
        "summary": record.get("summary", ""),
        "severity": _severity(record),
        "modified": record.get("modified", ""),
        "affected": affected,
    }


def refresh(
    database: Path, components: Iterable[Component], *, date: str | None = None, note: str | None = None
) -> dict[str, Any]:
    components = list(components)
    packages = {c.package for c in components if c.group}
    artifacts = {c.artifact for c in components if not c.group}  # identified by file name: match by artifact
    advisories = []
    scanned = 0
    for _, content in _advisory_files(database):
        scanned += 1
        reduced = reduce_advisory(json.loads(content), packages, artifacts)
        if reduced is not None:
            advisories.append(reduced)
    commit, commit_date = _database_revision(database)
    covered = packages | {a["package"] for advisory in advisories for a in advisory["affected"]}
    source: dict[str, Any] = {
        "database": "GitHub Advisory Database, github-reviewed advisories (OSV format), ecosystem Maven",
        "commit": commit,
        "date": date or commit_date,
        "advisories_scanned": scanned,
    }
    if note:
        source["note"] = note
    return {
        "source": source,
        "refreshed": dt.date.today().isoformat(),
        "packages": sorted(covered),
        "advisories": sorted(advisories, key=lambda item: item["id"]),
    }


# ---------------------------------------------------------------------------------------------------------
# The audit


def audit(inv: Inventory, snapshot: Snapshot, allowed: list[Allowed]) -> tuple[list[str], int]:
    """The report's lines and the exit code."""
    lines = []
    source = snapshot.source
    lines.append(
        f"advisories: {source['database']}, as of {source.get('date') or 'an unknown date'}"
        f" (commit {source.get('commit') or 'unknown'}); {len(snapshot.advisories)} advisories"
        f" for {len(snapshot.packages)} packages in {SNAPSHOT.relative_to(REPO_ROOT)}"
    )
    if source.get("note"):
        lines.append(f"advisories: {source['note']}")
    lines += inv.notes
    findings = find(inv.components, snapshot)
    remaining = not_allowed(findings, allowed)
    failed = False
    uncovered_pins = sorted({c.package for c in inv.components if c.pinned and c.package not in snapshot.packages})
    uncovered = sorted(
        {
            c.package
            for c in inv.components
            if not c.pinned and c.group is not None and c.package not in snapshot.packages
        }
        - set(uncovered_pins)
    )
    if uncovered_pins:
        lines.append(
            f"NOT COVERED: {len(uncovered_pins)} package(s) pinned in jars.toml have no advisory data in the snapshot,"
            f" so they are not audited: {', '.join(uncovered_pins)}; refresh it (tools/audit_jvm.py --refresh)"
        )
    if uncovered:
        lines.append(
            f"NOT COVERED: {len(uncovered)} bundled package(s) have no advisory data in the snapshot:"
            f" {', '.join(uncovered[:10])}{' ...' if len(uncovered) > 10 else ''}"
        )
    guessed = sorted({c for c in inv.components if c.group is None}, key=lambda c: c.jar)
    if guessed:
        names = []
        for c in guessed:
            groups = " or ".join(f"{group}:{c.artifact}" for group in candidate_groups(c, snapshot))
            names.append(f"{c.jar} (as {groups or 'no package of the snapshot'})")
        lines.append(
            f"note: {len(guessed)} jar(s) carry no Maven coordinates and are matched by file name:"
            f" {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}"
        )
    matched = {key for finding in findings for key in _allowed_keys(finding)}
    opened = {c.jar for c in inv.components if not c.pinned}  # jars whose contents were inventoried
    for stale in (item for item in allowed if (item.advisory, item.jar) not in matched):
        if stale.jar in opened:
            lines.append(f"note: allowlist entry {stale.advisory} ({stale.jar}) matches no finding; remove it")
        else:
            lines.append(
                f"note: allowlist entry {stale.advisory} ({stale.jar}) not checked: that jar's contents are not here"
            )
    for finding in remaining:
        component = finding.component
        fixed = ", ".join(finding.fixed) or "no fix released"
        aliases = f" {'/'.join(finding.aliases)}" if finding.aliases else ""
        lines.append(
            f"VULNERABLE {component.source}: {component.jar} has {component.package}:{component.version}"
            f" [{component.how}]: {finding.advisory}{aliases} {finding.severity} ({finding.summary}; fixed in: {fixed})"
        )
    if remaining:
        failed = True
        lines.append(
            f"jvm audit: {len(remaining)} finding(s); upgrade the pin (tools/pin_jars.py) or justify each in"
            f" {ALLOWLIST.relative_to(REPO_ROOT)}"
        )
    lines.append(
        f"jvm audit: {len(inv.components)} libraries inventoried; {len(findings)} finding(s),"
        f" {len(findings) - len(remaining)} allowlisted"
    )
    return lines, 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--refresh",
        type=Path,
        metavar="ADVISORY_DATABASE",
        help="rebuild the snapshot from a checkout or git directory of github/advisory-database",
    )
    parser.add_argument("--date", help="with --refresh: the database's date when it is not a git directory")
    parser.add_argument("--note", help="with --refresh: a note about the source, printed with every audit")
    args = parser.parse_args(argv)
    inv = inventory()
    if args.refresh:
        data = refresh(args.refresh, inv.components, date=args.date, note=args.note)
        SNAPSHOT.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"wrote {SNAPSHOT}: {len(data['advisories'])} advisories for {len(data['packages'])} packages")
        return 0
    try:
        allowed = load_allowlist()
    except ValueError as error:
        print(f"jvm audit: {error}", file=sys.stderr)
        return 1
    lines, code = audit(inv, Snapshot.load(), allowed)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
