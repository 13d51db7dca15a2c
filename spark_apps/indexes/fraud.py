"""Fraud index: the day's suspicious or high-risk transactions with reasons and a recommended action."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.indexes.common import filter_first_seen_on, select_schema, string_array, with_lineage
from spark_apps.indexes.config import FraudConfig
from spark_apps.schemas import FRAUD_INDEX_SCHEMA, RECOMMENDED_ACTIONS, SCORE_TYPE

RISK_SCORE_REASON = "RISK_SCORE_AT_OR_ABOVE_THRESHOLD"
ML_SCORE_REASON = "ML_SCORE_HIGH"


def filter_suspicious(df: DataFrame, config: FraudConfig) -> DataFrame:
    """Transactions at or above the risk threshold, or with any rule flag."""
    return df.where((F.col("risk_score") >= config.risk_score_threshold) | (F.size("rule_flags") > 0))


def with_reasons(df: DataFrame, config: FraudConfig) -> DataFrame:
    """``reasons``: RULE_<flag> per rule flag, POLICY_<flag> per policy flag, and the score thresholds hit."""
    ml_high = F.col("fraud_score") >= F.lit(config.ml_score_threshold).cast(SCORE_TYPE)
    return df.withColumn(
        "reasons",
        F.concat(
            F.transform(F.array_sort("rule_flags"), lambda flag: F.concat(F.lit("RULE_"), flag)),
            F.transform(F.array_sort("policy_flags"), lambda flag: F.concat(F.lit("POLICY_"), flag)),
            string_array(
                F.when(F.col("risk_score") >= config.risk_score_threshold, F.lit(RISK_SCORE_REASON)),
                F.when(ml_high, F.lit(ML_SCORE_REASON)),
            ),
        ),
    )


def with_review_floor(df: DataFrame) -> DataFrame:
    """Everything in the fraud index needs at least a manual review; stronger rule actions stay."""
    return df.withColumn(
        "recommended_action",
        F.when(F.col("recommended_action") == RECOMMENDED_ACTIONS[0], F.lit("MANUAL_REVIEW")).otherwise(
            F.col("recommended_action")
        ),
    )


def build_fraud_index(
    aggregate_df: DataFrame, run_date: dt.date, config: FraudConfig, version: str, indexed_at: dt.datetime
) -> DataFrame:
    """FRAUD_INDEX_SCHEMA rows for the transactions that entered the aggregate index on ``run_date``.

    Late events (yesterday's event time, today's drop) are included; each transaction is
    indexed once, on the day it arrived. Later score changes are in the audit trail.
    """
    return (
        filter_first_seen_on(aggregate_df, run_date)
        .transform(filter_suspicious, config)
        .transform(with_reasons, config)
        .transform(with_review_floor)
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, FRAUD_INDEX_SCHEMA)
    )
