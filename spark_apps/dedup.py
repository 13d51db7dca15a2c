"""Deduplicate transaction events: one row per transaction_id, the latest updated_at wins.

Tie-break when two records share the latest updated_at (exact resends): the smallest
content fingerprint (SHA-256 of the masked fields), then source_name, then
source_location. The winner therefore never depends on file order or partitioning, so a
rerun picks the same row.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

FINGERPRINT_FIELDS = (
    "transaction_id",
    "user_id",
    "merchant_id",
    "event_time",
    "amount",
    "currency",
    "transaction_status",
    "channel",
    "country",
    "device_id",
    "ip_masked",
    "updated_at",
    "card_last4",
    "card_token",
    "card_expiry_masked",
)


def fingerprint_col(fields: tuple[str, ...]) -> Column:
    """SHA-256 hex of the fields' text, nulls distinguished from empty strings."""
    return F.sha2(F.concat_ws("\u0001", *[F.coalesce(F.col(name).cast("string"), F.lit("\u0000")) for name in fields]), 256)


def winner_order(df: DataFrame) -> list[Column]:
    order = [
        F.col("updated_at").desc_nulls_last(),
        fingerprint_col(tuple(f for f in FINGERPRINT_FIELDS if f in df.columns)).asc(),
    ]
    return order + [F.col(name).asc_nulls_last() for name in ("source_name", "source_location") if name in df.columns]


def filter_latest_per_transaction(df: DataFrame, key: str = "transaction_id") -> DataFrame:
    """Keep one row per ``key``: the latest ``updated_at``, deterministic tie-break (see module doc)."""
    window = Window.partitionBy(key).orderBy(*winner_order(df))
    return df.withColumn("_dedup_rank", F.row_number().over(window)).filter(F.col("_dedup_rank") == 1).drop("_dedup_rank")
