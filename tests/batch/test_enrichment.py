"""Enrichment transforms on explicit rows: FX, merchant risk, effective-dated policy + flags, latest fraud output."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps.enrichment import with_fx_conversion, with_latest_fraud_output, with_merchant_risk, with_policy, with_policy_flags
from spark_apps.schemas import FRAUD_MODEL_OUTPUT_SCHEMA, FX_RATE_SCHEMA, MERCHANT_SCHEMA, POLICY_SCHEMA

pytestmark = pytest.mark.spark
D = dt.date(2026, 11, 21)
T = dt.datetime(2026, 11, 21, 10, 0)
TXN = "transaction_id string, event_time timestamp, amount decimal(18,2), currency string"


def test_fx_conversion_uses_the_transaction_date_rate_and_rounds_half_up(spark):
    fx_df = spark.createDataFrame(
        [
            (D, "EUR", Decimal("1.08000000")),
            (D - dt.timedelta(days=1), "EUR", Decimal("2.00000000")),
            (D, "JPY", Decimal("0.00671234")),
            (D, "GBP", Decimal("1.33333333")),
        ],
        FX_RATE_SCHEMA,
    )
    txn_df = spark.createDataFrame(
        [
            ("eur", T, Decimal("10.05"), "EUR"),  # 10.854 -> 10.85
            ("eur-late", T - dt.timedelta(days=1), Decimal("10.00"), "EUR"),  # yesterday's rate
            ("jpy", T, Decimal("1500.00"), "JPY"),  # 10.06851 -> 10.07
            ("gbp", T, Decimal("0.03"), "GBP"),  # 0.0399999999 -> 0.04
            ("half", T, Decimal("0.15"), "GBP"),  # 0.1999999995 -> 0.20
            ("usd", T, Decimal("7.77"), "USD"),  # no USD row: the reporting currency is 1
            ("no-rate", T, Decimal("5.00"), "CHF"),
        ],
        TXN,
    )
    out_df = with_fx_conversion(txn_df, fx_df).select("transaction_id", "fx_rate", "amount_reporting")
    assertDataFrameEqual(
        out_df,
        [
            ("eur", Decimal("1.08000000"), Decimal("10.85")),
            ("eur-late", Decimal("2.00000000"), Decimal("20.00")),
            ("jpy", Decimal("0.00671234"), Decimal("10.07")),
            ("gbp", Decimal("1.33333333"), Decimal("0.04")),
            ("half", Decimal("1.33333333"), Decimal("0.20")),
            ("usd", Decimal("1.00000000"), Decimal("7.77")),
            ("no-rate", None, None),
        ],
    )


def test_half_up_rounding_of_an_exact_half_cent(spark):
    fx_df = spark.createDataFrame([(D, "EUR", Decimal("0.50000000"))], FX_RATE_SCHEMA)
    out_df = with_fx_conversion(
        spark.createDataFrame([("a", T, Decimal("0.01"), "EUR"), ("b", T, Decimal("0.03"), "EUR")], TXN), fx_df
    )
    assertDataFrameEqual(out_df.select("transaction_id", "amount_reporting"), [("a", Decimal("0.01")), ("b", Decimal("0.02"))])


def test_merchant_risk_level_and_unknown_merchant(spark):
    merchants_df = spark.createDataFrame([("m1", "Shop", "HIGH", "5411", "US", "DAILY", 1)], MERCHANT_SCHEMA)
    txn_df = spark.createDataFrame([("t1", "m1"), ("t2", "m-unknown")], "transaction_id string, merchant_id string")
    assertDataFrameEqual(
        with_merchant_risk(txn_df, merchants_df).select("transaction_id", "merchant_risk_level"), [("t1", "HIGH"), ("t2", None)]
    )


def policy_rows():
    v1 = {"velocity_per_minute": 3, "velocity_per_5min": 10, "blocked_countries": ["KP"], "amount_limit": "5000.00"}
    v2 = {"velocity_per_minute": 2, "velocity_per_5min": 4, "blocked_countries": ["KP", "IR"], "amount_limit": "100.00"}
    return [
        ("p1", "base", json.dumps(v1), dt.datetime(2026, 1, 1)),
        ("p2", "tight", json.dumps(v2), dt.datetime(2026, 11, 21, 12, 0)),
    ]


def test_policy_in_force_at_event_time_and_its_flags(spark):
    policies_df = spark.createDataFrame(policy_rows(), POLICY_SCHEMA)
    noon = dt.datetime(2026, 11, 21, 12, 0)
    rows = [
        ("before-any", dt.datetime(2025, 6, 1), "US", Decimal("9999.00"), 9, 9),
        ("morning-ok", noon - dt.timedelta(seconds=1), "IR", Decimal("4000.00"), 3, 10),
        ("morning-all", noon - dt.timedelta(hours=1), "KP", Decimal("5000.01"), 4, 1),
        ("noon-exact", noon, "IR", Decimal("100.00"), 1, 5),
        ("afternoon-null", noon + dt.timedelta(hours=1), None, None, 1, 1),
    ]
    txn_df = spark.createDataFrame(
        rows,
        "transaction_id string, event_time timestamp, country string, amount_reporting decimal(18,2), card_count_1m int, card_count_5m int",
    )
    out_df = with_policy(txn_df, policies_df).transform(with_policy_flags).select("transaction_id", "policy_id", "policy_flags")
    assertDataFrameEqual(
        out_df,
        [
            ("before-any", None, []),
            ("morning-ok", "p1", []),
            ("morning-all", "p1", ["VELOCITY", "GEO_BLOCK", "AMOUNT_LIMIT"]),
            ("noon-exact", "p2", ["VELOCITY", "GEO_BLOCK"]),
            ("afternoon-null", "p2", []),
        ],
    )


def test_latest_fraud_output_per_transaction(spark):
    scores_df = spark.createDataFrame(
        [
            ("v1", "t1", Decimal("0.1000"), '{"a":1}', dt.datetime(2026, 11, 21, 10, 0, 1)),
            ("v2", "t1", Decimal("0.9000"), '{"b":2}', dt.datetime(2026, 11, 21, 11, 0, 0)),
            ("v1", "t2", Decimal("0.2000"), None, dt.datetime(2026, 11, 21, 10, 0, 1)),
        ],
        FRAUD_MODEL_OUTPUT_SCHEMA,
    )
    txn_df = spark.createDataFrame([("t1",), ("t2",), ("t3",)], "transaction_id string")
    assertDataFrameEqual(
        with_latest_fraud_output(txn_df, scores_df),
        [
            ("t1", Decimal("0.9000"), "v2", '{"b":2}', dt.datetime(2026, 11, 21, 11, 0, 0)),
            ("t2", Decimal("0.2000"), "v1", None, dt.datetime(2026, 11, 21, 10, 0, 1)),
            ("t3", None, None, None, None),
        ],
    )


def test_a_card_number_typed_into_a_model_explanation_is_masked(spark):
    """ML explanations are free text: a card number (grouped or not) and a named CVV written into one
    never reach the index."""
    scores_df = spark.createDataFrame(
        [("v3", "t1", Decimal("0.8000"), "analyst note: card 4111 1111-1111 1111, cvv2=999", dt.datetime(2026, 11, 21, 10))],
        FRAUD_MODEL_OUTPUT_SCHEMA,
    )
    txn_df = spark.createDataFrame([("t1",)], "transaction_id string")
    assertDataFrameEqual(
        with_latest_fraud_output(txn_df, scores_df).select("transaction_id", "fraud_explanations"),
        [("t1", "analyst note: card [pan ****1111], cvv2=***")],
    )
