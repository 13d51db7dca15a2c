"""The same contracts on Spark (aws profile path, Soda's Spark DataFrame source) on Spark-written versions.

Versions are staged with the real writer (``spark_apps.lake.write_versioned``), then verified
by both engines: the gate's verdict and the failed check names must agree.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from spark_apps import lake as lake_module
from spark_apps.jobs import quality_gate
from spark_apps.quality import GateResult, verify_staged_version
from spark_apps.schemas import TABLE_SCHEMAS
from tests.quality.conftest import DATE, NOW, VERSION, clean_row

pytestmark = pytest.mark.spark


def stage(spark, base, table: str, rows: list[dict], version: str = VERSION) -> str:
    df = spark.createDataFrame(rows, TABLE_SCHEMAS[table])
    return lake_module.write_versioned(
        df, str(base), table, DATE, version, TABLE_SCHEMAS[table], manifest={"version": version, "rows": len(rows)}
    )


def both_engines(spark, table: str, location: str, **kwargs) -> tuple[GateResult, GateResult]:
    on_spark = verify_staged_version(table, location, engine="spark", spark=spark, now=NOW, **kwargs)
    on_duckdb = verify_staged_version(table, location, engine="duckdb", now=NOW, **kwargs)
    return on_spark, on_duckdb


def test_clean_spark_written_version_passes_on_both_engines(spark, lake):
    rows = [clean_row("batch_index", transaction_id=f"t-{i}") for i in range(3)]
    on_spark, on_duckdb = both_engines(spark, "batch_index", stage(spark, lake, "batch_index", rows))
    assert on_spark.passed, on_spark.log
    assert on_duckdb.passed, on_duckdb.log
    assert on_spark.engine == "spark" and on_duckdb.engine == "duckdb"
    assert on_spark.checks_total == on_duckdb.checks_total
    # The gate leaves no views behind in the shared session.
    assert [t.name for t in spark.catalog.listTables("global_temp")] == []


def test_violations_fail_with_the_same_names_on_both_engines(spark, lake):
    stale = NOW - dt.timedelta(hours=30)
    rows = [
        clean_row("batch_index", transaction_id="t-1", ingested_at=stale),
        clean_row("batch_index", transaction_id="t-1", ingested_at=stale, currency="XYZ"),
        clean_row("batch_index", transaction_id="t-2", ingested_at=stale, amount=Decimal("-1.00"), risk_score=140),
        clean_row(
            "batch_index", transaction_id="t-3", ingested_at=stale, card_last4="4242424242424242", fraud_score=Decimal("1.0001")
        ),
    ]
    on_spark, on_duckdb = both_engines(spark, "batch_index", stage(spark, lake, "batch_index", rows))
    expected = {
        "transaction_id is unique (one row per transaction per day)",
        "currency is a known currency",
        "amount > 0",
        "risk_score between 0 and 100",
        "card_last4 is exactly 4 digits",
        "fraud_score between 0 and 1",
        "ingested_at is within the last 24 hours",
    }
    assert set(on_spark.failed_check_names) == expected, on_spark.log
    assert set(on_duckdb.failed_check_names) == expected, on_duckdb.log
    assert on_spark.checks_total == on_duckdb.checks_total


def test_schema_drift_fails_on_spark(spark, lake):
    rows = [clean_row("batch_index")]
    df = spark.createDataFrame(rows, TABLE_SCHEMAS["batch_index"]).withColumnRenamed("card_token", "pan")
    location = lake_module.version_location(str(lake), "batch_index", DATE, VERSION)
    df.write.parquet(location)
    lake_module.write_manifest(location, {"rows": 1})
    on_spark, on_duckdb = both_engines(spark, "batch_index", location)
    assert on_spark.failed_check_names == ["columns and types match spark_apps/schemas.py"], on_spark.log
    assert on_duckdb.failed_check_names == on_spark.failed_check_names
    assert "pan" in on_spark.checks_failed[0]["diagnostic"] and "card_token" in on_spark.checks_failed[0]["diagnostic"]


def test_reconciliation_balance_reads_the_aggregate_reference_on_spark(spark, lake):
    aggregate = stage(
        spark, lake, "aggregate_index", [clean_row("aggregate_index", transaction_id="t-1", amount=Decimal("10.00"))]
    )
    matched = clean_row(
        "reconciliation_index", transaction_id="t-1", internal_amount=Decimal("10.00"), statement_amount=Decimal("10.00")
    )
    drifted = dict(matched, internal_amount=Decimal("9.99"), statement_amount=Decimal("9.99"))
    good = stage(spark, lake, "reconciliation_index", [matched])
    second_run = "20261122T060000Z-test0002"
    bad = stage(spark, lake, "reconciliation_index", [dict(drifted, version=second_run)], version=second_run)

    assert verify_staged_version(
        "reconciliation_index", good, engine="spark", spark=spark, references={"aggregate_index": aggregate}, now=NOW
    ).passed
    result = verify_staged_version(
        "reconciliation_index", bad, engine="spark", spark=spark, references={"aggregate_index": aggregate}, now=NOW
    )
    assert result.failed_check_names == ["reconciliation internal totals per currency equal the aggregate index totals"], (
        result.log
    )


def test_unreadable_location_fails_on_spark(spark, lake):
    location = lake_module.version_location(str(lake), "batch_index", DATE, VERSION)
    result = verify_staged_version("batch_index", location, engine="spark", spark=spark, now=NOW)
    assert not result.passed
    assert set(result.failed_check_names) == {"batch_index version is readable Parquet", "run manifest is complete"}


def test_job_entrypoint_writes_the_result_and_exits_by_verdict(spark, lake, tmp_path):
    # The job measures staleness from the real clock.
    just_now = dt.datetime.now(dt.UTC)
    good = stage(spark, lake, "quarantine", [clean_row("quarantine", quarantined_at=just_now)])
    second_run = "20261122T060000Z-q2"
    bad_row = clean_row("quarantine", quarantined_at=just_now, reason_code="whatever", version=second_run)
    bad = stage(spark, lake, "quarantine", [bad_row], version=second_run)
    for location, expected_exit in ((good, quality_gate.EXIT_PASSED), (bad, quality_gate.EXIT_FAILED)):
        result_uri = str(tmp_path / f"result-{expected_exit}.json")
        assert (
            quality_gate.main(["--table", "quarantine", "--location", location, "--result-uri", result_uri], spark=spark)
            == expected_exit
        )
        result = GateResult.from_json(Path(result_uri).read_text())
        assert result.passed is (expected_exit == quality_gate.EXIT_PASSED)
        assert result.location == location and result.engine == "spark"
    assert result.failed_check_names == ["reason_code is a known reason code"]


def test_job_entrypoint_reports_a_wrong_call(spark, tmp_path):
    result_uri = tmp_path / "result.json"
    args = ["--table", "batch_index", "--location", "/lake/batch_index/latest", "--result-uri", str(result_uri)]
    assert quality_gate.main(args, spark=spark) == quality_gate.EXIT_USAGE
    result = json.loads(result_uri.read_text())
    assert result["passed"] is False
    assert result["checks_failed"][0]["name"] == "quality gate could run"
    assert "not a staged version" in result["checks_failed"][0]["diagnostic"]
