"""Pins and images agree: requirements files, the lock, the Dockerfile and the profiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
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
AIRFLOW_CONSTRAINTS = ROOT / "constraints-airflow.txt"
MWAA_PYTHON = "3.12"
# Never on MWAA (EMR provides Spark; the rest is test, lint or the local profile's engines).
LOCAL_ONLY = {"pyspark", "py4j", "moto", "ruff", "checkov", "duckdb", "sqlglot", "python-hcl2", "freezegun"}
LOCAL_ONLY_PREFIXES = ("pytest", "soda-")


def test_the_airflow_constraints_are_for_the_pinned_airflow_and_mwaas_python_with_their_source_stated():
    header = [line for line in AIRFLOW_CONSTRAINTS.read_text().splitlines()[:12] if line.startswith("#")]
    airflow = pins(ROOT / "requirements-local.txt")["apache-airflow"]
    official = f"https://raw.githubusercontent.com/apache/airflow/constraints-{airflow}/constraints-{MWAA_PYTHON}.txt"
    assert header[0] in (f"# Source: {official}", f"# Stand-in for {official}")
    if header[0].startswith("# Stand-in"):  # says why and what it holds instead
        text = "\n".join(header)
        assert "could" in text and "not be fetched" in text and f"apache-airflow=={airflow}" in text
        assert pins(AIRFLOW_CONSTRAINTS)["apache-airflow"] == airflow
    assert f"apache-airflow=={airflow}" in MWAA_LOCK_PATH.read_text()


def test_every_pin_of_the_airflow_constraints_is_kept_unless_the_project_pins_it_or_it_is_local_only():
    mwaa, project = pins(MWAA_LOCK_PATH), pins(ROOT / "requirements.txt")
    for name, version in pins(AIRFLOW_CONSTRAINTS).items():
        if name in project:
            assert mwaa[name] == project[name], name
        elif name in LOCAL_ONLY or name.startswith(LOCAL_ONLY_PREFIXES):
            assert name not in mwaa, name
        else:
            assert mwaa.get(name) == version, f"{name}=={version} of the Airflow constraints, {mwaa.get(name)} in the MWAA lock"
    assert project.items() <= mwaa.items()


def test_no_local_only_package_reaches_mwaa():
    names = set(pins(MWAA_LOCK_PATH))
    assert {n for n in names if n in LOCAL_ONLY or n.startswith(LOCAL_ONLY_PREFIXES)} == set()


def test_the_mwaa_lock_is_what_lock_sh_derives_from_its_inputs():
    """constraints-mwaa.txt = the header + scripts/mwaa_constraints.py derive of the stored Airflow
    constraints, requirements.txt and the packages the resolve added (its third section)."""
    from scripts import mwaa_constraints as mc

    text = MWAA_LOCK_PATH.read_text()
    body = text[text.index("# --- ") :]
    added = {name: version for name, version in mc.sections(text)["added"].values()}
    expected = mc.derive(AIRFLOW_CONSTRAINTS.read_text(), (ROOT / "requirements.txt").read_text(), added, mc.local_only())
    assert body == expected
    assert "CPython 3.12" in "".join(text.splitlines()[:4])
    # The added packages are neither in the Airflow file nor pinned by the project.
    assert not set(map(mc.canonical, added)) & (set(pins(AIRFLOW_CONSTRAINTS)) | set(pins(ROOT / "requirements.txt")))


def test_derive_keeps_the_airflow_pins_overrides_the_projects_and_drops_local_only_ones():
    from scripts import mwaa_constraints as mc

    official = "\n".join([
        "# official header", "APScheduler==3.11.2", "apache-airflow-providers-amazon==9.8.0", "boto3==1.37.3",
        "duckdb==1.3.0", "Flask==2.2.5", "moto==5.1.5", "pyspark==4.1.0", "pytest-xdist==3.6.1",
        "soda-core==3.5.0", "rich==13.9.4", "ruff==0.11.0", "",
    ])  # fmt: skip
    requirements = '--constraint "/x"\napache-airflow-providers-amazon==9.39.0\nboto3==1.44.5\n'
    result = mc.derive(official, requirements, {"watchtower": "3.4.0"}, mc.local_only(), "official.txt")
    assert result.splitlines() == [
        "# --- official.txt: every pin but the overridden and local-only ones, unchanged",
        "APScheduler==3.11.2", "Flask==2.2.5", "rich==13.9.4",
        "# --- requirements.txt: the project's pins, overriding the file above",
        "apache-airflow-providers-amazon==9.39.0", "boto3==1.44.5",
        "# --- what those pins need that the file above lacks (pip's resolve for MWAA's Python)",
        "watchtower==3.4.0",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="boto3"):
        mc.derive(official, requirements, {"boto3": "1.0"}, mc.local_only())
    with pytest.raises(ValueError, match="pytest-cov"):
        mc.derive(official, requirements, {"pytest-cov": "6.0"}, mc.local_only())


def test_the_mwaa_lock_resolves_for_mwaas_python(tmp_path):
    """pip resolves requirements.txt + MWAA's Airflow for CPython 3.12 (manylinux wheels, as MWAA
    installs) against the lock: everything it installs is pinned there, at that version (PyPI; no install)."""
    import json
    import subprocess
    import sys

    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("--")]
    airflow = pins(ROOT / "requirements-local.txt")["apache-airflow"]
    (tmp_path / "requirements.txt").write_text("\n".join([*requirements, f"apache-airflow=={airflow}", ""]))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed", "--report", str(tmp_path / "report.json"),
         "--python-version", MWAA_PYTHON, "--implementation", "cp", "--abi", "cp" + MWAA_PYTHON.replace(".", ""),
         "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
         "--only-binary=:all:", "-r", str(tmp_path / "requirements.txt"), "-c", str(MWAA_LOCK_PATH)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {
        i["metadata"]["name"].lower().replace("_", "-").replace(".", "-"): i["metadata"]["version"] for i in report["install"]
    }
    lock = {name.replace(".", "-"): version for name, version in pins(MWAA_LOCK_PATH).items()}
    assert {name: version for name, version in resolved.items() if lock.get(name) != version} == {}
    assert pins(ROOT / "requirements.txt").items() <= resolved.items()
