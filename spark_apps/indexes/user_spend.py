"""User spend index: per user, 1/7/30-day approved spend and counts, repeated declines and velocity."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.indexes.common import (
    DECLINED_STATUS,
    day_start,
    epoch_seconds,
    filter_event_dates,
    is_approved,
    money,
    select_schema,
    with_lineage,
    zero_amount,
)
from spark_apps.indexes.config import UserSpendConfig
from spark_apps.schemas import USER_SPEND_INDEX_SCHEMA

SPEND_WINDOWS_DAYS = (1, 7, 30)


def _trailing(seconds: int) -> Window:
    """The user's transactions in the ``seconds`` up to and including each one."""
    return Window.partitionBy("user_id").orderBy(epoch_seconds(F.col("event_time"))).rangeBetween(-seconds + 1, 0)


def with_trailing_counts(df: DataFrame, config: UserSpendConfig) -> DataFrame:
    """Per transaction: declines in the trailing decline window, transactions in the trailing 5 min and 1 h."""
    is_decline = (F.col("transaction_status") == DECLINED_STATUS).cast("int")
    return (
        df.withColumn("declines_in_window", F.sum(is_decline).over(_trailing(config.repeated_decline_window_hours * 3600)))
        .withColumn("transactions_5min", F.count(F.lit(1)).over(_trailing(300)))
        .withColumn("transactions_1h", F.count(F.lit(1)).over(_trailing(3600)))
    )


def _since(run_date: dt.date, days: int) -> Column:
    return F.col("event_time") >= F.lit(day_start(run_date - dt.timedelta(days=days - 1)))


def _on_day(run_date: dt.date) -> Column:
    return _since(run_date, 1)


def summarize_users(df: DataFrame, run_date: dt.date, config: UserSpendConfig) -> DataFrame:
    approved = is_approved(F.col("transaction_status"))
    on_day = _on_day(run_date)
    spend = {
        days: F.sum(F.when(approved & _since(run_date, days), F.col("amount_reporting")).otherwise(zero_amount()))
        for days in SPEND_WINDOWS_DAYS
    }
    counts = {days: F.count(F.when(approved & _since(run_date, days), F.lit(1))) for days in SPEND_WINDOWS_DAYS}
    return (
        df.groupBy("user_id")
        .agg(
            *[money(spend[days]).alias(f"spend_{days}d") for days in SPEND_WINDOWS_DAYS],
            *[counts[days].alias(f"transaction_count_{days}d") for days in SPEND_WINDOWS_DAYS],
            F.count(F.when(on_day & (F.col("transaction_status") == DECLINED_STATUS), F.lit(1))).alias("decline_count_1d"),
            F.coalesce(F.max(F.when(on_day, F.col("declines_in_window"))), F.lit(0)).cast("int").alias("max_declines_24h"),
            F.coalesce(F.max(F.when(on_day, F.col("transactions_5min"))), F.lit(0)).cast("int").alias("max_transactions_5min"),
            F.coalesce(F.max(F.when(on_day, F.col("transactions_1h"))), F.lit(0)).cast("int").alias("max_transactions_1h"),
            F.max("event_time").alias("last_transaction_at"),
        )
        .withColumn(
            "average_ticket_30d",
            F.when(
                F.col("transaction_count_30d") > 0,
                money(F.col("spend_30d") / F.col("transaction_count_30d").cast("decimal(20,0)")),
            ),
        )
        .withColumn("has_repeated_declines", F.col("max_declines_24h") >= config.repeated_decline_count)
    )


def build_user_spend_index(
    aggregate_df: DataFrame,
    users_df: DataFrame,
    run_date: dt.date,
    config: UserSpendConfig,
    version: str,
    indexed_at: dt.datetime,
) -> DataFrame:
    """USER_SPEND_INDEX_SCHEMA rows: one per user with a transaction in the 30 days up to ``run_date``.

    The aggregate index must retain at least 30 days (aggregate.retention_days).
    """
    first_day = run_date - dt.timedelta(days=max(SPEND_WINDOWS_DAYS) - 1)
    # A decline window reaching back from the first minute of run_date needs the day before as well.
    window_days = -(-config.repeated_decline_window_hours // 24)
    history_df = filter_event_dates(aggregate_df, min(first_day, run_date - dt.timedelta(days=window_days)), run_date)
    users = users_df.select("user_id", "kyc_status", "risk_tier")
    return (
        history_df.transform(with_trailing_counts, config)
        .where(F.col("event_time") >= F.lit(day_start(first_day)))
        .transform(summarize_users, run_date, config)
        .join(users, "user_id", "left")
        .withColumn("as_of_date", F.lit(run_date))
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, USER_SPEND_INDEX_SCHEMA)
    )
