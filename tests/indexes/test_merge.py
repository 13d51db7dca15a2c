"""The merge step: latest state per transaction, final settlement, provenance and the audit trail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.merge import audit_changes, merge_aggregate
from tests.indexes.rows import (
    DAY,
    aggregate_df,
    aggregate_row,
    batch_df,
    batch_row,
    statement_line,
    statements_df,
    stream_df,
    stream_row,
    ts,
)

pytestmark = pytest.mark.spark
RUN = "agg-run-1"
NOW = ts("2026-11-21 03:00")


def merge(spark, stream=(), batch=(), lines=(), previous=None, retention_days=120):
    return merge_aggregate(
        stream_df(spark, list(stream)),
        batch_df(spark, list(batch)),
        statements_df(spark, list(lines)),
        aggregate_df(spark, previous) if previous is not None else None,
        DAY,
        RUN,
        NOW,
        retention_days,
    )


def test_provenance_of_stream_only_batch_only_and_both(spark):
    result = merge(spark, stream=[stream_row("s"), stream_row("sb")], batch=[batch_row("b"), batch_row("sb")])
    assertDataFrameEqual(
        result.select("transaction_id", "record_source", "status_source", "source_name", "source_version", "version"),
        [
            Row(
                transaction_id="b",
                record_source="BATCH",
                status_source="BATCH",
                source_name="drop-1",
                source_version="batch-run",
                version=RUN,
            ),
            Row(
                transaction_id="s",
                record_source="STREAM",
                status_source="STREAM",
                source_name=None,
                source_version="stream",
                version=RUN,
            ),
            # same updated_at: the batch record wins the tie
            Row(
                transaction_id="sb",
                record_source="STREAM_AND_BATCH",
                status_source="BATCH",
                source_name="drop-1",
                source_version="batch-run",
                version=RUN,
            ),
        ],
    )
    assert result.schema.fieldNames() == aggregate_df(spark, []).schema.fieldNames()
    assert result.select("merged_at", "first_seen_date").distinct().collect() == [
        Row(merged_at=NOW.replace(tzinfo=None), first_seen_date=DAY)
    ]


def test_status_follows_latest_updated_at_and_score_follows_latest_inference_time(spark):
    stream = [
        stream_row("t1", transaction_status="AUTHORIZED", updated_at=ts("2026-11-20 10:00"), kafka_offset=5),
        stream_row(
            "t1",
            transaction_status="REFUNDED",
            updated_at=ts("2026-11-20 18:00"),
            kafka_offset=9,
            fraud_score=Decimal("0.1000"),
            model_version="m1",
            inference_time=ts("2026-11-20 10:00:01"),
            risk_score=10,
        ),
    ]
    batch = [
        batch_row(
            "t1",
            transaction_status="AUTHORIZED",
            updated_at=ts("2026-11-20 10:00"),
            fraud_score=Decimal("0.9100"),
            model_version="m2",
            inference_time=ts("2026-11-20 23:00"),
            rule_flags=["VELOCITY"],
            risk_score=91,
            recommended_action="BLOCK_CARD",
        ),
    ]
    assertDataFrameEqual(
        merge(spark, stream=stream, batch=batch).select(
            "transaction_id",
            "transaction_status",
            "updated_at",
            "status_source",
            "fraud_score",
            "model_version",
            "rule_flags",
            "risk_score",
            "recommended_action",
            "score_source",
            "record_source",
        ),
        [
            Row(
                transaction_id="t1",
                transaction_status="REFUNDED",
                updated_at=dt.datetime(2026, 11, 20, 18, 0),
                status_source="STREAM",
                fraud_score=Decimal("0.9100"),
                model_version="m2",
                rule_flags=["VELOCITY"],
                risk_score=91,
                recommended_action="BLOCK_CARD",
                score_source="BATCH",
                record_source="STREAM_AND_BATCH",
            )
        ],
    )


def test_equal_updated_at_in_the_stream_goes_to_the_highest_offset(spark):
    stream = [
        stream_row("t1", transaction_status="PENDING", kafka_offset=7),
        stream_row("t1", transaction_status="AUTHORIZED", kafka_offset=8),
    ]
    assert merge(spark, stream=stream).select("transaction_status").collect() == [Row(transaction_status="AUTHORIZED")]


def test_no_score_anywhere_leaves_score_and_score_source_null(spark):
    row = merge(spark, batch=[batch_row("t1")]).select("fraud_score", "score_source", "inference_time").collect()
    assert row == [Row(fraud_score=None, score_source=None, inference_time=None)]


def test_settlement_is_final_and_the_latest_line_wins_refund_after_settlement(spark):
    lines = [
        statement_line("l1", "t1", settlement_status="SETTLED", settled_at=ts("2026-11-20 06:00")),
        statement_line("l2", "t1", settlement_status="REFUNDED", settled_at=ts("2026-11-20 20:00"), amount=Decimal("40.00")),
        statement_line("l3", "ghost", settlement_status="SETTLED"),
    ]
    # the internal status says AUTHORIZED, the statement says REFUNDED: both kept, statement final for settlement
    result = merge(spark, batch=[batch_row("t1")], lines=lines)
    assertDataFrameEqual(
        result.select("transaction_id", "transaction_status", "settlement_status", "settlement_amount", "settlement_line_id"),
        [
            Row(
                transaction_id="t1",
                transaction_status="AUTHORIZED",
                settlement_status="REFUNDED",
                settlement_amount=Decimal("40.00"),
                settlement_line_id="l2",
            )
        ],
    )


def test_simultaneous_lines_prefer_the_later_lifecycle_stage(spark):
    lines = [
        statement_line("l1", "t1", settlement_status="CHARGEBACK"),
        statement_line("l2", "t1", settlement_status="SETTLED"),
    ]
    assert merge(spark, batch=[batch_row("t1")], lines=lines).select("settlement_status").collect() == [
        Row(settlement_status="CHARGEBACK")
    ]


def test_previous_version_is_carried_forward_and_updated(spark):
    previous = [
        aggregate_row(
            "old",
            event_time=ts("2026-11-19 10:00"),
            updated_at=ts("2026-11-19 10:00"),
            first_seen_date=dt.date(2026, 11, 19),
            settlement_status="SETTLED",
            settled_at=ts("2026-11-19 06:00"),
            settlement_line_id="l0",
            settlement_amount=Decimal("100.00"),
            settlement_currency="USD",
            settlement_fee=Decimal("2.00"),
            settlement_statement_id="st0",
            settlement_source="BANK",
            fraud_score=Decimal("0.2000"),
            inference_time=ts("2026-11-19 10:00"),
            score_source="STREAM",
            record_source="STREAM",
        ),
        aggregate_row("expired", event_time=ts("2026-07-01 10:00")),
        aggregate_row("unchanged"),
    ]
    lines = [statement_line("l9", "old", settlement_status="CHARGEBACK", settled_at=ts("2026-11-20 09:00"))]
    batch = [batch_row("old", updated_at=ts("2026-11-20 08:00"), transaction_status="REVERSED")]
    result = merge(spark, batch=batch, lines=lines, previous=previous, retention_days=120)
    assert dict(result.select("transaction_id", "first_seen_date").collect()) == {"old": dt.date(2026, 11, 19), "unchanged": DAY}
    assertDataFrameEqual(
        result.select(
            "transaction_id",
            "transaction_status",
            "status_source",
            "settlement_status",
            "fraud_score",
            "score_source",
            "record_source",
            "source_version",
        ),
        [
            Row(
                transaction_id="old",
                transaction_status="REVERSED",
                status_source="BATCH",
                settlement_status="CHARGEBACK",
                fraud_score=Decimal("0.2000"),
                score_source="STREAM",
                record_source="STREAM_AND_BATCH",
                source_version="batch-run",
            ),
            Row(
                transaction_id="unchanged",
                transaction_status="AUTHORIZED",
                status_source="BATCH",
                settlement_status=None,
                fraud_score=None,
                score_source=None,
                record_source="BATCH",
                source_version="batch-run-0",
            ),
        ],
    )


def test_an_older_statement_line_does_not_override_the_previous_settlement(spark):
    previous = [aggregate_row("t1", settlement_status="REFUNDED", settled_at=ts("2026-11-20 09:00"), settlement_line_id="l5")]
    lines = [statement_line("l1", "t1", settlement_status="SETTLED", settled_at=ts("2026-11-19 06:00"))]
    result = merge(spark, lines=lines, previous=previous)
    assert result.select("settlement_status", "settlement_line_id").collect() == [
        Row(settlement_status="REFUNDED", settlement_line_id="l5")
    ]


def test_empty_inputs_give_an_empty_aggregate(spark):
    assert merge(spark).count() == 0


def test_missing_input_column_is_a_clear_error(spark):
    with pytest.raises(ValueError, match=r"batch index: missing columns \['source_name'\]"):
        merge_aggregate(
            stream_df(spark, []),
            stream_df(spark, []).drop("kafka_partition", "kafka_offset", "produced_at"),
            statements_df(spark, []),
            None,
            DAY,
            RUN,
            NOW,
            120,
        )


def test_audit_trail_lists_every_change_and_nothing_else(spark):
    previous = [
        aggregate_row(
            "t1",
            transaction_status="AUTHORIZED",
            fraud_score=Decimal("0.2000"),
            inference_time=ts("2026-11-20 10:00"),
            score_source="STREAM",
        ),
        aggregate_row("same", fraud_score=Decimal("0.3000"), inference_time=ts("2026-11-20 10:00"), score_source="BATCH"),
    ]
    batch = [
        batch_row(
            "t1",
            transaction_status="REFUNDED",
            updated_at=ts("2026-11-20 19:00"),
            fraud_score=Decimal("0.8500"),
            inference_time=ts("2026-11-20 19:00"),
        ),
        batch_row("new", transaction_status="DECLINED"),
    ]
    lines = [statement_line("l1", "t1", settlement_status="SETTLED", settled_at=ts("2026-11-20 12:00"))]
    previous_df = aggregate_df(spark, previous)
    aggregate = merge_aggregate(
        stream_df(spark, []), batch_df(spark, batch), statements_df(spark, lines), previous_df, DAY, RUN, NOW, 120
    )
    audit = audit_changes(previous_df, aggregate, RUN, NOW, "agg-run-0")
    naive = NOW.replace(tzinfo=None)
    assertDataFrameEqual(
        audit,
        [
            Row(
                transaction_id="new",
                field="transaction_status",
                old_value=None,
                new_value="DECLINED",
                source="BATCH",
                changed_at=dt.datetime(2026, 11, 20, 10, 0),
                previous_version="agg-run-0",
                version=RUN,
                recorded_at=naive,
            ),
            Row(
                transaction_id="t1",
                field="transaction_status",
                old_value="AUTHORIZED",
                new_value="REFUNDED",
                source="BATCH",
                changed_at=dt.datetime(2026, 11, 20, 19, 0),
                previous_version="agg-run-0",
                version=RUN,
                recorded_at=naive,
            ),
            Row(
                transaction_id="t1",
                field="fraud_score",
                old_value="0.2000",
                new_value="0.8500",
                source="BATCH",
                changed_at=dt.datetime(2026, 11, 20, 19, 0),
                previous_version="agg-run-0",
                version=RUN,
                recorded_at=naive,
            ),
            Row(
                transaction_id="t1",
                field="settlement_status",
                old_value=None,
                new_value="SETTLED",
                source="STATEMENT",
                changed_at=dt.datetime(2026, 11, 20, 12, 0),
                previous_version="agg-run-0",
                version=RUN,
                recorded_at=naive,
            ),
        ],
    )


def test_audit_against_no_previous_version_logs_first_values(spark):
    aggregate = merge(spark, stream=[stream_row("t1", fraud_score=Decimal("0.5000"), inference_time=ts("2026-11-20 10:00:01"))])
    audit = audit_changes(None, aggregate, RUN, NOW, None)
    assertDataFrameEqual(
        audit.select("transaction_id", "field", "old_value", "new_value", "source", "previous_version"),
        [
            Row(
                transaction_id="t1",
                field="transaction_status",
                old_value=None,
                new_value="AUTHORIZED",
                source="STREAM",
                previous_version=None,
            ),
            Row(
                transaction_id="t1",
                field="fraud_score",
                old_value=None,
                new_value="0.5000",
                source="STREAM",
                previous_version=None,
            ),
        ],
    )
