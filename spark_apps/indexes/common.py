"""Column functions and transformations shared by the business index builders."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_apps.schemas import AMOUNT_TYPE, RATIO_TYPE

# Statuses of a charge the issuer approved (a refund presupposes an approved charge).
APPROVED_STATUSES = ("AUTHORIZED", "REFUNDED")
DECLINED_STATUS = "DECLINED"


def zero_amount() -> Column:
    return F.lit(0).cast(AMOUNT_TYPE)


def is_approved(status: Column) -> Column:
    return status.isin(*APPROVED_STATUSES)


def event_date(event_time: Column) -> Column:
    """The UTC calendar day of a timestamp (the session time zone is UTC)."""
    return F.to_date(event_time)


def epoch_seconds(ts: Column) -> Column:
    return F.unix_seconds(ts)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def filter_event_dates(df: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """Rows whose event_time falls on a UTC day in [first, last]."""
    return df.where(
        (F.col("event_time") >= F.lit(day_start(first))) & (F.col("event_time") < F.lit(day_start(last + dt.timedelta(days=1))))
    )


def filter_first_seen_on(df: DataFrame, day: dt.date) -> DataFrame:
    """Transactions that entered the aggregate index on ``day``: each transaction lands in exactly one day."""
    return df.where(F.col("first_seen_date") == F.lit(day))


def money(column: Column) -> Column:
    """An exact amount rounded half-up to cents, as AMOUNT_TYPE (overflow fails under ANSI mode)."""
    return F.round(column, 2).cast(AMOUNT_TYPE)


def count_ratio(numerator: Column, denominator: Column) -> Column:
    """count / count as an exact RATIO_TYPE (rounded half-up to 6 places), null when the denominator is 0."""
    return F.when(
        denominator != 0, F.round(numerator.cast("decimal(20,0)") / denominator.cast("decimal(20,0)"), 6).cast(RATIO_TYPE)
    )


def with_lineage(df: DataFrame, version: str, at: dt.datetime, column: str) -> DataFrame:
    """Add the version and the build time every index row carries."""
    return df.withColumn("version", F.lit(version)).withColumn(column, F.lit(at).cast("timestamp"))


def select_schema(df: DataFrame, schema: StructType) -> DataFrame:
    return df.select(*schema.fieldNames())


def string_array(*items: Column) -> Column:
    """A non-null array<string> of the non-null items."""
    return F.filter(F.array(*items), lambda item: item.isNotNull())
