"""The shared contract (payments_contract): its rules, its independence, and that spark_apps never
imports the Airflow side."""

from __future__ import annotations

import ast
import datetime as dt
import sys
from pathlib import Path

import pytest

import payments_contract as contract
from payments_contract import ContractError

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, anywhere in the file (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the same package
                continue
            names.add(node.module.split(".")[0])
    return names


def test_imported_modules_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\ndef f():\n    from payments_platform.profiles import get_profile\n    import devtools.broker\n")
    assert imported_modules(source) == {"os", "payments_platform", "devtools"}


def test_the_contract_imports_nothing_but_the_standard_library():
    files = sorted((ROOT / "payments_contract").rglob("*.py"))
    assert files, "payments_contract has no modules"
    for path in files:
        outside = imported_modules(path) - set(sys.stdlib_module_names) - {"__future__", "payments_contract"}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}: the contract must be standard library only"


def test_no_spark_module_imports_the_airflow_side_or_devtools():
    files = sorted((ROOT / "spark_apps").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        forbidden = imported_modules(path) & {"payments_platform", "devtools", "airflow"}
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}: Spark jobs get everything as arguments"


def test_the_spark_image_carries_the_contract_and_not_the_airflow_side():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY payments_contract /opt/payments/payments_contract" in dockerfile
    assert "COPY spark_apps /opt/payments/spark_apps" in dockerfile
    assert "payments_platform" not in dockerfile, "the Spark image never carries the Airflow side"
    spark_stage = dockerfile.split("FROM ${EMR_BASE_REGISTRY}", 1)[1]
    assert "include/profiles" not in spark_stage and "PAYMENTS_PROFILE" not in spark_stage, "the jobs read no runtime profile"


# --- versions and dates ------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["v1", "a.b-c_d", "20261121T010203Z-ab12cd34", "x" * 128])
def test_valid_versions(good):
    assert contract.check_version(good) == good


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", ".hidden", "-x", "run id", "x" * 129, "scheduled__2026-11-21T00:00:00+00:00", None]
)
def test_unsafe_versions_are_rejected(bad):
    with pytest.raises(ContractError, match="version"):
        contract.check_version(bad)


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "20261121", "2026-11-21T00:00", ""])
def test_bad_dates_are_rejected(bad):
    with pytest.raises(ContractError, match="date"):
        contract.check_date(bad)


def test_dates_as_text_or_date():
    assert contract.check_date("2026-11-21") == contract.check_date(dt.date(2026, 11, 21)) == "2026-11-21"


def test_a_version_from_an_airflow_run_id_is_safe_and_unique_per_attempt():
    run_id = "scheduled__2026-11-21T00:00:00+00:00"
    assert contract.version_from_airflow_run_id(run_id, "abcd1234") == "scheduled__2026-11-21T00_00_00_00_00-abcd1234"
    first, second = contract.version_from_airflow_run_id(run_id), contract.version_from_airflow_run_id(run_id)
    assert first != second and first.rsplit("-", 1)[0] == second.rsplit("-", 1)[0]
    assert len(contract.version_from_airflow_run_id("m" * 300)) == 100 + 1 + 8
    assert contract.version_from_airflow_run_id("::", "u1") == "run-u1"
    with pytest.raises(ContractError):
        contract.version_from_airflow_run_id("manual", "bad/unique")


def test_new_versions_sort_by_time_and_are_unique():
    first = contract.new_version(dt.datetime(2026, 11, 21, 1, 2, 3, tzinfo=dt.UTC))
    second = contract.new_version(dt.datetime(2026, 11, 21, 1, 2, 4, tzinfo=dt.UTC))
    assert first.startswith("20261121T010203Z-") and first < second
    assert contract.new_version() != contract.new_version()


# --- layout ---------------------------------------------------------------------------------------


def test_version_location_layout():
    assert (
        contract.version_location("s3://b/indexes/", "batch_index", "2026-11-21", "r1")
        == "s3://b/indexes/batch_index/dt=2026-11-21/version=r1"
    )
    assert contract.version_location("/lake", "t", dt.date(2026, 1, 2), "a.b-c_d") == "/lake/t/dt=2026-01-02/version=a.b-c_d"
    with pytest.raises(ContractError):
        contract.version_location("/lake", "t", "2026-01-02", "../other")


@pytest.mark.parametrize(
    "location, expected",
    [
        ("s3://b/indexes/batch_index/dt=2026-11-21/version=r1", ("s3://b/indexes", "batch_index", "2026-11-21", "r1", None)),
        ("/lake/quarantine/dt=2026-11-21/version=v-2/", ("/lake", "quarantine", "2026-11-21", "v-2", None)),
        ("/l/stream_index/dt=2026-11-22/hour=7/version=r1", ("/l", "stream_index", "2026-11-22", "r1", 7)),
    ],
)
def test_a_location_parses_back_to_its_parts(location, expected):
    parsed = contract.parse_version_location(location)
    assert parsed == expected
    if parsed.hour is None:
        assert contract.version_location(parsed.root, parsed.table, parsed.dt, parsed.version) == location.rstrip("/")
    assert contract.version_of(location) == expected[3]


@pytest.mark.parametrize(
    "location",
    [
        "/lake/batch_index/dt=2026-11-22",
        "/lake/batch_index/version=r1",
        "/lake/batch_index/dt=22-11-2026/version=r1",
        "/lake/batch_index/dt=2026-13-01/version=r1",
        "/lake/batch_index/dt=2026-11-22/run=r1",
        "batch_index/dt=2026-11-22/version=r1",
        "/lake/batch_index/dt=2026-11-22/version=r1/part-0.parquet",
    ],
)
def test_other_locations_are_rejected(location):
    with pytest.raises(ContractError):
        contract.parse_version_location(location)


def test_control_files_and_marker():
    location = "s3://b/indexes/batch_index/dt=2026-11-21/version=r1"
    assert contract.manifest_location(location) == f"{location}/_manifest.json"
    assert contract.quality_result_location(location + "/") == f"{location}/_quality.json"
    assert contract.ready_marker_location("s3://raw/raw/", "2026-11-21") == "s3://raw/raw/_ready/dt=2026-11-21.json"


def test_metrics_paths():
    assert contract.stream_metrics_location("s3://m/metrics", "stream_index") == "s3://m/metrics/stream/stream_index"
    assert contract.stream_batches_location("/m", "q", "2026-11-21") == "/m/stream/q/batches/dt=2026-11-21"
    assert (
        contract.stream_batch_record_location("/m", "q", "2026-11-21T03:04:05.123Z", 42)
        == "/m/stream/q/batches/dt=2026-11-21/hour=03/batch-000000000042.json"
    )
    assert contract.supervisor_location("/m/", "incident.json") == "/m/supervisor/incident.json"
    assert contract.daily_summary_location("/m", "2026-11-21", "v1") == "/m/daily/dt=2026-11-21/summary-v1.json"


# --- tables ---------------------------------------------------------------------------------------


def test_stages_and_their_tables():
    assert contract.STAGES == ("batch", "aggregate", "business")
    assert contract.STAGE_TABLES["batch"] == ("batch_index", "quarantine")
    assert contract.STAGE_TABLES["aggregate"] == ("aggregate_index", "audit_trail")
    assert contract.STAGE_TABLES["business"] == contract.BUSINESS_INDEXES
    assert len(set(contract.VERSIONED_TABLES)) == len(contract.VERSIONED_TABLES) == 12
    assert contract.STREAM_INDEX not in contract.VERSIONED_TABLES


def test_every_table_named_has_a_schema_and_every_schema_a_name():
    from spark_apps.schemas import TABLE_SCHEMAS

    assert set(TABLE_SCHEMAS) == set(contract.ALL_TABLES)


def test_every_business_index_has_a_builder():
    from spark_apps.jobs.business_indexes import BUILDERS

    assert tuple(BUILDERS) == contract.BUSINESS_INDEXES
