"""Compliance index: KYC status, AML and policy flags, masked PII and lineage per transaction of the day."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.indexes.common import (
    epoch_seconds,
    filter_event_dates,
    filter_first_seen_on,
    select_schema,
    string_array,
    with_lineage,
)
from spark_apps.indexes.config import ComplianceConfig
from spark_apps.schemas import AMOUNT_TYPE, COMPLIANCE_INDEX_SCHEMA

STRUCTURING = "STRUCTURING"
HIGH_RISK_COUNTRY = "HIGH_RISK_COUNTRY"
KYC_NOT_VERIFIED = "KYC_NOT_VERIFIED"


def with_user_profile(df: DataFrame, users_df: DataFrame) -> DataFrame:
    users = users_df.select(
        "user_id",
        "kyc_status",
        F.col("risk_tier").alias("user_risk_tier"),
        F.col("country").alias("user_country"),
    )
    return df.join(users, "user_id", "left")


def with_just_below_threshold(df: DataFrame, config: ComplianceConfig) -> DataFrame:
    """``just_below``: an amount (reporting currency) in [threshold - margin, threshold)."""
    threshold = F.lit(config.reporting_currency_threshold).cast(AMOUNT_TYPE)
    floor = F.lit(config.reporting_currency_threshold - config.structuring_margin).cast(AMOUNT_TYPE)
    amount = F.col("amount_reporting")
    return df.withColumn("just_below", F.coalesce((amount >= floor) & (amount < threshold), F.lit(False)))


def with_structuring(df: DataFrame, config: ComplianceConfig) -> DataFrame:
    """``is_structuring``: a just-below amount with enough just-below amounts by the same user within +/- the window."""
    window_seconds = config.structuring_window_hours * 3600
    around = (
        Window.partitionBy("user_id")
        .orderBy(epoch_seconds(F.col("event_time")))
        .rangeBetween(-window_seconds + 1, window_seconds - 1)
    )
    nearby = F.sum(F.col("just_below").cast("int")).over(around)
    return df.withColumn("is_structuring", F.col("just_below") & (nearby >= config.structuring_min_count))


def with_aml_flags(df: DataFrame, config: ComplianceConfig) -> DataFrame:
    high_risk = list(config.high_risk_countries)
    in_high_risk_country = F.coalesce(F.col("country").isin(high_risk) | F.col("user_country").isin(high_risk), F.lit(False))
    return df.withColumn(
        "aml_flags",
        string_array(
            F.when(F.col("is_structuring"), F.lit(STRUCTURING)),
            F.when(in_high_risk_country, F.lit(HIGH_RISK_COUNTRY)),
            F.when(F.coalesce(F.col("kyc_status"), F.lit("")) != "VERIFIED", F.lit(KYC_NOT_VERIFIED)),
        ),
    ).withColumn("requires_review", (F.size("aml_flags") > 0) | (F.size("policy_flags") > 0))


def build_compliance_index(
    aggregate_df: DataFrame,
    users_df: DataFrame,
    run_date: dt.date,
    config: ComplianceConfig,
    version: str,
    indexed_at: dt.datetime,
) -> DataFrame:
    """COMPLIANCE_INDEX_SCHEMA rows for the transactions that entered the aggregate index on ``run_date``.

    Structuring looks at the user's just-below amounts within the window on either
    side, so the day before the run date is read too.
    """
    lookback = dt.timedelta(hours=config.structuring_window_hours)
    first_day = (dt.datetime.combine(run_date, dt.time()) - lookback).date()
    return (
        filter_event_dates(aggregate_df, first_day, run_date)
        .transform(with_user_profile, users_df)
        .transform(with_just_below_threshold, config)
        .transform(with_structuring, config)
        .transform(filter_first_seen_on, run_date)
        .transform(with_aml_flags, config)
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, COMPLIANCE_INDEX_SCHEMA)
    )
