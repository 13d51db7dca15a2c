"""Index configuration loading and the resolution of the previous aggregate version (no Spark)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from spark_apps import lake
from spark_apps.indexes.config import IndexConfigError, load_index_config, parse_index_config, replace
from spark_apps.indexes.inputs import InputError, read_json_lines, resolve_previous_aggregate


def test_checked_in_config_loads_with_exact_decimals():
    config = load_index_config()
    assert config.fraud.risk_score_threshold == 70
    assert config.compliance.reporting_currency_threshold == Decimal("10000.00")
    assert config.merchant_performance.chargeback_ratio_threshold == Decimal("0.01")
    assert "KP" in config.compliance.high_risk_countries
    assert config.reconciliation.late_settlement_days == 3


def test_omitted_settings_keep_defaults_and_replace_changes_one():
    config = parse_index_config({"fraud": {"risk_score_threshold": 50}})
    assert config.fraud.risk_score_threshold == 50
    assert config.aggregate.retention_days == 120
    assert replace(config, aggregate={"retention_days": 30}).aggregate.retention_days == 30


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"fraud": {"ml_score_threshold": 0.8}}, "expected a decimal string"),
        ({"fraud": {"risk_score_threshold": "70"}}, "expected an integer"),
        ({"fraud": {"risk_score": 70}}, r"unknown settings \['risk_score'\]"),
        ({"frauds": {}}, r"unknown sections \['frauds'\]"),
        ({"compliance": {"high_risk_countries": "KP"}}, "expected a list of strings"),
        ({"compliance": {"structuring_margin": "ten"}}, "not a decimal"),
        (["fraud"], "expected a mapping"),
    ],
)
def test_bad_settings_are_clear_errors(document, message):
    with pytest.raises(IndexConfigError, match=message):
        parse_index_config(document)


def _version(tmp_path, date, version, previous=None):
    location = lake.version_location(str(tmp_path), "aggregate_index", date, version)
    lake.write_manifest(location, {"date": date, "version": version, "previous_aggregate_location": previous})
    return location


def test_previous_aggregate_is_the_latest_version_of_an_earlier_date(tmp_path):
    day1 = _version(tmp_path, "2026-11-19", "a")
    day2 = _version(tmp_path, "2026-11-20", "b", previous=day1)
    day2_rerun = _version(tmp_path, "2026-11-20", "c", previous=day1)
    assert resolve_previous_aggregate(None, "2026-11-20") is None
    assert resolve_previous_aggregate(day1, "2026-11-20") == day1
    # the DAG passes the version already published for the run date: follow it back
    assert resolve_previous_aggregate(day2, "2026-11-20") == day1
    assert resolve_previous_aggregate(day2_rerun, "2026-11-20") == day1
    first_day = _version(tmp_path, "2026-11-18", "z")
    assert resolve_previous_aggregate(first_day, "2026-11-18") is None


def test_previous_aggregate_without_manifest_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no _manifest.json"):
        resolve_previous_aggregate(str(tmp_path / "aggregate_index" / "dt=2026-11-19" / "version=x"), "2026-11-20")


def test_json_lines_skip_and_count_unreadable_lines(tmp_path):
    folder = tmp_path / "stream" / "dt=2026-11-20"
    folder.mkdir(parents=True)
    (folder / "metrics-1.jsonl").write_text('{"numInputRows": 5}\nnot json\n\n[1, 2]\n{"numInputRows": 7}\n')
    (folder / "ignored.txt").write_text("{}\n")
    assert read_json_lines(str(tmp_path / "stream")) == ([{"numInputRows": 5}, {"numInputRows": 7}], 2)
    assert read_json_lines(str(tmp_path / "absent")) == ([], 0)


def test_job_arguments_match_the_dag_wiring():
    from spark_apps.jobs import aggregate_index, business_indexes

    common = ["--date", "2026-11-20", "--version", "v1", "--index-uri", "/lake/i", "--raw-uri", "/lake/r"]
    args = aggregate_index.parse_args([*common, "--batch-index-location", "/b", "--previous-aggregate-location", ""])
    assert (args.batch_index_location, args.previous_aggregate_location, args.stream_index_location) == ("/b", "", None)
    assert aggregate_index.default_stream_locations("/lake/i", "2026-11-20") == [
        "/lake/i/stream_index/dt=2026-11-19",
        "/lake/i/stream_index/dt=2026-11-20",
    ]
    business = [*common, "--metrics-uri", "/lake/m"]
    assert business_indexes.parse_args([*business, "--index", "ops_index", "--aggregate-location", ""]).index == "ops_index"
    assert (
        business_indexes.parse_args([*business, "--index", "fraud_index", "--aggregate-location", "/a"]).aggregate_location
        == "/a"
    )
    with pytest.raises(SystemExit):
        business_indexes.parse_args([*business, "--index", "fraud_index", "--aggregate-location", ""])
    with pytest.raises(SystemExit):
        business_indexes.parse_args([*business, "--index", "no_such_index", "--aggregate-location", "/a"])


def test_stream_metrics_of_the_day_from_the_stream_apps_records(tmp_path):
    from spark_apps.indexes.inputs import stream_metric_records
    from spark_apps.indexes.ops import stage_run_from_stream_metric
    from spark_apps.streaming.metrics import progress_record

    progress = {"name": "stream_index", "timestamp": "2026-11-20T10:00:00.000Z", "batchId": 7, "numInputRows": 120,
                "durationMs": {"triggerExecution": 1500}, "stateOperators": [{"customMetrics": {"numDroppedDuplicateRows": 4}}]}  # fmt: skip
    record = progress_record(progress, stats={"duplicates": 4})  # the writer counts the batch's duplicates
    query = tmp_path / "stream" / "stream_index"
    (query / "batches" / "dt=2026-11-20" / "hour=10").mkdir(parents=True)
    (query / "batches" / "dt=2026-11-20" / "hour=10" / "batch-000000000007.json").write_text(json.dumps(record) + "\n")
    (query / "batches" / "dt=2026-11-19" / "hour=23").mkdir(parents=True)
    (query / "batches" / "dt=2026-11-19" / "hour=23" / "batch-000000000006.json").write_text(json.dumps(record) + "\n")
    (query / "latest.json").write_text(json.dumps(record) + "\n")  # the supervisor's copy: not read again
    records, unreadable = stream_metric_records(str(tmp_path), "2026-11-20")
    assert (len(records), unreadable) == (1, 0)
    assert stage_run_from_stream_metric(records[0]) == {
        "stage": "stream_index", "for_date": dt.date(2026, 11, 20), "finished_at": dt.datetime(2026, 11, 20, 10, 0, 1, 500000, tzinfo=dt.UTC),
        "records_in": 120, "records_out": 116, "error_count": 0, "quarantine_count": 0, "duration_ms": 1500, "latency_ms": 1500,
    }  # fmt: skip
    # The stream's own counts win over the derivation: 120 read = 110 indexed + 6 dead letters + 4 duplicates.
    measured = stage_run_from_stream_metric({**records[0], "index_rows": 110, "dead_letters": 6})
    assert (measured["records_out"], measured["quarantine_count"]) == (110, 6)


def test_latest_verified_version_of_an_earlier_date(tmp_path):
    from spark_apps.indexes.inputs import latest_verified_version

    def version(date, version, finished, passed):
        location = lake.version_location(str(tmp_path), "aggregate_index", date, version)
        lake.write_manifest(location, {"date": date, "version": version, "finished_at": finished})
        if passed is not None:
            lake.write_text(f"{location}/_quality.json", json.dumps({"passed": passed}))
        return location

    older = version("2026-11-17", "z", "2026-11-18T02:00:00+00:00", True)
    assert latest_verified_version(str(tmp_path), "aggregate_index", "2026-11-20", 120) == older
    version("2026-11-19", "a-failed", "2026-11-20T03:00:00+00:00", False)
    version("2026-11-19", "b-unverified", "2026-11-20T04:00:00+00:00", None)
    good = version("2026-11-19", "c-good", "2026-11-20T02:00:00+00:00", True)
    assert latest_verified_version(str(tmp_path), "aggregate_index", "2026-11-20", 120) == good
    version("2026-11-20", "same-day", "2026-11-21T02:00:00+00:00", True)  # never the run date itself
    assert latest_verified_version(str(tmp_path), "aggregate_index", "2026-11-20", 120) == good
    assert latest_verified_version(str(tmp_path), "aggregate_index", "2026-11-20", 2) == good
    assert latest_verified_version(str(tmp_path), "aggregate_index", "2026-11-17", 120) is None
