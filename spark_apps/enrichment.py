"""Enrichment transforms shared by batch and stream (each DataFrame -> DataFrame).

* :func:`with_fx_conversion`   -- amount_reporting / fx_rate from the FX rate of the transaction date;
* :func:`with_merchant_risk`   -- merchant_risk_level from the merchant snapshot;
* :func:`with_policy`          -- the effective-dated policy in force at event_time;
* :func:`with_policy_flags`    -- policy_flags VELOCITY / GEO_BLOCK / AMOUNT_LIMIT;
* :func:`with_latest_fraud_output` -- the latest model output per transaction.

Rounding (documented in docs/batch_index.md): amount_reporting = amount * rate computed
exactly in DECIMAL(37,10), then rounded half-up to 2 decimals (DECIMAL(18,2)). A missing
rate leaves amount_reporting and fx_rate null (the reporting currency always has rate 1).
"""

from __future__ import annotations

import json
from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.masking import mask_free_text_col
from spark_apps.schemas import AMOUNT_TYPE, FX_RATE_TYPE, REPORTING_CURRENCY

POLICY_VELOCITY = "VELOCITY"
POLICY_GEO_BLOCK = "GEO_BLOCK"
POLICY_AMOUNT_LIMIT = "AMOUNT_LIMIT"
POLICY_FLAGS = (POLICY_VELOCITY, POLICY_GEO_BLOCK, POLICY_AMOUNT_LIMIT)


def fx_rate_lookup(fx_df: DataFrame) -> DataFrame:
    """One rate per (rate_date, currency) of FX_RATE_SCHEMA rows: the highest, so the join can never
    multiply rows. Columns ``rate_date``, ``_fx_currency``, ``_rate``."""
    return (
        fx_df.groupBy("rate_date", "currency")
        .agg(F.max("rate_to_reporting").alias("_rate"))
        .withColumnRenamed("currency", "_fx_currency")
    )


def with_fx_conversion(df: DataFrame, fx_df: DataFrame) -> DataFrame:
    """Add ``fx_rate`` and ``amount_reporting`` (needs event_time, amount, currency; fx_df in FX_RATE_SCHEMA).

    If fx_df holds several rows for one (date, currency) the highest rate is used.
    """
    return with_fx_rates(df, fx_rate_lookup(fx_df))


def with_fx_rates(df: DataFrame, rates_df: DataFrame) -> DataFrame:
    """:func:`with_fx_conversion` over an :func:`fx_rate_lookup` (the stream materializes it once)."""
    joined = df.join(
        F.broadcast(rates_df),
        (F.to_date(F.col("event_time")) == F.col("rate_date")) & (F.col("currency") == F.col("_fx_currency")),
        "left",
    )
    rate = F.when(F.col("currency") == REPORTING_CURRENCY, F.lit(Decimal("1")).cast(FX_RATE_TYPE)).otherwise(
        F.col("_rate").cast(FX_RATE_TYPE)
    )
    return (
        joined.withColumn("fx_rate", rate)
        .withColumn("amount_reporting", F.round(F.col("amount") * F.col("fx_rate"), 2).cast(AMOUNT_TYPE))
        .drop("rate_date", "_fx_currency", "_rate")
    )


def merchant_risk_lookup(merchants_df: DataFrame) -> DataFrame:
    """One ``merchant_risk_level`` per merchant_id (the highest of the snapshot's rows)."""
    return merchants_df.groupBy("merchant_id").agg(F.max("risk_level").alias("merchant_risk_level"))


def with_merchant_risk(df: DataFrame, merchants_df: DataFrame) -> DataFrame:
    """Add ``merchant_risk_level`` (null for an unknown merchant)."""
    return with_merchant_risk_levels(df, merchant_risk_lookup(merchants_df))


def with_merchant_risk_levels(df: DataFrame, risk_df: DataFrame) -> DataFrame:
    """:func:`with_merchant_risk` over a :func:`merchant_risk_lookup` (the stream materializes it once)."""
    return df.join(F.broadcast(risk_df), "merchant_id", "left")


def _policy_params(policy_data: str) -> dict:
    data = json.loads(policy_data)
    return {
        "velocity_per_minute": data.get("velocity_per_minute"),
        "velocity_per_5min": data.get("velocity_per_5min"),
        "blocked_countries": [str(c).upper() for c in data.get("blocked_countries") or []],
        "amount_limit": None if data.get("amount_limit") is None else Decimal(str(data["amount_limit"])),
    }


def with_policy(df: DataFrame, policies_df: DataFrame) -> DataFrame:
    """Add ``policy_id`` (the version with the latest effective_date <= event_time; null before the
    first) and its parameters ``_policy_velocity_1m``, ``_policy_velocity_5m``,
    ``_policy_blocked_countries``, ``_policy_amount_limit``.

    Policies are small reference data: they are collected to the driver and compiled into
    one CASE expression (no join, no shuffle). Ties on effective_date go to the larger policy_id.
    """
    rows = sorted(
        policies_df.select("policy_id", "policy_data", "effective_date").collect(), key=lambda r: (r.effective_date, r.policy_id)
    )
    policy_id = F.lit(None).cast("string")
    v1 = F.lit(None).cast("int")
    v5 = F.lit(None).cast("int")
    blocked = F.lit(None).cast("array<string>")
    limit = F.lit(None).cast(AMOUNT_TYPE)
    for row in rows:  # later versions override earlier ones
        params = _policy_params(row.policy_data)
        in_force = F.col("event_time") >= F.lit(row.effective_date)
        policy_id = F.when(in_force, F.lit(row.policy_id)).otherwise(policy_id)
        v1 = F.when(in_force, F.lit(params["velocity_per_minute"]).cast("int")).otherwise(v1)
        v5 = F.when(in_force, F.lit(params["velocity_per_5min"]).cast("int")).otherwise(v5)
        blocked = F.when(in_force, F.array(*[F.lit(c) for c in params["blocked_countries"]]).cast("array<string>")).otherwise(
            blocked
        )
        limit = F.when(in_force, F.lit(params["amount_limit"]).cast(AMOUNT_TYPE)).otherwise(limit)
    return (
        df.withColumn("policy_id", policy_id)
        .withColumn("_policy_velocity_1m", v1)
        .withColumn("_policy_velocity_5m", v5)
        .withColumn("_policy_blocked_countries", blocked)
        .withColumn("_policy_amount_limit", limit)
    )


def with_policy_flags(df: DataFrame) -> DataFrame:
    """Add ``policy_flags`` from the attached policy (needs the with_policy columns and
    ``card_count_1m`` / ``card_count_5m`` from fraud_rules.with_rule_signals); drops the parameters."""
    from spark_apps.fraud_rules import flags_col

    velocity = (F.col("card_count_1m") > F.col("_policy_velocity_1m")) | (F.col("card_count_5m") > F.col("_policy_velocity_5m"))
    geo_block = F.array_contains(F.col("_policy_blocked_countries"), F.col("country"))
    amount = F.col("amount_reporting") > F.col("_policy_amount_limit")
    return df.withColumn(
        "policy_flags", flags_col({POLICY_VELOCITY: velocity, POLICY_GEO_BLOCK: geo_block, POLICY_AMOUNT_LIMIT: amount})
    ).drop("_policy_velocity_1m", "_policy_velocity_5m", "_policy_blocked_countries", "_policy_amount_limit")


def latest_fraud_outputs(scores_df: DataFrame) -> DataFrame:
    """One model output per transaction: the latest inference_time (then model_version, score, explanations)."""
    order = F.struct("inference_time", "model_version", "fraud_score", F.coalesce("explanations", F.lit("")))
    latest = F.max_by(F.struct("fraud_score", "model_version", "explanations", "inference_time"), order)
    return (
        scores_df.groupBy("transaction_id")
        .agg(latest.alias("_latest"))
        .select(
            "transaction_id",
            F.col("_latest.fraud_score").alias("fraud_score"),
            F.col("_latest.model_version").alias("model_version"),
            mask_free_text_col(F.col("_latest.explanations")).alias("fraud_explanations"),  # free text: a PAN typed in
            F.col("_latest.inference_time").alias("inference_time"),
        )
    )


def with_latest_fraud_output(df: DataFrame, scores_df: DataFrame) -> DataFrame:
    """Add fraud_score, model_version, fraud_explanations, inference_time (nulls when unscored)."""
    return df.join(latest_fraud_outputs(scores_df), "transaction_id", "left")
