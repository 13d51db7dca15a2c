"""Settlement schedule index: the payouts the day's statement lines feed, per merchant, payout date and currency."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_apps.indexes.common import money, select_schema, with_lineage, zero_amount
from spark_apps.indexes.config import SettlementScheduleConfig
from spark_apps.schemas import SETTLEMENT_SCHEDULE_INDEX_SCHEMA

# Statement lines whose transaction is unknown still count, under this merchant, on hold.
UNATTRIBUTED_MERCHANT = "UNATTRIBUTED"


def expected_payout_date(settlement_date: Column, schedule: Column, delay_days: Column, weekly_payout_weekday: int) -> Column:
    """The payout date of a line settled on ``settlement_date`` under the merchant's schedule.

    DAILY: settlement date + delay. WEEKLY: the first configured weekday on or after
    that. MONTHLY: the first day of a month on or after that.
    """
    earliest = F.date_add(settlement_date, delay_days)
    iso_weekday = F.dayofweek(earliest) - 1  # Spark: 1 = Sunday ... 7 = Saturday
    iso_weekday = F.when(iso_weekday == 0, F.lit(7)).otherwise(iso_weekday)
    weekly = F.date_add(earliest, (F.lit(weekly_payout_weekday) - iso_weekday + 7) % 7)
    monthly = F.when(F.dayofmonth(earliest) == 1, earliest).otherwise(F.trunc(F.add_months(earliest, 1), "month"))
    return F.when(schedule == "DAILY", earliest).when(schedule == "WEEKLY", weekly).when(schedule == "MONTHLY", monthly)


def with_line_merchant(statements_df: DataFrame, aggregate_df: DataFrame, merchants_df: DataFrame) -> DataFrame:
    """Attach the merchant (through the settled transaction) and its payout terms to each statement line."""
    owners = aggregate_df.select(F.col("transaction_id").alias("transaction_ref"), "merchant_id")
    merchants = merchants_df.select("merchant_id", "merchant_name", "payout_schedule", "payout_delay_days", F.col("risk_level"))
    return (
        statements_df.join(owners, "transaction_ref", "left")
        .withColumn("merchant_id", F.coalesce(F.col("merchant_id"), F.lit(UNATTRIBUTED_MERCHANT)))
        .join(merchants, "merchant_id", "left")
    )


def summarize_payouts(lines_df: DataFrame, run_date: dt.date, config: SettlementScheduleConfig) -> DataFrame:
    def total(status: str) -> Column:
        return money(F.sum(F.when(F.col("settlement_status") == status, F.col("amount")).otherwise(zero_amount())))

    status = F.col("settlement_status")
    return (
        lines_df.withColumn(
            "expected_payout_date",
            expected_payout_date(
                F.to_date("settled_at"), F.col("payout_schedule"), F.col("payout_delay_days"), config.weekly_payout_weekday
            ),
        )
        .withColumn("statement_date", F.lit(run_date))
        .groupBy("merchant_id", "merchant_name", "payout_schedule", "statement_date", "expected_payout_date", "currency")
        .agg(
            F.count(F.lit(1)).alias("line_count"),
            total("SETTLED").alias("gross_amount"),
            total("REFUNDED").alias("refund_amount"),
            total("CHARGEBACK").alias("chargeback_amount"),
            money(F.sum("fee")).alias("fee_amount"),
            F.count(F.when(~status.isin("SETTLED", "REFUNDED", "CHARGEBACK"), F.lit(1))).alias("unknown_status_lines"),
        )
        .withColumn(
            "net_amount", money(F.col("gross_amount") - F.col("refund_amount") - F.col("chargeback_amount") - F.col("fee_amount"))
        )
        .withColumn(
            "payout_status",
            F.when(
                F.col("expected_payout_date").isNull() | (F.col("net_amount") < 0) | (F.col("unknown_status_lines") > 0),
                F.lit("ON_HOLD"),
            )
            .when(F.col("expected_payout_date") <= F.lit(run_date), F.lit("DUE"))
            .otherwise(F.lit("SCHEDULED")),
        )
    )


def build_settlement_schedule_index(
    statements_df: DataFrame,
    aggregate_df: DataFrame,
    merchants_df: DataFrame,
    run_date: dt.date,
    config: SettlementScheduleConfig,
    version: str,
    indexed_at: dt.datetime,
) -> DataFrame:
    """SETTLEMENT_SCHEDULE_INDEX_SCHEMA rows for the statement lines of ``run_date``.

    Each day's partition holds that day's contribution; the settlement_forecast view
    sums the partitions per merchant and payout date. Net = gross - refunds -
    chargebacks - fees; a negative net, an unknown merchant or an unknown line status
    puts the payout ON_HOLD.
    """
    return (
        with_line_merchant(statements_df, aggregate_df, merchants_df)
        .transform(summarize_payouts, run_date, config)
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, SETTLEMENT_SCHEDULE_INDEX_SCHEMA)
    )
