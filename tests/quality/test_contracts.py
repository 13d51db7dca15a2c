"""The contract files: one per table, their generated block equal to spark_apps/schemas.py."""

from __future__ import annotations

import pytest
import yaml
from pyspark.sql import types as T

from spark_apps import quality
from spark_apps.quality import GENERATED_BEGIN, GENERATED_END, GateError, contract_path, generated_block, verify_staged_version
from spark_apps.schemas import SUPPORTED_CURRENCIES, TABLE_SCHEMAS, TRANSACTION_STATUSES
from tests.quality.conftest import NOW, clean_row, write_version


def contract(table: str) -> dict:
    return yaml.safe_load(contract_path(table).read_text())


def test_every_table_has_a_current_contract():
    stale = quality.stale_contracts()
    assert stale == [], "run: python -m spark_apps.quality write-contracts"
    assert sorted(p.stem for p in quality.CONTRACTS_DIR.glob("*.yaml")) == sorted(TABLE_SCHEMAS)


def test_check_contracts_command_passes_on_the_repository():
    assert quality.main(["check-contracts"]) == 0


@pytest.mark.parametrize("table", sorted(TABLE_SCHEMAS))
def test_generated_columns_follow_the_schema(table):
    document = contract(table)
    fields = TABLE_SCHEMAS[table].fields
    assert document["dataset"] == f"quality_gate/global_temp/{table}"
    assert [column["name"] for column in document["columns"]] == [f.name for f in fields]
    for field, column in zip(fields, document["columns"], strict=True):
        assert {k: v for k, v in column.items() if k != "checks"} == {"name": field.name, **quality.contract_type(field.dataType)}
        check_types = [next(iter(check)) for check in column.get("checks", [])]
        assert ("missing" in check_types) == (not field.nullable), field.name
    assert set(document["variables"]) == set(quality.GATE_VARIABLES)
    # Every contract checks the schema and the row count against the run manifest.
    dataset_checks = [next(iter(check)) for check in document["checks"]]
    assert dataset_checks[:2] == ["schema", "metric"]


def test_enum_checks_take_their_values_from_schemas():
    columns = {column["name"]: column for column in contract("batch_index")["columns"]}
    checks = {next(iter(c)): next(iter(c.values())) for c in columns["currency"]["checks"]}
    assert checks["invalid"]["valid_values"] == sorted(SUPPORTED_CURRENCIES)
    status = {next(iter(c)): next(iter(c.values())) for c in columns["transaction_status"]["checks"]}
    assert status["invalid"]["valid_values"] == sorted(TRANSACTION_STATUSES)


def test_amount_minimum_is_the_smallest_unit_of_its_decimal():
    columns = {column["name"]: column for column in contract("batch_index")["columns"]}
    assert columns["amount"]["checks"][1] == {"invalid": {"name": "amount > 0", "valid_min": 0.01}}
    assert columns["fx_rate"]["checks"][0] == {"invalid": {"name": "fx_rate > 0", "valid_min": 1e-08}}


def test_write_contracts_rewrites_only_the_generated_block(tmp_path):
    hand_written = "# my notes\ndataset: quality_gate/global_temp/batch_index\n\nchecks:\n  - row_count:\n\n"
    outdated = f"{GENERATED_BEGIN}\ncolumns:\n  - name: gone\n{GENERATED_END}\n# trailing note\n"
    (tmp_path / "batch_index.yaml").write_text(hand_written + outdated)

    written = quality.write_contracts(tmp_path)

    text = (tmp_path / "batch_index.yaml").read_text()
    assert text == hand_written + generated_block("batch_index") + "# trailing note\n"
    assert sorted(p.name for p in written) == sorted(f"{t}.yaml" for t in TABLE_SCHEMAS)
    assert quality.stale_contracts(tmp_path) == []
    assert quality.write_contracts(tmp_path) == []  # idempotent


def test_stale_block_is_reported(tmp_path):
    quality.write_contracts(tmp_path)
    path = tmp_path / "quarantine.yaml"
    path.write_text(path.read_text().replace("  - name: reason_detail\n    data_type: varchar\n", ""))
    assert quality.stale_contracts(tmp_path) == [path]


def test_new_table_gets_a_working_skeleton(tmp_path, lake):
    # A table added to schemas.py gets a contract with the schema and manifest checks at once.
    quality.write_contracts(tmp_path)
    skeleton = (tmp_path / "batch_index.yaml").read_text()
    assert "row count equals the run manifest's rows" in skeleton
    location = write_version(lake, "batch_index", [clean_row("batch_index")])
    result = verify_staged_version("batch_index", location, contracts_dir=str(tmp_path), now=NOW)
    assert result.passed, result.log
    bad = write_version(lake, "batch_index", [clean_row("batch_index", currency="XYZ")], version="r2", manifest={"rows": 2})
    failed = verify_staged_version("batch_index", bad, contracts_dir=str(tmp_path), now=NOW)
    assert set(failed.failed_check_names) == {
        "currency is a known currency",
        "row count equals the run manifest's rows",
        "version is the staged version",
    }


def test_unsupported_spark_type_has_no_contract_type():
    with pytest.raises(GateError, match="map<string,string>"):
        quality.contract_type(T.MapType(T.StringType(), T.StringType()))


def test_referenced_tables_are_read_from_the_contract_sql():
    text = contract_path("reconciliation_index").read_text()
    assert quality.referenced_tables(text, "reconciliation_index") == ["aggregate_index"]
    assert quality.referenced_tables(contract_path("batch_index").read_text(), "batch_index") == []


def test_importing_the_gate_needs_neither_spark_nor_soda():
    # The Airflow side imports spark_apps.quality (GateResult) where neither is installed (MWAA).
    import os
    import subprocess
    import sys

    code = "import sys, spark_apps.quality; print(sorted(m for m in ('pyspark', 'soda_core', 'duckdb') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(quality.PROJECT_ROOT)}
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=quality.PROJECT_ROOT
    ).stdout
    assert output.strip() == "[]"


def test_contracts_dir_precedence(monkeypatch, tmp_path):
    (tmp_path / "include" / "contracts").mkdir(parents=True)
    (tmp_path / "include" / "contracts" / "batch_index.yaml").write_text("from the image\n")
    (tmp_path / "batch_index.yaml").write_text("from the variable\n")
    monkeypatch.delenv("PAYMENTS_PROJECT_ROOT", raising=False)
    monkeypatch.delenv(quality.CONTRACTS_DIR_ENV_VAR, raising=False)
    assert quality.read_contract("batch_index") == contract_path("batch_index").read_text()
    monkeypatch.setenv("PAYMENTS_PROJECT_ROOT", str(tmp_path))
    assert quality.read_contract("batch_index") == "from the image\n"
    monkeypatch.setenv(quality.CONTRACTS_DIR_ENV_VAR, str(tmp_path))
    assert quality.read_contract("batch_index") == "from the variable\n"
    assert quality.read_contract("batch_index", str(quality.CONTRACTS_DIR)) == contract_path("batch_index").read_text()


@pytest.mark.parametrize(
    "location, expected",
    [
        ("/lake/batch_index/dt=2026-11-22/version=20261122T050000Z-ab12cd34", ("2026-11-22", "20261122T050000Z-ab12cd34")),
        ("s3://bucket/indexes/stream_index/dt=2026-11-22/hour=7/version=r1/", ("2026-11-22", "r1")),
    ],
)
def test_versioned_locations_give_date_and_version(location, expected):
    assert quality.parse_versioned_location(location) == expected


@pytest.mark.parametrize(
    "location", ["/lake/batch_index/dt=2026-11-22", "/lake/batch_index/version=r1", "/lake/dt=22-11-2026/version=r1"]
)
def test_other_locations_are_rejected(location):
    with pytest.raises(GateError, match="not a staged version"):
        quality.parse_versioned_location(location)
