"""User spend and merchant performance indexes on explicit aggregate rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.indexes.config import load_index_config
from spark_apps.indexes.merchant_performance import build_merchant_performance_index
from spark_apps.indexes.user_spend import build_user_spend_index
from spark_apps.schemas import MERCHANT_PERFORMANCE_INDEX_SCHEMA, USER_SPEND_INDEX_SCHEMA
from tests.indexes.rows import DAY, aggregate_df, aggregate_row, merchant, merchants_df, ts, user, users_df

pytestmark = pytest.mark.spark
CONFIG = load_index_config()
NOW = ts("2026-11-21 04:00")


def spend_row(tid, user_id, when, amount, status="AUTHORIZED"):
    return aggregate_row(tid, user_id=user_id, event_time=ts(when), amount_reporting=Decimal(amount), transaction_status=status)


def test_user_spend_windows_declines_and_velocity(spark):
    rows = [
        spend_row("a1", "u1", "2026-11-20 10:00", "10.00"),
        spend_row("a2", "u1", "2026-11-20 10:02", "20.00"),
        spend_row("a3", "u1", "2026-11-20 10:04", "5.00", status="DECLINED"),
        spend_row("a4", "u1", "2026-11-15 12:00", "100.00"),
        spend_row("a5", "u1", "2026-10-25 12:00", "1000.00"),
        spend_row("a6", "u1", "2026-10-21 23:59", "9999.00"),  # 31 days back: outside every window
        # u2: 2 declines the evening before, 1 today within 24 h of them -> repeated declines
        spend_row("b1", "u2", "2026-11-19 20:00", "1.00", status="DECLINED"),
        spend_row("b2", "u2", "2026-11-19 21:00", "1.00", status="DECLINED"),
        spend_row("b3", "u2", "2026-11-20 19:59", "1.00", status="DECLINED"),
        # u3: active 10 days ago only (no spend today, still a row); refunded counts as an approved charge
        spend_row("c1", "u3", "2026-11-10 08:00", "7.50", status="REFUNDED"),
    ]
    result = build_user_spend_index(
        aggregate_df(spark, rows),
        users_df(spark, [user("u1"), user("u2", kyc_status="PENDING")]),
        DAY,
        CONFIG.user_spend,
        "r",
        NOW,
    )
    assert result.schema.fieldNames() == USER_SPEND_INDEX_SCHEMA.fieldNames()
    assertDataFrameEqual(
        result.drop("version", "indexed_at"),
        [
            Row(user_id="u1", as_of_date=DAY, spend_1d=Decimal("30.00"), spend_7d=Decimal("130.00"), spend_30d=Decimal("1130.00"),
                transaction_count_1d=2, transaction_count_7d=3, transaction_count_30d=4, average_ticket_30d=Decimal("282.50"),
                decline_count_1d=1, max_declines_24h=1, has_repeated_declines=False, max_transactions_5min=3, max_transactions_1h=3,
                last_transaction_at=dt.datetime(2026, 11, 20, 10, 4), kyc_status="VERIFIED", risk_tier="LOW"),
            Row(user_id="u2", as_of_date=DAY, spend_1d=Decimal("0.00"), spend_7d=Decimal("0.00"), spend_30d=Decimal("0.00"),
                transaction_count_1d=0, transaction_count_7d=0, transaction_count_30d=0, average_ticket_30d=None,
                decline_count_1d=1, max_declines_24h=3, has_repeated_declines=True, max_transactions_5min=1, max_transactions_1h=1,
                last_transaction_at=dt.datetime(2026, 11, 20, 19, 59), kyc_status="PENDING", risk_tier="LOW"),
            Row(user_id="u3", as_of_date=DAY, spend_1d=Decimal("0.00"), spend_7d=Decimal("0.00"), spend_30d=Decimal("7.50"),
                transaction_count_1d=0, transaction_count_7d=0, transaction_count_30d=1, average_ticket_30d=Decimal("7.50"),
                decline_count_1d=0, max_declines_24h=0, has_repeated_declines=False, max_transactions_5min=0, max_transactions_1h=0,
                last_transaction_at=dt.datetime(2026, 11, 10, 8, 0), kyc_status=None, risk_tier=None),
        ],
    )  # fmt: skip


def sale(tid, merchant_id, when, amount, status="AUTHORIZED", **extra):
    fields = {
        "event_time": ts(when),
        "updated_at": ts(when),
        "amount_reporting": Decimal(amount),
        "transaction_status": status,
        **extra,
    }
    return aggregate_row(tid, merchant_id=merchant_id, **fields)


def test_merchant_performance_counts_refunds_chargebacks_baseline_and_first_day(spark):
    history = [sale(f"h{day}", "m1", f"2026-11-{day:02d} 12:00", "100.00") for day in range(10, 20)]
    rows = history + [
        sale("t1", "m1", "2026-11-20 09:00", "400.00"),
        sale("t2", "m1", "2026-11-20 10:00", "50.00", status="DECLINED"),
        sale("t3", "m1", "2026-11-20 11:00", "1.00", status="PENDING"),
        # refund after settlement: a sale of the 12th refunded today through the statement
        sale("h-refunded", "m1", "2026-11-12 12:00", "30.00", settlement_status="REFUNDED", settled_at=ts("2026-11-20 06:00")),
        # chargeback today of an earlier sale
        sale("h-cb", "m1", "2026-11-15 12:00", "80.00", settlement_status="CHARGEBACK", settled_at=ts("2026-11-20 07:00")),
        # a chargeback on another day does not count today
        sale("h-cb-old", "m1", "2026-11-14 12:00", "80.00", settlement_status="CHARGEBACK", settled_at=ts("2026-11-19 07:00")),
        # m2: first day, one internal refund without a statement line yet
        sale("n1", "m2", "2026-11-20 12:00", "25.00", status="REFUNDED", updated_at=ts("2026-11-20 13:00")),
        # m3: no sale today, only a chargeback of an old sale
        sale("o1", "m3", "2026-11-01 12:00", "60.00", settlement_status="CHARGEBACK", settled_at=ts("2026-11-20 08:00")),
    ]
    merchants = [merchant("m1"), merchant("m2", risk_level="HIGH")]
    result = build_merchant_performance_index(
        aggregate_df(spark, rows), merchants_df(spark, merchants), DAY, CONFIG.merchant_performance, "r", NOW
    )
    assert result.schema.fieldNames() == MERCHANT_PERFORMANCE_INDEX_SCHEMA.fieldNames()
    # m1 baseline: 10 trailing days (the 12th, 14th and 15th hold two sales) -> (1000 + 30 + 80 + 80) / 10
    assertDataFrameEqual(
        result.drop("version", "indexed_at"),
        [
            Row(merchant_id="m1", merchant_name="Merchant m1", merchant_risk_level="LOW", business_date=DAY, transaction_count=3,
                approved_count=1, declined_count=1, gross_volume=Decimal("400.00"), approval_rate=Decimal("0.333333"),
                refund_count=1, refund_amount=Decimal("30.00"), chargeback_count=1, chargeback_amount=Decimal("80.00"),
                chargeback_ratio=Decimal("1.000000"), average_ticket=Decimal("400.00"), baseline_days=10,
                baseline_average_volume=Decimal("119.00"), baseline_average_count=Decimal("1.30"), is_anomaly=True,
                anomaly_reasons=["VOLUME_SPIKE", "CHARGEBACK_RATIO"]),
            Row(merchant_id="m2", merchant_name="Merchant m2", merchant_risk_level="HIGH", business_date=DAY, transaction_count=1,
                approved_count=1, declined_count=0, gross_volume=Decimal("25.00"), approval_rate=Decimal("1.000000"),
                refund_count=1, refund_amount=Decimal("25.00"), chargeback_count=0, chargeback_amount=Decimal("0.00"),
                chargeback_ratio=Decimal("0.000000"), average_ticket=Decimal("25.00"), baseline_days=0,
                baseline_average_volume=None, baseline_average_count=None, is_anomaly=False, anomaly_reasons=[]),
            Row(merchant_id="m3", merchant_name=None, merchant_risk_level=None, business_date=DAY, transaction_count=0,
                approved_count=0, declined_count=0, gross_volume=Decimal("0.00"), approval_rate=None,
                refund_count=0, refund_amount=Decimal("0.00"), chargeback_count=1, chargeback_amount=Decimal("60.00"),
                chargeback_ratio=None, average_ticket=None, baseline_days=0,
                baseline_average_volume=None, baseline_average_count=None, is_anomaly=False, anomaly_reasons=[]),
        ],
    )  # fmt: skip
