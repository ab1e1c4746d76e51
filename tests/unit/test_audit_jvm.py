"""The JVM classpath audit (tools/audit_jvm.py): Maven version order, OSV range matching, inventory, policy."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from hybrid_platform.config import REPO_ROOT


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_jvm", REPO_ROOT / "tools" / "audit_jvm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


audit = _load_tool()


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.9.4", "1.11.0"),
        ("1.10.1", "1.11.0"),
        ("3.9.1", "3.9.10"),
        ("2.0.0-M1", "2.0.0"),
        ("2.0.0-M1", "2.0.0-M2"),
        ("1.0-alpha-1", "1.0-beta-1"),
        ("1.0-beta-2", "1.0-rc1"),
        ("1.0-rc1", "1.0"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1.0", "1.0-sp1"),
        ("1.0", "1.0.1"),
        ("2.12.7", "2.12.7.1"),
        ("1.1.10.7", "1.1.10.8"),
        ("1.5.6-10", "1.5.7-6"),
        ("4.1.100.Final", "4.1.118.Final"),
        ("0.9.3", "0.9.6"),
        ("3.41.2.1", "3.41.2.2"),
        ("2.13.8", "2.13.16"),
    ],
)
def test_maven_version_order(older: str, newer: str) -> None:
    assert audit.compare_versions(older, newer) == -1
    assert audit.compare_versions(newer, older) == 1


@pytest.mark.parametrize(("left", "right"), [("1.0", "1.0.0"), ("1.0", "1"), ("1.0.Final", "1.0"), ("1.0-ga", "1.0")])
def test_maven_equal_versions(left: str, right: str) -> None:
    assert audit.compare_versions(left, right) == 0


BEANUTILS = {  # GHSA-wxr5-93ph-8wr9 (CVE-2025-48734) as the snapshot holds it
    "package": "commons-beanutils:commons-beanutils",
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.11.0"}]}],
}


def test_a_version_in_the_range_is_affected_and_the_fix_is_not() -> None:
    assert audit.affects(BEANUTILS, "1.9.4")
    assert audit.affects(BEANUTILS, "1.10.1")
    assert not audit.affects(BEANUTILS, "1.11.0")
    assert not audit.affects(BEANUTILS, "1.11.1")
    assert not audit.affects(BEANUTILS, "0.9")


def test_ranges_from_zero_last_affected_and_listed_versions() -> None:
    from_zero = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.15.0"}]}]}
    assert audit.affects(from_zero, "2.12.7") and not audit.affects(from_zero, "2.15.0")
    last = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.10.1"}]}]}
    assert audit.affects(last, "1.10.1") and not audit.affects(last, "1.10.2")
    two = {
        "ranges": [
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.4.4"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "3.5.0"}, {"fixed": "3.5.2"}]},
        ]
    }
    assert audit.affects(two, "3.5.1") and not audit.affects(two, "3.4.4") and not audit.affects(two, "3.5.2")
    listed = {"versions": ["2.8.0"]}
    assert audit.affects(listed, "2.8.0") and not audit.affects(listed, "2.8.1")
    open_ended = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.2"}]}]}
    assert audit.affects(open_ended, "9.9") and not audit.affects(open_ended, "1.1")


def _snapshot(packages: list[str], advisories: list[dict[str, object]]) -> object:
    return audit.Snapshot({"database": "test", "date": "2026-01-01"}, set(packages), advisories)


def _component(coordinates: str, jar: str, *, pinned: bool = False, group: bool = True) -> object:
    g, a, v = coordinates.split(":")
    return audit.Component(g if group else None, a, v, "jars.toml" if pinned else "pyspark", jar, "pinned", pinned)


ADVISORY = {"id": "GHSA-wxr5-93ph-8wr9", "aliases": ["CVE-2025-48734"], "summary": "", "affected": [BEANUTILS]}


def test_findings_name_the_jar_and_a_fixed_pin_has_none() -> None:
    snapshot = _snapshot(["commons-beanutils:commons-beanutils"], [ADVISORY])
    old = _component("commons-beanutils:commons-beanutils:1.9.4", "commons-beanutils-1.9.4.jar", pinned=True)
    new = _component("commons-beanutils:commons-beanutils:1.11.0", "commons-beanutils-1.11.0.jar", pinned=True)
    findings = audit.find([old, new], snapshot)
    assert [(f.advisory, f.component.jar, f.fixed) for f in findings] == [
        ("GHSA-wxr5-93ph-8wr9", "commons-beanutils-1.9.4.jar", ("1.11.0",))
    ]


def test_a_jar_known_by_file_name_only_is_matched_by_its_artifact() -> None:
    snapshot = _snapshot(["commons-beanutils:commons-beanutils"], [ADVISORY])
    nameless = _component("x:commons-beanutils:1.9.4", "commons-beanutils-1.9.4.jar", group=False)
    assert [f.advisory for f in audit.find([nameless], snapshot)] == ["GHSA-wxr5-93ph-8wr9"]
    other_fork = audit.Component(
        None, "commons-beanutils", "1.9.4", "pyspark", "x.jar", "file name", module="org.other"
    )
    assert audit.find([other_fork], snapshot) == []


def test_the_allowlist_excuses_one_advisory_in_one_jar_by_id_or_alias(tmp_path: Path) -> None:
    snapshot = _snapshot(["commons-beanutils:commons-beanutils"], [ADVISORY])
    findings = audit.find(
        [
            _component("commons-beanutils:commons-beanutils:1.9.4", "a-1.9.4.jar"),
            _component("commons-beanutils:commons-beanutils:1.9.4", "b-1.9.4.jar"),
        ],
        snapshot,
    )
    allowed = [audit.Allowed("CVE-2025-48734", "a-1.9.4.jar", "x" * 50)]
    assert [f.component.jar for f in audit.not_allowed(findings, allowed)] == ["b-1.9.4.jar"]


@pytest.mark.parametrize(
    "entry",
    [
        'id = "GHSA-x"\njar = "a.jar"',
        'id = "GHSA-x"\njar = "a.jar"\nreason = "not used"',
        'jar = "a.jar"\nreason = "a reason that is long enough to be one, really it is"',
        'id = "GHSA-x"\nreason = "a reason that is long enough to be one, really it is"',
    ],
)
def test_an_allowlist_entry_needs_an_id_a_jar_and_a_reason(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "allow.toml"
    path.write_text(f"[[allow]]\n{entry}\n")
    with pytest.raises(ValueError, match="needs an id, a jar and a reason"):
        audit.load_allowlist(path)


def test_the_committed_allowlist_loads_and_every_entry_has_a_reason() -> None:
    for entry in audit.load_allowlist():
        assert len(entry.reason) >= audit.MIN_REASON


def test_a_bundled_jar_is_inventoried_from_pom_properties_then_notice_then_its_name(tmp_path: Path) -> None:
    fat = tmp_path / "fat-1.0.jar"
    with zipfile.ZipFile(fat, "w") as archive:
        archive.writestr("META-INF/maven/org.x/fat/pom.properties", "groupId=org.x\nartifactId=fat\nversion=1.0\n")
        archive.writestr("META-INF/maven/org.y/inner/pom.properties", "groupId=org.y\nartifactId=inner\nversion=2.0\n")
        archive.writestr("META-INF/NOTICE", "bundles:\n\n- org.z:noticed:3.0\n- org.y:inner:2.0\n")
    plain = tmp_path / "log4j-1.2-api-2.24.3.jar"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr(
            "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Vendor-Id: org.apache.logging.log4j\n"
        )
    found = {(c.package, c.version, c.how) for path in (fat, plain) for c in audit.jar_components(path, "pyflink")}
    assert found == {
        ("org.x:fat", "1.0", "pom.properties"),
        ("org.y:inner", "2.0", "pom.properties"),
        ("org.z:noticed", "3.0", "NOTICE"),
        ("org.apache.logging.log4j:log4j-1.2-api", "2.24.3", "file name + manifest"),
    }
    pinned = {c.package for c in audit.jar_components(fat, "jars.toml", own=("org.x", "fat", "1.0"))}
    assert pinned == {"org.y:inner", "org.z:noticed"}


def test_the_inventory_needs_no_download_and_no_engine(tmp_path: Path) -> None:
    manifest = tmp_path / "jars.toml"
    manifest.write_text('[versions]\n[[jar]]\ncoordinates = "org.a:b:1.0"\nsets = ["kafka"]\nsha256 = "0"\n')
    inv = audit.inventory(root=tmp_path, cache=tmp_path / "empty-cache", manifest=manifest)
    assert [(c.package, c.pinned) for c in inv.components] == [("org.a:b", True)]
    assert any("not in the jar cache" in note for note in inv.notes)
    assert any("pyspark: not installed here" in note for note in inv.notes)


def test_refresh_keeps_only_the_inventorys_packages_from_the_database(tmp_path: Path) -> None:
    reviewed = tmp_path / "advisories" / "github-reviewed" / "2025" / "05"
    for record in (
        {
            **ADVISORY,
            "affected": [
                {"package": {"ecosystem": "Maven", "name": BEANUTILS["package"]}, "ranges": BEANUTILS["ranges"]}
            ],
        },
        {"id": "GHSA-other", "affected": [{"package": {"ecosystem": "Maven", "name": "org.q:other"}, "ranges": []}]},
        {"id": "GHSA-npm", "affected": [{"package": {"ecosystem": "npm", "name": "commons-beanutils"}}]},
        {**ADVISORY, "id": "GHSA-gone", "withdrawn": "2025-06-01T00:00:00Z"},
    ):
        folder = reviewed / record["id"]
        folder.mkdir(parents=True)
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    component = _component("commons-beanutils:commons-beanutils:1.9.4", "c.jar", pinned=True)
    data = audit.refresh(tmp_path, [component], date="2025-06-02")
    assert [advisory["id"] for advisory in data["advisories"]] == ["GHSA-wxr5-93ph-8wr9"]
    assert data["source"]["date"] == "2025-06-02" and data["source"]["advisories_scanned"] == 4
    assert data["packages"] == ["commons-beanutils:commons-beanutils"]


def test_the_audit_fails_on_a_finding_and_passes_once_it_is_allowed() -> None:
    snapshot = _snapshot(["commons-beanutils:commons-beanutils"], [ADVISORY])
    inv = audit.Inventory([_component("commons-beanutils:commons-beanutils:1.9.4", "c-1.9.4.jar", pinned=True)], [])
    lines, code = audit.audit(inv, snapshot, [])
    assert code == 1 and any(line.startswith("VULNERABLE jars.toml: c-1.9.4.jar") for line in lines)
    lines, code = audit.audit(inv, snapshot, [audit.Allowed("GHSA-wxr5-93ph-8wr9", "c-1.9.4.jar", "x" * 50)])
    assert code == 0 and lines[0].startswith("advisories: test, as of 2026-01-01")


def test_jars_toml_pins_have_no_finding_the_allowlist_does_not_excuse() -> None:
    """Against the committed snapshot, by coordinates alone (what make test can check without downloads)."""
    _, pins = _pins()
    snapshot = audit.Snapshot.load()
    remaining = audit.not_allowed(audit.find(pins, snapshot), audit.load_allowlist())
    assert remaining == [], [f"{f.component.jar}: {f.advisory}" for f in remaining]


def test_the_snapshot_is_dated_and_names_its_packages() -> None:
    data = json.loads(audit.SNAPSHOT.read_text())
    assert data["source"]["date"] and data["packages"]
    ids = [advisory["id"] for advisory in data["advisories"]]
    assert ids == sorted(set(ids))
    for advisory in data["advisories"]:
        assert advisory["id"].startswith("GHSA-") and advisory["affected"]
        assert all(entry.get("ranges") or entry.get("versions") for entry in advisory["affected"])


def _pins() -> tuple[list[str], list[object]]:
    import tomllib

    data = tomllib.loads((REPO_ROOT / "jars.toml").read_text())
    coordinates = [entry["coordinates"] for entry in data["jar"]]
    components = [_component(c, f"{c.split(':')[1]}-{c.split(':')[2]}.jar", pinned=True) for c in coordinates]
    return coordinates, components
