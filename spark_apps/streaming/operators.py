"""The stream's stateful operators, on the JVM (``jvm/stream-ops``, Spark's transformWithState).

Three passes, one per key, each an event-time ``transformWithState`` whose state expires by
timers (a micro-batch reads the keys it touches and the expired ones, never the whole state),
and each re-assigning ``produced_at`` as its output's event time so the watermark flows on:

* :func:`paired_with_signals` by transaction id: dedup within the horizon and the pairing of
  ML outputs with their transaction (``io.payments.stream.TxnSignalsProcessor``);
* :func:`with_card_counts` by card (a card shared by several users is one history):
  velocity, 1-minute / 5-minute counts, small charges (``CardRulesProcessor``);
* :func:`with_user_values` by user: minutes since a transaction in another country,
  distinct devices today (``UserRulesProcessor``).

The counts equal the batch job's trailing windows (:func:`spark_apps.fraud_rules.with_rule_signals`)
over the same transactions. Rows of other kinds (dead letters, duplicates, unmatched signals) pass
through all three untouched, so the plan is one chain and each Kafka record is read once.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from spark_apps.fraud_rules import FraudRules

SIGNAL_COLUMNS = ("fraud_score", "model_version", "fraud_explanations", "inference_time")
CARD_KEY_COLUMN = "_card_key"


def _stream_ops(df: DataFrame):
    return df.sparkSession._jvm.io.payments.stream.StreamOps


def _frame(jdf, like: DataFrame) -> DataFrame:
    return DataFrame(jdf, like.sparkSession)


def paired_with_signals(rows_df: DataFrame, signal_window_seconds: int, keep_seconds: int) -> DataFrame:
    """Rows ``txn`` (first arrival, with the latest ML output within +- the window), ``duplicate``,
    ``signal`` (a late ML output of an earlier transaction) and ``signal_unmatched``; a transaction id
    is remembered until the watermark passes its produce time + ``keep_seconds``."""
    gateway = rows_df.sparkSession.sparkContext._gateway
    columns = gateway.new_array(gateway.jvm.java.lang.String, len(SIGNAL_COLUMNS))
    for i, name in enumerate(SIGNAL_COLUMNS):
        columns[i] = name
    jdf = _stream_ops(rows_df).pairSignals(rows_df._jdf, signal_window_seconds * 1000, keep_seconds * 1000, columns)
    return _frame(jdf, rows_df)


def with_card_counts(rows_df: DataFrame, rules: FraudRules, lookback_seconds: int) -> DataFrame:
    """``velocity_count``, ``card_count_1m``, ``card_count_5m``, ``small_count`` per the card in
    :data:`CARD_KEY_COLUMN` (needs event_time, transaction_id, amount_reporting)."""
    jdf = _stream_ops(rows_df).withCardCounts(
        rows_df._jdf,
        CARD_KEY_COLUMN,
        rules.velocity_window_seconds * 1000,
        rules.card_testing_window_seconds * 1000,
        str(rules.card_testing_small_amount),
        lookback_seconds * 1000,
    )
    return _frame(jdf, rows_df)


def with_user_values(rows_df: DataFrame, rules: FraudRules, lookback_seconds: int) -> DataFrame:
    """``prev_country_minutes`` and ``distinct_devices`` per user (needs event_time, transaction_id,
    country, device_id)."""
    jdf = _stream_ops(rows_df).withUserValues(rows_df._jdf, rules.geo_jump_max_minutes * 60_000, lookback_seconds * 1000)
    return _frame(jdf, rows_df)
