"""The batch index job end to end on a generated day: ground truth, conservation, idempotence, no PII."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_apps import lake
from spark_apps.fraud_rules import load_rules
from spark_apps.generator import WorkloadConfig, generate_day, write_drops, write_ground_truth
from spark_apps.jobs.batch_index import parse_args, run_batch_index
from spark_apps.schemas import BATCH_INDEX_SCHEMA, QUARANTINE_SCHEMA, Reason
from tests.batch.pii_scan import scan_tree

pytestmark = [pytest.mark.spark, pytest.mark.slow]
DATE = "2026-11-21"
KEY = b"test-only-pan-token-key"


@pytest.fixture(scope="module")
def day(spark, tmp_path_factory):
    """One generated day (1,000 transactions; gateway_c as CSV too would also work) indexed twice."""
    root = tmp_path_factory.mktemp("lake")
    workload = generate_day(WorkloadConfig(date=DATE, transactions=1000, seed=11))
    raw = str(root / "raw")
    write_ground_truth(workload, raw, write_drops(workload, raw))
    uris = {"raw_uri": raw, "index_uri": str(root / "indexes"), "quarantine_uri": str(root / "quarantine")}
    rules = load_rules()
    first = run_batch_index(
        spark, DATE, "run-1", key=KEY, rules=rules, started_at=dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC), **uris
    )
    second = run_batch_index(
        spark, DATE, "run-2", key=KEY, rules=rules, started_at=dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC), **uris
    )
    return {"root": root, "truth": workload.truth, "first": first, "second": second, **uris}


def index_df(spark, manifest):
    return spark.read.parquet(manifest["index_location"])


def test_counts_match_the_ground_truth_and_conserve(day):
    expected, counts = day["truth"]["expected_counts"], day["first"]["counts"]
    for name in ("read", "indexed", "quarantined", "duplicates", "quarantined_by_reason", "read_by_source"):
        assert counts[name] == expected[name], name
    assert counts["read"] == counts["indexed"] + counts["quarantined"] + counts["duplicates"]
    assert day["first"]["conserved"] is True and counts["side_sources_quarantined"] == {}


def test_written_versions_have_the_exact_schemas_and_manifests(spark, day):
    manifest = lake.read_manifest(day["first"]["index_location"])
    assert manifest["counts"] == day["first"]["counts"] and manifest["rows"] == day["first"]["counts"]["indexed"]
    assert day["first"]["index_location"] == lake.versioned_location(day["index_uri"], "batch_index", DATE, "run-1")
    assert lake.list_runs(day["index_uri"], "batch_index", DATE) == ["run-1", "run-2"]
    written = index_df(spark, day["first"])
    assert [(f.name, lake.without_nullability(f.dataType)) for f in written.schema.fields] == [
        (f.name, lake.without_nullability(f.dataType)) for f in BATCH_INDEX_SCHEMA.fields
    ]
    quarantine = spark.read.parquet(day["first"]["quarantine_location"])
    assert [(f.name, f.dataType) for f in quarantine.schema.fields] == [(f.name, f.dataType) for f in QUARANTINE_SCHEMA.fields]
    assert lake.read_manifest(day["first"]["quarantine_location"])["rows"] == quarantine.count()


def test_quarantine_holds_exactly_the_malformed_records(spark, day):
    quarantine = spark.read.parquet(day["first"]["quarantine_location"])
    by_reason = day["truth"]["malformed"]["by_reason"]
    for reason, ids in by_reason.items():
        rows = quarantine.filter(F.col("reason_code") == reason).collect()
        assert len(rows) == len(ids), reason
        if reason != Reason.UNPARSEABLE:  # unparseable lines have no trustworthy id
            assert sorted(r.transaction_id for r in rows) == sorted(ids)


def test_index_rows_follow_dedup_and_fraud_truth(spark, day):
    truth = day["truth"]
    rows = {r.transaction_id: r for r in index_df(spark, day["first"]).collect()}
    malformed = {t for ids in truth["malformed"]["by_reason"].values() for t in ids}
    assert not malformed & set(rows)
    assert all(rows[t].transaction_status == "AUTHORIZED" for t in truth["duplicates"]["retry_ids"])
    assert all(
        rows[t].event_time.date() == dt.date(2026, 11, 20) and rows[t].policy_id == "pol-baseline-v1"
        for t in truth["duplicates"]["late_ids"]
    )
    flagged: dict[str, set[str]] = {}
    policy_flagged: dict[str, set[str]] = {}
    for tid, row in rows.items():
        for flag in row.rule_flags:
            flagged.setdefault(flag, set()).add(tid)
        for flag in row.policy_flags:
            policy_flagged.setdefault(flag, set()).add(tid)
    expected: dict[str, set[str]] = {}
    expected_policy: dict[str, set[str]] = {}
    for pattern in truth["fraud_patterns"].values():
        if isinstance(pattern, dict):
            for flag, ids in pattern.get("expected_rule_flag_ids", {}).items():
                expected.setdefault(flag, set()).update(ids)
            for flag, ids in pattern.get("expected_policy_flag_ids", {}).items():
                expected_policy.setdefault(flag, set()).update(ids)
    assert flagged == expected
    assert policy_flagged == expected_policy
    for action, ids in truth["fraud_patterns"]["card_testing"]["expected_action_ids"].items():
        assert {t for t, r in rows.items() if r.recommended_action == action} == set(ids), action
    assert sum(1 for r in rows.values() if r.fraud_score is None) == truth["fraud_scores"]["unscored_ids_count"]
    assert all(r.amount_reporting is not None and r.card_token.startswith("tok_") and r.run_id == "run-1" for r in rows.values())


def test_rerun_gives_the_same_rows(spark, day):
    first = index_df(spark, day["first"]).drop("run_id", "ingested_at")
    second = index_df(spark, day["second"]).drop("run_id", "ingested_at")
    assertDataFrameEqual(first, second)
    assert day["second"]["counts"] == day["first"]["counts"]
    quarantine_first = spark.read.parquet(day["first"]["quarantine_location"]).drop("run_id", "quarantined_at")
    assertDataFrameEqual(
        quarantine_first, spark.read.parquet(day["second"]["quarantine_location"]).drop("run_id", "quarantined_at")
    )


def test_no_written_file_holds_card_data_in_clear(day, tmp_path):
    findings, scanned = scan_tree(Path(day["index_uri"]))
    q_findings, q_scanned = scan_tree(Path(day["quarantine_uri"]))
    assert scanned > 2 and q_scanned > 2
    assert findings + q_findings == []
    # The scanner itself catches a planted card number and CVV (so an empty result means something).
    (tmp_path / "planted.json").write_text('{"pan": "4111111111111111", "cvv": "123"}')
    planted, _ = scan_tree(tmp_path)
    assert len(planted) == 2


def test_command_line_arguments():
    args = parse_args(
        [
            "--date",
            DATE,
            "--run-id",
            "r1",
            "--raw-uri",
            "r",
            "--index-uri",
            "i",
            "--quarantine-uri",
            "q",
            "--token-key-ref",
            "env:K",
        ]
    )
    assert (args.date, args.run_id, args.token_key_ref, args.master) == (DATE, "r1", "env:K", None)
    with pytest.raises(SystemExit):
        parse_args(["--date", DATE])
