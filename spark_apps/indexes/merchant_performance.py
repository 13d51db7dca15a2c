"""Merchant performance index: per merchant per day volume, approvals, refunds, chargebacks and anomalies."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_apps.indexes.common import (
    DECLINED_STATUS,
    count_ratio,
    event_date,
    filter_event_dates,
    is_approved,
    money,
    select_schema,
    string_array,
    with_lineage,
    zero_amount,
)
from spark_apps.indexes.config import MerchantPerformanceConfig
from spark_apps.schemas import AMOUNT_TYPE, MERCHANT_PERFORMANCE_INDEX_SCHEMA, RATIO_TYPE

VOLUME_SPIKE = "VOLUME_SPIKE"
VOLUME_DROP = "VOLUME_DROP"
CHARGEBACK_RATIO = "CHARGEBACK_RATIO"


def daily_activity(df: DataFrame) -> DataFrame:
    """Per merchant and event day: transaction, approval and decline counts and approved gross volume."""
    approved = is_approved(F.col("transaction_status"))
    return (
        df.withColumn("business_date", event_date(F.col("event_time")))
        .groupBy("merchant_id", "business_date")
        .agg(
            F.count(F.lit(1)).alias("transaction_count"),
            F.count(F.when(approved, F.lit(1))).alias("approved_count"),
            F.count(F.when(F.col("transaction_status") == DECLINED_STATUS, F.lit(1))).alias("declined_count"),
            money(F.sum(F.when(approved, F.col("amount_reporting")).otherwise(zero_amount()))).alias("gross_volume"),
        )
    )


def refunds_and_chargebacks_on(df: DataFrame, day: dt.date) -> DataFrame:
    """Per merchant: refunds and chargebacks that happened on ``day`` (whatever day the sale was).

    A refund happens when its statement line settles, or (without one) when the
    internal status turned REFUNDED; a chargeback when its statement line settles.
    Amounts are the transactions' reporting-currency values.
    """
    refund_day = F.when(F.col("settlement_status") == "REFUNDED", F.to_date("settled_at")).when(
        F.col("transaction_status") == "REFUNDED", F.to_date("updated_at")
    )
    chargeback_day = F.when(F.col("settlement_status") == "CHARGEBACK", F.to_date("settled_at"))
    is_refund = F.coalesce(refund_day == F.lit(day), F.lit(False))
    is_chargeback = F.coalesce(chargeback_day == F.lit(day), F.lit(False))
    value = F.coalesce(F.col("amount_reporting"), zero_amount())
    return (
        df.where(is_refund | is_chargeback)
        .groupBy("merchant_id")
        .agg(
            F.count(F.when(is_refund, F.lit(1))).alias("refund_count"),
            money(F.sum(F.when(is_refund, value).otherwise(zero_amount()))).alias("refund_amount"),
            F.count(F.when(is_chargeback, F.lit(1))).alias("chargeback_count"),
            money(F.sum(F.when(is_chargeback, value).otherwise(zero_amount()))).alias("chargeback_amount"),
        )
    )


def trailing_baseline(daily_df: DataFrame, run_date: dt.date, days: int) -> DataFrame:
    """Per merchant: active days, average daily volume and count over the ``days`` before ``run_date``."""
    first = run_date - dt.timedelta(days=days)
    return (
        daily_df.where((F.col("business_date") >= F.lit(first)) & (F.col("business_date") < F.lit(run_date)))
        .groupBy("merchant_id")
        .agg(
            F.count(F.lit(1)).cast("int").alias("baseline_days"),
            money(F.avg("gross_volume")).alias("baseline_average_volume"),
            money(F.avg(F.col("transaction_count").cast("decimal(20,0)"))).alias("baseline_average_count"),
        )
    )


def with_anomalies(df: DataFrame, config: MerchantPerformanceConfig) -> DataFrame:
    """Volume outside [baseline / factor, baseline x factor] with enough baseline days; chargeback ratio too high."""
    factor = F.lit(config.volume_anomaly_factor).cast(AMOUNT_TYPE)
    has_baseline = F.col("baseline_days") >= config.min_baseline_days
    spike = has_baseline & (F.col("gross_volume") > F.col("baseline_average_volume") * factor)
    drop = has_baseline & (F.col("gross_volume") * factor < F.col("baseline_average_volume"))
    too_many_chargebacks = F.coalesce(
        F.col("chargeback_ratio") > F.lit(config.chargeback_ratio_threshold).cast(RATIO_TYPE), F.lit(False)
    )
    return df.withColumn(
        "anomaly_reasons",
        string_array(
            F.when(spike, F.lit(VOLUME_SPIKE)),
            F.when(drop, F.lit(VOLUME_DROP)),
            F.when(too_many_chargebacks, F.lit(CHARGEBACK_RATIO)),
        ),
    ).withColumn("is_anomaly", F.size("anomaly_reasons") > 0)


def build_merchant_performance_index(
    aggregate_df: DataFrame,
    merchants_df: DataFrame,
    run_date: dt.date,
    config: MerchantPerformanceConfig,
    version: str,
    indexed_at: dt.datetime,
) -> DataFrame:
    """MERCHANT_PERFORMANCE_INDEX_SCHEMA rows for ``run_date``: every merchant with a sale, refund or chargeback that day.

    A merchant's first day has ``baseline_days`` 0 and no volume anomaly.
    """
    daily_df = daily_activity(filter_event_dates(aggregate_df, run_date - dt.timedelta(days=config.baseline_days), run_date))
    today_df = daily_df.where(F.col("business_date") == F.lit(run_date)).drop("business_date")
    adjustments_df = refunds_and_chargebacks_on(aggregate_df, run_date)
    merchants = merchants_df.select("merchant_id", "merchant_name", F.col("risk_level").alias("merchant_risk_level"))
    zero_count = F.lit(0).cast("long")
    return (
        today_df.join(adjustments_df, "merchant_id", "full_outer")
        .join(trailing_baseline(daily_df, run_date, config.baseline_days), "merchant_id", "left")
        .join(merchants, "merchant_id", "left")
        .select(
            "merchant_id",
            "merchant_name",
            "merchant_risk_level",
            F.lit(run_date).alias("business_date"),
            *[F.coalesce(F.col(c), zero_count).alias(c) for c in ("transaction_count", "approved_count", "declined_count")],
            F.coalesce(F.col("gross_volume"), zero_amount()).alias("gross_volume"),
            F.coalesce(F.col("refund_count"), zero_count).alias("refund_count"),
            F.coalesce(F.col("refund_amount"), zero_amount()).alias("refund_amount"),
            F.coalesce(F.col("chargeback_count"), zero_count).alias("chargeback_count"),
            F.coalesce(F.col("chargeback_amount"), zero_amount()).alias("chargeback_amount"),
            F.coalesce(F.col("baseline_days"), F.lit(0)).alias("baseline_days"),
            "baseline_average_volume",
            "baseline_average_count",
        )
        .withColumn("approval_rate", count_ratio(F.col("approved_count"), F.col("transaction_count")))
        .withColumn("chargeback_ratio", count_ratio(F.col("chargeback_count"), F.col("approved_count")))
        .withColumn(
            "average_ticket",
            F.when(F.col("approved_count") > 0, money(F.col("gross_volume") / F.col("approved_count").cast("decimal(20,0)"))),
        )
        .transform(with_anomalies, config)
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, MERCHANT_PERFORMANCE_INDEX_SCHEMA)
    )
