"""Fraud rules: configuration loading, scoring column functions, trailing-window rule flags."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_apps.fraud_rules import (
    RULES_PATH,
    RulesError,
    load_rules,
    parse_rules,
    recommended_action_col,
    risk_score_col,
    with_risk,
    with_rule_flags,
    with_rule_signals,
)

pytestmark = pytest.mark.spark
RULES = load_rules()
T0 = dt.datetime(2026, 11, 21, 10, 0, 0)


def test_shipped_rules_load_and_bad_rules_are_named():
    assert RULES.velocity_max_transactions == 3 and RULES.high_amount_min == Decimal("5000.00")
    assert RULES.flag_weights["CARD_TESTING"] == 40
    document = yaml.safe_load(RULES_PATH.read_text())
    del document["geo_jump"]["max_minutes"]
    with pytest.raises(RulesError, match="missing key geo_jump.max_minutes"):
        parse_rules(document)
    document = yaml.safe_load(RULES_PATH.read_text())
    document["velocity"]["max_transactions"] = -1
    with pytest.raises(RulesError, match="velocity.max_transactions: must not be negative"):
        parse_rules(document)


def test_risk_score_and_recommended_action(spark):
    df = spark.createDataFrame(
        [
            ("none", [], [], None, 1),
            ("ml-only", [], [], Decimal("0.5000"), 1),  # 30
            ("ml-max", [], [], Decimal("1.0000"), 1),  # 60
            ("geo-block", [], ["GEO_BLOCK"], Decimal("0.9000"), 1),  # 45 + 54 = 99 -> review
            ("capped", ["CARD_TESTING", "VELOCITY", "HIGH_AMOUNT"], ["AMOUNT_LIMIT"], Decimal("0.9900"), 6),  # 164 -> 100; block
            ("3ds", ["VELOCITY"], [], Decimal("0.0100"), 4),  # 25.6 -> 26
            ("null-flags", None, None, Decimal("0.0125"), None),  # 0.75 -> 1 (half up)
        ],
        "id string, rule_flags array<string>, policy_flags array<string>, fraud_score decimal(5,4), velocity int",
    )
    score = risk_score_col(F.col("rule_flags"), F.col("policy_flags"), F.col("fraud_score"), RULES)
    out_df = df.select("id", score.alias("risk"), recommended_action_col(score, F.col("velocity"), RULES).alias("action"))
    assertDataFrameEqual(
        out_df,
        [
            ("none", 0, "ALLOW"),
            ("ml-only", 30, "ALLOW"),
            ("ml-max", 60, "ALLOW"),
            ("geo-block", 99, "MANUAL_REVIEW"),
            ("capped", 100, "BLOCK_CARD"),
            ("3ds", 26, "REQUIRE_3DS"),
            ("null-flags", 1, "ALLOW"),
        ],
    )


def signal_rows():
    rows = []
    # card c1: six 1.00 charges 5 s apart (card testing), then one 70 s later (window has moved on)
    for i in range(6):
        rows.append((f"ct{i}", "u1", "c1", "dev1", "US", T0 + dt.timedelta(seconds=5 * i), Decimal("1.00")))
    rows.append(("ct-late", "u1", "c1", "dev1", "US", T0 + dt.timedelta(seconds=95), Decimal("1.00")))
    # user u2: US then FR 20 minutes later (geo jump), then FR again 2 hours later (no jump)
    rows += [
        ("g1", "u2", "c2", "dev2", "US", T0, Decimal("50.00")),
        ("g2", "u2", "c2", "dev2", "FR", T0 + dt.timedelta(minutes=20), Decimal("50.00")),
    ]
    rows += [("g3", "u2", "c2", "dev2", "US", T0 + dt.timedelta(hours=3), Decimal("50.00"))]
    # user u3: four devices over the day; one high amount; a card-less transaction
    for i in range(4):
        rows.append(
            (
                f"d{i}",
                "u3",
                "c3",
                f"dev3-{i}",
                "GB",
                T0 + dt.timedelta(hours=i),
                Decimal("20.00") if i < 3 else Decimal("5000.00"),
            )
        )
    rows.append(("nocard", "u4", None, None, None, T0, None))
    return rows


def test_rule_signals_and_flags_over_trailing_windows(spark):
    df = spark.createDataFrame(
        signal_rows(),
        "transaction_id string, user_id string, card_token string, device_id string, country string, event_time timestamp, amount_reporting decimal(18,2)",
    )
    out_df = df.transform(with_rule_signals, RULES).transform(with_rule_flags, RULES)
    got = {r.transaction_id: (r.velocity_count, r.rule_flags) for r in out_df.collect()}
    expected = {
        "ct0": (1, []),
        "ct1": (2, []),
        "ct2": (3, []),
        "ct3": (4, ["VELOCITY"]),
        "ct4": (5, ["VELOCITY", "CARD_TESTING"]),
        "ct5": (6, ["VELOCITY", "CARD_TESTING"]),
        "ct-late": (1, []),
        "g1": (1, []),
        "g2": (1, ["GEO_JUMP"]),
        "g3": (1, []),
        "d0": (1, []),
        "d1": (1, []),
        "d2": (1, []),
        "d3": (1, ["HIGH_AMOUNT", "DEVICE_CHURN"]),
        "nocard": (1, []),
    }
    assert got == expected


def test_thresholds_come_from_the_configuration(spark):
    strict = dataclasses.replace(RULES, velocity_max_transactions=1, geo_jump_max_minutes=10)
    df = spark.createDataFrame(
        signal_rows(),
        "transaction_id string, user_id string, card_token string, device_id string, country string, event_time timestamp, amount_reporting decimal(18,2)",
    )
    out_df = (
        df.transform(with_rule_signals, strict)
        .transform(with_rule_flags, strict)
        .filter(F.col("transaction_id").isin("ct1", "g2"))
    )
    assertDataFrameEqual(out_df.select("transaction_id", "rule_flags"), [("ct1", ["VELOCITY"]), ("g2", [])])


def test_with_risk_adds_score_and_action(spark):
    df = spark.createDataFrame(
        [(["VELOCITY"], ["VELOCITY"], Decimal("0.9000"), 6)],
        "rule_flags array<string>, policy_flags array<string>, fraud_score decimal(5,4), velocity_count int",
    )
    assertDataFrameEqual(with_risk(df, RULES).select("risk_score", "recommended_action"), [(89, "BLOCK_CARD")])
