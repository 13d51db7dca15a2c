"""The contracts accept what the real batch job stages from a generated day (no false alarms).

A gate that blocks good data is as harmful as one that lets bad data through: this runs
the batch index job on a generated day (every anomaly class present) and verifies both
versions it stages, the batch index and the quarantine, on DuckDB.
"""

from __future__ import annotations

import pytest

from spark_apps.quality import verify_staged_version

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_batch_job_output_passes_its_contracts(spark, tmp_path):
    from spark_apps.fraud_rules import load_rules
    from spark_apps.generator.drops import write_drops
    from spark_apps.generator.workload import WorkloadConfig, generate_day
    from spark_apps.jobs.batch_index import run_batch_index

    raw_uri = str(tmp_path / "raw")
    write_drops(generate_day(WorkloadConfig(date="2026-11-21", transactions=1000)), raw_uri)
    manifest = run_batch_index(
        spark,
        "2026-11-21",
        "gate-run-1",
        raw_uri,
        str(tmp_path / "indexes"),
        str(tmp_path / "quarantine"),
        b"test-only-key",
        load_rules(),
    )
    assert manifest["counts"]["indexed"] > 0 and manifest["counts"]["quarantined"] > 0

    for table, location in (("batch_index", manifest["index_location"]), ("quarantine", manifest["quarantine_location"])):
        result = verify_staged_version(table, location, engine="duckdb")
        assert result.passed, result.log
        assert result.checks_total > 10
