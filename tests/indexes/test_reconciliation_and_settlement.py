"""Reconciliation index and settlement schedule index on explicit rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.indexes.config import load_index_config
from spark_apps.indexes.reconciliation import build_reconciliation_index
from spark_apps.indexes.settlement_schedule import build_settlement_schedule_index
from spark_apps.schemas import RECONCILIATION_INDEX_SCHEMA, SETTLEMENT_SCHEDULE_INDEX_SCHEMA
from tests.indexes.rows import DAY, aggregate_df, aggregate_row, merchant, merchants_df, statement_line, statements_df, ts

pytestmark = pytest.mark.spark
CONFIG = load_index_config()
NOW = ts("2026-11-21 04:00")
YESTERDAY = DAY - dt.timedelta(days=1)


def test_every_due_transaction_and_every_line_once_with_its_status(spark):
    internal = [aggregate_row(tid) for tid in ("m", "amt", "cur", "miss", "dup", "late", "cb", "boundary")] + [
        aggregate_row("declined", transaction_status="DECLINED"),
        aggregate_row("declined-no-line", transaction_status="DECLINED"),
        aggregate_row("refunded", transaction_status="REFUNDED"),
        # sold and settled yesterday, refunded today: the refund line is matched on its own row
        aggregate_row("old", first_seen_date=YESTERDAY, transaction_status="REFUNDED", event_time=ts("2026-11-19 10:00")),
    ]
    lines = [
        statement_line("l-m", "m"),
        statement_line("l-amt", "amt", amount=Decimal("101.00")),
        statement_line("l-cur", "cur", currency="EUR"),
        statement_line("l-dup2", "dup", settled_at=ts("2026-11-21 07:00")),
        statement_line("l-dup1", "dup"),
        statement_line("l-late", "late", settled_at=ts("2026-11-23 10:00:01")),
        statement_line("l-boundary", "boundary", settled_at=ts("2026-11-23 10:00")),
        statement_line("l-cb", "cb", settlement_status="CHARGEBACK"),
        statement_line("l-refunded", "refunded", settlement_status="REFUNDED"),
        statement_line("l-ghost", "ghost"),
        statement_line("l-noref", None),
        statement_line("l-declined", "declined"),
        statement_line("l-old", "old", settlement_status="REFUNDED"),
    ]
    result = build_reconciliation_index(
        aggregate_df(spark, internal), statements_df(spark, lines), DAY, CONFIG.reconciliation, "run-r", NOW
    )
    assert result.schema.fieldNames() == RECONCILIATION_INDEX_SCHEMA.fieldNames()
    D = Decimal
    assertDataFrameEqual(
        result.select("reconciliation_key", "transaction_id", "transaction_ref", "line_id", "match_status", "amount_difference", "days_to_settle"),
        [
            Row(reconciliation_key="txn:m", transaction_id="m", transaction_ref="m", line_id="l-m", match_status="MATCHED", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="txn:amt", transaction_id="amt", transaction_ref="amt", line_id="l-amt", match_status="AMOUNT_MISMATCH", amount_difference=D("1.00"), days_to_settle=1),
            Row(reconciliation_key="txn:cur", transaction_id="cur", transaction_ref="cur", line_id="l-cur", match_status="CURRENCY_MISMATCH", amount_difference=None, days_to_settle=1),
            Row(reconciliation_key="txn:miss", transaction_id="miss", transaction_ref=None, line_id=None, match_status="MISSING_IN_STATEMENT", amount_difference=None, days_to_settle=None),
            Row(reconciliation_key="txn:dup", transaction_id="dup", transaction_ref="dup", line_id="l-dup1", match_status="DUPLICATE_SETTLEMENT", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="line:st1/l-dup2", transaction_id="dup", transaction_ref="dup", line_id="l-dup2", match_status="DUPLICATE_SETTLEMENT", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="txn:late", transaction_id="late", transaction_ref="late", line_id="l-late", match_status="LATE_SETTLEMENT", amount_difference=D("0.00"), days_to_settle=3),
            Row(reconciliation_key="txn:boundary", transaction_id="boundary", transaction_ref="boundary", line_id="l-boundary", match_status="MATCHED", amount_difference=D("0.00"), days_to_settle=3),
            Row(reconciliation_key="txn:cb", transaction_id="cb", transaction_ref="cb", line_id="l-cb", match_status="MATCHED", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="txn:refunded", transaction_id="refunded", transaction_ref="refunded", line_id="l-refunded", match_status="MATCHED", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="line:st1/l-ghost", transaction_id=None, transaction_ref="ghost", line_id="l-ghost", match_status="MISSING_INTERNAL", amount_difference=None, days_to_settle=None),
            Row(reconciliation_key="line:st1/l-noref", transaction_id=None, transaction_ref=None, line_id="l-noref", match_status="MISSING_INTERNAL", amount_difference=None, days_to_settle=None),
            Row(reconciliation_key="line:st1/l-declined", transaction_id="declined", transaction_ref="declined", line_id="l-declined", match_status="MISSING_INTERNAL", amount_difference=D("0.00"), days_to_settle=1),
            Row(reconciliation_key="line:st1/l-old", transaction_id="old", transaction_ref="old", line_id="l-old", match_status="MATCHED", amount_difference=D("0.00"), days_to_settle=2),
        ],
    )  # fmt: skip
    reasons = dict(result.select("reconciliation_key", "break_reason").collect())
    assert reasons["txn:m"] is None
    assert reasons["txn:amt"] == "statement 101.00, internal 100.00"
    assert reasons["txn:cur"] == "statement currency EUR, internal USD"
    assert reasons["txn:dup"] == "2 SETTLED lines for one transaction"
    assert reasons["line:st1/l-declined"] == "internal transaction is DECLINED: not expected to settle"
    assert reasons["line:st1/l-noref"] == "no internal transaction (line has no reference)"


def test_no_statement_lines_leaves_every_due_transaction_missing(spark):
    result = build_reconciliation_index(
        aggregate_df(spark, [aggregate_row("t1")]), statements_df(spark, []), DAY, CONFIG.reconciliation, "r", NOW
    )
    assert result.select("match_status", "line_id").collect() == [Row(match_status="MISSING_IN_STATEMENT", line_id=None)]


def test_settlement_schedule_payout_dates_amounts_and_status(spark):
    internal = [
        aggregate_row("d1", merchant_id="daily"),
        aggregate_row("d2", merchant_id="daily"),
        aggregate_row("d3", merchant_id="daily"),
        aggregate_row("w1", merchant_id="weekly"),
        aggregate_row("mo1", merchant_id="monthly"),
        aggregate_row("neg", merchant_id="negative"),
    ]
    merchants = [
        merchant("daily", payout_schedule="DAILY", payout_delay_days=0),
        merchant("weekly", payout_schedule="WEEKLY", payout_delay_days=1),
        merchant("monthly", payout_schedule="MONTHLY", payout_delay_days=2),
        merchant("negative", payout_schedule="DAILY", payout_delay_days=1),
    ]
    lines = [
        # settled Thu 2026-11-19 (DAILY, no delay): due on the run date
        statement_line("l1", "d1", settled_at=ts("2026-11-19 06:00"), amount=Decimal("100.00"), fee=Decimal("2.90")),
        statement_line(
            "l2",
            "d2",
            settled_at=ts("2026-11-19 07:00"),
            amount=Decimal("40.00"),
            fee=Decimal("1.16"),
            settlement_status="REFUNDED",
        ),
        statement_line(
            "l3",
            "d3",
            settled_at=ts("2026-11-19 08:00"),
            amount=Decimal("10.00"),
            fee=Decimal("0.29"),
            settlement_status="CHARGEBACK",
        ),
        # Sat 2026-11-21 + 1 day = Sunday -> next Friday 2026-11-27
        statement_line("l4", "w1", settled_at=ts("2026-11-21 06:00"), amount=Decimal("50.00"), fee=Decimal("1.45")),
        # 2026-11-21 + 2 days -> 1st of December
        statement_line(
            "l5", "mo1", settled_at=ts("2026-11-21 06:00"), amount=Decimal("70.00"), fee=Decimal("2.03"), currency="EUR"
        ),
        statement_line(
            "l6",
            "neg",
            settled_at=ts("2026-11-21 06:00"),
            amount=Decimal("5.00"),
            fee=Decimal("0.50"),
            settlement_status="CHARGEBACK",
        ),
        statement_line("l7", "ghost", settled_at=ts("2026-11-21 06:00"), amount=Decimal("9.00"), fee=Decimal("0.30")),
    ]
    result = build_settlement_schedule_index(
        statements_df(spark, lines),
        aggregate_df(spark, internal),
        merchants_df(spark, merchants),
        DAY,
        CONFIG.settlement_schedule,
        "r",
        NOW,
    )
    assert result.schema.fieldNames() == SETTLEMENT_SCHEDULE_INDEX_SCHEMA.fieldNames()
    D = Decimal
    assertDataFrameEqual(
        result.select("merchant_id", "payout_schedule", "expected_payout_date", "currency", "line_count", "gross_amount", "refund_amount",
                      "chargeback_amount", "fee_amount", "net_amount", "payout_status"),
        [
            Row(merchant_id="daily", payout_schedule="DAILY", expected_payout_date=dt.date(2026, 11, 19), currency="USD", line_count=3,
                gross_amount=D("100.00"), refund_amount=D("40.00"), chargeback_amount=D("10.00"), fee_amount=D("4.35"), net_amount=D("45.65"), payout_status="DUE"),
            Row(merchant_id="weekly", payout_schedule="WEEKLY", expected_payout_date=dt.date(2026, 11, 27), currency="USD", line_count=1,
                gross_amount=D("50.00"), refund_amount=D("0.00"), chargeback_amount=D("0.00"), fee_amount=D("1.45"), net_amount=D("48.55"), payout_status="SCHEDULED"),
            Row(merchant_id="monthly", payout_schedule="MONTHLY", expected_payout_date=dt.date(2026, 12, 1), currency="EUR", line_count=1,
                gross_amount=D("70.00"), refund_amount=D("0.00"), chargeback_amount=D("0.00"), fee_amount=D("2.03"), net_amount=D("67.97"), payout_status="SCHEDULED"),
            Row(merchant_id="negative", payout_schedule="DAILY", expected_payout_date=dt.date(2026, 11, 22), currency="USD", line_count=1,
                gross_amount=D("0.00"), refund_amount=D("0.00"), chargeback_amount=D("5.00"), fee_amount=D("0.50"), net_amount=D("-5.50"), payout_status="ON_HOLD"),
            Row(merchant_id="UNATTRIBUTED", payout_schedule=None, expected_payout_date=None, currency="USD", line_count=1,
                gross_amount=D("9.00"), refund_amount=D("0.00"), chargeback_amount=D("0.00"), fee_amount=D("0.30"), net_amount=D("8.70"), payout_status="ON_HOLD"),
        ],
    )  # fmt: skip
    assert {row.statement_date for row in result.collect()} == {DAY}
