"""ML feedback export (BR3): features known at scoring time plus the label known on the export date."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.indexes.common import (
    DECLINED_STATUS,
    epoch_seconds,
    filter_event_dates,
    is_approved,
    money,
    select_schema,
    with_lineage,
    zero_amount,
)
from spark_apps.indexes.config import MlFeedbackConfig
from spark_apps.schemas import ML_FEEDBACK_SCHEMA


def with_user_context_24h(df: DataFrame) -> DataFrame:
    """The user's transactions, declines and approved spend in the 24 h up to and including each transaction."""
    trailing = Window.partitionBy("user_id").orderBy(epoch_seconds(F.col("event_time"))).rangeBetween(-86_399, 0)
    approved_amount = F.when(is_approved(F.col("transaction_status")), F.col("amount_reporting")).otherwise(zero_amount())
    return (
        df.withColumn("user_transaction_count_24h", F.count(F.lit(1)).over(trailing))
        .withColumn(
            "user_decline_count_24h", F.count(F.when(F.col("transaction_status") == DECLINED_STATUS, F.lit(1))).over(trailing)
        )
        .withColumn("user_spend_24h", money(F.coalesce(F.sum(approved_amount).over(trailing), zero_amount())))
    )


def with_label(df: DataFrame, confirmed_fraud_df: DataFrame) -> DataFrame:
    """label 1 for a chargeback (statement) or a transaction in the confirmed-fraud cases, else 0."""
    confirmed = confirmed_fraud_df.select("transaction_id").distinct().withColumn("is_confirmed_fraud", F.lit(True))
    is_chargeback = F.coalesce(F.col("settlement_status") == "CHARGEBACK", F.lit(False))
    return (
        df.join(confirmed, "transaction_id", "left")
        .withColumn(
            "label_source",
            F.when(is_chargeback, F.lit("CHARGEBACK"))
            .when(F.col("is_confirmed_fraud"), F.lit("CONFIRMED_FRAUD"))
            .otherwise(F.lit("NONE")),
        )
        .withColumn("label", (F.col("label_source") != "NONE").cast("int"))
    )


def build_ml_feedback(
    aggregate_df: DataFrame,
    confirmed_fraud_df: DataFrame,
    run_date: dt.date,
    config: MlFeedbackConfig,
    version: str,
    exported_at: dt.datetime,
) -> DataFrame:
    """ML_FEEDBACK_SCHEMA rows for the transactions of ``run_date - label_maturity_days``."""
    export_day = run_date - dt.timedelta(days=config.label_maturity_days)
    return (
        filter_event_dates(aggregate_df, export_day - dt.timedelta(days=1), export_day)
        .transform(with_user_context_24h)
        .transform(filter_event_dates, export_day, export_day)
        .withColumn("hour_of_day", F.hour("event_time"))
        .transform(with_label, confirmed_fraud_df)
        .transform(with_lineage, version, exported_at, "exported_at")
        .transform(select_schema, ML_FEEDBACK_SCHEMA)
    )
