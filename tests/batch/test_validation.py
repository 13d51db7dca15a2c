"""Validation: typed valid rows, one quarantine reason per bad-input class, JSON (stream) entry point."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_apps.schemas import QUARANTINE_SCHEMA, RAW_TRANSACTION_FIELDS, TRANSACTION_EVENT_SCHEMA, Reason
from spark_apps.validation import CORRUPT_COLUMN, EventTimeBounds, parse_json_events, validate_events, validate_json_events

pytestmark = pytest.mark.spark
NOW = dt.datetime(2026, 11, 22, 1, 0, 0)
GOOD = {
    "transaction_id": "tx-1",
    "user_id": "u-1",
    "merchant_id": "m-1",
    "timestamp": "2026-11-21T10:00:00.250Z",
    "amount": "12.50",
    "currency": "usd",
    "transaction_status": "authorized",
    "channel": "POS",
    "country": "us",
    "device_id": "d-1",
    "ip": "10.0.0.1",
    "updated_at": "2026-11-21 10:00:01+01:00",
    "pan": "4111111111111111",
    "cvv": "123",
    "expiry": "07/29",
}


def raw_df(spark, records, corrupt=None):
    rows = [
        (*[r.get(f) for f in RAW_TRANSACTION_FIELDS], (corrupt or {}).get(i), "gateway_a", "jsonl", "/raw/a.jsonl")
        for i, r in enumerate(records)
    ]
    schema = (
        ", ".join(f"{f} string" for f in RAW_TRANSACTION_FIELDS)
        + f", {CORRUPT_COLUMN} string, source_name string, source_format string, source_location string"
    )
    return spark.createDataFrame(rows, schema)


def test_a_good_record_becomes_one_typed_event(spark):
    valid_df, rejected_df = validate_events(raw_df(spark, [GOOD]), "r1", NOW)
    assert rejected_df.count() == 0
    expected = [
        (
            "tx-1", "u-1", "m-1", dt.datetime(2026, 11, 21, 10, 0, 0, 250000), Decimal("12.50"), "USD", "AUTHORIZED", "POS", "US",
            "d-1", "10.0.0.1", dt.datetime(2026, 11, 21, 9, 0, 1), "4111111111111111", "123", "07/29", "gateway_a", "jsonl", "/raw/a.jsonl",
        )
    ]  # fmt: skip
    assert valid_df.columns[: len(TRANSACTION_EVENT_SCHEMA)] == TRANSACTION_EVENT_SCHEMA.fieldNames()
    assertDataFrameEqual(valid_df, expected)


def test_optional_fields_may_be_null(spark):
    record = {**GOOD, "country": None, "device_id": None, "ip": None, "pan": None, "cvv": None, "expiry": None}
    valid_df, rejected_df = validate_events(raw_df(spark, [record]), "r1", NOW)
    assert rejected_df.count() == 0
    row = valid_df.first()
    assert (row.country, row.device_id, row.pan, row.cvv, row.expiry) == (None, None, None, None, None)


BAD_INPUTS = {
    Reason.MISSING_REQUIRED_FIELD: ({**GOOD, "user_id": None, "currency": "  "}, "missing: user_id,currency"),
    Reason.NON_POSITIVE_AMOUNT: ({**GOOD, "amount": "-3.00"}, "amount <= 0"),
    Reason.UNKNOWN_CURRENCY: ({**GOOD, "currency": "XYZ"}, "currency: not a supported ISO 4217 code"),
    Reason.INVALID_TIMESTAMP: ({**GOOD, "updated_at": "2026-13-45T99:00:00Z"}, "not an ISO-8601 timestamp: updated_at"),
    Reason.OVERSIZE_FIELD: ({**GOOD, "device_id": "x" * 257}, "longer than 256: device_id"),
    Reason.WRONG_TYPE: ({**GOOD, "amount": '{"value":"1.00"}'}, "amount: not a decimal number"),
    Reason.INVALID_VALUE: ({**GOOD, "channel": "FAX", "amount": "1.005"}, "channel,amount"),
}


def test_a_card_number_in_an_identifier_quarantines_the_record_with_the_id_masked(spark):
    """transaction_id, user_id and merchant_id stay in clear in the index (dedup and joins): a record
    with a card number in one, however grouped, is quarantined, its id masked in the quarantine row."""
    records = [
        {**GOOD, "transaction_id": "tx-4111 1111 1111 1111"},
        {**GOOD, "transaction_id": "tx-2", "user_id": "u-5500-0000-0000-0004"},
        {**GOOD, "transaction_id": "tx-3", "merchant_id": "m-40128888888818810"},
        {**GOOD, "transaction_id": "tx-20261121-000000123"},  # long ids that are no card number stay valid
    ]
    valid_df, rejected_df = validate_events(raw_df(spark, records), "r1", NOW)
    assert [r.transaction_id for r in valid_df.collect()] == ["tx-20261121-000000123"]
    rows = sorted((r.reason_code, r.reason_detail, r.transaction_id) for r in rejected_df.collect())
    assert rows == [
        (Reason.INVALID_VALUE, "merchant_id holds a card number", "tx-3"),
        (Reason.INVALID_VALUE, "transaction_id holds a card number", "tx-[pan ****1111]"),
        (Reason.INVALID_VALUE, "user_id holds a card number", "tx-2"),
    ]
    payloads = " ".join(r.payload_masked for r in rejected_df.collect())
    assert "4111 1111 1111 1111" not in payloads and "5500-0000-0000-0004" not in payloads
    assert "40128888888818810" not in payloads


@pytest.mark.parametrize("reason", sorted(BAD_INPUTS))
def test_each_bad_input_class_is_quarantined_with_its_reason(spark, reason):
    record, detail = BAD_INPUTS[reason]
    valid_df, rejected_df = validate_events(raw_df(spark, [record, GOOD]), "r1", NOW)
    assert [r.transaction_id for r in valid_df.collect()] == ["tx-1"]
    assert rejected_df.schema == QUARANTINE_SCHEMA or rejected_df.columns == QUARANTINE_SCHEMA.fieldNames()
    row = rejected_df.first()
    assert (row.reason_code, row.reason_detail, row.source_name, row.version, row.quarantined_at) == (
        reason,
        detail,
        "gateway_a",
        "r1",
        NOW,
    )
    payload = json.loads(row.payload_masked)
    assert payload["pan"] == "****1111" and payload["cvv"] == "***" and payload["expiry"] == "07/**"
    assert "4111111111111111" not in row.payload_masked


def test_unparseable_record_keeps_its_masked_text(spark):
    text = '{"transaction_id":"tx-9","pan":"4111111111111111","cvv":"321","amo'
    valid_df, rejected_df = validate_events(raw_df(spark, [{}], corrupt={0: text}), "r1", NOW)
    assert valid_df.count() == 0
    row = rejected_df.first()
    assert row.reason_code == Reason.UNPARSEABLE and row.transaction_id is None
    assert row.payload_masked == '{"transaction_id":"tx-9","pan":"[pan ****1111]","cvv":"***","amo'


def test_first_failing_check_wins(spark):
    record = {**GOOD, "user_id": None, "amount": "-1", "currency": "XYZ"}
    _valid, rejected_df = validate_events(raw_df(spark, [record]), "r1", NOW)
    assert rejected_df.first().reason_code == Reason.MISSING_REQUIRED_FIELD


def test_amount_precision_follows_the_currency_minor_units(spark):
    records = [
        {**GOOD, "transaction_id": "jpy-ok", "currency": "JPY", "amount": "1500"},
        {**GOOD, "transaction_id": "jpy-bad", "currency": "JPY", "amount": "1500.5"},
    ]
    valid_df, rejected_df = validate_events(raw_df(spark, records), "r1", NOW)
    assertDataFrameEqual(valid_df.select("transaction_id", "amount"), [("jpy-ok", Decimal("1500.00"))])
    assertDataFrameEqual(
        rejected_df.select("transaction_id", "reason_code", "reason_detail"), [("jpy-bad", Reason.INVALID_VALUE, "amount")]
    )


def test_parse_json_events_marks_non_objects_and_blank_lines_corrupt(spark):
    df = spark.createDataFrame([(json.dumps(GOOD),), ("[1,2]",), ("",), ('{"amount": 12.5}',), (None,)], "value string")
    out = parse_json_events(df).select("transaction_id", "amount", CORRUPT_COLUMN).collect()
    assert [tuple(r) for r in out] == [
        ("tx-1", "12.50", None),
        (None, None, "[1,2]"),
        (None, None, ""),
        (None, "12.5", None),
        (None, None, ""),
    ]


def test_validate_json_events_is_the_stream_entry_point(spark):
    kafka_df = spark.createDataFrame(
        [
            (json.dumps(GOOD).encode(), 0, 5),
            (b"not json", 0, 6),
            (json.dumps({**GOOD, "transaction_id": "tx-2", "currency": "ZZZ"}).encode(), 1, 7),
        ],
        "value binary, partition int, offset long",
    )
    location = F.concat_ws("/", F.lit("payments.transactions"), F.col("partition"), F.col("offset"))
    valid_df, rejected_df = validate_json_events(kafka_df, version="stream-1", quarantined_at=NOW, source_location=location)
    assert valid_df.columns[-5:] == ["source_name", "source_format", "source_location", "partition", "offset"]
    assertDataFrameEqual(
        valid_df.select("transaction_id", "source_name", "source_location", "offset"),
        [("tx-1", "kafka", "payments.transactions/0/5", 5)],
    )
    assertDataFrameEqual(
        rejected_df.select("reason_code", "transaction_id", "source_location", "payload_masked"),
        [
            (Reason.UNPARSEABLE, None, "payments.transactions/0/6", "not json"),
            (
                Reason.UNKNOWN_CURRENCY,
                "tx-2",
                "payments.transactions/1/7",
                rejected_df.filter("transaction_id = 'tx-2'").first().payload_masked,
            ),
        ],
    )


def test_event_time_bounds_quarantine_future_and_out_of_date_events(spark):
    """The run started 2026-11-22 01:00 UTC with a 300 s skew allowance, for the drop of 2026-11-21
    with 48 h tolerance: [2026-11-19 00:00, 2026-11-25 00:00). Each bound's edge is still valid."""
    started = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)
    bounds = EventTimeBounds(started, max_clock_skew_seconds=300, drop_date=dt.date(2026, 11, 21), drop_date_tolerance_hours=48)
    times = {
        "in-day": "2026-11-21T10:00:00Z",
        "skew-edge": "2026-11-22T01:05:00Z",  # exactly the allowance after the run's time
        "future": "2026-11-22T01:05:01Z",
        "future-far": "2027-01-01T00:00:00Z",  # also outside the date: the future wins (checked first)
        "date-edge": "2026-11-19T00:00:00Z",
        "too-old": "2026-11-18T23:59:59Z",
    }
    records = [{**GOOD, "transaction_id": tid, "timestamp": ts} for tid, ts in times.items()]
    valid_df, rejected_df = validate_events(raw_df(spark, records), "r1", NOW, bounds)
    assertDataFrameEqual(valid_df.select("transaction_id"), [("in-day",), ("skew-edge",), ("date-edge",)])
    future = "is more than 300s after the run's time 2026-11-22T01:00:00Z"
    assertDataFrameEqual(
        rejected_df.select("transaction_id", "reason_code", "reason_detail"),
        [
            ("future", Reason.FUTURE_EVENT_TIME, f"event_time 2026-11-22T01:05:01Z {future}"),
            ("future-far", Reason.FUTURE_EVENT_TIME, f"event_time 2027-01-01T00:00:00Z {future}"),
            (
                "too-old",
                Reason.OUTSIDE_DROP_DATE,
                "event_time 2026-11-18T23:59:59Z is more than 48h outside the drop date 2026-11-21",
            ),
        ],
    )
    # Without bounds (the stream's validation) the same records are all valid: the bounds decide.
    assert validate_events(raw_df(spark, records), "r1", NOW)[0].count() == len(records)
    # An earlier check still wins over the time checks.
    bad = {**GOOD, "transaction_id": "neg", "timestamp": "2027-01-01T00:00:00Z", "amount": "-1.00"}
    assert validate_events(raw_df(spark, [bad]), "r1", NOW, bounds)[1].first().reason_code == Reason.NON_POSITIVE_AMOUNT


def test_event_time_bounds_refuse_negative_allowances():
    with pytest.raises(ValueError, match="must not be negative"):
        EventTimeBounds(NOW, max_clock_skew_seconds=-1)
    window = EventTimeBounds(NOW, drop_date=dt.date(2026, 11, 21), drop_date_tolerance_hours=0).drop_window
    assert window == (dt.datetime(2026, 11, 21, tzinfo=dt.UTC), dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
