"""The batch index job end to end on a generated day: ground truth, conservation, idempotence, no PII."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from devtools.generator import WorkloadConfig, generate_day, write_drops, write_ground_truth
from spark_apps import lake
from spark_apps.fraud_rules import load_rules
from spark_apps.jobs.batch_index import ConservationError, parse_args, run_batch_index
from spark_apps.schemas import BATCH_INDEX_SCHEMA, QUARANTINE_SCHEMA, Reason
from tests.batch.pii_scan import scan_tree

pytestmark = [pytest.mark.spark, pytest.mark.slow]
DATE = "2026-11-21"
KEY = b"test-only-pan-token-key-0123456789"


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
    assert day["first"]["conserved"] is True
    # The unparseable line of the fraud-scores drop (it holds a grouped card number); the job does not
    # read settlements (the aggregate and business index jobs do).
    assert expected["side_source_unparseable_lines"] == {"fraud_scores": 1, "settlements": 1}
    assert counts["side_sources_quarantined"] == {"fraud_scores": 1}


def test_written_versions_have_the_exact_schemas_and_manifests(spark, day):
    manifest = lake.read_manifest(day["first"]["index_location"])
    assert manifest["counts"] == day["first"]["counts"] and manifest["rows"] == day["first"]["counts"]["indexed"]
    assert day["first"]["index_location"] == lake.version_location(day["index_uri"], "batch_index", DATE, "run-1")
    assert lake.list_versions(day["index_uri"], "batch_index", DATE) == ["run-1", "run-2"]
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
        rows = quarantine.filter((F.col("reason_code") == reason) & F.col("source_name").startswith("gateway_")).collect()
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
    assert all(r.amount_reporting is not None and r.card_token.startswith("tok_") and r.version == "run-1" for r in rows.values())


def test_rerun_gives_the_same_rows(spark, day):
    first = index_df(spark, day["first"]).drop("version", "ingested_at")
    second = index_df(spark, day["second"]).drop("version", "ingested_at")
    assertDataFrameEqual(first, second)
    assert day["second"]["counts"] == day["first"]["counts"]
    quarantine_first = spark.read.parquet(day["first"]["quarantine_location"]).drop("version", "quarantined_at")
    assertDataFrameEqual(
        quarantine_first, spark.read.parquet(day["second"]["quarantine_location"]).drop("version", "quarantined_at")
    )


def test_no_written_file_holds_card_data_in_clear(day, tmp_path):
    findings, scanned = scan_tree(Path(day["index_uri"]))
    q_findings, q_scanned = scan_tree(Path(day["quarantine_uri"]))
    assert scanned > 2 and q_scanned > 2
    assert findings + q_findings == []
    # The generated drops hold card numbers in every shape (grouped in pan fields, typed into
    # device_id, in unparseable lines and side-source lines): the same scanner finds them there.
    in_raw, _ = scan_tree(Path(day["raw_uri"]), exclude=("_ground_truth/",))
    variants = day["truth"]["card_data_variants"]
    assert variants["users_with_a_card_number_in_device_id"] > 0 and variants["unparseable_lines_with_grouped_card_numbers"] > 0
    for source in ("gateway_a", "gateway_b", "gateway_c", "fraud_scores", "settlements"):
        assert any(f"/{source}/" in f and "Luhn-valid" in f for f in in_raw), source
    # The scanner itself catches a planted card number (plain or grouped) and CVV.
    (tmp_path / "planted.json").write_text('{"pan": "4111111111111111", "cvv": "123"}')
    (tmp_path / "planted.csv").write_text('t1,"4111 1111-1111 1111",cvv=123\n')
    planted, _ = scan_tree(tmp_path)
    assert len(planted) == 4


def test_command_line_arguments():
    args = parse_args(
        [
            "--date",
            DATE,
            "--version",
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
    assert (args.date, args.version, args.token_key_ref, args.master) == (DATE, "r1", "env:K", None)
    with pytest.raises(SystemExit):
        parse_args(["--date", DATE])


# --- measured conservation on a small hand-made drop ---------------------------------------------

STARTED = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)


def event(tid: str, merchant: str, when: str = "2026-11-21T10:00:00Z", **overrides) -> dict:
    return {
        "transaction_id": tid,
        "user_id": f"u-{tid}",
        "merchant_id": merchant,
        "timestamp": when,
        "amount": "10.00",
        "currency": "USD",
        "transaction_status": "AUTHORIZED",
        "channel": "ECOM",
        "country": "US",
        "device_id": "d-1",
        "ip": "10.1.2.3",
        "updated_at": when,
        "pan": "4111111111111111",
        "cvv": "123",
        "expiry": "12/29",
        **overrides,
    }


@pytest.fixture
def small_drop(tmp_path):
    """6 records: t1, t2 and a resend of t2, t3 (three merchants m-1, m-2, m-1), an unparseable line and
    an event a day after the run started (in the future); merchants m-1 and m-2."""
    import json

    raw = tmp_path / "raw"
    drop = raw / "gateway_a" / f"dt={DATE}"
    drop.mkdir(parents=True)
    lines = [
        json.dumps(event("t1", "m-1")),
        json.dumps(event("t2", "m-2")),
        json.dumps(event("t2", "m-2")),
        json.dumps(event("t3", "m-1")),
        '{"transaction_id": "cut", "pan": "4111111111111111"',
        json.dumps(event("t-future", "m-1", "2026-11-23T01:00:00Z")),
    ]
    (drop / "part.jsonl").write_text("\n".join(lines) + "\n")
    merchants = raw / "merchants" / f"dt={DATE}"
    merchants.mkdir(parents=True)
    (merchants / "part.csv").write_text(
        "merchant_id,merchant_name,risk_level,mcc,country,payout_schedule,payout_delay_days\n"
        "m-1,One,LOW,5411,US,DAILY,1\nm-2,Two,HIGH,5411,US,DAILY,1\n"
    )
    return {"raw_uri": str(raw), "index_uri": str(tmp_path / "indexes"), "quarantine_uri": str(tmp_path / "quarantine")}


def test_conservation_is_measured_on_what_was_written(spark, small_drop):
    manifest = run_batch_index(spark, DATE, "ok", key=KEY, rules=load_rules(), started_at=STARTED, **small_drop)
    counts = manifest["counts"]
    assert {k: counts[k] for k in ("read", "valid", "distinct_transaction_ids", "indexed", "quarantined", "duplicates")} == {
        "read": 6,
        "valid": 4,
        "distinct_transaction_ids": 3,
        "indexed": 3,
        "quarantined": 2,
        "duplicates": 1,
    }
    assert counts["quarantined_by_reason"] == {Reason.UNPARSEABLE: 1, Reason.FUTURE_EVENT_TIME: 1}
    assert manifest["conserved"] is True
    assertDataFrameEqual(
        spark.read.parquet(manifest["index_location"]).select("transaction_id", "merchant_risk_level"),
        [("t1", "LOW"), ("t2", "HIGH"), ("t3", "LOW")],
    )
    quarantine = spark.read.parquet(manifest["quarantine_location"])
    assertDataFrameEqual(
        quarantine.select("transaction_id", "reason_code", "reason_detail").filter(F.col("reason_code") != Reason.UNPARSEABLE),
        [
            (
                "t-future",
                Reason.FUTURE_EVENT_TIME,
                "event_time 2026-11-23T01:00:00Z is more than 300s after the run's time 2026-11-22T01:00:00Z",
            )
        ],
    )


def test_an_enrichment_join_that_loses_a_row_fails_the_job(spark, small_drop, monkeypatch):
    """A faulty merchant join (inner instead of left, with m-2 missing from the lookup) drops t2: the
    job fails with a ConservationError naming the counts, and writes no manifest."""
    from spark_apps.enrichment import merchant_risk_lookup
    from spark_apps.jobs import batch_index

    def inner_join_without_m2(df, merchants_df):
        lookup = merchant_risk_lookup(merchants_df).filter(F.col("merchant_id") != "m-2")
        return df.join(lookup, "merchant_id", "inner")

    monkeypatch.setattr(batch_index, "with_merchant_risk", inner_join_without_m2)
    with pytest.raises(ConservationError) as failure:
        run_batch_index(spark, DATE, "lossy-join", key=KEY, rules=load_rules(), started_at=STARTED, **small_drop)
    assert str(failure.value) == (
        f"batch index {DATE} version lossy-join: read 6 != indexed 2 + quarantined 2 + duplicates 1 "
        "(valid 4 - distinct transaction ids 3): the index holds 2 rows for 3 distinct valid transaction ids"
    )
    location = lake.version_location(small_drop["index_uri"], "batch_index", DATE, "lossy-join")
    assert not (Path(location) / "_manifest.json").exists()


def test_a_write_that_loses_a_quarantine_row_fails_the_job(spark, small_drop, monkeypatch):
    original = lake.write_versioned

    def losing_write(df, uri, table, *args, **kwargs):
        if table == "quarantine":
            df = df.filter(F.col("reason_code") != Reason.UNPARSEABLE)
        return original(df, uri, table, *args, **kwargs)

    monkeypatch.setattr(lake, "write_versioned", losing_write)
    with pytest.raises(
        ConservationError,
        match=r"read 6 != indexed 3 \+ quarantined 1 \+ duplicates 1 .*"
        r"the quarantine holds 1 transaction rows for 2 rejected records",
    ):
        run_batch_index(spark, DATE, "lossy-write", key=KEY, rules=load_rules(), started_at=STARTED, **small_drop)


def test_the_airflow_side_passes_the_event_time_bounds():
    """The daily DAG's batch job gets the profile's bounds as arguments, and the job reads them."""
    from payments_platform.pipeline import batch_index_job
    from payments_platform.profiles import load_profile

    arguments = batch_index_job(load_profile("local")).arguments
    given = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert (given["--max-clock-skew-seconds"], given["--drop-date-tolerance-hours"]) == ("300", "48")
    required = ["--date", DATE, "--version", "r", "--raw-uri", "r", "--index-uri", "i", "--quarantine-uri", "q"]
    args = parse_args([*required, "--max-clock-skew-seconds", "60", "--drop-date-tolerance-hours", "12"])
    assert (args.max_clock_skew_seconds, args.drop_date_tolerance_hours) == (60, 12)
    assert (parse_args(required).max_clock_skew_seconds, parse_args(required).drop_date_tolerance_hours) == (300, 48)
