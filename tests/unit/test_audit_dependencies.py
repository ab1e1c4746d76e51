"""The dependency audit's own logic (tools/audit_dependencies.py): what counts as a finding, what excuses one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hybrid_platform.config import REPO_ROOT


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", REPO_ROOT / "tools" / "audit_dependencies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


audit = _load_tool()


def _project(
    newest: str, vulnerabilities: list[dict[str, object]], releases: dict[str, list[dict[str, object]]]
) -> dict[str, object]:
    return {"info": {"version": newest}, "vulnerabilities": vulnerabilities, "releases": releases}


def test_open_advisories_of_the_newest_release_and_yanked_pins_are_findings() -> None:
    project = _project(
        "2.0",
        [
            {"id": "GHSA-aaaa", "fixed_in": ["2.1"], "withdrawn": None},
            {"id": "GHSA-gone", "fixed_in": [], "withdrawn": "2026-01-01T00:00:00"},
        ],
        {"1.0": [{"yanked": True, "yanked_reason": "CVE-2026-1"}], "2.0": [{"yanked": False}]},
    )
    found = audit.newest_release_findings("pkg", "1.0", project)
    assert [(item.advisory, item.source) for item in found] == [("GHSA-aaaa", "newest"), ("yanked", "yanked")]
    assert "CVE-2026-1" in found[1].detail and "fixed in: 2.1" in found[0].detail
    clean = audit.newest_release_findings("pkg", "2.0", _project("2.0", [], {"2.0": [{"yanked": False}]}))
    assert clean == []


def test_only_a_listed_exception_excuses_a_finding() -> None:
    findings = [
        audit.Finding("Pkg", "1.0", "GHSA-aaaa", "", "newest"),
        audit.Finding("other", "1.0", "GHSA-aaaa", "", "newest"),
    ]
    exceptions = [audit.AuditException("GHSA-aaaa", "pkg", "x" * 40)]
    assert audit.unexcused(findings, exceptions) == [findings[1]]  # same advisory, another package: not excused


def test_an_exception_needs_a_justification(tmp_path: Path) -> None:
    unjustified = tmp_path / "exceptions.toml"
    unjustified.write_text('[[exception]]\nid = "GHSA-aaaa"\npackage = "pkg"\nwhy = "wontfix"\n')
    with pytest.raises(ValueError, match="justification"):
        audit.load_exceptions(unjustified)


def test_the_committed_exceptions_are_all_justified() -> None:
    for exception in audit.load_exceptions():
        assert exception.advisory and exception.package and len(exception.why) >= 40


def test_both_environments_are_audited() -> None:
    assert len(audit.ENVIRONMENTS) == 2
    assert any("flink" in args for args in audit.ENVIRONMENTS.values())
