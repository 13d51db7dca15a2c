"""The business index contracts accept what the real index builders produce (no false alarms).

One small day with every reconciliation case (matched, amount and currency mismatch,
duplicate and late settlement, unknown and reference-less lines, a declined transaction's
line, a chargeback) goes through the builders in ``spark_apps.indexes``; each output is
staged with the real versioned writer and must pass its contract on DuckDB, the
reconciliation index including its balance against the aggregate index it was built from.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from spark_apps import lake
from spark_apps.indexes.compliance import build_compliance_index
from spark_apps.indexes.config import load_index_config
from spark_apps.indexes.fraud import build_fraud_index
from spark_apps.indexes.merchant_performance import build_merchant_performance_index
from spark_apps.indexes.reconciliation import build_reconciliation_index
from spark_apps.indexes.settlement_schedule import build_settlement_schedule_index
from spark_apps.indexes.user_spend import build_user_spend_index
from spark_apps.quality import verify_staged_version
from spark_apps.schemas import TABLE_SCHEMAS
from tests.indexes.rows import (
    DAY,
    aggregate_df,
    aggregate_row,
    merchant,
    merchants_df,
    statement_line,
    statements_df,
    ts,
    user,
    users_df,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]

RUN_ID = "business-run-1"
BUILT_AT = ts("2026-11-21 04:00")
CONFIG = load_index_config()


@pytest.fixture(scope="module")
def day(spark):
    internal = [aggregate_row(t) for t in ("m", "amt", "cur", "miss", "dup", "late", "cb")] + [
        aggregate_row("declined", transaction_status="DECLINED", amount=Decimal("12.50"), amount_reporting=Decimal("12.50")),
        aggregate_row("eur", currency="EUR", amount=Decimal("80.00"), amount_reporting=Decimal("86.40"), user_id="u2"),
        aggregate_row("risky", risk_score=95, recommended_action="BLOCK_CARD", rule_flags=["high_amount"], merchant_id="m2"),
    ]
    lines = [
        statement_line("l-m", "m"),
        statement_line("l-amt", "amt", amount=Decimal("101.00")),
        statement_line("l-cur", "cur", currency="EUR"),
        statement_line("l-dup1", "dup"),
        statement_line("l-dup2", "dup", settled_at=ts("2026-11-21 07:00")),
        statement_line("l-late", "late", settled_at=ts("2026-11-24 10:00")),
        statement_line("l-cb", "cb", settlement_status="CHARGEBACK", amount=Decimal("100.00")),
        statement_line("l-ghost", "ghost"),
        statement_line("l-noref", None),
        statement_line("l-declined", "declined", amount=Decimal("12.50")),
        statement_line("l-eur", "eur", currency="EUR", amount=Decimal("80.00"), fee=Decimal("1.60")),
    ]
    return {
        "aggregate": aggregate_df(spark, internal),
        "statements": statements_df(spark, lines),
        "merchants": merchants_df(spark, [merchant("m1"), merchant("m2", payout_schedule="WEEKLY", risk_level="HIGH")]),
        "users": users_df(spark, [user("u1"), user("u2", kyc_status="PENDING")]),
    }


def build(table: str, day) -> object:
    aggregate, statements, merchants, users = day["aggregate"], day["statements"], day["merchants"], day["users"]
    builders = {
        "reconciliation_index": lambda: build_reconciliation_index(
            aggregate, statements, DAY, CONFIG.reconciliation, RUN_ID, BUILT_AT
        ),
        "settlement_schedule_index": lambda: build_settlement_schedule_index(
            statements, aggregate, merchants, DAY, CONFIG.settlement_schedule, RUN_ID, BUILT_AT
        ),
        "fraud_index": lambda: build_fraud_index(aggregate, DAY, CONFIG.fraud, RUN_ID, BUILT_AT),
        "compliance_index": lambda: build_compliance_index(aggregate, users, DAY, CONFIG.compliance, RUN_ID, BUILT_AT),
        "merchant_performance_index": lambda: build_merchant_performance_index(
            aggregate, merchants, DAY, CONFIG.merchant_performance, RUN_ID, BUILT_AT
        ),
        "user_spend_index": lambda: build_user_spend_index(aggregate, users, DAY, CONFIG.user_spend, RUN_ID, BUILT_AT),
    }
    return builders[table]()


def stage(df, base, table: str) -> tuple[str, int]:
    df = df.cache()
    rows = df.count()
    return lake.write_versioned(df, str(base), table, DAY, RUN_ID, TABLE_SCHEMAS[table], manifest={"rows": rows}), rows


@pytest.mark.parametrize(
    "table",
    [
        "reconciliation_index",
        "settlement_schedule_index",
        "fraud_index",
        "compliance_index",
        "merchant_performance_index",
        "user_spend_index",
    ],
)
def test_builder_output_passes_its_contract(spark, day, tmp_path, table):
    location, rows = stage(build(table, day), tmp_path, table)
    assert rows > 0, "the scenario must give every index rows to check"
    references = {}
    if table == "reconciliation_index":
        references["aggregate_index"] = lake.write_versioned(
            day["aggregate"], str(tmp_path), "aggregate_index", DAY, "agg-run-0", TABLE_SCHEMAS["aggregate_index"]
        )
    result = verify_staged_version(table, location, engine="duckdb", references=references, now=BUILT_AT + dt.timedelta(hours=1))
    assert result.passed, result.log
