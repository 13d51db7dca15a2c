"""The workload generator: determinism, bookkeeping, anomaly coverage, drops and ground truth."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devtools.generator import WorkloadConfig, generate_day, read_ground_truth, write_drops, write_ground_truth
from devtools.generator.__main__ import main as generator_main
from devtools.generator.workload import MALFORMED_CLASSES, RECON_STATUSES
from spark_apps.schemas import RAW_TRANSACTION_FIELDS, Reason
from spark_apps.sources import RAW_SOURCES

DATE = "2026-11-21"


@pytest.fixture(scope="module")
def workload():
    return generate_day(WorkloadConfig(date=DATE, transactions=2000, seed=7))


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def test_same_seed_same_day_is_identical_and_seed_changes_it(workload):
    again = generate_day(WorkloadConfig(date=DATE, transactions=2000, seed=7))
    assert again.transactions.equals(workload.transactions)
    assert again.settlements.equals(workload.settlements) and again.fraud_scores.equals(workload.fraud_scores)
    assert again.truth == workload.truth
    other = generate_day(WorkloadConfig(date=DATE, transactions=2000, seed=8))
    assert not other.transactions.equals(workload.transactions)


def test_records_add_up_to_indexed_plus_quarantined_plus_duplicates(workload):
    counts = workload.truth["expected_counts"]
    ids = workload.records.column("transaction_id")
    assert counts["read"] == workload.records.num_rows == sum(counts["read_by_source"].values())
    assert counts["read"] == counts["indexed"] + counts["quarantined"] + counts["duplicates"]
    assert counts["indexed"] == 2000
    # Every malformed class is present, with the count the truth claims.
    assert set(counts["quarantined_by_reason"]) == set(MALFORMED_CLASSES)
    for reason, listed in workload.truth["malformed"]["by_reason"].items():
        assert len(listed) == counts["quarantined_by_reason"][reason] >= 1
    # Distinct ids: valid unique + malformed (fresh ids); duplicates add copies only.
    assert pc.count_distinct(ids).as_py() == counts["indexed"] + counts["quarantined"]
    extra = workload.truth["duplicates"]["extra_copies_by_id"]
    assert sum(extra.values()) == counts["duplicates"]


def test_produce_order_is_by_produce_time_and_retries_can_arrive_out_of_order(workload):
    produced = workload.transactions.column("produce_ms").to_numpy()
    assert np.all(np.diff(produced) >= 0)
    table = workload.transactions
    position = {}
    for i, (tid, status) in enumerate(
        zip(table.column("transaction_id").to_pylist(), table.column("transaction_status").to_pylist(), strict=True)
    ):
        position.setdefault(tid, {})[status] = i
    out_of_order = workload.truth["duplicates"]["out_of_order_ids"]
    assert out_of_order and all(position[t]["AUTHORIZED"] < position[t]["PENDING"] for t in out_of_order)
    in_order = set(workload.truth["duplicates"]["retry_ids"]) - set(out_of_order)
    assert in_order and all(position[t]["PENDING"] < position[t]["AUTHORIZED"] for t in in_order)


def test_late_events_carry_the_previous_day(workload):
    table = workload.records
    late = set(workload.truth["duplicates"]["late_ids"])
    stamps = {
        t: ts
        for t, ts in zip(table.column("transaction_id").to_pylist(), table.column("timestamp").to_pylist(), strict=True)
        if t in late
    }
    assert late and all(ts.startswith("2026-11-20") for ts in stamps.values())


def test_cards_are_luhn_valid_and_unparseable_records_only_in_text_gateways(workload):
    pans = [p for p in workload.records.column("pan").to_pylist() if p]
    digits = [p.replace(" ", "").replace("-", "") for p in pans]
    assert pans and all(luhn_valid(d) and len(d) == 16 and d.isdigit() for d in digits)
    # Some cards arrive grouped by spaces, by dashes or both (masking and tokens must normalize them).
    assert {" " in p and "-" not in p for p in pans} == {True, False} and any(" " in p and "-" in p for p in pans)
    assert any("-" in p and " " not in p for p in pans)
    broken = workload.records.filter(pc.is_valid(workload.records.column("raw_text")))
    assert set(broken.column("source_name").to_pylist()) <= {"gateway_a", "gateway_b"}
    for text in broken.column("raw_text").to_pylist():
        with pytest.raises((json.JSONDecodeError, TypeError, AssertionError)):
            value = json.loads(text)
            assert isinstance(value, dict) and isinstance(
                value.get("amount"), str
            )  # wrong-type JSON parses but amount is an object


def test_fraud_pattern_truth_names_generated_transactions(workload):
    ids = set(workload.records.column("transaction_id").to_pylist())
    patterns = workload.truth["fraud_patterns"]
    for name in ("card_testing", "geo_jump", "high_amount", "device_churn", "geo_block"):
        assert patterns[name]["transaction_ids"] and set(patterns[name]["transaction_ids"]) <= ids
    ct = patterns["card_testing"]
    assert len(ct["transaction_ids"]) == 8
    assert (
        set(ct["expected_rule_flag_ids"]["CARD_TESTING"])
        < set(ct["expected_rule_flag_ids"]["VELOCITY"])
        < set(ct["transaction_ids"])
    )


def test_reconciliation_truth_matches_the_statement_lines(workload):
    lines = workload.settlements.to_pylist()
    by_ref: dict[str, list[dict]] = {}
    for line in lines:
        by_ref.setdefault(line["transaction_ref"], []).append(line)
    records = {r["transaction_id"]: r for r in workload.records.to_pylist() if r["raw_text"] is None}
    truth_rows = workload.reconciliation_truth.to_pylist()
    statuses = {r["expected_status"] for r in truth_rows}
    assert statuses == set(RECON_STATUSES)
    for row in truth_rows:
        tid, status = row["transaction_id"], row["expected_status"]
        settled = by_ref.get(tid, [])
        if status == "MISSING_IN_STATEMENT":
            assert not settled and row["line_id"] is None
            continue
        assert row["line_id"] in {line["line_id"] for line in settled}
        if status == "MISSING_INTERNAL":
            assert tid not in records
            continue
        assert len(settled) == (2 if status == "DUPLICATE_SETTLEMENT" else 1)
        line, txn = settled[0], records[tid]
        assert (line["amount"] != txn["amount"]) == (status == "AMOUNT_MISMATCH")
        assert (line["currency"] != txn["currency"]) == (status == "CURRENCY_MISMATCH")
    recon = workload.truth["reconciliation"]
    assert recon["status_counts"]["MISSING_INTERNAL"] == len(recon["missing_internal"]["line_ids"]) >= 1
    assert recon["refund_ids"] and recon["chargeback_ids"]


def test_kafka_messages_are_every_record_in_produce_order(workload):
    messages = list(workload.kafka_messages(batch_size=500))
    assert len(messages) == workload.truth["expected_counts"]["read"]
    assert [ts for _, _, ts in messages] == sorted(ts for _, _, ts in messages)
    key, value, _ = messages[0]
    event = json.loads(value)
    assert set(event) == set(RAW_TRANSACTION_FIELDS) and event["transaction_id"] == key.decode()
    broken_values = set(workload.records.filter(pc.is_valid(workload.records.column("raw_text"))).column("raw_text").to_pylist())
    assert broken_values <= {v.decode() for _, v, _ in messages}


def test_too_small_a_day_is_refused():
    with pytest.raises(ValueError, match="at least 1000"):
        WorkloadConfig(date=DATE, transactions=999)


def test_drops_and_ground_truth_on_disk(workload, tmp_path):
    raw = str(tmp_path / "raw")
    broken = workload.records.filter(pc.is_valid(workload.records.column("raw_text")))
    gateway = sorted(set(broken.column("source_name").to_pylist()))[0]  # a text gateway that has broken lines
    written = write_drops(workload, raw, {gateway: "parquet", "fx_rates": "jsonl"})
    path = write_ground_truth(workload, raw, written)
    assert set(written) == {s.name for s in RAW_SOURCES}
    assert written[gateway]["format"] == "parquet"
    # Broken lines of a gateway switched to Parquet land in a JSON-lines side file.
    assert written[gateway]["files"] == ["part-00000.parquet", "part-00001.jsonl"]
    folder = tmp_path / "raw" / gateway / f"dt={DATE}"
    clean = pq.read_table(folder / "part-00000.parquet")
    side_lines = (folder / "part-00001.jsonl").read_text().splitlines()
    assert len(side_lines) == pc.sum(pc.equal(broken.column("source_name"), gateway)).as_py()
    assert (
        clean.num_rows + len(side_lines)
        == written[gateway]["records"]
        == workload.truth["expected_counts"]["read_by_source"][gateway]
    )
    csv_lines = (tmp_path / "raw" / "settlements" / f"dt={DATE}" / "part-00000.csv").read_text().splitlines()
    assert csv_lines[0] == ",".join(workload.settlements.column_names)
    assert written["settlements"]["records"] == workload.settlements.num_rows
    # ... plus the unparseable line holding a grouped card number (rejected by the jobs that read settlements).
    side_quarantined = workload.truth["expected_counts"]["side_source_unparseable_lines"]
    assert written["settlements"]["unparseable_lines"] == side_quarantined["settlements"] == 1
    assert len(csv_lines) - 1 == workload.settlements.num_rows + 1
    assert csv_lines[-1] == workload.side_raw_lines["settlements"][0] and "card " in csv_lines[-1]
    assert (tmp_path / "raw" / "fx_rates" / f"dt={DATE}" / "part-00000.jsonl").exists()
    truth = read_ground_truth(raw, DATE)
    assert path.endswith("ground_truth.json") and truth["expected_counts"] == workload.truth["expected_counts"]
    assert pq.read_table(tmp_path / "raw" / "_ground_truth" / f"dt={DATE}" / "reconciliation.parquet").equals(
        workload.reconciliation_truth
    )
    # A rerun replaces the day's files instead of adding to them.
    write_drops(workload, raw)
    assert sorted(p.name for p in folder.iterdir()) == [f"part-00000.{'jsonl' if gateway == 'gateway_a' else 'csv'}"]


def test_cli_generate_and_stream_without_producer(tmp_path, capsys):
    assert (
        generator_main(
            ["generate", "--date", DATE, "--transactions", "1000", "--raw-uri", str(tmp_path), "--rate", "malformed_rate=0.014"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["expected_counts"]["quarantined_by_reason"][Reason.UNPARSEABLE] == 2
    with pytest.raises(SystemExit, match="unknown"):
        generator_main(["generate", "--date", DATE, "--raw-uri", str(tmp_path), "--rate", "nope=1"])
    try:
        import devtools.generator.kafka_stream  # noqa: F401
    except ModuleNotFoundError:
        assert generator_main(["stream", "--date", DATE]) == 2
        assert "not available" in capsys.readouterr().err
