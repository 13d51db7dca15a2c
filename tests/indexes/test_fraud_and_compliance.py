"""Fraud index and compliance index on explicit aggregate rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.indexes.compliance import build_compliance_index
from spark_apps.indexes.config import load_index_config, replace
from spark_apps.indexes.fraud import build_fraud_index
from spark_apps.schemas import COMPLIANCE_INDEX_SCHEMA, FRAUD_INDEX_SCHEMA
from tests.indexes.rows import DAY, aggregate_df, aggregate_row, ts, user, users_df

pytestmark = pytest.mark.spark
CONFIG = load_index_config()
NOW = ts("2026-11-21 04:00")


def test_fraud_index_selects_threshold_or_rule_flags_with_reasons_and_actions(spark):
    rows = [
        aggregate_row(
            "rule",
            rule_flags=["VELOCITY", "CARD_TESTING"],
            risk_score=30,
            recommended_action="REQUIRE_3DS",
            policy_flags=["VELOCITY"],
        ),
        aggregate_row("at_threshold", risk_score=70, fraud_score=Decimal("0.8000"), recommended_action="ALLOW"),
        aggregate_row("below", risk_score=69, fraud_score=Decimal("0.7999")),
        aggregate_row("policy_only", policy_flags=["GEO_BLOCK"], risk_score=45),
        aggregate_row("yesterday", first_seen_date=DAY - dt.timedelta(days=1), rule_flags=["GEO_JUMP"], risk_score=90),
        # a late event: yesterday's event time, first seen today
        aggregate_row(
            "late",
            event_time=ts("2026-11-19 23:59:59"),
            rule_flags=["GEO_JUMP"],
            risk_score=90,
            recommended_action="MANUAL_REVIEW",
        ),
        aggregate_row("unscored", rule_flags=["HIGH_AMOUNT"], risk_score=25, fraud_score=None, recommended_action="BLOCK_CARD"),
    ]
    result = build_fraud_index(aggregate_df(spark, rows), DAY, CONFIG.fraud, "run-f", NOW)
    assert result.schema.fieldNames() == FRAUD_INDEX_SCHEMA.fieldNames()
    assertDataFrameEqual(
        result.select("transaction_id", "reasons", "recommended_action", "version"),
        [
            Row(
                transaction_id="rule",
                reasons=["RULE_CARD_TESTING", "RULE_VELOCITY", "POLICY_VELOCITY"],
                recommended_action="REQUIRE_3DS",
                version="run-f",
            ),
            Row(
                transaction_id="at_threshold",
                reasons=["RISK_SCORE_AT_OR_ABOVE_THRESHOLD", "ML_SCORE_HIGH"],
                recommended_action="MANUAL_REVIEW",
                version="run-f",
            ),
            Row(
                transaction_id="late",
                reasons=["RULE_GEO_JUMP", "RISK_SCORE_AT_OR_ABOVE_THRESHOLD"],
                recommended_action="MANUAL_REVIEW",
                version="run-f",
            ),
            Row(transaction_id="unscored", reasons=["RULE_HIGH_AMOUNT"], recommended_action="BLOCK_CARD", version="run-f"),
        ],
    )


def test_fraud_threshold_comes_from_config(spark):
    rows = [aggregate_row("t", risk_score=50)]
    lowered = replace(CONFIG, fraud={"risk_score_threshold": 50}).fraud
    assert build_fraud_index(aggregate_df(spark, rows), DAY, CONFIG.fraud, "r", NOW).count() == 0
    assert build_fraud_index(aggregate_df(spark, rows), DAY, lowered, "r", NOW).count() == 1


def test_compliance_flags_structuring_high_risk_country_kyc_and_keeps_lineage(spark):
    rows = [
        # two just-below amounts by u1 within 24 h (one of them the evening before): structuring
        aggregate_row(
            "s_prev",
            user_id="u1",
            event_time=ts("2026-11-19 22:00"),
            amount_reporting=Decimal("9500.00"),
            first_seen_date=DAY - dt.timedelta(days=1),
        ),
        aggregate_row("s1", user_id="u1", event_time=ts("2026-11-20 08:00"), amount_reporting=Decimal("9999.99")),
        # exactly at the threshold is reportable, so not "just below"
        aggregate_row("at", user_id="u2", event_time=ts("2026-11-20 08:00"), amount_reporting=Decimal("10000.00")),
        aggregate_row("below_margin", user_id="u2", event_time=ts("2026-11-20 09:00"), amount_reporting=Decimal("8999.99")),
        aggregate_row("alone", user_id="u3", amount_reporting=Decimal("9000.00")),
        aggregate_row("kp", user_id="u2", country="KP", policy_flags=["GEO_BLOCK"]),
        aggregate_row("pending_kyc", user_id="u4", amount_reporting=None),
        aggregate_row("no_user", user_id="ghost"),
    ]
    users = [user("u1"), user("u2"), user("u3", country="IR"), user("u4", kyc_status="PENDING")]
    result = build_compliance_index(aggregate_df(spark, rows), users_df(spark, users), DAY, CONFIG.compliance, "run-c", NOW)
    assert result.schema.fieldNames() == COMPLIANCE_INDEX_SCHEMA.fieldNames()
    assert not {"pan", "cvv", "expiry", "ip"} & set(result.columns)
    assertDataFrameEqual(
        result.select("transaction_id", "aml_flags", "requires_review", "kyc_status", "record_source", "source_version"),
        [
            Row(
                transaction_id="s1",
                aml_flags=["STRUCTURING"],
                requires_review=True,
                kyc_status="VERIFIED",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="at",
                aml_flags=[],
                requires_review=False,
                kyc_status="VERIFIED",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="below_margin",
                aml_flags=[],
                requires_review=False,
                kyc_status="VERIFIED",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="alone",
                aml_flags=["HIGH_RISK_COUNTRY"],
                requires_review=True,
                kyc_status="VERIFIED",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="kp",
                aml_flags=["HIGH_RISK_COUNTRY"],
                requires_review=True,
                kyc_status="VERIFIED",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="pending_kyc",
                aml_flags=["KYC_NOT_VERIFIED"],
                requires_review=True,
                kyc_status="PENDING",
                record_source="BATCH",
                source_version="batch-run-0",
            ),
            Row(
                transaction_id="no_user",
                aml_flags=["KYC_NOT_VERIFIED"],
                requires_review=True,
                kyc_status=None,
                record_source="BATCH",
                source_version="batch-run-0",
            ),
        ],
    )
