"""Ops index (from stream metrics and run manifests) and the ML feedback export."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.indexes.config import load_index_config, replace
from spark_apps.indexes.ml_feedback import build_ml_feedback
from spark_apps.indexes.ops import build_ops_index, stage_run_from_manifest, stage_run_from_stream_metric, stage_runs_df
from spark_apps.schemas import ML_FEEDBACK_SCHEMA, OPS_INDEX_SCHEMA
from tests.indexes.rows import DAY, aggregate_df, aggregate_row, ts

pytestmark = pytest.mark.spark
NOW = ts("2026-11-21 04:00")


def test_stage_runs_from_a_manifest_and_a_stream_metric():
    manifest = {
        "table": "batch_index",
        "date": "2026-11-19",
        "finished_at": "2026-11-20T02:10:00+00:00",
        "seconds": 61.5,
        "counts": {"read": 1010, "indexed": 1000, "quarantined": 7},
    }
    assert stage_run_from_manifest(manifest) == {
        "stage": "batch_index", "for_date": dt.date(2026, 11, 19), "finished_at": dt.datetime(2026, 11, 20, 2, 10, tzinfo=dt.UTC), "records_in": 1010, "records_out": 1000,
        "error_count": 0, "quarantine_count": 7, "duration_ms": 61500, "latency_ms": 61500,
    }  # fmt: skip
    metric = {
        "timestamp": "2026-11-20T10:00:05Z",
        "numInputRows": 50,
        "dead_letter_rows": 2,
        "durationMs": {"triggerExecution": 800},
        "latency_ms": 1200,
    }
    assert stage_run_from_stream_metric(metric) == {
        "stage": "stream_index", "for_date": dt.date(2026, 11, 20), "finished_at": dt.datetime(2026, 11, 20, 10, 0, 5, tzinfo=dt.UTC), "records_in": 50, "records_out": 48,
        "error_count": 0, "quarantine_count": 2, "duration_ms": 800, "latency_ms": 1200,
    }  # fmt: skip
    assert stage_run_from_manifest({"table": "x"}) is None  # an unfinished run has no finish time


def test_ops_index_per_stage_and_hour(spark):
    runs = [
        stage_run_from_stream_metric({"timestamp": f"2026-11-20T10:{minute:02d}:00Z", "numInputRows": 100, "dead_letter_rows": quarantined,
                                      "error_rows": 1 if minute == 3 else 0, "duration_ms": 500, "latency_ms": latency})
        for minute, quarantined, latency in [(0, 0, 100), (1, 1, 200), (2, 0, 300), (3, 2, 400)]
    ] + [
        # the batch run for the 20th finishes on the 21st; the one for the 19th finishes on the 20th
        stage_run_from_manifest({"table": "batch_index", "date": "2026-11-20", "finished_at": "2026-11-21T02:30:00Z", "seconds": 100, "counts": {"read": 1000, "indexed": 990, "quarantined": 10}}),
        stage_run_from_manifest({"table": "batch_index", "date": "2026-11-19", "finished_at": "2026-11-20T02:30:00Z", "seconds": 100, "counts": {"read": 5}}),
        stage_run_from_stream_metric({"timestamp": "2026-11-21T00:00:00Z", "numInputRows": 9, "duration_ms": 5}),  # the next day
    ]  # fmt: skip
    result = build_ops_index(stage_runs_df(spark, runs), DAY, "r", NOW)
    assert result.schema.fieldNames() == OPS_INDEX_SCHEMA.fieldNames()
    assertDataFrameEqual(
        result.drop("version", "indexed_at"),
        [
            Row(stage="batch_index", hour_start=dt.datetime(2026, 11, 21, 2), run_count=1, records_in=1000, records_out=990, error_count=0,
                quarantine_count=10, throughput_per_second=Decimal("10.000"), latency_p50_ms=100000, latency_p95_ms=100000, latency_p99_ms=100000,
                error_rate=Decimal("0.000000"), quarantine_rate=Decimal("0.010000")),
            Row(stage="stream_index", hour_start=dt.datetime(2026, 11, 20, 10), run_count=4, records_in=400, records_out=397, error_count=1,
                quarantine_count=3, throughput_per_second=Decimal("200.000"), latency_p50_ms=200, latency_p95_ms=400, latency_p99_ms=400,
                error_rate=Decimal("0.002500"), quarantine_rate=Decimal("0.007500")),
        ],
    )  # fmt: skip


def test_ml_feedback_labels_chargebacks_and_confirmed_fraud_with_causal_features(spark):
    config = replace(load_index_config(), ml_feedback={"label_maturity_days": 0}).ml_feedback
    rows = [
        aggregate_row("prev", user_id="u1", event_time=ts("2026-11-19 12:00"), amount_reporting=Decimal("10.00")),
        aggregate_row("cb", user_id="u1", event_time=ts("2026-11-20 09:00"), amount_reporting=Decimal("20.00"), settlement_status="CHARGEBACK",
                      fraud_score=Decimal("0.9000"), rule_flags=["VELOCITY"], risk_score=80),
        aggregate_row("declined", user_id="u1", event_time=ts("2026-11-20 09:30"), transaction_status="DECLINED"),
        aggregate_row("confirmed", user_id="u2", event_time=ts("2026-11-20 23:00")),
        aggregate_row("clean", user_id="u3", event_time=ts("2026-11-20 01:00"), amount_reporting=None),
        aggregate_row("tomorrow", user_id="u3", event_time=ts("2026-11-21 01:00")),
    ]  # fmt: skip
    confirmed_df = spark.createDataFrame([("confirmed",), ("confirmed",), ("unknown",)], "transaction_id string")
    result = build_ml_feedback(aggregate_df(spark, rows), confirmed_df, DAY, config, "r", NOW)
    assert result.schema.fieldNames() == ML_FEEDBACK_SCHEMA.fieldNames()
    assertDataFrameEqual(
        result.select("transaction_id", "hour_of_day", "user_transaction_count_24h", "user_decline_count_24h", "user_spend_24h", "label", "label_source"),
        [
            Row(transaction_id="cb", hour_of_day=9, user_transaction_count_24h=2, user_decline_count_24h=0, user_spend_24h=Decimal("30.00"), label=1, label_source="CHARGEBACK"),
            Row(transaction_id="declined", hour_of_day=9, user_transaction_count_24h=3, user_decline_count_24h=1, user_spend_24h=Decimal("30.00"), label=0, label_source="NONE"),
            Row(transaction_id="confirmed", hour_of_day=23, user_transaction_count_24h=1, user_decline_count_24h=0, user_spend_24h=Decimal("100.00"), label=1, label_source="CONFIRMED_FRAUD"),
            Row(transaction_id="clean", hour_of_day=1, user_transaction_count_24h=1, user_decline_count_24h=0, user_spend_24h=Decimal("0.00"), label=0, label_source="NONE"),
        ],
    )  # fmt: skip


def test_ml_feedback_exports_matured_day_only(spark):
    rows = [aggregate_row("old", event_time=ts("2026-10-21 10:00")), aggregate_row("today")]
    result = build_ml_feedback(
        aggregate_df(spark, rows),
        spark.createDataFrame([], "transaction_id string"),
        DAY,
        load_index_config().ml_feedback,
        "r",
        NOW,
    )
    assert [r.transaction_id for r in result.collect()] == ["old"]
