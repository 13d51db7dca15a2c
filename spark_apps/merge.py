"""The merge step: stream index + batch index + settlement lines over the previous aggregate version.

Rules (BR5, seed audit requirement):

* one row per ``transaction_id``: the record with the latest ``updated_at`` supplies
  the transaction (status and every other attribute); ties go to the batch, then the
  stream, then the previous version, then the highest Kafka offset;
* the fraud score (with its model version, explanations and the rule/risk fields
  computed together with it) follows the latest ``inference_time``;
* the settlement comes from the statements and is final: the latest statement line
  per transaction (ties: CHARGEBACK over REFUNDED over SETTLED) over the previous
  version's settlement; lines of unknown transactions are left to reconciliation;
* a transaction seen by only one input is kept; ``record_source`` says which saw it and
  ``first_seen_date`` when it first entered the aggregate (reconciliation's daily set);
* previous rows are carried forward while ``event_time`` is within the retention window;
* :func:`audit_changes` lists every change of ``transaction_status``, ``fraud_score``
  or ``settlement_status`` between the previous version and the new one.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_apps.schemas import (
    AGGREGATE_INDEX_SCHEMA,
    AUDIT_TRAIL_SCHEMA,
    BATCH_INDEX_SCHEMA,
    SETTLEMENT_LINE_SCHEMA,
    STREAM_INDEX_SCHEMA,
)

# Tie-break rank of a candidate record with the same updated_at / inference_time.
_SOURCE_RANK = {"BATCH": 2, "STREAM": 1, "PREVIOUS": 0}
# Tie-break of two statement lines settled at the same instant: the later lifecycle stage wins.
_SETTLEMENT_RANK = {"CHARGEBACK": 3, "REFUNDED": 2, "SETTLED": 1}

SCORE_FIELDS = (
    "fraud_score",
    "model_version",
    "fraud_explanations",
    "inference_time",
    "rule_flags",
    "risk_score",
    "recommended_action",
)
SETTLEMENT_FIELDS = (
    "settlement_status",
    "settlement_amount",
    "settlement_currency",
    "settlement_fee",
    "settled_at",
    "settlement_statement_id",
    "settlement_line_id",
    "settlement_source",
)
# Columns a candidate record carries into the merge (besides settlement fields and bookkeeping).
_RECORD_FIELDS = tuple(f.name for f in BATCH_INDEX_SCHEMA.fields if f.name not in ("version",))


def empty_aggregate(spark) -> DataFrame:
    return spark.createDataFrame([], AGGREGATE_INDEX_SCHEMA)


def _check_columns(df: DataFrame, schema: StructType, name: str) -> None:
    missing = sorted(set(schema.fieldNames()) - set(df.columns))
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")


def _rank(mapping: dict[str, int], column: Column) -> Column:
    expr = F.lit(0)
    for value, rank in mapping.items():
        expr = F.when(column == value, F.lit(rank)).otherwise(expr)
    return expr


def _candidates(stream_df: DataFrame, batch_df: DataFrame, previous_df: DataFrame, run_date: dt.date) -> DataFrame:
    """Every input record of a transaction in one shape, with its source and tie-break keys."""
    no_settlement = [F.lit(None).cast(AGGREGATE_INDEX_SCHEMA[name].dataType).alias(name) for name in SETTLEMENT_FIELDS]
    stream = stream_df.select(
        *[F.col(c) for c in _RECORD_FIELDS if c != "source_name"],
        F.lit(None).cast("string").alias("source_name"),
        F.lit(run_date).alias("first_seen_date"),
        F.lit("STREAM").alias("candidate_source"),
        F.col("version").alias("source_version"),
        F.col("kafka_offset").alias("offset"),
        F.lit(True).alias("seen_by_stream"),
        F.lit(False).alias("seen_by_batch"),
        F.lit("STREAM").alias("carried_status_source"),
        F.lit("STREAM").alias("carried_score_source"),
        *no_settlement,
    )
    batch = batch_df.select(
        *[F.col(c) for c in _RECORD_FIELDS],
        F.lit(run_date).alias("first_seen_date"),
        F.lit("BATCH").alias("candidate_source"),
        F.col("version").alias("source_version"),
        F.lit(-1).cast("long").alias("offset"),
        F.lit(False).alias("seen_by_stream"),
        F.lit(True).alias("seen_by_batch"),
        F.lit("BATCH").alias("carried_status_source"),
        F.lit("BATCH").alias("carried_score_source"),
        *no_settlement,
    )
    previous = previous_df.select(
        *[F.col(c) for c in _RECORD_FIELDS],
        F.col("first_seen_date"),
        F.lit("PREVIOUS").alias("candidate_source"),
        F.col("source_version"),
        F.lit(-1).cast("long").alias("offset"),
        F.col("record_source").isin("STREAM", "STREAM_AND_BATCH").alias("seen_by_stream"),
        F.col("record_source").isin("BATCH", "STREAM_AND_BATCH").alias("seen_by_batch"),
        F.col("status_source").alias("carried_status_source"),
        F.col("score_source").alias("carried_score_source"),
        *[F.col(c) for c in SETTLEMENT_FIELDS],
    )
    return (
        stream.unionByName(batch).unionByName(previous).withColumn("source_rank", _rank(_SOURCE_RANK, F.col("candidate_source")))
    )


def _latest_settlement(statements_df: DataFrame, previous_df: DataFrame) -> DataFrame:
    """Per transaction, the final settlement: the latest statement line, over the previous version's."""
    lines = statements_df.where(F.col("transaction_ref").isNotNull()).select(
        F.col("transaction_ref").alias("transaction_id"),
        F.col("settlement_status"),
        F.col("amount").alias("settlement_amount"),
        F.col("currency").alias("settlement_currency"),
        F.col("fee").alias("settlement_fee"),
        F.col("settled_at"),
        F.col("statement_id").alias("settlement_statement_id"),
        F.col("line_id").alias("settlement_line_id"),
        F.col("statement_source").alias("settlement_source"),
    )
    carried = previous_df.where(F.col("settled_at").isNotNull()).select("transaction_id", *SETTLEMENT_FIELDS)
    ordering = F.struct(
        F.col("settled_at"),
        _rank(_SETTLEMENT_RANK, F.col("settlement_status")),
        F.col("settlement_statement_id"),
        F.col("settlement_line_id"),
    )
    return (
        lines.unionByName(carried)
        .groupBy("transaction_id")
        .agg(F.max_by(F.struct(*SETTLEMENT_FIELDS), ordering).alias("settlement"))
        .select("transaction_id", "settlement.*")
    )


def with_record_source(seen_by_stream: Column, seen_by_batch: Column) -> Column:
    return F.when(seen_by_stream & seen_by_batch, "STREAM_AND_BATCH").when(seen_by_stream, "STREAM").otherwise("BATCH")


def merge_aggregate(
    stream_df: DataFrame,
    batch_df: DataFrame,
    statements_df: DataFrame,
    previous_df: DataFrame | None,
    run_date: dt.date,
    version: str,
    merged_at: dt.datetime,
    retention_days: int,
) -> DataFrame:
    """The new aggregate version (AGGREGATE_INDEX_SCHEMA columns, in order)."""
    spark = stream_df.sparkSession
    previous_df = previous_df if previous_df is not None else empty_aggregate(spark)
    for df, schema, name in (
        (stream_df, STREAM_INDEX_SCHEMA, "stream index"),
        (batch_df, BATCH_INDEX_SCHEMA, "batch index"),
        (statements_df, SETTLEMENT_LINE_SCHEMA, "settlement lines"),
        (previous_df, AGGREGATE_INDEX_SCHEMA, "previous aggregate"),
    ):
        _check_columns(df, schema, name)

    cutoff = dt.datetime.combine(run_date - dt.timedelta(days=retention_days), dt.time(), tzinfo=dt.UTC)
    retained_df = previous_df.where(F.col("event_time") >= F.lit(cutoff))
    candidates_df = _candidates(stream_df, batch_df, retained_df, run_date)

    base_fields = [c for c in _RECORD_FIELDS if c not in SCORE_FIELDS]
    tie_break = [F.col("source_rank"), F.col("offset"), F.col("ingested_at"), F.col("source_version")]
    merged_df = candidates_df.groupBy("transaction_id").agg(
        F.max_by(
            F.struct(*base_fields, "source_version", F.col("candidate_source"), F.col("carried_status_source")),
            F.struct(F.col("updated_at"), *tie_break),
        ).alias("base"),
        F.max_by(
            F.struct(*SCORE_FIELDS, F.col("candidate_source"), F.col("carried_score_source")),
            F.struct(F.col("inference_time"), *tie_break),
        ).alias("score"),
        F.max(F.col("seen_by_stream")).alias("seen_by_stream"),
        F.max(F.col("seen_by_batch")).alias("seen_by_batch"),
        F.min(F.col("first_seen_date")).alias("first_seen_date"),
    )

    def source_of(struct: str, carried: str) -> Column:
        candidate = F.col(f"{struct}.candidate_source")
        return F.when(candidate == "PREVIOUS", F.col(f"{struct}.{carried}")).otherwise(candidate)

    settlement_df = _latest_settlement(statements_df, retained_df)
    return (
        merged_df.select(
            *[F.col(f"base.{c}").alias(c) for c in base_fields if c != "transaction_id"],
            F.col("transaction_id"),
            *[F.col(f"score.{c}").alias(c) for c in SCORE_FIELDS],
            with_record_source(F.col("seen_by_stream"), F.col("seen_by_batch")).alias("record_source"),
            source_of("base", "carried_status_source").alias("status_source"),
            F.when(F.col("score.inference_time").isNotNull(), source_of("score", "carried_score_source")).alias("score_source"),
            F.col("base.source_version").alias("source_version"),
            F.col("first_seen_date"),
        )
        .join(settlement_df, "transaction_id", "left")
        .withColumn("version", F.lit(version))
        .withColumn("merged_at", F.lit(merged_at).cast("timestamp"))
        .select(*AGGREGATE_INDEX_SCHEMA.fieldNames())
    )


def audit_changes(
    previous_df: DataFrame | None,
    aggregate_df: DataFrame,
    version: str,
    recorded_at: dt.datetime,
    previous_version: str | None,
) -> DataFrame:
    """AUDIT_TRAIL_SCHEMA rows: each audited field whose value differs from the previous version.

    A transaction new in this version logs its first values with ``old_value`` null.
    """
    previous_df = previous_df if previous_df is not None else empty_aggregate(aggregate_df.sparkSession)
    old_df = previous_df.select(
        "transaction_id",
        F.col("transaction_status").alias("old_transaction_status"),
        F.col("fraud_score").cast("string").alias("old_fraud_score"),
        F.col("settlement_status").alias("old_settlement_status"),
    )
    changes = F.array(
        F.struct(
            F.lit("transaction_status").alias("field"),
            F.col("old_transaction_status").alias("old_value"),
            F.col("transaction_status").alias("new_value"),
            F.col("status_source").alias("source"),
            F.col("updated_at").alias("changed_at"),
        ),
        F.struct(
            F.lit("fraud_score").alias("field"),
            F.col("old_fraud_score").alias("old_value"),
            F.col("fraud_score").cast("string").alias("new_value"),
            F.coalesce(F.col("score_source"), F.col("status_source")).alias("source"),
            F.col("inference_time").alias("changed_at"),
        ),
        F.struct(
            F.lit("settlement_status").alias("field"),
            F.col("old_settlement_status").alias("old_value"),
            F.col("settlement_status").alias("new_value"),
            F.lit("STATEMENT").alias("source"),
            F.col("settled_at").alias("changed_at"),
        ),
    )
    return (
        aggregate_df.join(old_df, "transaction_id", "left")
        .select("transaction_id", F.explode(changes).alias("change"))
        .where(~F.col("change.old_value").eqNullSafe(F.col("change.new_value")))
        .select(
            "transaction_id",
            "change.*",
            F.lit(previous_version).cast("string").alias("previous_version"),
            F.lit(version).alias("version"),
            F.lit(recorded_at).cast("timestamp").alias("recorded_at"),
        )
        .select(*AUDIT_TRAIL_SCHEMA.fieldNames())
    )
