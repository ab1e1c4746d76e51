"""The project generator (copier.yml + tools/template_postcopy.py): every option combination, rendered the
way a user renders it, from the committed HEAD of a clone of this repository.

Per combination: the file tree, no template placeholder or marker left (dbt's and Airflow's own Jinja come
out exactly as in the reference), the rename complete, every Python file compiles, `ruff check` and
`ruff format --check` pass, and every module of the generated package and of spark_jobs imports under its
new name. The default project additionally installs its own environment (`uv sync --locked`) and passes its
own fast checks: lint, mypy, unit tests and DAG integrity (`generated_project` marker: 146 s here, 262 s
while other test suites shared the 2 cores). The whole module: 108 tests in 3 min 56 s.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hybrid_platform import config

REPO = config.REPO_ROOT
VENV_BIN = Path(sys.executable).parent
TARGETS = ("local-only", "compose", "kubernetes")
COMBINATIONS = [
    {"streaming": streaming, "dbt": dbt, "ml": ml, "target": target}
    for streaming, dbt, ml, target in itertools.product((True, False), (True, False), (True, False), TARGETS)
]
#: What the user types; everything else derives from it (the defaults of copier.yml).
PROJECT = {"project_name": "Acme Risk Platform"}
PACKAGE, DISTRIBUTION, CLI, PREFIX = "acme_risk_platform", "acme-risk-platform", "arp", "ARP_"
#: Jinja of their own (dbt models and macros, Airflow templates): must come out untouched.
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
LEFTOVERS = re.compile(r"hybrid_platform|hybrid-platform|HDP_|(?<![A-Za-z0-9])(?:hdp|HDP)(?![A-Za-z0-9])")


def _load_postcopy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_postcopy", REPO / "tools" / "template_postcopy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


postcopy = _load_postcopy()


def _id(options: dict[str, Any]) -> str:
    parts = [name for name in ("streaming", "dbt", "ml") if options[name]]
    return "+".join([*parts, options["target"]]) if parts else f"minimal+{options['target']}"


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} failed in {cwd}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    )
    return done.stdout


# --------------------------------------------------------------------------------------------------
# The marker language, on its own


PARTS_ON = dict.fromkeys(postcopy.PARTS, True)
PARTS_OFF = dict.fromkeys(postcopy.PARTS, False)


def test_markers_keep_or_drop_blocks_lines_and_replacements() -> None:
    text = (
        "a\n"
        "# [template:dbt]\n"
        "b\n"
        "    # [template:ml]\n"
        "    c\n"
        "    # [/template:ml]\n"
        "# [/template:dbt]\n"
        "d  # [template:ml]\n"
        "    # [template:!ml] e = 1\n"
        "<!-- [template:streaming] -->\n"
        "f\n"
        "<!-- [/template:streaming] -->\n"
        "<!-- [template:!streaming] g -->\n"
    )
    assert postcopy.apply_markers(text, PARTS_ON) == "a\nb\n    c\nd\nf\n"
    assert postcopy.apply_markers(text, PARTS_OFF) == "a\n    e = 1\ng\n"
    assert postcopy.apply_markers(text, {**PARTS_ON, "ml": False}) == "a\nb\n    e = 1\nf\n"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("# [template:dbt]\nx\n", "never closed"),
        ("x\n# [/template:dbt]\n", "closes nothing open"),
        ("# [template:dbt]\n# [/template:ml]\n", "closes nothing open"),
        ("x  # [template:spark]\n", "unknown or misplaced"),
    ],
)
def test_malformed_markers_name_the_file_and_line(text: str, error: str) -> None:
    with pytest.raises(postcopy.TemplateError, match=rf"README.md:\d+: .*{error}"):
        postcopy.apply_markers(text, PARTS_ON, "README.md")


def test_imports_of_removed_modules_are_dropped() -> None:
    text = "from pkg import a, flink_ops, b\n    from pkg import flink_ops\nfrom pkg import c\n"
    assert postcopy.drop_removed_imports(text, "pkg", {"flink_ops"}) == "from pkg import a, b\nfrom pkg import c\n"


def test_rename_covers_identifiers_commands_and_variables() -> None:
    options = postcopy.Options("Acme", "acme", "acme-dist", "ac", "AC_", True, True, True, "local-only")
    text = "import hybrid_platform  # hybrid-platform\n`hdp up`, _hdp(), hdp-generator, HDP_HOME, $(HDP), hdpx\n"
    assert (
        postcopy.rename(text, options)
        == "import acme  # acme-dist\n`ac up`, _ac(), ac-generator, AC_HOME, $(AC), hdpx\n"
    )
    # uv.lock's conflict markers carry the length of the project's name.
    lock = "marker = \"extra == 'group-15-hybrid-platform-spark'\"\n"
    assert postcopy.rename(lock, options) == "marker = \"extra == 'group-9-acme-dist-spark'\"\n"


# --------------------------------------------------------------------------------------------------
# Every option combination, rendered from a clone


@pytest.fixture(scope="module")
def template_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository's committed HEAD, as a user's `copier copy <url>` sees it."""
    clone = tmp_path_factory.mktemp("template") / "hybrid-platform"
    _run("git", "clone", "--quiet", REPO, clone, cwd=REPO)
    return clone


@pytest.fixture(scope="module")
def template_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD's files without git history: copier renders it the same way, three times faster
    (no clone per render); the default-project test renders from the clone."""
    export = tmp_path_factory.mktemp("export") / "hybrid-platform"
    export.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
    return export


def _render(template: Path, destination: Path, data: dict[str, Any], **task_env: str) -> Path:
    from copier import run_copy
    from plumbum import local

    # Copier runs its tasks with plumbum's environment, not os.environ.
    with local.env(**task_env):
        run_copy(str(template), destination, data={**PROJECT, **data}, defaults=True, unsafe=True, quiet=True)
    return destination


@pytest.fixture(scope="module")
def rendered(template_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every combination, rendered once for the module (copier's Python API, the same Worker as its CLI).

    uv.lock is re-locked in test_lock_follows_removed_groups only (TEMPLATE_SKIP_UV_LOCK here)."""
    root = tmp_path_factory.mktemp("rendered")
    return {
        _id(options): _render(template_export, root / _id(options), options, TEMPLATE_SKIP_UV_LOCK="1")
        for options in COMBINATIONS
    }


def _files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def _source_of(relative: str) -> str:
    return relative.replace(f"src/{PACKAGE}/", "src/hybrid_platform/")


@pytest.mark.parametrize("options", COMBINATIONS, ids=_id)
def test_file_tree_follows_the_options(
    rendered: dict[str, Path], template_export: Path, options: dict[str, Any]
) -> None:
    files = _files(rendered[_id(options)])
    template_files = _files(template_export)
    assert ".copier-answers.yml" in files and not any(f.endswith(".jinja") for f in files)
    assert {"copier.yml", "tools/template_postcopy.py", "tests/unit/test_template.py"}.isdisjoint(files)
    assert f"src/{PACKAGE}/cli.py" in files and not any(f.startswith("src/hybrid_platform/") for f in files)
    assert {"dags/lakehouse_daily.py", "dags/lakehouse_maintenance.py", "spark_jobs/daily_etl.py"} <= files

    def present(*paths: str) -> bool:
        found = [any(f == p or f.startswith(p + "/") for f in files) for p in paths]
        assert len(set(found)) == 1, f"{paths}: some present, some not"
        return found[0]

    assert present("flink_jobs", "dags/flink_jobs.py", f"src/{PACKAGE}/flink_ops.py") == options["streaming"]
    assert present("dbt", f"src/{PACKAGE}/dbt_runner.py", "tests/unit/test_dbt_project.py") == options["dbt"]
    assert present("dags/fraud_model_training.py", "spark_jobs/train_fraud_model.py") == options["ml"]
    infra = {f for f in files if f.startswith("infra/")}
    assert bool(infra) == (options["target"] != "local-only" and any(f.startswith("infra/") for f in template_files))
    assert not any(f.startswith("infra/k8s/") for f in infra) or options["target"] == "kubernetes"
    assert not any(f.startswith("infra/compose/") for f in infra) or options["target"] == "compose"
    # Everything the options do not remove is there.
    removed_by_options = {_source_of(f) for f in files} ^ template_files
    for path in removed_by_options - {".copier-answers.yml", ".copier-answers.yml.jinja"}:
        assert path in template_files, f"{path} appeared from nowhere"
        assert re.search(
            r"flink|stream|decision|latency|reconcile|feature_parity|shared_storage|dbt|train|training|infra/|compose|k8s|"
            r"kubernetes|copier|template|bench|test_infra|docs/scaling|\.dockerignore",
            path,
        ), f"{path} is missing from the generated project"


@pytest.mark.parametrize("options", COMBINATIONS, ids=_id)
def test_no_placeholder_or_marker_left_and_foreign_jinja_untouched(
    rendered: dict[str, Path], template_export: Path, options: dict[str, Any]
) -> None:
    root = rendered[_id(options)]
    for relative in sorted(_files(root) - {".copier-answers.yml"}):
        path = root / relative
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        assert "[template:" not in text and "[/template:" not in text, f"{relative}: marker left"
        assert "_copier" not in text, relative
        source = template_export / _source_of(relative)
        reference = source.read_text(encoding="utf-8")
        # Every Jinja expression is the reference's own (dbt, Airflow), renamed like the rest: none added, none lost
        # from what the options keep.
        expected = Counter(postcopy.rename(s, _options(options)) for s in JINJA.findall(reference))
        found = Counter(JINJA.findall(text))
        assert found <= expected, f"{relative}: unexpected template syntax {found - expected}"
        if relative.startswith("dbt/"):  # dbt's own Jinja: byte for byte, only renamed
            assert text == postcopy.rename(reference, _options(options)), relative


def _options(options: dict[str, Any]) -> Any:
    return postcopy.Options(PROJECT["project_name"], PACKAGE, DISTRIBUTION, CLI, PREFIX, **options)


@pytest.mark.parametrize("options", COMBINATIONS, ids=_id)
def test_rename_is_complete(rendered: dict[str, Path], options: dict[str, Any]) -> None:
    root = rendered[_id(options)]
    for relative in sorted(_files(root) - {".copier-answers.yml"}):
        try:
            text = (root / relative).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        leftovers = sorted({match.group(0) for match in LEFTOVERS.finditer(text)})
        assert not leftovers, f"{relative}: {leftovers}"
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert f'name = "{DISTRIBUTION}"' in pyproject and f'{CLI} = "{PACKAGE}.cli:main"' in pyproject
    assert f'name = "{DISTRIBUTION}"' in (root / "uv.lock").read_text(encoding="utf-8")
    assert (root / "README.md").read_text(encoding="utf-8").startswith(f"# {PROJECT['project_name']}\n")


_IMPORT_PACKAGE = r"""
import importlib, pathlib, sys
package = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(package.parent))
for path in sorted(package.glob("*.py")):
    importlib.import_module(package.name if path.stem == "__init__" else f"{package.name}.{path.stem}")
print("imported")
"""


def _module_names(path: Path) -> set[str]:
    """Top-level names a module defines or imports (what `from module import name` can take)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name))
    return names


def dangling_imports(root: Path, first_party: dict[str, Path]) -> list[str]:
    """Imports, anywhere in ``root`` (functions included), of first-party modules or names that do not exist."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):  # .venv and the like
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [(node.module, [alias.name for alias in node.names])]
            elif isinstance(node, ast.Import):
                modules = [(alias.name, []) for alias in node.names]
            else:
                continue
            for module, names in modules:
                top, *rest = module.split(".")
                if top not in first_party:
                    continue
                base = first_party[top].joinpath(*rest)
                file = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
                where = f"{path.relative_to(root)}:{node.lineno}"
                if not file.exists():
                    problems.append(f"{where}: no module {module}")
                    continue
                defined = _module_names(file)
                for name in names:
                    if name != "*" and name not in defined and not (base / f"{name}.py").exists():
                        problems.append(f"{where}: {module} has no {name}")
    return problems


@pytest.mark.parametrize("options", COMBINATIONS, ids=_id)
def test_generated_code_compiles_lints_and_imports(rendered: dict[str, Path], options: dict[str, Any]) -> None:
    root = rendered[_id(options)]
    for path in root.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    # The generated project's own ruff settings (pyproject.toml), Airflow's AIR rules included.
    _run(VENV_BIN / "ruff", "check", "--no-cache", ".", cwd=root)
    _run(VENV_BIN / "ruff", "format", "--check", "--no-cache", ".", cwd=root)
    # No dangling import of a removed module or name, in any file (DAGs, jobs, tests; lazy imports too) ...
    first_party = {
        PACKAGE: root / "src" / PACKAGE,
        "spark_jobs": root / "spark_jobs",
        "flink_jobs": root / "flink_jobs",
    }
    assert dangling_imports(root, first_party) == []
    # ... and the shared package (standard library only) imports for real under its new name.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HDP_")}
    assert "imported" in _run(sys.executable, "-c", _IMPORT_PACKAGE, root / "src" / PACKAGE, cwd=root, env=env)


def test_dangling_import_check_finds_removed_modules_and_names(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "names.py").write_text("TOPIC = 'x'\ndef helper():\n    pass\n")
    (tmp_path / "job.py").write_text(
        "from pkg import names, flink_ops\nfrom pkg.names import TOPIC, GONE\n\ndef f():\n    import pkg.latency\n"
    )
    assert dangling_imports(tmp_path, {"pkg": tmp_path / "pkg"}) == [
        "job.py:1: pkg has no flink_ops",
        "job.py:2: pkg.names has no GONE",
        "job.py:5: no module pkg.latency",
    ]


def test_smallest_project_type_checks(rendered: dict[str, Path]) -> None:
    """The combination with the most removed: mypy --strict still passes on what is left."""
    root = rendered[_id({"streaming": False, "dbt": False, "ml": False, "target": "local-only"})]
    _run(VENV_BIN / "mypy", "--no-incremental", cwd=root)


def test_lock_follows_removed_groups(template_export: Path, tmp_path: Path) -> None:
    """Without streaming and dbt, uv.lock is re-locked and `uv lock --check` holds.

    The re-lock reads the package index, as it does for a user. Offline it depends on what uv's cache already
    holds: after `make setup` alone the cache has the installed wheels, not the index pages a re-lock reads, so
    an offline re-lock failed on a fresh machine and passed only where an earlier lock had filled the cache."""
    uv = postcopy.find_uv()
    assert uv, "uv is needed (make setup installs it)"
    options = {"streaming": False, "dbt": False, "ml": True, "target": "local-only"}
    destination = _render(template_export, tmp_path / "no-streaming", options)
    lock = (destination / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "apache-flink"' not in lock and 'name = "dbt-core"' not in lock
    assert f'name = "{DISTRIBUTION}"' in lock
    _run(uv, "lock", "--check", "--offline", cwd=destination)


def test_copier_update_brings_template_changes_and_keeps_the_projects(template_clone: Path, tmp_path: Path) -> None:
    """`copier update` in a generated project: a later template commit (also inside the renamed package)
    arrives, the project's own change stays, and no second package folder appears."""
    template = tmp_path / "template"
    _run("git", "clone", "--quiet", template_clone, template, cwd=tmp_path)
    project = tmp_path / "project"
    git = ["git", "-c", "user.email=dev@example.com", "-c", "user.name=dev"]
    _run(VENV_BIN / "copier", "copy", "--trust", "--defaults", "--quiet", template, project, cwd=tmp_path)
    _run("git", "init", "--quiet", cwd=project)
    (project / "spark_jobs" / "session.py").write_text(
        (project / "spark_jobs" / "session.py").read_text(encoding="utf-8") + "# the project's own change\n"
    )
    _run("git", "add", "-A", cwd=project)
    _run(*git, "commit", "--quiet", "-m", "generated", cwd=project)
    names = template / "src" / "hybrid_platform" / "names.py"
    names.write_text(names.read_text(encoding="utf-8") + "# a template improvement\n", encoding="utf-8")
    _run(*git, "commit", "--quiet", "-am", "improve", cwd=template)
    _run(VENV_BIN / "copier", "update", "--trust", "--defaults", "--quiet", cwd=project)
    assert (
        (project / "src" / "my_data_platform" / "names.py")
        .read_text(encoding="utf-8")
        .endswith("# a template improvement\n")
    )
    assert (project / "spark_jobs" / "session.py").read_text(encoding="utf-8").endswith("# the project's own change\n")
    assert sorted(path.name for path in (project / "src").iterdir()) == ["my_data_platform"]


# --------------------------------------------------------------------------------------------------
# The default project, end to end: the one command, then its own fast checks


@pytest.mark.generated_project
def test_default_project_passes_its_own_fast_checks(template_clone: Path, tmp_path: Path) -> None:
    """`copier copy` with the defaults, `uv sync --locked`, then lint, mypy, unit tests and DAG integrity.

    Its own environment comes from uv's cache (hard links, no download); the JVM jars from this project's
    verified cache (`<PREFIX>JAR_CACHE`). 146-262 s here, most of it the unit tests' Spark session and
    the DagBag.
    """
    uv = postcopy.find_uv()
    assert uv, "uv is needed (make setup installs it)"
    destination = tmp_path / "my-data-platform"
    # The one command the README gives, with every question at its default.
    _run(
        VENV_BIN / "copier",
        "copy",
        "--trust",
        "--defaults",
        "--quiet",
        "--vcs-ref",
        "HEAD",
        template_clone,
        destination,
        cwd=tmp_path,
    )
    answers = (destination / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "package_name: my_data_platform" in answers and "cli_name: mdp" in answers
    # What a user does next: a new project is a git repository (its tests check what git ignores).
    _run("git", "init", "-q", cwd=destination)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDP_", "VIRTUAL_ENV", "UV_PROJECT"))}
    env["MDP_JAR_CACHE"] = str(config.load().jar_cache)  # verified by SHA-256 on use: sharing it is safe
    # The Flink operators' conformance tests compile against the PyFlink wheel's jars: this project's Flink
    # environment stands in for the one `make setup` would create there.
    env["MDP_FLINK_PYTHON"] = str(config.load().flink_python)
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    _run(
        *nice,
        uv,
        "sync",
        "--locked",
        "--python",
        f"{sys.version_info.major}.{sys.version_info.minor}",
        cwd=destination,
        env=env,
    )
    bin_dir = destination / ".venv" / "bin"
    # Every group installed for real (a lock renamed wrong installs nothing of a conflicting group, silently).
    _run(
        bin_dir / "python", "-c", "import pyspark, pyiceberg, airflow.sdk, cosmos, great_expectations", cwd=destination
    )
    _run(bin_dir / "ruff", "format", "--check", ".", cwd=destination, env=env)
    _run(bin_dir / "ruff", "check", ".", cwd=destination, env=env)
    _run(*nice, bin_dir / "mypy", cwd=destination, env=env)
    output = _run(
        *nice,
        bin_dir / "pytest",
        "-m",
        "not integration",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit",
        cwd=destination,
        env=env,
        timeout=1800,
    )
    assert re.search(r"\d+ passed", output) and " failed" not in output, output[-2000:]
    assert (destination / ".venv" / "bin" / "mdp").exists()
    _run(bin_dir / "mdp", "--help", cwd=destination, env=env)
