"""What the deploy ships (scripts/deploy.py on the real project tree): plugins.zip and the Spark
zip carry production code only (the Airflow-side package / the spark_apps package, and the shared
dependency-free contract ``payments_contract`` in both); never devtools/, tests/, bench/ or
bytecode. Every module of plugins.zip imports only the stdlib, the zip itself or what MWAA installs
(constraints-mwaa.txt), and the zip's packages import from the archive root as MWAA puts it on
sys.path."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from scripts import deploy
from tests.infra.test_deploy import REPO, STARTUP_ENVIRONMENT

SHARED = "payments_contract"
NEVER_SHIPPED = ("devtools", "tests", "bench", "scripts", "dags", "include")
# Imported inside functions that only the local profile reaches (its embedded DuckDB catalog and
# its in-process quality gate); with the aws profile they are never imported on MWAA.
LOCAL_PROFILE_ONLY = {"duckdb", "spark_apps"}


@pytest.fixture(scope="module")
def archives() -> dict[str, zipfile.ZipFile]:
    artifacts = {a.key: a.body for a in deploy.build_artifacts(REPO, STARTUP_ENVIRONMENT)}
    return {
        "plugins": zipfile.ZipFile(io.BytesIO(artifacts[deploy.PLUGINS_KEY])),
        "spark": zipfile.ZipFile(io.BytesIO(artifacts[deploy.SPARK_APPS_ZIP_KEY])),
        "plugins_bytes": artifacts[deploy.PLUGINS_KEY],
    }


def tops(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in archive.namelist()}


def test_plugins_zip_holds_the_airflow_package_and_the_shared_contract_only(archives):
    assert tops(archives["plugins"]) == {"payments_platform", SHARED}


def test_spark_zip_holds_spark_apps_and_the_shared_contract_only(archives):
    assert tops(archives["spark"]) == {"spark_apps", SHARED}


@pytest.mark.parametrize("name", ["plugins", "spark"])
def test_no_development_tool_test_or_bytecode_is_shipped(archives, name):
    names = archives[name].namelist()
    assert not [n for n in names if n.split("/")[0] in NEVER_SHIPPED or "__pycache__" in n or n.endswith((".pyc", ".pyo"))]


@pytest.mark.parametrize("name", ["plugins", "spark"])
def test_the_shared_contract_is_shipped_whole_and_unchanged(archives, name):
    on_disk = {
        path.relative_to(REPO).as_posix(): path.read_bytes()
        for path in (REPO / SHARED).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    archive = archives[name]
    shipped = {n: archive.read(n) for n in archive.namelist() if n.startswith(f"{SHARED}/")}
    assert shipped == on_disk and f"{SHARED}/__init__.py" in shipped


class _Imports(ast.NodeVisitor):
    """Top-level names a module imports when it is imported (module level, class bodies) and
    those deferred to a call (inside functions) or never run (``if TYPE_CHECKING:``)."""

    def __init__(self) -> None:
        self.module_level: set[str] = set()
        self.deferred: set[str] = set()
        self.depth = 0

    def _deferred_scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _deferred_scope

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._deferred_scope(node)
        else:
            self.generic_visit(node)

    def _add(self, names: list[str]) -> None:
        (self.deferred if self.depth else self.module_level).update(names)

    def visit_Import(self, node: ast.Import) -> None:
        self._add([alias.name.split(".")[0] for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add([node.module.split(".")[0]])


def _imports(source: str) -> tuple[set[str], set[str]]:
    visitor = _Imports()
    visitor.visit(ast.parse(source))
    return visitor.module_level, visitor.deferred


def _mwaa_import_names() -> set[str]:
    """Import names provided by the distributions constraints-mwaa.txt pins (the local venv's
    metadata maps distribution to import name)."""
    pinned = {
        re.sub(r"[-_.]+", "-", m.group(1)).lower()
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", (REPO / "constraints-mwaa.txt").read_text(), re.MULTILINE)
    }
    return {
        module
        for module, distributions in packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() in pinned for d in distributions)
    }


def test_plugins_modules_import_only_what_mwaa_has(archives):
    archive = archives["plugins"]
    own = tops(archive)
    allowed = set(sys.stdlib_module_names) | own | _mwaa_import_names() | {"__future__"}
    problems = []
    for name in archive.namelist():
        if not name.endswith(".py"):
            continue
        module_level, nested = _imports(archive.read(name).decode())
        problems += [f"{name}: {m} (module level)" for m in sorted(module_level - allowed)]
        problems += [f"{name}: {m}" for m in sorted(nested - allowed - LOCAL_PROFILE_ONLY)]
    assert problems == []


def test_the_shared_contract_imports_nothing_but_the_stdlib(archives):
    archive = archives["plugins"]
    for name in archive.namelist():
        if name.startswith(f"{SHARED}/") and name.endswith(".py"):
            module_level, nested = _imports(archive.read(name).decode())
            assert (module_level | nested) - set(sys.stdlib_module_names) - {SHARED, "__future__"} == set(), name


def test_spark_zip_never_imports_the_airflow_side_or_devtools(archives):
    archive = archives["spark"]
    offending = []
    for name in archive.namelist():
        if name.endswith(".py"):
            module_level, nested = _imports(archive.read(name).decode())
            offending += [f"{name}: {m}" for m in sorted((module_level | nested) & {"payments_platform", "devtools", "airflow"})]
    assert offending == []


def test_plugins_zip_packages_import_from_the_archive_root(archives, tmp_path):
    """As on MWAA: the archive's root on sys.path (here the zip itself, through zipimport), not the
    repository: the shared contract and the Airflow-side package import from it."""
    zip_path = tmp_path / "plugins.zip"
    zip_path.write_bytes(archives["plugins_bytes"])
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import payments_contract, payments_platform.profiles as p;"
        "print(payments_contract.__file__); print(p.__file__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(zip_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [Path(line).parts[: len(zip_path.parts)] for line in result.stdout.split()] == [zip_path.parts] * 2
