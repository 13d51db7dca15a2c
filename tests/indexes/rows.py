"""Explicit test rows built from the schemas: every column present, defaults overridable per test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from spark_apps.schemas import (
    AGGREGATE_INDEX_SCHEMA,
    BATCH_INDEX_SCHEMA,
    MERCHANT_SCHEMA,
    SETTLEMENT_LINE_SCHEMA,
    STREAM_INDEX_SCHEMA,
    USER_SCHEMA,
)

DAY = dt.date(2026, 11, 20)


def ts(text: str) -> dt.datetime:
    """A UTC timestamp from 'YYYY-MM-DD HH:MM[:SS]'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def indexed(transaction_id: str, **overrides) -> dict:
    row = {
        "transaction_id": transaction_id,
        "user_id": "u1",
        "merchant_id": "m1",
        "event_time": ts("2026-11-20 10:00"),
        "amount": Decimal("100.00"),
        "currency": "USD",
        "amount_reporting": Decimal("100.00"),
        "fx_rate": Decimal("1.00000000"),
        "transaction_status": "AUTHORIZED",
        "channel": "ECOM",
        "country": "US",
        "device_id": "d1",
        "ip_masked": "10.0.0.0/24",
        "card_last4": "4242",
        "card_token": "tok1",
        "card_expiry_masked": "12/**",
        "updated_at": ts("2026-11-20 10:00"),
        "merchant_risk_level": "LOW",
        "policy_id": "p1",
        "policy_flags": [],
        "fraud_score": None,
        "model_version": None,
        "fraud_explanations": None,
        "inference_time": None,
        "rule_flags": [],
        "risk_score": 0,
        "recommended_action": "ALLOW",
        "version": "batch-run",
        "ingested_at": ts("2026-11-21 01:00"),
    }
    unknown = (
        set(overrides)
        - set(row)
        - {"source_name", "kafka_partition", "kafka_offset", "produced_at"}
        - set(AGGREGATE_INDEX_SCHEMA.fieldNames())
    )
    assert not unknown, unknown
    row.update(overrides)
    return row


def batch_row(transaction_id: str, **overrides) -> dict:
    return {"source_name": "drop-1", **indexed(transaction_id, **overrides)}


def stream_row(transaction_id: str, **overrides) -> dict:
    defaults = {"version": "stream", "kafka_partition": 0, "kafka_offset": 1, "produced_at": ts("2026-11-20 10:00")}
    return indexed(transaction_id, **{**defaults, **overrides})


def aggregate_row(transaction_id: str, **overrides) -> dict:
    defaults = {
        "source_name": "drop-0",
        "record_source": "BATCH",
        "status_source": "BATCH",
        "score_source": None,
        "source_version": "batch-run-0",
        "first_seen_date": DAY,
        "settlement_status": None,
        "settlement_amount": None,
        "settlement_currency": None,
        "settlement_fee": None,
        "settled_at": None,
        "settlement_statement_id": None,
        "settlement_line_id": None,
        "settlement_source": None,
        "version": "agg-run-0",
        "merged_at": ts("2026-11-20 02:00"),
    }
    return indexed(transaction_id, **{**defaults, **overrides})


def statement_line(line_id: str, transaction_ref: str | None, **overrides) -> dict:
    row = {
        "statement_id": "st1",
        "line_id": line_id,
        "statement_source": "BANK",
        "transaction_ref": transaction_ref,
        "amount": Decimal("100.00"),
        "currency": "USD",
        "fee": Decimal("2.00"),
        "settled_at": ts("2026-11-21 06:00"),
        "settlement_status": "SETTLED",
    }
    row.update(overrides)
    return row


def merchant(merchant_id: str, **overrides) -> dict:
    row = {
        "merchant_id": merchant_id,
        "merchant_name": f"Merchant {merchant_id}",
        "risk_level": "LOW",
        "mcc": "5411",
        "country": "US",
        "payout_schedule": "DAILY",
        "payout_delay_days": 1,
    }
    row.update(overrides)
    return row


def user(user_id: str, **overrides) -> dict:
    row = {
        "user_id": user_id,
        "kyc_status": "VERIFIED",
        "risk_tier": "LOW",
        "country": "US",
        "created_at": ts("2025-01-01 00:00"),
    }
    row.update(overrides)
    return row


def frame(spark, schema, rows):
    """A DataFrame of exactly ``schema`` from row dicts (missing keys are an error)."""
    return spark.createDataFrame([tuple(row[name] for name in schema.fieldNames()) for row in rows], schema)


def batch_df(spark, rows):
    return frame(spark, BATCH_INDEX_SCHEMA, rows)


def stream_df(spark, rows):
    return frame(spark, STREAM_INDEX_SCHEMA, rows)


def aggregate_df(spark, rows):
    return frame(spark, AGGREGATE_INDEX_SCHEMA, rows)


def statements_df(spark, rows):
    return frame(spark, SETTLEMENT_LINE_SCHEMA, rows)


def merchants_df(spark, rows):
    return frame(spark, MERCHANT_SCHEMA, rows)


def users_df(spark, rows):
    return frame(spark, USER_SCHEMA, rows)
