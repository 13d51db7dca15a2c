"""Rule-based fraud signals and the risk score, shared by the batch index job and the stream.

Two layers:

* **scoring** (:func:`risk_score_col`, :func:`recommended_action_col`): pure column
  functions of flag arrays, the ML ``fraud_score`` and the card's velocity count.
  The streaming app calls exactly these, with the same configuration.
* **batch-time detection** (:func:`with_rule_signals`, :func:`with_rule_flags`,
  :func:`with_risk`): trailing windows over one day's deduplicated transactions,
  so a flag at time t depends only on transactions at or before t (the stream can
  compute the same flags with state).

Thresholds come from ``include/config/fraud_rules.yaml`` (:func:`load_rules`).
Flag names (the values of ``rule_flags``): VELOCITY, CARD_TESTING, GEO_JUMP,
HIGH_AMOUNT, DEVICE_CHURN. Policy flags (``policy_flags``, from the enrichment
step) score under ``POLICY_<flag>`` weights.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.schemas import AMOUNT_TYPE

RULES_PATH = Path(__file__).resolve().parents[1] / "include" / "config" / "fraud_rules.yaml"
RULES_PATH_ENV = "PAYMENTS_FRAUD_RULES"

VELOCITY = "VELOCITY"
CARD_TESTING = "CARD_TESTING"
GEO_JUMP = "GEO_JUMP"
HIGH_AMOUNT = "HIGH_AMOUNT"
DEVICE_CHURN = "DEVICE_CHURN"
RULE_FLAGS = (VELOCITY, CARD_TESTING, GEO_JUMP, HIGH_AMOUNT, DEVICE_CHURN)


class RulesError(ValueError):
    """The fraud rules configuration is missing a key or holds a bad value."""


@dataclass(frozen=True)
class FraudRules:
    velocity_window_seconds: int = 60
    velocity_max_transactions: int = 3
    card_testing_window_seconds: int = 60
    card_testing_small_amount: Decimal = Decimal("5.00")
    card_testing_min_transactions: int = 5
    geo_jump_max_minutes: int = 60
    high_amount_min: Decimal = Decimal("5000.00")
    device_churn_min_devices: int = 4
    ml_weight: int = 60
    flag_weights: dict[str, int] = field(default_factory=dict)
    block_card_min_velocity: int = 6
    require_3ds_min_velocity: int = 4
    manual_review_above: int = 80

    def __hash__(self) -> int:  # flag_weights is a dict; equal rules hash equal (cached columns)
        return hash((self.velocity_window_seconds, self.high_amount_min, tuple(sorted(self.flag_weights.items()))))


def parse_rules(document: dict[str, Any], source: str = "<rules>") -> FraudRules:
    """Build :class:`FraudRules` from the YAML document; raise RulesError naming the bad key."""

    def get(path: str, kind: type):
        node: Any = document
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise RulesError(f"{source}: missing key {path}")
            node = node[part]
        try:
            value = kind(str(node)) if kind is Decimal else kind(node)
        except Exception as exc:
            raise RulesError(f"{source}: {path}: {exc}") from None
        if kind in (int, Decimal) and value < 0:
            raise RulesError(f"{source}: {path}: must not be negative")
        return value

    weights = get("scoring.flag_weights", dict)
    try:
        weights = {str(k): int(v) for k, v in weights.items()}
    except (TypeError, ValueError) as exc:
        raise RulesError(f"{source}: scoring.flag_weights: {exc}") from None
    return FraudRules(
        velocity_window_seconds=get("velocity.window_seconds", int),
        velocity_max_transactions=get("velocity.max_transactions", int),
        card_testing_window_seconds=get("card_testing.window_seconds", int),
        card_testing_small_amount=get("card_testing.small_amount", Decimal),
        card_testing_min_transactions=get("card_testing.min_transactions", int),
        geo_jump_max_minutes=get("geo_jump.max_minutes", int),
        high_amount_min=get("high_amount.min_amount", Decimal),
        device_churn_min_devices=get("device_churn.min_distinct_devices", int),
        ml_weight=get("scoring.ml_weight", int),
        flag_weights=weights,
        block_card_min_velocity=get("actions.block_card_min_velocity", int),
        require_3ds_min_velocity=get("actions.require_3ds_min_velocity", int),
        manual_review_above=get("actions.manual_review_above", int),
    )


@functools.cache
def _load(path: str) -> FraudRules:
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise RulesError(f"{path}: must be a mapping")
    return parse_rules(document, source=path)


def load_rules(path: str | os.PathLike[str] | None = None) -> FraudRules:
    """The rules from ``path``, else ``$PAYMENTS_FRAUD_RULES``, else include/config/fraud_rules.yaml."""
    return _load(str(path or os.environ.get(RULES_PATH_ENV) or RULES_PATH))


# --- scoring: pure column functions (stream and batch) -----------------------------------


def risk_score_col(rule_flags: Column, policy_flags: Column, fraud_score: Column, rules: FraudRules) -> Column:
    """0-100 integer: sum of the weights of the raised flags + ml_weight * fraud_score, rounded half-up, capped.

    ``fraud_score`` may be null (no model output yet): it then adds nothing. Null flag
    arrays count as empty.
    """
    points = F.lit(Decimal(0)).cast("decimal(12,4)")
    for flag, weight in sorted(rules.flag_weights.items()):
        if flag.startswith("POLICY_"):
            raised = F.array_contains(F.coalesce(policy_flags, F.array().cast("array<string>")), flag.removeprefix("POLICY_"))
        else:
            raised = F.array_contains(F.coalesce(rule_flags, F.array().cast("array<string>")), flag)
        points = points + F.when(raised, F.lit(weight)).otherwise(F.lit(0))
    ml_points = F.coalesce(fraud_score.cast("decimal(12,4)") * F.lit(rules.ml_weight), F.lit(Decimal(0)))
    total = F.round(points + ml_points, 0).cast("int")
    return F.least(total, F.lit(100))


def recommended_action_col(risk_score: Column, velocity_count: Column, rules: FraudRules) -> Column:
    """BLOCK_CARD / REQUIRE_3DS on repeated velocity hits, MANUAL_REVIEW above the score threshold, else ALLOW."""
    velocity = F.coalesce(velocity_count, F.lit(0))
    return (
        F.when(velocity >= rules.block_card_min_velocity, F.lit("BLOCK_CARD"))
        .when(velocity >= rules.require_3ds_min_velocity, F.lit("REQUIRE_3DS"))
        .when(risk_score > rules.manual_review_above, F.lit("MANUAL_REVIEW"))
        .otherwise(F.lit("ALLOW"))
    )


def flags_col(conditions: dict[str, Column]) -> Column:
    """Array of the names whose condition is true, in the given order (nulls count as false).

    ``array_remove`` of the empty text rather than ``array_compact`` of nulls: ``array_compact``
    is a higher-order function, which has no generated code, so a projection holding one runs
    outside whole-stage code generation, and the stream then generates its code anew in every
    task of every micro-batch."""
    names = [F.when(F.coalesce(cond, F.lit(False)), F.lit(name)).otherwise(F.lit("")) for name, cond in conditions.items()]
    return F.array_remove(F.array(*names), "")


# --- batch-time detection over one day's transactions ------------------------------------


def card_key_col() -> Column:
    """The card a transaction used; transactions without a card are grouped per user."""
    return F.coalesce(F.col("card_token"), F.concat(F.lit("user:"), F.col("user_id")))


def with_rule_signals(df: DataFrame, rules: FraudRules) -> DataFrame:
    """Add the trailing-window counts the rules need.

    Needs transaction_id, event_time, user_id, card_token, device_id, country,
    amount_reporting. Adds ``velocity_count`` (card transactions in the velocity window
    ending now, this one included), ``card_count_1m`` / ``card_count_5m`` (card transactions
    in the last 60 s / 5 min, for the policy velocity limits), ``small_count`` (small charges
    in the card-testing window), ``prev_country_minutes`` (minutes since the user's previous
    transaction if it was in another country, else null) and ``distinct_devices`` (the
    user's distinct devices so far). "Previous" and "so far" follow (event_time,
    transaction_id) order.

    Two shuffles only: every card window shares one partitioning/ordering and is added in
    one select, likewise every user window.
    """
    card_micros = "_card_micros"
    by_card = Window.partitionBy("_card_key").orderBy(card_micros)  # range frames in microseconds
    by_user = Window.partitionBy("user_id").orderBy("event_time", "transaction_id")
    user_so_far = by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)

    def card_frame(seconds: int):
        return by_card.rangeBetween(-(seconds * 1_000_000 - 1), 0)

    is_small = (
        F.col("amount_reporting").isNotNull() & (F.col("amount_reporting") <= F.lit(rules.card_testing_small_amount))
    ).cast("int")
    prev_country = F.lag("country").over(by_user)
    prev_micros = F.lag(card_micros).over(by_user)
    minutes_since = (F.col(card_micros) - prev_micros).cast("double") / 60_000_000
    keyed_df = df.withColumn("_card_key", card_key_col()).withColumn(card_micros, F.unix_micros(F.col("event_time")))
    card_df = keyed_df.select(
        "*",
        F.count(F.lit(1)).over(card_frame(rules.velocity_window_seconds)).cast("int").alias("velocity_count"),
        F.count(F.lit(1)).over(card_frame(60)).cast("int").alias("card_count_1m"),
        F.count(F.lit(1)).over(card_frame(300)).cast("int").alias("card_count_5m"),
        F.sum(is_small).over(card_frame(rules.card_testing_window_seconds)).cast("int").alias("small_count"),
    )
    user_df = card_df.select(
        "*",
        F.when(prev_country.isNotNull() & F.col("country").isNotNull() & (prev_country != F.col("country")), minutes_since).alias(
            "prev_country_minutes"
        ),
        F.size(F.collect_set("device_id").over(user_so_far)).cast("int").alias("distinct_devices"),
    )
    return user_df.drop("_card_key", card_micros)


def with_rule_flags(df: DataFrame, rules: FraudRules) -> DataFrame:
    """``rule_flags`` from the signals of :func:`with_rule_signals`."""
    return df.withColumn("rule_flags", _rule_flags_col(rules))


def with_risk(df: DataFrame, rules: FraudRules) -> DataFrame:
    """``risk_score`` and ``recommended_action`` from rule_flags, policy_flags, fraud_score, velocity_count."""
    risk_score, action = _risk_cols(rules)
    return df.withColumn("risk_score", risk_score).withColumn("recommended_action", action)


# Built once per rules rather than per call: the stream scores every micro-batch, and each Column
# call is a Py4J round trip (a Column is an unresolved expression, resolved anew in each plan).
@functools.cache
def _rule_flags_col(rules: FraudRules) -> Column:
    small = F.col("amount_reporting").isNotNull() & (F.col("amount_reporting") <= F.lit(rules.card_testing_small_amount))
    return flags_col(
        {
            VELOCITY: F.col("velocity_count") > rules.velocity_max_transactions,
            CARD_TESTING: small & (F.col("small_count") >= rules.card_testing_min_transactions),
            GEO_JUMP: F.col("prev_country_minutes") <= rules.geo_jump_max_minutes,
            HIGH_AMOUNT: F.col("amount_reporting") >= F.lit(rules.high_amount_min).cast(AMOUNT_TYPE),
            DEVICE_CHURN: F.col("distinct_devices") >= rules.device_churn_min_devices,
        }
    )


@functools.cache
def _risk_cols(rules: FraudRules) -> tuple[Column, Column]:
    risk_score = risk_score_col(F.col("rule_flags"), F.col("policy_flags"), F.col("fraud_score"), rules)
    return risk_score, recommended_action_col(F.col("risk_score"), F.col("velocity_count"), rules)
