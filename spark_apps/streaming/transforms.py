"""The stream index pipeline: one streaming plan, built once, from Kafka records to scored rows.

:func:`build_stream` is one chain, so each Kafka record is read, parsed and masked once and
every record is accounted for (``row_kind`` of each output row)::

    transactions topic -> parse + validate (spark_apps.validation) + future and late checks + mask
        txn          a valid, on-time transaction (card data masked)
        dead_letter  invalid, in the future (event time more than the clock-skew allowance after
                     the produce time: ``future_event_time``) or later than the late bound
                     (``late``), masked
    fraud-signals topic -> parse + validate
        signal       a valid ML output;   dead_letter  an invalid one
    -> the watermark on produced_at (the Kafka produce time of the transactions)
    -> by transaction id (JVM, operators.paired_with_signals): first arrival ``txn`` with its ML
       output so far, ``duplicate``, ``signal`` (late ML output of an earlier transaction),
       ``signal_unmatched``
    -> FX (amount_reporting)
    -> by card (JVM, operators.with_card_counts) -> by user (JVM, operators.with_user_values)
    -> merchant risk, policy, policy flags, rule flags, risk and action (the batch job's code)
    -> output columns (:func:`with_output_columns`): the index row, the alert message, the
       dead-letter message; the micro-batch writer (spark_apps.streaming.writer) sorts them out.

Reference data (FX, merchants, policies) are static frames in the plan; the job restarts the
query when a newer day of them lands (spark_apps.jobs.stream_index).

Lateness is judged per record from its Kafka produce timestamp (deterministic, so a replayed
batch classifies it the same way, and a backlog read after an outage is not mistaken for late
data). The watermark trails the newest produce time by half the dedup horizon
(:attr:`StreamSettings.watermark_delay_seconds`); a transaction id is remembered until it passes
the id's produce time + that delay, so duplicates are caught for the whole horizon.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_apps.enrichment import POLICY_FLAGS, with_fx_rates, with_merchant_risk_levels, with_policy, with_policy_flags
from spark_apps.fraud_rules import FraudRules, card_key_col, with_risk, with_rule_flags
from spark_apps.masking import mask_card_numbers_col, mask_free_text_col, mask_payload_text_col, with_masked_card_fields
from spark_apps.schemas import (
    FRAUD_ALERT_SCHEMA,
    FRAUD_MODEL_OUTPUT_SCHEMA,
    MAX_FIELD_LENGTH,
    QUARANTINE_SCHEMA,
    RAW_TRANSACTION_FIELDS,
    SCORE_TYPE,
    STREAM_INDEX_SCHEMA,
    Reason,
)
from spark_apps.streaming.operators import (
    CARD_KEY_COLUMN,
    paired_with_signals,
    with_card_counts,
    with_user_values,
)
from spark_apps.validation import (
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    SOURCE_COLUMNS,
    event_time_text_col,
    parse_json_events,
    payload_masked_col,
    reason_detail_col,
    valid_event_columns,
    with_source_columns,
    with_validation,
)

ROW_TXN = "txn"
ROW_SIGNAL = "signal"
ROW_DEAD_LETTER = "dead_letter"
ROW_DUPLICATE = "duplicate"
ROW_SIGNAL_UNMATCHED = "signal_unmatched"
ROW_KINDS = (ROW_TXN, ROW_SIGNAL, ROW_DEAD_LETTER, ROW_DUPLICATE, ROW_SIGNAL_UNMATCHED)
_ALL_FIELDS = {"ignoreNullFields": "false"}  # messages carry every schema field, nulls included


@dataclass(frozen=True)
class StreamSettings:
    """Bounds of the streaming semantics (job arguments; see docs/streaming.md)."""

    late_bound_seconds: int = 600
    dedup_horizon_seconds: int = 900
    signal_window_seconds: int = 300
    # event_time more than this after the record's Kafka produce time: in the future (dead letter)
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    def __post_init__(self) -> None:
        if self.dedup_horizon_seconds < self.late_bound_seconds:
            raise ValueError("dedup_horizon_seconds must be at least late_bound_seconds (or on-time duplicates escape)")
        if min(self.late_bound_seconds, self.signal_window_seconds) <= 0:
            raise ValueError("late bound and signal window must be positive")
        if self.max_clock_skew_seconds < 0:
            raise ValueError("max_clock_skew_seconds must not be negative")

    @property
    def watermark_delay_seconds(self) -> int:
        """How far the watermark trails the newest produce time: half the dedup horizon (rounded up).
        A transaction id is kept until the watermark passes its produce time + this delay, so it is
        remembered while records up to twice the delay = the horizon newer arrive."""
        return -(-self.dedup_horizon_seconds // 2)

    @property
    def keep_transaction_seconds(self) -> int:
        """How long past its produce time (in watermark time) a transaction id stays in state: for
        dedup (the delay) and for ML outputs produced up to the signal window after it."""
        return max(self.watermark_delay_seconds, self.signal_window_seconds)

    @property
    def lookback_seconds(self) -> int:
        """How far below the watermark a later row's event time can be: a transaction reaches the
        rule operators at most the late bound before its produce time, and a late ML output
        carries its transaction's time, produced at most the signal window earlier."""
        return self.late_bound_seconds + self.signal_window_seconds


# --- column helpers ---------------------------------------------------------------------


def source_location_col() -> Column:
    """``topic/partition/offset`` of the Kafka record."""
    return F.concat_ws("/", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string"))


def with_kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """Kafka record -> value text + kafka_topic / kafka_partition / kafka_offset / produced_at."""
    return kafka_df.select(
        F.col("value").cast("string").alias("value"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("produced_at"),
        source_location_col().alias("source_location"),
    )


# The batch's time is not in the plan: Spark turns current_timestamp() into a new literal every
# micro-batch, compiled into the generated code, so the two largest stages (the validation's,
# ~330 KB of Java) were compiled and JIT-compiled again every batch (measured: 5 compilations a
# batch; the JIT threads used more CPU than the tasks). A fixed placeholder instead, replaced by the
# writer (spark_apps.streaming.writer.with_batch_time).
BATCH_TIME_PLACEHOLDER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BATCH_TIME_PLACEHOLDER_JSON = "1970-01-01T00:00:00.000Z"  # as Spark's to_json writes it


def batch_time_placeholder_col() -> Column:
    return F.lit(BATCH_TIME_PLACEHOLDER).cast("timestamp")


def quarantine_struct_col(values: dict[str, Column]) -> Column:
    """A dead-letter message: QUARANTINE_SCHEMA fields from ``values`` (by name), as one struct column."""
    return F.struct(*[values[f.name].cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields])


def with_filter_barrier(df: DataFrame) -> DataFrame:
    """``df`` behind an always-true filter on a non-deterministic column: Catalyst pushes no filter
    through it (nor through the projection computing that column), so filters above are evaluated
    on ``df``'s computed columns instead of inlining the validation's CASE chains (measured: ~100
    copies of the JSON parse in one filter, too large for code generation). Results are unchanged."""
    return df.withColumn("_filter_barrier", F.spark_partition_id()).filter(F.col("_filter_barrier") >= 0).drop("_filter_barrier")


def late_col(late_bound_seconds: int, event_time: Column) -> Column:
    """The event reached Kafka more than the late bound after it happened."""
    return F.col("produced_at") > event_time + F.expr(f"INTERVAL {int(late_bound_seconds)} SECONDS")


def future_col(max_clock_skew_seconds: int, event_time: Column) -> Column:
    """The event happened more than the clock-skew allowance after it reached Kafka: its time is in
    the future. Judged against the record's produce time, not a clock: the plan has none (see
    BATCH_TIME_PLACEHOLDER), and a replayed batch classifies the record the same way."""
    return event_time > F.col("produced_at") + F.expr(f"INTERVAL {int(max_clock_skew_seconds)} SECONDS")


# --- transactions ----------------------------------------------------------------------


def transaction_rows(
    kafka_df: DataFrame,
    pan_key: bytes,
    late_bound_seconds: int,
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
) -> DataFrame:
    """Every record of the transactions topic as one row: ``txn`` (valid, on time) or ``dead_letter``
    (invalid, in the future (``future_event_time``) or late, with its QUARANTINE_SCHEMA message in
    ``dead_letter``: the record as it arrived, masked). Card fields are masked on every row: no card
    number, CVV, expiry or IP leaves this step in clear."""
    records_df = with_kafka_columns(kafka_df).drop("source_location")
    location = F.concat_ws(
        "/", F.col("kafka_topic"), F.col("kafka_partition").cast("string"), F.col("kafka_offset").cast("string")
    )
    events_df = with_source_columns(parse_json_events(records_df, "value"), "kafka", "kafka", location)
    tagged_df = with_filter_barrier(with_validation(events_df))
    event_time = F.col("_event_time")
    untimely = late_col(late_bound_seconds, event_time) | future_col(max_clock_skew_seconds, event_time)
    extra = tuple(c for c in records_df.columns if c != "value" and c not in RAW_TRANSACTION_FIELDS)
    rejected = F.col("reason_code").isNotNull() | untimely
    checked_df = tagged_df.select(
        *valid_event_columns(tagged_df.columns, SOURCE_COLUMNS + extra),
        F.when(rejected, transaction_dead_letter_col(late_bound_seconds, max_clock_skew_seconds)).alias("dead_letter"),
        F.when(rejected, F.lit(ROW_DEAD_LETTER)).otherwise(F.lit(ROW_TXN)).alias("row_kind"),
    )
    return with_masked_card_fields(checked_df, pan_key)


def transaction_dead_letter_col(late_bound_seconds: int, max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS) -> Column:
    """The dead-letter message (:func:`quarantine_struct_col`) of a rejected, future or late record of
    a tagged frame (reason_code null = future or late). The payload is the record as it arrived,
    masked, for all of them."""
    is_late = F.col("reason_code").isNull()  # or in the future: valid, but not on time
    future = future_col(max_clock_skew_seconds, F.col("_event_time"))
    text_id = F.col("transaction_id")
    values = {
        "reason_code": F.coalesce(F.col("reason_code"), F.when(future, F.lit(Reason.FUTURE_EVENT_TIME)).otherwise(Reason.LATE)),
        "reason_detail": F.when(
            is_late & future,
            F.concat(
                F.lit("event_time "),
                event_time_text_col(F.col("_event_time")),
                F.lit(f" is more than {int(max_clock_skew_seconds)}s after its produce time "),
                event_time_text_col(F.col("produced_at")),
            ),
        )
        .when(
            is_late,
            F.concat(
                F.lit(f"produced more than {int(late_bound_seconds)}s after event_time: "),
                event_time_text_col(F.col("_event_time")),
            ),
        )
        .otherwise(reason_detail_col()),
        "source_name": F.col("source_name"),
        "source_format": F.col("source_format"),
        "source_location": F.col("source_location"),
        "transaction_id": mask_card_numbers_col(
            F.when(is_late, F.trim(text_id)).when(F.length(text_id) <= MAX_FIELD_LENGTH, text_id)
        ),
        "payload_masked": payload_masked_col(),
        "version": F.lit("stream"),
        "quarantined_at": batch_time_placeholder_col(),  # the writer sets the micro-batch's time
    }
    return quarantine_struct_col(values)


# --- fraud signals ---------------------------------------------------------------------

_SIGNAL_TEXT_SCHEMA = StructType([StructField(f.name, StringType(), True) for f in FRAUD_MODEL_OUTPUT_SCHEMA.fields])


def signal_rows(kafka_df: DataFrame) -> DataFrame:
    """Every record of the fraud-signals topic as one row: ``signal`` (a typed ML output keyed by
    ``transaction_id``) or ``dead_letter`` (reason and masked payload in ``dead_letter``)."""
    records_df = with_kafka_columns(kafka_df)
    parsed = F.from_json(F.col("value"), _SIGNAL_TEXT_SCHEMA)
    text = {f.name: F.trim(F.col(f"_s.{f.name}")) for f in FRAUD_MODEL_OUTPUT_SCHEMA.fields}
    score = text["fraud_score"].try_cast(SCORE_TYPE)
    inference = F.when(
        text["inference_time"].rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]"), text["inference_time"].try_cast("timestamp")
    )
    required = ("model_version", "transaction_id", "fraud_score", "inference_time")
    missing = F.greatest(F.lit(False), *[text[n].isNull() | (text[n] == "") for n in required])
    reason = (
        F.when(F.col("_s").isNull(), F.lit(Reason.UNPARSEABLE))
        .when(missing, F.lit(Reason.MISSING_REQUIRED_FIELD))
        .when(F.greatest(*[F.length(text[n]) > MAX_FIELD_LENGTH for n in required]), F.lit(Reason.OVERSIZE_FIELD))
        .when(score.isNull() | inference.isNull(), F.lit(Reason.WRONG_TYPE))
        .when((score < 0) | (score > 1), F.lit(Reason.INVALID_VALUE))
    )
    tagged_df = with_filter_barrier(records_df.withColumn("_s", parsed).withColumn("reason_code", reason))
    dead_letter = {
        "reason_code": F.col("reason_code"),
        "reason_detail": F.concat(F.lit("fraud signal: "), F.col("reason_code")),
        "source_name": F.lit("kafka"),
        "source_format": F.lit("kafka"),
        "source_location": F.col("source_location"),
        "transaction_id": mask_card_numbers_col(
            F.when(F.length(text["transaction_id"]) <= MAX_FIELD_LENGTH, text["transaction_id"])
        ),
        "payload_masked": mask_payload_text_col(F.coalesce(F.col("value"), F.lit(""))),
        "version": F.lit("stream"),
        "quarantined_at": batch_time_placeholder_col(),
    }
    rejected = F.col("reason_code").isNotNull()
    return tagged_df.select(
        F.when(~rejected, text["transaction_id"]).alias("transaction_id"),
        score.alias("fraud_score"),
        text["model_version"].alias("model_version"),
        mask_free_text_col(F.col("_s.explanations")).alias("fraud_explanations"),  # free text: a PAN typed in
        inference.alias("inference_time"),
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "produced_at",
        F.when(rejected, quarantine_struct_col(dead_letter)).alias("dead_letter"),
        F.when(rejected, F.lit(ROW_DEAD_LETTER)).otherwise(F.lit(ROW_SIGNAL)).alias("row_kind"),
    )


# --- the plan ----------------------------------------------------------------------------


def keyed_rows(transactions_df: DataFrame, signals_df: DataFrame, settings: StreamSettings) -> DataFrame:
    """Both topics' rows in one frame (null signal columns on transactions and vice versa) with the
    watermark on produced_at, defined by the transactions topic.

    The transactions drive the watermark: a silent ML-outputs topic (a model outage) does not stop
    it, so state keeps being evicted. Every stateful pass drops rows whose produce time is under the
    watermark (Spark counts them, ``state_rows_dropped_by_watermark``); that needs a record more
    than the delay (450 s) behind the newest transaction, which only a topic read far behind the
    other could be. Dead letters carry no produce time here (it is in their message's
    source_location), so no watermark ever drops one."""
    produced = F.when(F.col("row_kind") != ROW_DEAD_LETTER, F.col("produced_at"))
    null_signals = {name: F.lit(None).cast(field.dataType) for name, field in _signal_fields().items()}
    txn_df = transactions_df.withColumns({**null_signals, "produced_at": produced}).withWatermark(
        "produced_at", f"{int(settings.watermark_delay_seconds)} seconds"
    )
    return txn_df.unionByName(signals_df.withColumn("produced_at", produced), allowMissingColumns=True)


def _signal_fields() -> dict[str, StructField]:
    by_name = {f.name: f for f in FRAUD_MODEL_OUTPUT_SCHEMA.fields}
    return {
        "fraud_score": by_name["fraud_score"],
        "model_version": by_name["model_version"],
        "fraud_explanations": StructField("fraud_explanations", StringType()),
        "inference_time": by_name["inference_time"],
    }


def with_rule_values(df: DataFrame, rules: FraudRules, settings: StreamSettings, fx_rates_df: DataFrame) -> DataFrame:
    """FX (``fx_rates_df``: an enrichment.fx_rate_lookup), then the card counts and the user values
    from the JVM operators."""
    return (
        df.transform(with_fx_rates, fx_rates_df)
        .withColumn(CARD_KEY_COLUMN, card_key_col())
        .transform(with_card_counts, rules, settings.lookback_seconds)
        .transform(with_user_values, rules, settings.lookback_seconds)
        .drop(CARD_KEY_COLUMN)
    )


def with_scores(df: DataFrame, reference: dict[str, DataFrame], rules: FraudRules) -> DataFrame:
    """Merchant risk (``reference["merchants"]``: an enrichment.merchant_risk_lookup), policy, flags,
    risk and action: the batch index job's steps, in its order."""
    return (
        df.transform(with_merchant_risk_levels, reference["merchants"])
        .transform(with_policy, reference["policies"])
        .transform(with_policy_flags)
        .transform(with_rule_flags, rules)
        .transform(with_risk, rules)
    )


def build_stream(
    transactions_kafka_df: DataFrame,
    signals_kafka_df: DataFrame,
    pan_key: bytes,
    rules: FraudRules,
    settings: StreamSettings,
    reference: dict[str, DataFrame],
) -> DataFrame:
    """The whole streaming plan: one row per Kafka record, plus one per update of an earlier
    transaction, in the columns of :func:`with_output_columns`."""
    keyed_df = keyed_rows(
        transaction_rows(transactions_kafka_df, pan_key, settings.late_bound_seconds, settings.max_clock_skew_seconds),
        signal_rows(signals_kafka_df),
        settings,
    )
    paired_df = paired_with_signals(keyed_df, settings.signal_window_seconds, settings.keep_transaction_seconds)
    scored_df = with_scores(with_rule_values(paired_df, rules, settings, reference["fx_rates"]), reference, rules)
    return with_output_columns(scored_df)


# --- what leaves the plan ------------------------------------------------------------------


def flagged_col() -> Column:
    return (F.size("rule_flags") > 0) | (F.size("policy_flags") > 0) | (F.col("recommended_action") != F.lit("ALLOW"))


def alert_columns(alert_time: Column) -> list[Column]:
    """FRAUD_ALERT_SCHEMA columns of a scored row; reasons = rule flags + POLICY_<flag> + ML score."""
    # POLICY_<flag> for each policy flag, in policy_flags' order (enrichment.POLICY_FLAGS), without
    # a higher-order function (see fraud_rules.flags_col: they keep the projection out of generated code).
    policy = F.array_remove(
        F.array(
            *[
                F.when(F.array_contains(F.col("policy_flags"), flag), F.lit(f"POLICY_{flag}")).otherwise(F.lit(""))
                for flag in POLICY_FLAGS
            ]
        ),
        "",
    )
    reasons = F.concat(
        F.col("rule_flags"),
        policy,
        F.when(
            F.col("fraud_score").isNotNull(), F.array(F.concat(F.lit("ML_SCORE_"), F.col("fraud_score").cast("string")))
        ).otherwise(F.array().cast("array<string>")),
    )
    values = {"reasons": reasons, "alert_time": alert_time}
    return [_cast_scalar(values.get(f.name, F.col(f.name)), f.dataType).alias(f.name) for f in FRAUD_ALERT_SCHEMA.fields]


def _cast_scalar(column, data_type):
    """Cast to the schema type; arrays keep their element nullability (ANSI refuses that cast)."""
    from pyspark.sql.types import ArrayType

    return column if isinstance(data_type, ArrayType) else column.cast(data_type)


@functools.cache
def _output_columns() -> tuple[Column, ...]:
    """``row_kind``; the STREAM_INDEX_SCHEMA columns + ``dt`` / ``hour`` (meaningful for ``txn``);
    ``alert``: the FRAUD_ALERT_SCHEMA message of a flagged ``txn`` or ``signal`` row; ``dead_letter``:
    the QUARANTINE_SCHEMA message of a dead letter, its key and the topic it was read from.
    ``ingested_at`` and ``alert_time`` are the micro-batch's time: the plan holds
    :func:`batch_time_placeholder_col` and the writer puts the batch's timestamp from its offset log
    in its place (a replayed batch writes the same values).
    ``version`` is set by the writer (the batch id)."""
    now = batch_time_placeholder_col()
    scored = F.col("row_kind").isin(ROW_TXN, ROW_SIGNAL)
    alert = F.when(scored & flagged_col(), F.to_json(F.struct(*alert_columns(now)), _ALL_FIELDS))
    dead_letter = F.when(F.col("row_kind") == ROW_DEAD_LETTER, F.to_json(F.col("dead_letter"), _ALL_FIELDS))
    dead_letter_key = F.coalesce(F.col("dead_letter.transaction_id"), F.col("dead_letter.source_location"), F.lit("unknown"))
    values = {"version": F.lit(None).cast("string"), "ingested_at": now}
    index = [values.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name) for f in STREAM_INDEX_SCHEMA.fields]
    return (
        F.col("row_kind"),
        *index,
        F.date_format("event_time", "yyyy-MM-dd").alias("dt"),
        F.date_format("event_time", "HH").alias("hour"),
        alert.alias("alert"),
        dead_letter.alias("dead_letter_message"),
        F.when(F.col("row_kind") == ROW_DEAD_LETTER, dead_letter_key).alias("dead_letter_key"),
        # The topic a dead letter was read from (its source_location is topic/partition/offset, and a
        # topic name holds no "/"): the writer counts them per topic for the batch's conservation.
        F.when(F.col("row_kind") == ROW_DEAD_LETTER, F.substring_index(F.col("dead_letter.source_location"), "/", 1)).alias(
            "dead_letter_topic"
        ),
    )


def with_output_columns(scored_df: DataFrame) -> DataFrame:
    return scored_df.select(*_output_columns())


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
