"""Pins and images agree: requirements files, the lock, the Dockerfile and the profiles."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


LOCK = pins(ROOT / "constraints.txt")


def test_every_top_level_requirement_is_pinned_and_locked():
    for name in ("requirements.txt", "requirements-local.txt", "requirements-test.txt", "requirements-spark.txt"):
        lines = [line for line in (ROOT / name).read_text().splitlines() if line.strip() and not line.startswith(("#", "--"))]
        declared = pins(ROOT / name)
        assert len(declared) == len(lines), f"{name}: every requirement must be pinned with ==: {lines}"
        for package, version in declared.items():
            assert LOCK.get(package) == version, f"{name}: {package}=={version} but constraints.txt has {LOCK.get(package)}"


def test_versions_match_production():
    assert LOCK["apache-airflow"] == "3.3.1"  # the MWAA image
    assert LOCK["pyspark"].startswith("4.0.")  # emr-spark-8.0.0 ships Spark 4.0.2
    assert LOCK["soda-core"].startswith("4.")


def test_mwaa_requirements_use_the_deployed_lock():
    first = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("--"))
    assert first == '--constraint "/usr/local/airflow/dags/constraints.txt"'


def test_dockerfile_base_matches_the_profiles_release_label():
    release = yaml.safe_load((ROOT / "include/profiles/local.yaml").read_text())["spark"]["release_label"]
    name, date = re.fullmatch(r"(emr-spark-\d+\.\d+\.\d+)-(\d{8})", release).groups()
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM \S+/spark/(\S+)$", dockerfile, re.MULTILINE).group(1)
    assert base == f"{name}:{date}"


def test_dockerfile_installs_the_spark_requirements_and_the_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r /tmp/requirements-spark.txt" in dockerfile
    assert "COPY spark_apps /opt/payments/spark_apps" in dockerfile
    assert "pyspark" not in pins(ROOT / "requirements-spark.txt"), "the EMR image provides Spark"
    # soda-sparkdf depends on pyspark: installed without dependencies, at the locked version.
    no_deps = re.search(r"pip install --no-cache-dir --no-deps soda-sparkdf==(\S+)", dockerfile)
    assert no_deps and no_deps.group(1) == LOCK["soda-sparkdf"]


MWAA_LOCK_PATH = ROOT / "constraints-mwaa.txt"
MWAA_PYTHON = "3.12"
LOCAL_ONLY = {"pyspark", "moto", "pytest", "duckdb", "ruff", "checkov", "soda-duckdb", "soda-sparkdf"}


def test_the_mwaa_lock_is_what_mwaa_installs_for_its_python_and_nothing_local():
    """constraints-mwaa.txt (uploaded as dags/constraints.txt): MWAA's Airflow, every requirement of
    requirements.txt at its pin, at the versions the tests run, for MWAA's Python; no package only
    the local setup, the tests or the Spark image need."""
    mwaa = pins(MWAA_LOCK_PATH)
    assert f"CPython {MWAA_PYTHON}" in MWAA_LOCK_PATH.read_text().splitlines()[1]
    assert mwaa["apache-airflow"] == pins(ROOT / "requirements-local.txt")["apache-airflow"]
    assert pins(ROOT / "requirements.txt").items() <= mwaa.items()
    local_only = (LOCAL_ONLY | set(pins(ROOT / "requirements-test.txt"))) - set(pins(ROOT / "requirements.txt"))
    assert not local_only & set(mwaa), local_only & set(mwaa)
    assert {name: version for name, version in mwaa.items() if name in LOCK and LOCK[name] != version} == {}


def test_the_mwaa_lock_resolves_for_mwaas_python(tmp_path):
    """pip resolves requirements.txt + MWAA's Airflow for CPython 3.12 (manylinux wheels, as MWAA
    installs) to exactly the lock: nothing missing, nothing extra (PyPI; no install)."""
    import json
    import subprocess
    import sys

    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("--")]
    (tmp_path / "requirements.txt").write_text("\n".join([*requirements, f"apache-airflow=={LOCK['apache-airflow']}", ""]))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report", str(tmp_path / "report.json"),
         "--python-version", MWAA_PYTHON, "--implementation", "cp", "--abi", "cp" + MWAA_PYTHON.replace(".", ""),
         "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
         "--only-binary=:all:", "-r", str(tmp_path / "requirements.txt"), "-c", str(MWAA_LOCK_PATH)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in report["install"]}
    assert resolved == pins(MWAA_LOCK_PATH)
