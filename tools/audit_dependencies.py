"""Dependency vulnerability audit of uv.lock, for both environments (`make security`).

Each environment's pins are exported from the lockfile (``uv export --locked``) and audited with
pip-audit, which asks PyPI's per-release JSON API for the advisories of each exact pinned version.
Where that API is not reachable (some PyPI mirrors and proxies serve only ``/simple`` and
``/pypi/<name>/json``), pip-audit reports the pin as "could not be audited"; those pins are then checked
against what the project endpoint does carry: the advisories open in the project's newest release
(which also hit an older pin unless it predates the bug) and the pinned release's yanked flag. The run
prints which source covered how many pins, so a partial audit is never mistaken for a full one.

Every finding fails the audit unless ``security/audit-exceptions.toml`` lists it with a justification.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS_FILE = REPO_ROOT / "security" / "audit-exceptions.toml"
#: The two environments of pyproject.toml (see its header): `uv export` arguments for each.
ENVIRONMENTS = {
    "default (.venv)": [],
    "flink (.venv-flink)": ["--no-default-groups", "--group", "flink", "--group", "dev"],
}
PYPI_JSON = os.environ.get("HDP_PYPI_JSON_URL", "https://pypi.org/pypi")


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str  # advisory id (PYSEC-/GHSA-/CVE-), or "yanked"
    detail: str
    source: str  # "per-release advisories" | "newest-release advisories" | "yanked flag"


@dataclass(frozen=True)
class AuditException:
    advisory: str
    package: str
    why: str


def load_exceptions(path: Path = EXCEPTIONS_FILE) -> list[AuditException]:
    """The justified exceptions; an entry without a package or a real justification is an error."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    exceptions = []
    for entry in data.get("exception", []):
        advisory, package, why = entry.get("id", ""), entry.get("package", ""), entry.get("why", "").strip()
        if not advisory or not package or len(why) < 40:
            raise ValueError(f"{path}: exception {entry!r} needs an id, a package and a justification (`why`)")
        exceptions.append(AuditException(advisory, package.lower(), why))
    return exceptions


def unexcused(findings: Iterable[Finding], exceptions: Iterable[AuditException]) -> list[Finding]:
    allowed = {(item.package, item.advisory) for item in exceptions}
    return [item for item in findings if (item.package.lower(), item.advisory) not in allowed]


def export_requirements(uv: str, extra_args: list[str]) -> str:
    command = [uv, "export", "--locked", "--no-hashes", "--no-emit-project", "--format", "requirements-txt"]
    result = subprocess.run([*command, *extra_args], capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"`uv export` failed: {result.stderr.strip()}")
    return result.stdout


def pip_audit(requirements: str) -> dict[str, object]:
    """pip-audit's JSON report for pinned ``requirements`` (no resolution: the lockfile already did it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as handle:
        handle.write(requirements)
        handle.flush()
        command = [
            str(Path(sys.executable).parent / "pip-audit"),
            *("--requirement", handle.name, "--disable-pip", "--no-deps", "--format", "json"),
            *("--progress-spinner", "off", "--desc", "off"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    # Exit 1 means "vulnerabilities found": the JSON still follows. Anything else without JSON is a failure.
    try:
        report: dict[str, object] = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"pip-audit failed: {(result.stderr or result.stdout).strip()[-500:]}") from None
    return report


def _project_json(name: str) -> Mapping[str, object] | None:
    try:
        with urllib.request.urlopen(f"{PYPI_JSON}/{name}/json", timeout=30) as response:
            data: Mapping[str, object] = json.load(response)
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def newest_release_findings(name: str, version: str, project: Mapping[str, object]) -> list[Finding]:
    """What PyPI's project endpoint says about ``name==version``: open advisories and a yanked release."""
    findings = []
    info = project.get("info")
    newest = info.get("version") if isinstance(info, dict) else None
    for vulnerability in project.get("vulnerabilities") or []:  # type: ignore[union-attr]
        if not isinstance(vulnerability, dict) or vulnerability.get("withdrawn"):
            continue
        fixed = ", ".join(vulnerability.get("fixed_in") or []) or "no fix released"
        findings.append(
            Finding(name, version, str(vulnerability.get("id")), f"open in {newest}; fixed in: {fixed}", "newest")
        )
    releases = project.get("releases")
    files = releases.get(version, []) if isinstance(releases, dict) else []
    if files and all(isinstance(file, dict) and file.get("yanked") for file in files):
        reason = next((file.get("yanked_reason") for file in files if file.get("yanked_reason")), None)
        findings.append(Finding(name, version, "yanked", f"release yanked: {reason or 'no reason given'}", "yanked"))
    return findings


def audit(uv: str) -> tuple[list[Finding], list[str]]:
    """Findings over both environments, and one coverage line per environment."""
    findings: set[Finding] = set()
    coverage = []
    for environment, extra_args in ENVIRONMENTS.items():
        report = pip_audit(export_requirements(uv, extra_args))
        dependencies = report.get("dependencies", [])
        assert isinstance(dependencies, list)
        audited, skipped = [], []
        for dependency in dependencies:
            name, version = dependency["name"], dependency.get("version", "")
            if "skip_reason" in dependency:
                skipped.append((name, version or dependency["skip_reason"].rsplit("(", 1)[-1].rstrip(")")))
                continue
            audited.append(name)
            for vulnerability in dependency.get("vulns", []):
                fixes = ", ".join(vulnerability.get("fix_versions") or []) or "no fix released"
                findings.add(Finding(name, version, vulnerability["id"], f"fixed in: {fixes}", "per-release"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            projects = dict(zip(skipped, pool.map(lambda pin: _project_json(pin[0]), skipped), strict=True))
        unreachable = [f"{name}=={version}" for (name, version), project in projects.items() if project is None]
        if unreachable:
            raise RuntimeError(f"{environment}: PyPI has no data for {', '.join(unreachable[:5])}: audit incomplete")
        behind = []
        for (name, version), project in projects.items():
            assert project is not None
            findings.update(newest_release_findings(name, version, project))
            info = project.get("info")
            newest = info.get("version") if isinstance(info, dict) else None
            if newest != version:
                behind.append(f"{name}=={version} (newest {newest})")
        newest_equal = len(skipped) - len(behind)
        line = f"{environment}: {len(dependencies)} pins; {len(audited)} audited per release by pip-audit"
        if skipped:
            line += (
                f"; {len(skipped)} without PyPI's per-release API here, checked against their newest release's"
                f" advisories and yanked flags ({newest_equal} of them pin the newest release, so exactly)"
            )
        if behind:
            line += f"; advisories fixed before the newest release are not visible for: {', '.join(sorted(behind))}"
        coverage.append(line)
    return sorted(findings, key=lambda item: (item.package, item.advisory)), coverage


def main() -> int:
    uv = os.environ.get("UV", "uv")
    exceptions = load_exceptions()
    try:
        findings, coverage = audit(uv)
    except RuntimeError as error:
        print(f"dependency audit: {error}", file=sys.stderr)
        return 1
    for line in coverage:
        print(line)
    remaining = unexcused(findings, exceptions)
    excused = len(findings) - len(remaining)
    found = {(item.package.lower(), item.advisory) for item in findings}
    for stale in (item for item in exceptions if (item.package, item.advisory) not in found):
        print(f"note: exception {stale.advisory} ({stale.package}) no longer matches a finding; remove it")
    for item in remaining:
        print(f"VULNERABLE {item.package}=={item.version}: {item.advisory} ({item.detail}) [{item.source}]")
    if remaining:
        print(f"dependency audit: {len(remaining)} finding(s); move the pin or justify it in {EXCEPTIONS_FILE.name}")
        return 1
    print(f"dependency audit: no unexcused findings ({excused} excused in {EXCEPTIONS_FILE.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
