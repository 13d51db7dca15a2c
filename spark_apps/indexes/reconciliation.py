"""Reconciliation index: internal transactions against the day's bank / aggregator statement lines.

Every internal transaction due for settlement (final status in
``settling_statuses``, first seen on ``run_date - statement_lag_days``) gets one row;
every statement line gets exactly one row too: the first line (by line id) of a due
transaction shares the transaction's row, every other line has its own row. Status
of a transaction/line pair, first match wins:

1. no line: MISSING_IN_STATEMENT;
2. a line without a known, settling internal transaction: MISSING_INTERNAL;
3. more than one line with the same settlement status for the transaction: DUPLICATE_SETTLEMENT;
4. currencies differ: CURRENCY_MISMATCH (no amount difference across currencies);
5. amounts differ: AMOUNT_MISMATCH (``amount_difference`` = statement - internal, exact);
6. settled more than ``late_settlement_days`` x 24 h after the transaction: LATE_SETTLEMENT;
7. otherwise MATCHED.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_apps.indexes.common import epoch_seconds, select_schema, with_lineage
from spark_apps.indexes.config import ReconciliationConfig
from spark_apps.schemas import AMOUNT_TYPE, RECONCILIATION_INDEX_SCHEMA

_INTERNAL_COLUMNS = ("transaction_id", "merchant_id", "amount", "currency", "event_time", "transaction_status")


def with_line_context(statements_df: DataFrame, aggregate_df: DataFrame, config: ReconciliationConfig) -> DataFrame:
    """Each statement line with its internal transaction (if known), duplicate count and order among its transaction's lines."""
    internal = aggregate_df.select(
        F.col("transaction_id").alias("transaction_ref"),
        F.col("transaction_id"),
        F.col("merchant_id"),
        F.col("amount").alias("internal_amount"),
        F.col("currency").alias("internal_currency"),
        F.col("event_time"),
        F.col("transaction_status"),
        F.col("transaction_status").isin(*config.settling_statuses).alias("is_settling"),
    )
    by_transaction = Window.partitionBy("transaction_ref").orderBy("line_id", "statement_id")
    same_status = Window.partitionBy("transaction_ref", "settlement_status")
    return (
        statements_df.join(internal, "transaction_ref", "left")
        .withColumn("line_order", F.when(F.col("transaction_ref").isNotNull(), F.row_number().over(by_transaction)))
        .withColumn("same_status_lines", F.when(F.col("transaction_ref").isNotNull(), F.count(F.lit(1)).over(same_status)))
        .withColumnRenamed("amount", "statement_amount")
        .withColumnRenamed("currency", "statement_currency")
    )


def match_status(config: ReconciliationConfig) -> tuple[Column, Column]:
    """(match_status, break_reason) of a row holding both sides' columns (either side may be null)."""
    has_line = F.col("line_id").isNotNull()
    seconds_to_settle = epoch_seconds(F.col("settled_at")) - epoch_seconds(F.col("event_time"))
    late_seconds = config.late_settlement_days * 86_400
    rules: list[tuple[Column, str, Column]] = [
        (~has_line, "MISSING_IN_STATEMENT", F.lit("no statement line for the transaction")),
        (
            F.col("transaction_id").isNull(),
            "MISSING_INTERNAL",
            F.concat(F.lit("no internal transaction "), F.coalesce(F.col("transaction_ref"), F.lit("(line has no reference)"))),
        ),
        (
            ~F.col("is_settling"),
            "MISSING_INTERNAL",
            F.concat(F.lit("internal transaction is "), F.col("transaction_status"), F.lit(": not expected to settle")),
        ),
        (
            F.col("same_status_lines") > 1,
            "DUPLICATE_SETTLEMENT",
            F.concat(
                F.col("same_status_lines").cast("string"),
                F.lit(" "),
                F.col("settlement_status"),
                F.lit(" lines for one transaction"),
            ),
        ),
        (
            F.col("statement_currency") != F.col("internal_currency"),
            "CURRENCY_MISMATCH",
            F.concat(F.lit("statement currency "), F.col("statement_currency"), F.lit(", internal "), F.col("internal_currency")),
        ),
        (
            F.col("statement_amount") != F.col("internal_amount"),
            "AMOUNT_MISMATCH",
            F.concat(
                F.lit("statement "),
                F.col("statement_amount").cast("string"),
                F.lit(", internal "),
                F.col("internal_amount").cast("string"),
            ),
        ),
        (
            seconds_to_settle > late_seconds,
            "LATE_SETTLEMENT",
            F.concat(F.lit("settled more than "), F.lit(str(config.late_settlement_days)), F.lit(" days after the transaction")),
        ),
    ]
    status: Column = F.lit("MATCHED")
    reason: Column = F.lit(None).cast("string")
    for condition, name, text in reversed(rules):
        status = F.when(condition, F.lit(name)).otherwise(status)
        reason = F.when(condition, text).otherwise(reason)
    return status, reason


def build_reconciliation_index(
    aggregate_df: DataFrame,
    statements_df: DataFrame,
    run_date: dt.date,
    config: ReconciliationConfig,
    version: str,
    reconciled_at: dt.datetime,
) -> DataFrame:
    """RECONCILIATION_INDEX_SCHEMA rows: one per due internal transaction and one per statement line."""
    due_date = run_date - dt.timedelta(days=config.statement_lag_days)
    due_df = aggregate_df.where(
        (F.col("first_seen_date") == F.lit(due_date)) & F.col("transaction_status").isin(*config.settling_statuses)
    ).select(*[F.col(c).alias("due_" + c) for c in _INTERNAL_COLUMNS])
    lines_df = with_line_context(statements_df, aggregate_df, config)
    due_ids = due_df.select(F.col("due_transaction_id").alias("transaction_id"), F.lit(True).alias("is_due"))
    lines_df = lines_df.join(due_ids, "transaction_id", "left").withColumn(
        "shares_transaction_row", F.coalesce(F.col("is_due"), F.lit(False)) & (F.col("line_order") == 1)
    )

    line_columns = [
        "transaction_ref",
        "statement_id",
        "line_id",
        "statement_source",
        "statement_amount",
        "statement_currency",
        "fee",
        "settled_at",
        "settlement_status",
    ]
    context_columns = [
        "transaction_id",
        "merchant_id",
        "internal_amount",
        "internal_currency",
        "event_time",
        "transaction_status",
        "is_settling",
        "same_status_lines",
    ]
    transaction_rows = due_df.join(
        lines_df.where(F.col("shares_transaction_row")).select(
            *line_columns, "same_status_lines", F.col("transaction_id").alias("due_transaction_id")
        ),
        "due_transaction_id",
        "left",
    ).select(
        *line_columns,
        F.col("due_transaction_id").alias("transaction_id"),
        F.col("due_merchant_id").alias("merchant_id"),
        F.col("due_amount").alias("internal_amount"),
        F.col("due_currency").alias("internal_currency"),
        F.col("due_event_time").alias("event_time"),
        F.col("due_transaction_status").alias("transaction_status"),
        F.lit(True).alias("is_settling"),
        "same_status_lines",
        F.concat(F.lit("txn:"), F.col("due_transaction_id")).alias("reconciliation_key"),
    )
    line_rows = lines_df.where(~F.col("shares_transaction_row")).select(
        *line_columns,
        *context_columns,
        F.concat(F.lit("line:"), F.col("statement_id"), F.lit("/"), F.col("line_id")).alias("reconciliation_key"),
    )
    status, reason = match_status(config)
    same_currency = F.col("statement_currency") == F.col("internal_currency")
    return (
        transaction_rows.unionByName(line_rows)
        .withColumn("match_status", status)
        .withColumn("break_reason", reason)
        .withColumn(
            "amount_difference",
            F.when(same_currency, (F.col("statement_amount") - F.col("internal_amount")).cast(AMOUNT_TYPE)),
        )
        .withColumn("days_to_settle", F.datediff(F.to_date("settled_at"), F.to_date("event_time")))
        .transform(with_lineage, version, reconciled_at, "reconciled_at")
        .transform(select_schema, RECONCILIATION_INDEX_SCHEMA)
    )
