"""Post-copy step of the project template (`copier.yml` runs it in the freshly rendered project).

Copier has already left out the files of the parts switched off (`_exclude` in copier.yml). This step makes
what is left consistent, without any Jinja in the reference code:

1. **Part markers.** Shared files carry comment markers around what belongs to an optional part:

   - a block: a line ``# [template:PART]`` (or ``<!-- [template:PART] -->`` in Markdown) up to
     ``# [/template:PART]``; kept without its marker lines when PART is on, dropped when it is off;
   - one line: ``code  # [template:PART]`` (or ``text <!-- [template:PART] -->``): the same, for one line;
   - the replacement for an absent part: ``# [template:!PART] code`` (or ``<!-- [template:!PART] text -->``)
     becomes ``code`` when PART is off and disappears when it is on.

   PART is one of :data:`PARTS`. ``reference`` is on only in the template repository itself (the section
   of its README about generating a project, for example).
2. **Imports of removed modules.** ``from <package> import a, b`` loses the names whose module file the
   generation removed (``flink_ops`` when streaming is off, ``dbt_runner`` when dbt is off).
3. **The DAG snapshot** (tests/unit/snapshots/dags.json) loses the DAGs whose files are gone and the tasks
   and tags of the parts switched off, so the generated project's DAG integrity test holds as it is.
4. **Rename**: the package ``hybrid_platform``, the distribution ``hybrid-platform``, the CLI ``hdp`` (and
   ``HDP`` in the Makefile), the environment prefix ``HDP_`` and the README title, in every text file and
   the package folder's name.
5. **Lock file**: when a dependency group lost packages, ``uv lock`` brings uv.lock in line (skipped with
   ``TEMPLATE_SKIP_UV_LOCK=1``, used by the template's own tests, which check the lock in one case only).

Standard library only: it runs under whatever Python runs copier.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PARTS = ("streaming", "dbt", "ml", "compose", "kubernetes", "infra", "reference")
TARGETS = ("local-only", "compose", "kubernetes")
TEMPLATE_PACKAGE = "hybrid_platform"
TEMPLATE_DISTRIBUTION = "hybrid-platform"
TEMPLATE_CLI = "hdp"
TEMPLATE_ENV_PREFIX = "HDP_"
TEMPLATE_TITLE = "Hybrid data platform template"
#: Rendered by copier from the template's answers; its _src_path must keep naming the template.
ANSWERS_FILE = ".copier-answers.yml"
SNAPSHOT = Path("tests/unit/snapshots/dags.json")
#: What a part adds to DAGs that stay: {part: {dag_id: (task id prefixes, tags)}}.
SNAPSHOT_PARTS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "dbt": {"lakehouse_daily": (("dbt.", "publish_marts"), ("dbt",))},
}
#: Files never edited: binary, or written by tools that own their format.
SKIPPED_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".jar", ".gz", ".zip", ".db", ".pyc"}
SKIPPED_DIRS = {".git", ".venv", ".venv-flink", ".platform", "__pycache__", ".ruff_cache", ".mypy_cache"}

_PART = "|".join(PARTS)
_BLOCK = re.compile(rf"^\s*(?:#|<!--)\s*\[(/?)template:({_PART})\]\s*(?:-->)?\s*$")
_LINE = re.compile(rf"^(?P<code>.*?\S)\s*(?:#|<!--)\s*\[template:(?P<part>{_PART})\]\s*(?:-->)?\s*$")
_NEGATED = re.compile(rf"^(?P<indent>\s*)(?:#|<!--)\s*\[template:!(?P<part>{_PART})\] ?(?P<code>.*?)\s*(?:-->)?\s*$")
_ANY_MARKER = re.compile(r"\[/?template:!?[\w-]*\]")


class TemplateError(ValueError):
    """The reference project's markers are malformed (a template defect, reported with file and line)."""


@dataclass(frozen=True)
class Options:
    project_name: str
    package: str
    distribution: str
    cli: str
    env_prefix: str
    streaming: bool
    dbt: bool
    ml: bool
    target: str

    def parts(self) -> dict[str, bool]:
        return {
            "streaming": self.streaming,
            "dbt": self.dbt,
            "ml": self.ml,
            "compose": self.target == "compose",
            "kubernetes": self.target == "kubernetes",
            "infra": self.target != "local-only",
            "reference": False,
        }


def apply_markers(text: str, parts: dict[str, bool], where: str = "<text>") -> str:
    """Keep or drop the marked blocks and lines of ``text`` (see the module docstring)."""
    out: list[str] = []
    open_blocks: list[tuple[str, int]] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        if block := _BLOCK.match(body):
            closing, part = block.group(1) == "/", block.group(2)
            if not closing:
                open_blocks.append((part, number))
            elif not open_blocks or open_blocks[-1][0] != part:
                raise TemplateError(f"{where}:{number}: [/template:{part}] closes nothing open")
            else:
                open_blocks.pop()
            continue
        if not all(parts[part] for part, _ in open_blocks):
            continue
        if negated := _NEGATED.match(body):
            if not parts[negated.group("part")]:
                out.append(negated.group("indent") + negated.group("code") + ending)
            continue
        if marked := _LINE.match(body):
            if parts[marked.group("part")]:
                out.append(marked.group("code") + ending)
            continue
        if _ANY_MARKER.search(body):
            raise TemplateError(f"{where}:{number}: unknown or misplaced template marker: {body.strip()}")
        out.append(line)
    if open_blocks:
        part, number = open_blocks[-1]
        raise TemplateError(f"{where}:{number}: [template:{part}] is never closed")
    return "".join(out)


def drop_removed_imports(text: str, package: str, removed_modules: set[str]) -> str:
    """Drop the names of ``from <package> import ...`` that name a module the generation removed."""

    def rewrite(match: re.Match[str]) -> str:
        names = [name.strip() for name in match.group("names").split(",") if name.strip()]
        kept = [name for name in names if name.split(" as ")[0].strip() not in removed_modules]
        if len(kept) == len(names):
            return match.group(0)
        return f"{match.group('indent')}from {package} import {', '.join(kept)}\n" if kept else ""

    pattern = re.compile(rf"^(?P<indent>[ \t]*)from {re.escape(package)} import (?P<names>[\w ,]+)\n", re.MULTILINE)
    return pattern.sub(rewrite, text)


def edit_snapshot(snapshot: dict[str, dict[str, object]], dag_ids: set[str], parts: dict[str, bool]) -> None:
    """Remove DAGs not in ``dag_ids`` and the tasks and tags of the parts switched off, in place."""
    for dag_id in [dag_id for dag_id in snapshot if dag_id not in dag_ids]:
        del snapshot[dag_id]
    for part, dags in SNAPSHOT_PARTS.items():
        if parts[part]:
            continue
        for dag_id, (task_prefixes, tags) in dags.items():
            dag = snapshot.get(dag_id)
            if dag is None:
                continue
            tasks = dag["tasks"]
            assert isinstance(tasks, dict)
            dropped = {task_id for task_id in tasks if task_id.startswith(task_prefixes)}
            for task_id in dropped:
                del tasks[task_id]
            for task in tasks.values():
                task["upstream"] = [upstream for upstream in task["upstream"] if upstream not in dropped]
            dag["tags"] = [tag for tag in dag["tags"] if tag not in tags]  # type: ignore[attr-defined]


def rename(text: str, options: Options) -> str:
    # uv.lock names conflicting groups `group-<length of the project name>-<name>-<group>`: a plain
    # replacement would leave the length wrong, and uv would silently install nothing of those groups.
    text = re.sub(
        rf"\b(group|extra)-{len(TEMPLATE_DISTRIBUTION)}-{TEMPLATE_DISTRIBUTION}-",
        lambda match: f"{match.group(1)}-{len(options.distribution)}-{options.distribution}-",
        text,
    )
    text = text.replace(TEMPLATE_TITLE, options.project_name)
    text = text.replace(TEMPLATE_PACKAGE, options.package)
    text = text.replace(TEMPLATE_DISTRIBUTION, options.distribution)
    text = text.replace(TEMPLATE_ENV_PREFIX, options.env_prefix)
    # Whole words, also inside identifiers such as `_hdp` or `hdp-generator`; `HDP` is the Makefile's variable.
    text = re.sub(rf"(?<![A-Za-z0-9]){TEMPLATE_CLI}(?![A-Za-z0-9])", options.cli, text)
    return re.sub(rf"(?<![A-Za-z0-9]){TEMPLATE_CLI.upper()}(?![A-Za-z0-9])", options.cli.upper(), text)


def text_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in SKIPPED_SUFFIXES or relative.as_posix() == ANSWERS_FILE:
            continue
        yield path


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # binary: never edited


def _removes_dependencies(pyproject: str, parts: dict[str, bool]) -> bool:
    """Whether the parts switched off drop lines (dependency groups, pins) from pyproject.toml.

    Compared with the template as locked, where every part is on (``reference`` too: its bench group is
    in the template's uv.lock, so a generated project always drops it)."""
    everything = dict.fromkeys(parts, True)
    return apply_markers(pyproject, everything) != apply_markers(pyproject, parts)


def find_uv() -> str | None:
    cached = Path.home() / ".cache" / TEMPLATE_DISTRIBUTION / "tools" / "bin" / "uv"
    return shutil.which("uv") or (str(cached) if cached.exists() else None)


def generate(root: Path, options: Options, template_modules: Iterable[str] = ()) -> list[str]:
    """Apply steps 1-5 to the rendered project at ``root``; returns notes for the user."""
    notes: list[str] = []
    parts = options.parts()
    package_dir = root / "src" / TEMPLATE_PACKAGE
    removed_modules = {name for name in template_modules if not (package_dir / f"{name}.py").exists()}
    pyproject_before = (root / "pyproject.toml").read_text(encoding="utf-8")
    for path in text_files(root):
        text = _read(path)
        if text is None:
            continue
        edited = apply_markers(text, parts, str(path.relative_to(root)))
        if path.suffix == ".py":
            edited = drop_removed_imports(edited, TEMPLATE_PACKAGE, removed_modules)
            if edited != text:  # a block removed at the end of a file or between definitions leaves extra blank lines
                edited = re.sub(r"\n{4,}", "\n\n\n", edited).rstrip("\n") + "\n"
        if edited != text:
            path.write_text(edited, encoding="utf-8")
    snapshot_path = root / SNAPSHOT
    if snapshot_path.exists():
        snapshot = json.loads(snapshot_path.read_text(encoding="utf-8"))
        dag_ids = {path.stem for path in (root / "dags").glob("*.py") if not path.name.startswith("_")}
        edit_snapshot(snapshot, dag_ids, parts)
        snapshot_path.write_text(json.dumps(snapshot, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for path in text_files(root):
        text = _read(path)
        if text is not None and (renamed := rename(text, options)) != text:
            path.write_text(renamed, encoding="utf-8")
    if package_dir.is_dir() and options.package != TEMPLATE_PACKAGE:
        _move_package(package_dir, root / "src" / options.package)
    if _removes_dependencies(pyproject_before, parts):
        notes.extend(_relock(root))
    return notes


def _move_package(rendered: Path, target: Path) -> None:
    """Rename the package folder. On `copier update` copier renders the template's new version over the
    project, so the target already exists: the fresh files replace theirs (copier then re-applies the
    project's own changes as a patch)."""
    if not target.exists():
        rendered.rename(target)
        return
    for source in sorted(rendered.rglob("*")):
        if source.is_file():
            destination = target / source.relative_to(rendered)
            destination.parent.mkdir(parents=True, exist_ok=True)
            source.replace(destination)
    shutil.rmtree(rendered)


def _relock(root: Path) -> list[str]:
    if os.environ.get("TEMPLATE_SKIP_UV_LOCK") == "1":
        return ["uv.lock not updated (TEMPLATE_SKIP_UV_LOCK=1): run `uv lock`"]
    uv = find_uv()
    if uv is None:
        return ["uv not found: run `uv lock` before `make setup` (dependency groups changed)"]
    done = subprocess.run([uv, "lock", "--quiet"], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return [f"`uv lock` failed ({done.stderr.strip()[-300:]}): run it again before `make setup`"]
    return ["uv.lock updated for the parts you chose"]


def _bool(text: str) -> bool:
    if text.lower() in {"true", "1", "yes"}:
        return True
    if text.lower() in {"false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true/false")


def parse_args(argv: list[str] | None = None) -> tuple[Path, Options, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the rendered project (default: here)")
    parser.add_argument("--template", type=Path, required=True, help="the template's checkout")
    parser.add_argument("--project-name", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--distribution", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--env-prefix", required=True)
    parser.add_argument("--streaming", type=_bool, required=True)
    parser.add_argument("--dbt", type=_bool, required=True)
    parser.add_argument("--ml", type=_bool, required=True)
    parser.add_argument("--target", choices=TARGETS, required=True)
    args = parser.parse_args(argv)
    options = Options(
        project_name=args.project_name,
        package=args.package,
        distribution=args.distribution,
        cli=args.cli,
        env_prefix=args.env_prefix,
        streaming=args.streaming,
        dbt=args.dbt,
        ml=args.ml,
        target=args.target,
    )
    return args.root, options, args.template


def main(argv: list[str] | None = None) -> int:
    root, options, template = parse_args(argv)
    modules = [path.stem for path in (template / "src" / TEMPLATE_PACKAGE).glob("*.py")]
    try:
        notes = generate(root, options, modules)
    except TemplateError as error:
        print(f"template error: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
