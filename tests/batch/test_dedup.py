"""Deduplication: latest updated_at wins, deterministic tie-break, nulls."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps.dedup import filter_latest_per_transaction

pytestmark = pytest.mark.spark
T0 = dt.datetime(2026, 11, 21, 10, 0, 0)
SCHEMA = "transaction_id string, transaction_status string, updated_at timestamp, device_id string, source_name string, source_location string"


def test_latest_updated_at_wins_whatever_the_input_order(spark):
    rows = [
        ("t1", "AUTHORIZED", T0 + dt.timedelta(minutes=5), "d", "gateway_b", "b.csv"),  # the retry, arriving first
        ("t1", "PENDING", T0, "d", "gateway_a", "a.jsonl"),
        ("t2", "DECLINED", T0, "d", "gateway_c", "c.parquet"),
    ]
    for ordering in (rows, rows[::-1]):
        out_df = filter_latest_per_transaction(spark.createDataFrame(ordering, SCHEMA).repartition(3))
        assertDataFrameEqual(out_df.select("transaction_id", "transaction_status"), [("t1", "AUTHORIZED"), ("t2", "DECLINED")])


def test_exact_resends_collapse_to_one_row_chosen_by_source_name(spark):
    row = ("t1", "AUTHORIZED", T0, "d", "gateway_b", "b.csv")
    resend = ("t1", "AUTHORIZED", T0, "d", "gateway_a", "a.jsonl")
    out_df = filter_latest_per_transaction(spark.createDataFrame([row, resend, row], SCHEMA))
    assertDataFrameEqual(out_df, [resend])


def test_same_updated_at_different_content_breaks_ties_by_fingerprint_not_order(spark):
    a = ("t1", "AUTHORIZED", T0, "d1", "gateway_a", "a.jsonl")
    b = ("t1", "DECLINED", T0, "d2", "gateway_a", "a.jsonl")
    first = filter_latest_per_transaction(spark.createDataFrame([a, b], SCHEMA)).collect()
    second = filter_latest_per_transaction(spark.createDataFrame([b, a], SCHEMA).repartition(2)).collect()
    assert len(first) == 1 and first == second


def test_null_updated_at_loses_and_null_optional_fields_are_fine(spark):
    rows = [("t1", "PENDING", None, None, "gateway_a", None), ("t1", "AUTHORIZED", T0, None, "gateway_a", None)]
    out_df = filter_latest_per_transaction(spark.createDataFrame(rows, SCHEMA))
    assertDataFrameEqual(out_df, [rows[1]])
    assert filter_latest_per_transaction(spark.createDataFrame([], SCHEMA)).count() == 0
