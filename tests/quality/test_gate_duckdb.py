"""The quality gate on DuckDB (local profile): every contract passes clean data and names each violation.

One test per bad-input class: each violating version must FAIL and name exactly the
checks it breaks; the clean twin of each dataset passes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from spark_apps.quality import GateError, GateResult, verify_staged_version
from spark_apps.schemas import TABLE_SCHEMAS
from tests.quality.conftest import NOW, VERSION, arrow_schema, clean_row, write_version

SCHEMA_CHECK = "columns and types match spark_apps/schemas.py"
MANIFEST_CHECK = "row count equals the run manifest's rows"


def verify(table: str, location: str, **kwargs) -> GateResult:
    return verify_staged_version(table, location, engine="duckdb", now=NOW, **kwargs)


def assert_fails_with(result: GateResult, expected: set[str]) -> None:
    assert not result.passed, result.log
    assert set(result.failed_check_names) == expected, result.log
    assert result.checks_total >= len(expected)


def two_transactions(table: str = "batch_index", **second) -> list[dict]:
    return [clean_row(table, transaction_id="t-1"), clean_row(table, transaction_id="t-2", **second)]


# --- every contract accepts clean data ------------------------------------------------------


@pytest.mark.parametrize("table", sorted(TABLE_SCHEMAS))
def test_clean_version_of_every_table_passes(lake, table):
    references = {}
    if table == "reconciliation_index":
        references["aggregate_index"] = write_version(
            lake, "aggregate_index", [clean_row("aggregate_index", transaction_id="t-1")]
        )
        row = clean_row(table, transaction_id="t-1", internal_amount=Decimal("10.00"), statement_amount=Decimal("10.00"))
    else:
        row = clean_row(table)
    result = verify(table, write_version(lake, table, [row]), references=references)
    assert result.passed, result.log
    assert result.checks_failed == []
    # Every column is in the schema check; required columns add a missing check each.
    required = sum(not field.nullable for field in TABLE_SCHEMAS[table].fields)
    assert result.checks_total > required


# --- batch index: one violation class per test ------------------------------------------------

BATCH_VIOLATIONS = {
    "null in a required column": ({"currency": None}, {"currency is not null"}),
    "unknown enum value": ({"transaction_status": "SETTLED"}, {"transaction_status is a known transaction status"}),
    "unsupported currency": ({"currency": "XYZ"}, {"currency is a known currency"}),
    "zero amount": ({"amount": Decimal("0.00")}, {"amount > 0"}),
    "negative amount": ({"amount": Decimal("-5.00")}, {"amount > 0"}),
    "zero fx rate": ({"fx_rate": Decimal("0E-8")}, {"fx_rate > 0"}),
    "risk score above 100": ({"risk_score": 101}, {"risk_score between 0 and 100"}),
    "negative risk score": ({"risk_score": -1}, {"risk_score between 0 and 100"}),
    "fraud score above 1": ({"fraud_score": Decimal("1.5000")}, {"fraud_score between 0 and 1"}),
    "card number in card_last4": ({"card_last4": "4242424242424242"}, {"card_last4 is exactly 4 digits"}),
    "expiry year in clear": ({"card_expiry_masked": "12/27"}, {"card_expiry_masked is MM/** (year hidden)"}),
    "row of another run": ({"version": "20261121T050000Z-other"}, {"version is the staged version"}),
}


@pytest.mark.parametrize("second_row, expected", BATCH_VIOLATIONS.values(), ids=BATCH_VIOLATIONS.keys())
def test_batch_index_violation_fails_naming_the_check(lake, second_row, expected):
    result = verify("batch_index", write_version(lake, "batch_index", two_transactions(**second_row)))
    assert_fails_with(result, expected)
    failed = {check["name"]: check for check in result.checks_failed}
    assert all(failed[name]["diagnostic"] for name in expected)


def test_nulls_in_optional_columns_pass(lake):
    nullable = {f.name: None for f in TABLE_SCHEMAS["batch_index"].fields if f.nullable}
    assert verify("batch_index", write_version(lake, "batch_index", two_transactions(**nullable))).passed


def test_duplicate_transaction_fails(lake):
    rows = [clean_row("batch_index", transaction_id="t-1"), clean_row("batch_index", transaction_id="t-1")]
    result = verify("batch_index", write_version(lake, "batch_index", rows))
    assert_fails_with(result, {"transaction_id is unique (one row per transaction per day)"})
    assert "duplicate_count: 1" in result.checks_failed[0]["diagnostic"]


def test_stale_version_fails_freshness(lake):
    stale = NOW - dt.timedelta(hours=30)
    rows = [clean_row("batch_index", transaction_id=t, ingested_at=stale) for t in ("t-1", "t-2")]
    result = verify("batch_index", write_version(lake, "batch_index", rows))
    assert_fails_with(result, {"ingested_at is within the last 24 hours"})
    assert "freshness_in_hours: 30" in result.checks_failed[0]["diagnostic"]


def test_freshness_is_measured_from_now(lake):
    location = write_version(lake, "batch_index", two_transactions())
    # Rows were written at NOW - 1 h.
    assert verify_staged_version("batch_index", location, now=NOW + dt.timedelta(hours=22)).passed
    assert not verify_staged_version("batch_index", location, now=NOW + dt.timedelta(hours=24)).passed


def test_empty_batch_index_fails(lake):
    result = verify("batch_index", write_version(lake, "batch_index", []))
    # Freshness cannot be measured without rows either.
    assert_fails_with(result, {"the version has rows", "ingested_at is within the last 24 hours"})


def test_row_count_different_from_manifest_fails(lake):
    location = write_version(lake, "batch_index", two_transactions(), manifest={"version": VERSION, "rows": 3})
    result = verify("batch_index", location)
    assert_fails_with(result, {MANIFEST_CHECK})
    assert result.checks_failed[0]["diagnostic"].startswith("measured -1")


@pytest.mark.parametrize(
    "manifest", [None, {"version": VERSION}, {"rows": "2"}], ids=["missing", "without rows", "rows not an int"]
)
def test_missing_or_incomplete_manifest_fails(lake, manifest):
    result = verify("batch_index", write_version(lake, "batch_index", two_transactions(), manifest=manifest))
    assert_fails_with(result, {"run manifest is complete", MANIFEST_CHECK})
    assert "_manifest.json" in result.checks_failed[0]["diagnostic"]


def test_extra_column_fails_schema(lake):
    # A clear card number column must never reach an index.
    schema = arrow_schema("batch_index").append(pa.field("pan", pa.string()))
    rows = [dict(row, pan="4242424242424242") for row in two_transactions()]
    result = verify("batch_index", write_version(lake, "batch_index", rows, schema=schema))
    assert_fails_with(result, {SCHEMA_CHECK})
    assert "pan" in result.checks_failed[0]["diagnostic"]


def test_type_drift_fails_schema(lake):
    schema = arrow_schema("batch_index")
    schema = schema.set(schema.get_field_index("amount"), pa.field("amount", pa.float64()))
    rows = [dict(row, amount=float(row["amount"])) for row in two_transactions()]
    result = verify("batch_index", write_version(lake, "batch_index", rows, schema=schema))
    assert_fails_with(result, {SCHEMA_CHECK})
    assert "amount" in result.checks_failed[0]["diagnostic"]


def test_missing_column_fails_schema(lake):
    schema = arrow_schema("batch_index")
    schema = schema.remove(schema.get_field_index("source_name"))
    rows = [{k: v for k, v in row.items() if k != "source_name"} for row in two_transactions()]
    result = verify("batch_index", write_version(lake, "batch_index", rows, schema=schema))
    assert not result.passed
    schema_failure = next(check for check in result.checks_failed if check["name"] == SCHEMA_CHECK)
    assert "Missing columns: source_name" in schema_failure["diagnostic"]
    # The column checks query a column that is not there: not evaluated, and counted as failed.
    missing_check = next(check for check in result.checks_failed if check["name"] == "source_name is not null")
    assert missing_check["diagnostic"].startswith("not evaluated")


def test_version_without_parquet_files_fails(lake):
    location = write_version(lake, "batch_index", two_transactions())
    for part in Path(location).glob("*.parquet"):
        part.unlink()
    result = verify("batch_index", location)
    assert_fails_with(result, {"batch_index version is readable Parquet"})


# --- other tables' own checks ------------------------------------------------------------------


def test_stream_index_record_indexed_twice_fails(lake):
    rows = [clean_row("stream_index", transaction_id="t-1"), clean_row("stream_index", transaction_id="t-2")]
    assert_fails_with(
        verify("stream_index", write_version(lake, "stream_index", rows)), {"each Kafka record is indexed once (exactly-once)"}
    )
    rows[1]["kafka_offset"] = 42
    assert verify("stream_index", write_version(lake, "stream_index", rows, version="r2")).passed


def test_stream_index_keeps_the_streaming_run_id(lake):
    # The streaming app's run id is not the staged location's run: no version check there.
    row = clean_row("stream_index", version="stream-app-attempt-3")
    assert verify("stream_index", write_version(lake, "stream_index", [row])).passed


def test_quarantine_with_card_number_in_payload_fails(lake):
    leaked = clean_row("quarantine", payload_masked='{"pan": "4242 4242 4242 4242", "amount": "-1"}')
    result = verify("quarantine", write_version(lake, "quarantine", [clean_row("quarantine"), leaked]))
    assert_fails_with(result, {"payload_masked holds no card number"})


@pytest.mark.parametrize(
    "payload",
    [
        '{"pan": "************4242"}',
        '{"transaction_id": "txn_4242424242424242"}',
        '{"transaction_id": "TXN-4242424242424242", "epoch_ms": 1763791200000}',
    ],
    ids=["masked pan", "long id", "id with hyphen and epoch millis"],
)
def test_quarantine_payload_without_card_number_passes(lake, payload):
    assert verify("quarantine", write_version(lake, "quarantine", [clean_row("quarantine", payload_masked=payload)])).passed


def test_quarantine_unknown_reason_code_fails(lake):
    result = verify("quarantine", write_version(lake, "quarantine", [clean_row("quarantine", reason_code="bad_vibes")]))
    assert_fails_with(result, {"reason_code is a known reason code"})


def test_empty_quarantine_passes(lake):
    result = verify("quarantine", write_version(lake, "quarantine", []))
    assert result.passed, result.log


def test_quarantine_with_stale_rows_fails(lake):
    rows = [clean_row("quarantine"), clean_row("quarantine", quarantined_at=NOW - dt.timedelta(hours=25))]
    assert_fails_with(verify("quarantine", write_version(lake, "quarantine", rows)), {"no quarantined_at older than 24 hours"})


def test_settlement_schedule_net_must_balance(lake):
    row = clean_row("settlement_schedule_index", net_amount=Decimal("69.99"))
    result = verify("settlement_schedule_index", write_version(lake, "settlement_schedule_index", [row]))
    assert_fails_with(result, {"net_amount = gross - refunds - chargebacks - fees"})


def test_user_spend_windows_must_nest(lake):
    row = clean_row("user_spend_index", spend_1d=Decimal("25.00"))
    result = verify("user_spend_index", write_version(lake, "user_spend_index", [row]))
    assert_fails_with(result, {"1-day <= 7-day <= 30-day spend and counts"})


def test_merchant_performance_counts_must_add_up(lake):
    row = clean_row("merchant_performance_index", declined_count=2)
    result = verify("merchant_performance_index", write_version(lake, "merchant_performance_index", [row]))
    assert_fails_with(result, {"approved_count + declined_count <= transaction_count"})


def test_merchant_performance_ratio_above_one_fails(lake):
    row = clean_row("merchant_performance_index", approval_rate=Decimal("1.000001"))
    result = verify("merchant_performance_index", write_version(lake, "merchant_performance_index", [row]))
    assert_fails_with(result, {"approval_rate between 0 and 1"})


def test_audit_row_without_a_change_fails(lake):
    row = clean_row("audit_trail", old_value="AUTHORIZED", new_value="AUTHORIZED")
    assert_fails_with(verify("audit_trail", write_version(lake, "audit_trail", [row])), {"every audit row changes the value"})


# --- reconciliation balance against the aggregate index -------------------------------------


@pytest.fixture
def aggregate(lake) -> str:
    rows = [
        clean_row("aggregate_index", transaction_id="t-1", amount=Decimal("10.00"), currency="USD"),
        clean_row("aggregate_index", transaction_id="t-2", amount=Decimal("5.00"), currency="EUR"),
    ]
    return write_version(lake, "aggregate_index", rows)


def reconciliation_rows(**changes) -> list[dict]:
    def internal(txn, amount, currency):
        return clean_row(
            "reconciliation_index",
            reconciliation_key=f"txn:{txn}",
            transaction_id=txn,
            internal_amount=Decimal(amount),
            internal_currency=currency,
            statement_amount=Decimal(amount),
            statement_currency=currency,
        )

    rows = [
        internal("t-1", "10.00", "USD"),
        internal("t-2", "5.00", "EUR"),
        # A statement line nobody knows: no transaction, so not part of the balance.
        clean_row(
            "reconciliation_index",
            reconciliation_key="line:s-1/9",
            transaction_id=None,
            match_status="MISSING_INTERNAL",
            break_reason="no internal transaction",
            internal_amount=None,
            internal_currency=None,
            amount_difference=None,
        ),
    ]
    rows[1].update(changes)
    return rows


def test_reconciliation_balancing_with_aggregate_passes(lake, aggregate):
    location = write_version(lake, "reconciliation_index", reconciliation_rows())
    result = verify("reconciliation_index", location, references={"aggregate_index": aggregate})
    assert result.passed, result.log


def test_reconciliation_total_different_from_aggregate_fails(lake, aggregate):
    rows = reconciliation_rows(internal_amount=Decimal("5.01"), statement_amount=Decimal("5.01"))
    result = verify(
        "reconciliation_index", write_version(lake, "reconciliation_index", rows), references={"aggregate_index": aggregate}
    )
    assert_fails_with(result, {"reconciliation internal totals per currency equal the aggregate index totals"})


def test_reconciled_transaction_missing_from_aggregate_fails(lake, aggregate):
    rows = reconciliation_rows(transaction_id="t-9", reconciliation_key="txn:t-9")
    result = verify(
        "reconciliation_index", write_version(lake, "reconciliation_index", rows), references={"aggregate_index": aggregate}
    )
    assert_fails_with(
        result,
        {
            "every reconciled transaction is in the aggregate index with the same currency",
            "reconciliation internal totals per currency equal the aggregate index totals",
        },
    )


def test_reconciliation_matched_row_with_break_reason_fails(lake, aggregate):
    rows = reconciliation_rows(break_reason="amount differs")
    result = verify(
        "reconciliation_index", write_version(lake, "reconciliation_index", rows), references={"aggregate_index": aggregate}
    )
    assert_fails_with(result, {"MATCHED rows have no break reason"})


def test_reconciliation_reads_its_aggregate_from_the_manifest_inputs(lake, aggregate):
    rows = reconciliation_rows()
    manifest = {"rows": len(rows), "inputs": {"aggregate_index": aggregate}}
    assert verify("reconciliation_index", write_version(lake, "reconciliation_index", rows, manifest=manifest)).passed
    # An explicit reference wins over the manifest's record.
    other = write_version(lake, "aggregate_index", [clean_row("aggregate_index", transaction_id="t-1")], version="agg-2")
    rerun = [dict(row, version="r3") for row in rows]
    location = write_version(lake, "reconciliation_index", rerun, manifest=manifest, version="r3")
    result = verify("reconciliation_index", location, references={"aggregate_index": other})
    assert_fails_with(
        result,
        {
            "every reconciled transaction is in the aggregate index with the same currency",
            "reconciliation internal totals per currency equal the aggregate index totals",
        },
    )


def test_reconciliation_needs_its_aggregate_reference(lake):
    location = write_version(lake, "reconciliation_index", reconciliation_rows())
    with pytest.raises(GateError, match="aggregate_index"):
        verify("reconciliation_index", location)


# --- calling the gate ---------------------------------------------------------------------------


def test_result_round_trips_as_json(lake):
    result = verify("batch_index", write_version(lake, "batch_index", two_transactions(amount=Decimal("0.00"))))
    again = GateResult.from_json(result.to_json())
    assert again == result
    assert again.failed_check_names == ["amount > 0"]
    assert "amount > 0" in again.summary() and "FAILED" in again.summary()
    assert "FAILED" in again.log and "columns.amount.checks.invalid" in again.log


def test_airflow_dt_variable_must_match_the_location(lake):
    location = write_version(lake, "batch_index", two_transactions())
    assert verify("batch_index", location, variables={"dt": "2026-11-22"}).passed
    with pytest.raises(GateError, match="dt"):
        verify("batch_index", location, variables={"dt": "2026-11-21"})


@pytest.mark.parametrize(
    "table, location, message",
    [
        ("no_such_index", "/lake/no_such_index/dt=2026-11-22/version=r1", "no data contract"),
        ("batch_index", "/lake/batch_index/2026-11-22", "not a staged version"),
    ],
    ids=["unknown table", "unversioned location"],
)
def test_wrong_calls_raise(table, location, message):
    with pytest.raises(GateError, match=message):
        verify(table, location)


def test_unknown_engine_raises(lake):
    with pytest.raises(GateError, match="engine"):
        verify_staged_version("batch_index", write_version(lake, "batch_index", two_transactions()), engine="presto")


def test_broken_contract_fails_closed(lake, tmp_path):
    # A contract whose SQL cannot run must block publishing, not pass silently.
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "batch_index.yaml").write_text(
        "dataset: quality_gate/global_temp/batch_index\n"
        "columns:\n  - name: transaction_id\n"
        "checks:\n  - metric:\n      name: broken query\n      query: SELECT no_such_column FROM global_temp.batch_index\n"
        "      threshold:\n        must_be: 0\n"
    )
    result = verify("batch_index", write_version(lake, "batch_index", two_transactions()), contracts_dir=str(contracts))
    assert_fails_with(result, {"broken query"})
    assert result.checks_failed[0]["diagnostic"].startswith("not evaluated")
    assert "no_such_column" in result.checks_failed[0]["diagnostic"]
