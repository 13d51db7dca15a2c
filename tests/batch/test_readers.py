"""Readers: every format of a source folder into raw events; side sources typed or quarantined."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps.readers import (
    CsvHeader,
    first_csv_line,
    inspect_csv_header,
    list_files_by_format,
    read_raw_events,
    read_side_source,
    read_tagged_side_source,
    split_tagged_side_source,
)
from spark_apps.schemas import (
    FRAUD_MODEL_OUTPUT_SCHEMA,
    FX_RATE_SCHEMA,
    RAW_TRANSACTION_FIELDS,
    REQUIRED_TRANSACTION_FIELDS,
    Reason,
)
from spark_apps.validation import CORRUPT_COLUMN, HEADER_PROBLEM_COLUMN, validate_events

pytestmark = pytest.mark.spark
NOW = dt.datetime(2026, 11, 22, 1, 0)


def record(tid: str, **overrides) -> dict:
    base = dict.fromkeys(RAW_TRANSACTION_FIELDS, "x")
    base.update(transaction_id=tid, amount="1.00", pan="4111111111111111")
    return {**base, **overrides}


def test_one_folder_with_all_three_formats(spark, tmp_path):
    folder = tmp_path / "gateway_x" / "dt=2026-11-21"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text(json.dumps(record("j1")) + "\n" + '{"transaction_id":"j2","pan":"4111111111111111"' + "\n")
    header = ",".join(RAW_TRANSACTION_FIELDS)
    good = ",".join(
        record("c1", device_id="has,comma").get(f) if f != "device_id" else '"has,comma"' for f in RAW_TRANSACTION_FIELDS
    )
    (folder / "b.csv").write_text(f"{header}\n{good}\nc2,only,three\n")
    typed = pa.table(
        {
            "transaction_id": ["p1"],
            "amount": pa.array([Decimal("2.50")], pa.decimal128(18, 2)),
            "timestamp": pa.array([dt.datetime(2026, 11, 21, 10)], pa.timestamp("us")),
        }
    )
    pq.write_table(typed, folder / "c.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / "notes.txt").write_text("ignored")
    assert {k: [p.rsplit("/", 1)[-1] for p in v] for k, v in list_files_by_format(str(folder)).items()} == {
        "jsonl": ["a.jsonl"],
        "csv": ["b.csv"],
        "parquet": ["c.parquet"],
    }
    events_df = read_raw_events(spark, str(folder), "gateway_x")
    assert events_df.columns == [
        *RAW_TRANSACTION_FIELDS,
        CORRUPT_COLUMN,
        "source_name",
        "source_format",
        "source_location",
        HEADER_PROBLEM_COLUMN,
    ]
    rows = {(r.source_format, r.transaction_id or "", r[CORRUPT_COLUMN]): r for r in events_df.collect()}
    truncated = '{"transaction_id":"j2","pan":"4111111111111111"'
    assert sorted(rows) == [
        ("csv", "c1", None),
        ("csv", "c2", "c2,only,three"),
        ("jsonl", "", truncated),
        ("jsonl", "j1", None),
        ("parquet", "p1", None),
    ]
    rows = {(fmt, tid): row for (fmt, tid, _), row in rows.items()}
    assert rows[("csv", "c1")].device_id == "has,comma" and rows[("csv", "c1")][CORRUPT_COLUMN] is None
    assert rows[("parquet", "p1")].amount == "2.50" and rows[("parquet", "p1")].timestamp == "2026-11-21 10:00:00"
    assert rows[("parquet", "p1")].pan is None  # a column the file lacks reads as null
    assert rows[("jsonl", "j1")].source_location.endswith("/a.jsonl") and rows[("jsonl", "j1")].source_name == "gateway_x"


def test_absent_folder_reads_as_none(spark, tmp_path):
    assert read_raw_events(spark, str(tmp_path / "missing"), "gateway_x") is None
    good_df, bad_df = read_side_source(spark, str(tmp_path / "missing"), "fx_rates", FX_RATE_SCHEMA, "r1", NOW)
    assert good_df.count() == 0 and bad_df.count() == 0


def test_side_source_rows_are_typed_or_quarantined(spark, tmp_path):
    folder = tmp_path / "fx_rates"
    folder.mkdir()
    (folder / "part.csv").write_text(
        "rate_date,currency,rate_to_reporting\n2026-11-21,EUR,1.08000000\n2026-11-21,,1.1\n2026-11-21,GBP,abc\nbroken,line\n"
    )
    good_df, bad_df = read_side_source(spark, str(folder), "fx_rates", FX_RATE_SCHEMA, "r1", NOW)
    assertDataFrameEqual(good_df, [(dt.date(2026, 11, 21), "EUR", Decimal("1.08000000"))])
    assert good_df.schema == FX_RATE_SCHEMA or [f.dataType for f in good_df.schema.fields] == [
        f.dataType for f in FX_RATE_SCHEMA.fields
    ]
    assertDataFrameEqual(
        bad_df.select("reason_code", "source_name", "version"),
        [
            (Reason.MISSING_REQUIRED_FIELD, "fx_rates", "r1"),
            (Reason.WRONG_TYPE, "fx_rates", "r1"),
            (Reason.UNPARSEABLE, "fx_rates", "r1"),
        ],
    )


def test_persisted_tagged_side_source_splits_like_read_side_source(spark, tmp_path):
    """The batch job persists the tagged fraud scores and splits them once: same rows as read_side_source."""
    folder = tmp_path / "fraud_scores"
    folder.mkdir()
    lines = [
        {
            "model_version": "m1",
            "transaction_id": "t1",
            "fraud_score": "0.5000",
            "explanations": None,
            "inference_time": "2026-11-21T01:00:00Z",
        },
        {
            "model_version": "m1",
            "transaction_id": "t2",
            "fraud_score": "high",
            "explanations": "{}",
            "inference_time": "2026-11-21T01:00:00Z",
        },
        {
            "model_version": None,
            "transaction_id": "t3",
            "fraud_score": "0.1",
            "explanations": "{}",
            "inference_time": "2026-11-21T01:00:00Z",
        },
    ]
    (folder / "part.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n[1, 2]\n")
    tagged_df = read_tagged_side_source(spark, str(folder), FRAUD_MODEL_OUTPUT_SCHEMA)
    assertDataFrameEqual(
        tagged_df.select("transaction_id", "reason_code"),
        [("t1", None), ("t2", Reason.WRONG_TYPE), ("t3", Reason.MISSING_REQUIRED_FIELD), (None, Reason.UNPARSEABLE)],
    )
    expected_good, expected_bad = read_side_source(spark, str(folder), "fraud_scores", FRAUD_MODEL_OUTPUT_SCHEMA, "r1", NOW)
    persisted = tagged_df.persist()
    try:
        good_df, bad_df = split_tagged_side_source(spark, persisted, "fraud_scores", FRAUD_MODEL_OUTPUT_SCHEMA, "r1", NOW)
        assertDataFrameEqual(good_df, expected_good)
        assertDataFrameEqual(bad_df, expected_bad)
        assertDataFrameEqual(
            good_df, [("m1", "t1", Decimal("0.5000"), None, dt.datetime(2026, 11, 21, 1, 0))], checkRowOrder=False
        )
    finally:
        persisted.unpersist()
    assert read_tagged_side_source(spark, str(tmp_path / "missing"), FRAUD_MODEL_OUTPUT_SCHEMA) is None
    good_df, bad_df = split_tagged_side_source(spark, None, "fraud_scores", FRAUD_MODEL_OUTPUT_SCHEMA, "r1", NOW)
    assert good_df.count() == 0 and bad_df.count() == 0


# --- CSV by header names --------------------------------------------------------------------------


def csv_text(fields, rows) -> str:
    return "".join(",".join(row) + "\n" for row in [list(fields), *rows])


def test_inspect_csv_header_maps_names_not_positions():
    fields = ("a", "b", "c")
    assert inspect_csv_header(" B ,x,A", fields) == CsvHeader((" B ", "x", "A"), (2, 0, None))
    assert inspect_csv_header('\ufeff"a","b,",c', ("a", "b,", "c")) == CsvHeader(("a", "b,", "c"), (0, 1, 2))
    assert inspect_csv_header("1,2,3", fields, required=("a",)) == CsvHeader(
        (), (None, None, None), "no header line: the first line names none of the columns"
    )
    assert inspect_csv_header("b,c", fields, required=("a", "b")).problem == "header lacks required columns: a"
    assert inspect_csv_header("a,b,A", fields).problem == "header names a column more than once: a"


def test_first_csv_line_skips_blank_lines_and_reads_gzip(tmp_path):
    import gzip

    (tmp_path / "a.csv").write_text("\n  \r\nx,y\r\n1,2\n")
    with gzip.open(tmp_path / "b.csv.gz", "wt") as out:
        out.write("p,q\n1,2\n")
    (tmp_path / "c.csv").write_text("\n\n")
    (tmp_path / "d.csv").write_text("only,line")
    assert [first_csv_line(str(tmp_path / n)) for n in ("a.csv", "b.csv.gz", "c.csv", "d.csv")] == [
        "x,y",
        "p,q",
        None,
        "only,line",
    ]


def test_csv_columns_are_mapped_by_header_names(spark, tmp_path):
    """A reordered header (with an unknown column, without the optional ones) reads the same values
    into the same fields as the header in schema order."""
    folder = tmp_path / "gateway_b" / "dt=2026-11-21"
    folder.mkdir(parents=True)
    ordered = record("c1", timestamp="2026-11-21T10:00:00Z", currency="USD", cvv="123")
    (folder / "a.csv").write_text(csv_text(RAW_TRANSACTION_FIELDS, [[ordered[f] for f in RAW_TRANSACTION_FIELDS]]))
    first = ("currency", "amount", "transaction_id")
    rest = [f for f in reversed(REQUIRED_TRANSACTION_FIELDS) if f not in first]
    reordered = ["Currency", "amount", " transaction_id ", "note", *rest]  # case and spaces do not matter
    values = {"currency": "EUR", "amount": "7.25", "transaction_id": "c2", "note": "ignored"}
    row = [values.get(name.strip().lower(), f"{name}-v") for name in reordered]
    (folder / "b.csv").write_text(csv_text(reordered, [row]))
    events_df = read_raw_events(spark, str(folder), "gateway_b")
    columns = ["transaction_id", "amount", "currency", "user_id", "merchant_id", "timestamp", "pan", "cvv", CORRUPT_COLUMN]
    assertDataFrameEqual(
        events_df.select(*columns, HEADER_PROBLEM_COLUMN),
        [
            ("c1", "1.00", "USD", "x", "x", "2026-11-21T10:00:00Z", "4111111111111111", "123", None, None),
            ("c2", "7.25", "EUR", "user_id-v", "merchant_id-v", "timestamp-v", None, None, None, None),
        ],
    )


def test_a_csv_file_without_header_is_quarantined_line_by_line_not_short_one(spark, tmp_path):
    """No header: every line (the first included) is a record, quarantined as missing_header with the
    line (masked) as its payload; before, the first record silently became the header."""
    folder = tmp_path / "gateway_b" / "dt=2026-11-21"
    folder.mkdir(parents=True)
    lines = [[record(tid)[f] for f in RAW_TRANSACTION_FIELDS] for tid in ("h1", "h2", "h3")]
    (folder / "headerless.csv").write_text("".join(",".join(line) + "\n" for line in lines))
    events_df = read_raw_events(spark, str(folder), "gateway_b")
    assert events_df.count() == 3
    valid_df, rejected_df = validate_events(events_df, "r1", NOW)
    assert valid_df.count() == 0
    assertDataFrameEqual(
        rejected_df.select("reason_code", "reason_detail", "source_format", "transaction_id"),
        [(Reason.MISSING_HEADER, "no header line: the first line names none of the columns", "csv", None)] * 3,
    )
    payloads = [r.payload_masked for r in rejected_df.collect()]
    assert sorted(p.split(",")[0] for p in payloads) == ["h1", "h2", "h3"]
    assert not any("4111111111111111" in p for p in payloads)


def test_a_csv_header_without_a_required_column_quarantines_its_records(spark, tmp_path):
    """The header names no ``amount``: its records are quarantined as missing_header (the header line is
    not one of them); a good file beside it is read normally."""
    folder = tmp_path / "gateway_b" / "dt=2026-11-21"
    folder.mkdir(parents=True)
    without = [f for f in RAW_TRANSACTION_FIELDS if f != "amount"]
    good = record("g1", timestamp="2026-11-21T10:00:00Z", updated_at="2026-11-21T10:00:00Z", currency="USD")
    good.update(transaction_status="AUTHORIZED", channel="POS", country="US", expiry="12/29", cvv="123")
    (folder / "bad.csv").write_text(csv_text(without, [[record(t)[f] for f in without] for t in ("m1", "m2")]))
    (folder / "good.csv").write_text(csv_text(RAW_TRANSACTION_FIELDS, [[good[f] for f in RAW_TRANSACTION_FIELDS]]))
    events_df = read_raw_events(spark, str(folder), "gateway_b")
    valid_df, rejected_df = validate_events(events_df, "r1", NOW)
    assertDataFrameEqual(valid_df.select("transaction_id"), [("g1",)])
    assertDataFrameEqual(
        rejected_df.select("reason_code", "reason_detail", "transaction_id"),
        [(Reason.MISSING_HEADER, "header lacks required columns: amount", None)] * 2,
    )
    assert sorted(r.payload_masked.split(",")[0] for r in rejected_df.collect()) == ["m1", "m2"]


def test_side_source_csv_by_header_names_and_without_header(spark, tmp_path):
    folder = tmp_path / "fx_rates"
    folder.mkdir()
    (folder / "reordered.csv").write_text("rate_to_reporting,CURRENCY,rate_date\n1.08000000,EUR,2026-11-21\n")
    (folder / "headerless.csv").write_text("2026-11-21,GBP,1.27000000\n2026-11-21,JPY,0.00670000\n")
    good_df, bad_df = read_side_source(spark, str(folder), "fx_rates", FX_RATE_SCHEMA, "r1", NOW)
    assertDataFrameEqual(good_df, [(dt.date(2026, 11, 21), "EUR", Decimal("1.08000000"))])
    assertDataFrameEqual(
        bad_df.select("reason_code", "reason_detail", "payload_masked"),
        [
            (
                Reason.MISSING_HEADER,
                "fx_rates: missing_header: no header line: the first line names none of the columns",
                "2026-11-21,GBP,1.27000000",
            ),
            (
                Reason.MISSING_HEADER,
                "fx_rates: missing_header: no header line: the first line names none of the columns",
                "2026-11-21,JPY,0.00670000",
            ),
        ],
    )
