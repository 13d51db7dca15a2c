"""The aggregate index job over two days of explicit inputs: carry-forward, audit, refund after settlement, rerun."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps import lake
from spark_apps.jobs.aggregate_index import run_aggregate_index
from spark_apps.schemas import BATCH_INDEX_SCHEMA, STREAM_INDEX_SCHEMA
from tests.indexes.rows import batch_row, frame, stream_row, ts

pytestmark = [pytest.mark.spark, pytest.mark.slow]
DAY1, DAY2 = "2026-11-19", "2026-11-20"
STATEMENT_HEADER = "statement_id,line_id,statement_source,transaction_ref,amount,currency,fee,settled_at,settlement_status\n"


def write_statements(raw: Path, date: str, lines: list[str]) -> None:
    folder = raw / "settlements" / f"dt={date}"
    folder.mkdir(parents=True)
    (folder / "part-00000.csv").write_text(STATEMENT_HEADER + "".join(line + "\n" for line in lines))


def test_two_days_and_a_rerun(spark, tmp_path):
    raw, index = tmp_path / "raw", str(tmp_path / "indexes")
    day1_batch = [
        batch_row("sold", event_time=ts("2026-11-19 10:00"), updated_at=ts("2026-11-19 10:00")),
        batch_row("rescored", event_time=ts("2026-11-19 11:00"), updated_at=ts("2026-11-19 11:00"), fraud_score=Decimal("0.1000"), inference_time=ts("2026-11-19 11:00:01")),
    ]  # fmt: skip
    frame(spark, BATCH_INDEX_SCHEMA, day1_batch).write.parquet(lake.version_location(index, "batch_index", DAY1, "b1"))
    write_statements(
        raw,
        DAY1,
        [
            "S1,l1,BANK,sold,100.00,USD,2.90,2026-11-19T18:00:00Z,SETTLED",
            "S1,l2,BANK,,5.00,USD,0.10,2026-11-19T18:00:00Z,SETTLED",
        ],
    )
    day1 = run_aggregate_index(
        spark, DAY1, "a1", index, str(raw), lake.version_location(index, "batch_index", DAY1, "b1"), None, [], 120
    )
    assert day1["rows"] == 2
    assert day1["counts"]["input_rows"]["statement_lines_without_transaction"] == 1

    # day 2: the sold transaction is refunded (internal status and statement line), the other one
    # rescored by the stream, and a new one arrives from the stream only
    day2_batch = [batch_row("new-batch", event_time=ts("2026-11-20 09:00"), updated_at=ts("2026-11-20 09:00"))]
    frame(spark, BATCH_INDEX_SCHEMA, day2_batch).write.parquet(lake.version_location(index, "batch_index", DAY2, "b2"))
    stream = [
        stream_row("sold", event_time=ts("2026-11-19 10:00"), updated_at=ts("2026-11-20 08:00"), transaction_status="REFUNDED"),
        stream_row("rescored", event_time=ts("2026-11-19 11:00"), updated_at=ts("2026-11-19 11:00"), fraud_score=Decimal("0.9000"), inference_time=ts("2026-11-20 07:00")),
        stream_row("new-stream", event_time=ts("2026-11-20 12:00"), updated_at=ts("2026-11-20 12:00")),
    ]  # fmt: skip
    frame(spark, STREAM_INDEX_SCHEMA, stream).write.parquet(f"{index}/stream_index/dt={DAY2}/hour=12")
    write_statements(raw, DAY2, ["S2,l9,BANK,sold,100.00,USD,0.00,2026-11-20T09:00:00Z,REFUNDED"])
    batch2 = lake.version_location(index, "batch_index", DAY2, "b2")
    stream_locations = [f"{index}/stream_index/dt={DAY1}", f"{index}/stream_index/dt={DAY2}"]
    day2 = run_aggregate_index(spark, DAY2, "a2", index, str(raw), batch2, day1["location"], stream_locations, 120)

    assertDataFrameEqual(
        spark.read.parquet(day2["location"]).select("transaction_id", "transaction_status", "settlement_status", "fraud_score", "record_source", "first_seen_date"),
        [
            Row(transaction_id="sold", transaction_status="REFUNDED", settlement_status="REFUNDED", fraud_score=None, record_source="STREAM_AND_BATCH", first_seen_date=dt.date(2026, 11, 19)),
            Row(transaction_id="rescored", transaction_status="AUTHORIZED", settlement_status=None, fraud_score=Decimal("0.9000"), record_source="STREAM_AND_BATCH", first_seen_date=dt.date(2026, 11, 19)),
            Row(transaction_id="new-batch", transaction_status="AUTHORIZED", settlement_status=None, fraud_score=None, record_source="BATCH", first_seen_date=dt.date(2026, 11, 20)),
            Row(transaction_id="new-stream", transaction_status="AUTHORIZED", settlement_status=None, fraud_score=None, record_source="STREAM", first_seen_date=dt.date(2026, 11, 20)),
        ],
    )  # fmt: skip
    audit_columns = ["transaction_id", "field", "old_value", "new_value", "source", "previous_version"]
    expected_audit = [
        Row(transaction_id="sold", field="transaction_status", old_value="AUTHORIZED", new_value="REFUNDED", source="STREAM", previous_version="a1"),
        Row(transaction_id="sold", field="settlement_status", old_value="SETTLED", new_value="REFUNDED", source="STATEMENT", previous_version="a1"),
        Row(transaction_id="rescored", field="fraud_score", old_value="0.1000", new_value="0.9000", source="STREAM", previous_version="a1"),
        Row(transaction_id="new-batch", field="transaction_status", old_value=None, new_value="AUTHORIZED", source="BATCH", previous_version="a1"),
        Row(transaction_id="new-stream", field="transaction_status", old_value=None, new_value="AUTHORIZED", source="STREAM", previous_version="a1"),
    ]  # fmt: skip
    assertDataFrameEqual(spark.read.parquet(day2["audit_location"]).select(*audit_columns), expected_audit)

    # rerun of day 2, given the version just published for day 2: same rows, same audit, new location
    rerun = run_aggregate_index(spark, DAY2, "a2-rerun", index, str(raw), batch2, day2["location"], stream_locations, 120)
    assert rerun["previous_aggregate_location"] == day1["location"]
    assert rerun["location"] != day2["location"]
    keep = [c for c in spark.read.parquet(day2["location"]).columns if c not in ("version", "merged_at")]
    assertDataFrameEqual(spark.read.parquet(rerun["location"]).select(keep), spark.read.parquet(day2["location"]).select(keep))
    assertDataFrameEqual(spark.read.parquet(rerun["audit_location"]).select(*audit_columns), expected_audit)
    manifest = json.loads(Path(rerun["location"], "_manifest.json").read_text())
    assert (manifest["rows"], manifest["inputs"]) == (4, {"batch_index": batch2})
