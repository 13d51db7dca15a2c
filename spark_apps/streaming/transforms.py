"""The stream index pipeline as DataFrame -> DataFrame steps (streaming plan and micro-batch).

Streaming plan (:func:`build_stream`), one query, every record accounted for::

    transactions topic -> parse + validate (spark_apps.validation)
        invalid, or valid but late (produced_at - event_time > late bound)
                                   -> dead letter (reason from validation, or ``late``;
                                      the record as it arrived, masked)
        valid and on time -> mask (spark_apps.masking) -> watermark on produced_at
                                   -> dropDuplicatesWithinWatermark(transaction_id)
    fraud-signals topic -> parse  (invalid -> dead letter)
        -> watermark on produced_at, stream-stream inner join with the deduplicated
           transactions within +- the signal window (signal before or after its transaction)
    deduplicated transactions (row_kind txn) + matched signals (row_kind signal)
        -> rule state (spark_apps.streaming.rule_state), keyed by a user bucket
    -> foreachBatch (spark_apps.streaming.writer): enrich with refreshed reference
       data, rule flags + risk (spark_apps.fraud_rules), write the index, send alerts.

Lateness is judged per record from its Kafka produce timestamp (deterministic, so a
replayed batch classifies it the same way, and a backlog read after an outage is not
mistaken for late data). Deduplication state is kept for ``dedup_horizon`` of
produce time (at least the late bound), so every duplicate of an on-time event is
caught; the watermark trails the newest produce time by half of it
(:attr:`StreamSettings.watermark_delay_seconds`). Duplicates are counted by Spark
(``numDroppedDuplicateRows`` in the metrics).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupStateTimeout
from pyspark.sql.types import StringType, StructField, StructType

from spark_apps.masking import mask_payload_text_col, with_masked_card_fields
from spark_apps.schemas import (
    FRAUD_MODEL_OUTPUT_SCHEMA,
    MAX_FIELD_LENGTH,
    QUARANTINE_SCHEMA,
    RAW_TRANSACTION_FIELDS,
    SCORE_TYPE,
    Reason,
)
from spark_apps.streaming.rule_state import RULE_SIGNAL_COLUMNS, RULE_STATE_SCHEMA, RuleWindows, make_rule_state_function
from spark_apps.validation import (
    SOURCE_COLUMNS,
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
SIGNAL_COLUMNS = ("fraud_score", "model_version", "fraud_explanations", "inference_time")


@dataclass(frozen=True)
class StreamSettings:
    """Bounds of the streaming semantics (job arguments; see docs/streaming.md)."""

    late_bound_seconds: int = 600
    dedup_horizon_seconds: int = 900
    signal_window_seconds: int = 300
    rule_buckets: int = 8
    # How a bucket number becomes the rule state's key (see with_rule_bucket). A checkpoint keeps the
    # layout it started with (spark_apps.jobs.stream_index.with_checkpoint_rule_buckets).
    rule_bucket_layout: str = "balanced"

    def __post_init__(self) -> None:
        if self.dedup_horizon_seconds < self.late_bound_seconds:
            raise ValueError("dedup_horizon_seconds must be at least late_bound_seconds (or on-time duplicates escape)")
        if min(self.late_bound_seconds, self.signal_window_seconds, self.rule_buckets) <= 0:
            raise ValueError("late bound, signal window and rule buckets must be positive")
        if self.rule_bucket_layout not in RULE_BUCKET_LAYOUTS:
            raise ValueError(f"rule_bucket_layout must be one of {RULE_BUCKET_LAYOUTS}, not {self.rule_bucket_layout!r}")
        if self.rule_bucket_layout == "balanced" and self.rule_buckets > BALANCED_KEY_MODULUS:
            raise ValueError(f"at most {BALANCED_KEY_MODULUS} rule buckets")

    @property
    def watermark_delay_seconds(self) -> int:
        """How far the watermark trails the newest produce time: half the dedup horizon (rounded up).
        Spark keeps a transaction id until the watermark passes its produce time + this delay, so an id
        is remembered for twice the delay = the horizon. Every state follows the watermark: the join
        keeps a row for the signal window + the delay, the rule state its windows + late bound +
        signal window + the delay behind the newest produce time. With the whole horizon as the
        delay, ids were kept for twice the horizon and the other states 450 s longer than needed."""
        return -(-self.dedup_horizon_seconds // 2)


# "balanced": bucket b's key is a number Spark's hash partitioning sends to state partition
# b mod P, for any power-of-two P up to the modulus; "modulo": the key is b itself (checkpoints
# started before the balanced keys), whose hashes fall unevenly (0-3 split 3 + 1 over 2 partitions).
RULE_BUCKET_LAYOUTS = ("balanced", "modulo")
BALANCED_KEY_MODULUS = 1024
_HASH_SEED = 42  # Spark's HashPartitioning: pmod(Murmur3Hash(keys, 42), partitions)


def murmur3_int(value: int, seed: int = _HASH_SEED) -> int:
    """Spark's hash of an int column (Murmur3_x86_32.hashInt), as a signed 32-bit int."""

    def mix(h: int, k: int) -> int:
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * 0x1B873593) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        return (h * 5 + 0xE6546B64) & 0xFFFFFFFF

    h = mix(seed & 0xFFFFFFFF, value & 0xFFFFFFFF) ^ 4
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


@functools.cache
def balanced_bucket_keys(buckets: int) -> tuple[int, ...]:
    """Key of each bucket: the smallest int >= 0 whose Spark hash is the bucket number modulo
    BALANCED_KEY_MODULUS. Then bucket b is on state partition b mod P whenever P divides the
    modulus, so B buckets over P partitions put B/P on each (for B a multiple of P)."""
    keys: dict[int, int] = {}
    value = 0
    while len(keys) < buckets:
        bucket = murmur3_int(value) % BALANCED_KEY_MODULUS
        if bucket < buckets and bucket not in keys:
            keys[bucket] = value
        value += 1
    return tuple(keys[b] for b in range(buckets))


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


def batch_time_placeholder_col() -> Column:
    """``quarantined_at`` of dead letters in the streaming plan; the micro-batch writer sets the batch's
    time. Not ``current_timestamp()``: Spark turns that into a new literal every micro-batch, which
    changes the generated code and recompiles the whole validation stage each batch."""
    return F.lit(None).cast("timestamp")


def quarantine_struct_col(values: dict[str, Column]) -> Column:
    """A dead-letter message: QUARANTINE_SCHEMA fields from ``values`` (by name), as one struct column."""
    return F.struct(*[values[f.name].cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields])


# --- transactions ----------------------------------------------------------------------


def split_transactions(
    kafka_df: DataFrame, pan_key: bytes, late_bound_seconds: int, watermark_delay_seconds: int
) -> tuple[DataFrame, DataFrame]:
    """(masked valid on-time transactions + Kafka columns, dead letters) from the transactions topic,
    both with the watermark on ``produced_at`` (``watermark_delay_seconds`` behind the newest). A dead letter
    has the same columns plus ``dead_letter``, its QUARANTINE_SCHEMA message (masked payload).

    The steps of ``validation.validate_json_events`` with two additions: transactions later than
    the bound (:func:`late_col`) are dead letters too, with reason ``late``; and the topic is
    parsed, validated and masked once per micro-batch for its three uses (indexed, joined with
    the ML outputs, dead letters). Spark shares no scan between branches of a plan, so each branch
    used to parse and validate the topic again (~1 s per 20,000 records on one core). Now every
    record is validated and masked once, then shuffled by ``transaction_id`` (the shuffle the
    dedup needs); the branches start above it, and a shuffle that recurs identically in a plan
    runs once. For that, every branch must read every column of it: dead letters therefore keep
    the transaction's columns (build_stream passes them on). No card number, CVV, expiry or IP
    reaches the shuffle unmasked.

    Filter barriers (:func:`with_filter_barrier`): after the validation projection, or Catalyst
    pushes the filters through the projections, inlining ``reason_code``'s CASE chain down to
    ``from_json(value).<field>`` (measured: ~100 copies of the JSON parse in one filter, too
    large for code generation, evaluated row by row); and above the shuffle, or each branch's
    filter is pushed below it and the branches' shuffles differ."""
    records_df = with_kafka_columns(kafka_df).drop("source_location")
    location = F.concat_ws(
        "/", F.col("kafka_topic"), F.col("kafka_partition").cast("string"), F.col("kafka_offset").cast("string")
    )
    events_df = with_source_columns(parse_json_events(records_df, "value"), "kafka", "kafka", location)
    tagged_df = with_filter_barrier(with_validation(events_df))
    late = F.col("reason_code").isNull() & late_col(late_bound_seconds, F.col("_event_time"))
    extra = tuple(c for c in records_df.columns if c != "value" and c not in RAW_TRANSACTION_FIELDS)
    dead_letter = F.when(F.col("reason_code").isNotNull() | late, transaction_dead_letter_col(late_bound_seconds))
    checked_df = tagged_df.select(
        *valid_event_columns(tagged_df.columns, SOURCE_COLUMNS + extra), dead_letter.alias("dead_letter")
    )
    # The watermark below the shuffle: above it, Spark would not see the rows as partitioned by
    # transaction_id and would shuffle them again for the dedup.
    shuffled_df = with_filter_barrier(
        with_masked_card_fields(checked_df, pan_key)
        .withWatermark("produced_at", f"{int(watermark_delay_seconds)} seconds")
        .repartition("transaction_id")
    )
    on_time_df = shuffled_df.filter(F.col("dead_letter").isNull()).drop("dead_letter", "_filter_barrier")
    dead_df = shuffled_df.filter(F.col("dead_letter").isNotNull()).drop("_filter_barrier")
    return on_time_df, dead_df


def transaction_dead_letter_col(late_bound_seconds: int) -> Column:
    """The dead-letter message (:func:`quarantine_struct_col`) of a rejected or late record of a tagged
    frame (reason_code null = late). The payload is the record as it arrived, masked, for both."""
    is_late = F.col("reason_code").isNull()
    text_id = F.col("transaction_id")
    values = {
        "reason_code": F.coalesce(F.col("reason_code"), F.lit(Reason.LATE)),
        "reason_detail": F.when(
            is_late,
            F.concat(
                F.lit(f"produced more than {int(late_bound_seconds)}s after event_time: "),
                F.date_format("_event_time", "yyyy-MM-dd'T'HH:mm:ss'Z'"),
            ),
        ).otherwise(reason_detail_col()),
        "source_name": F.col("source_name"),
        "source_format": F.col("source_format"),
        "source_location": F.col("source_location"),
        "transaction_id": F.when(is_late, F.trim(text_id)).when(F.length(text_id) <= MAX_FIELD_LENGTH, text_id),
        "payload_masked": payload_masked_col(),
        "run_id": F.lit("stream"),
        "quarantined_at": batch_time_placeholder_col(),
    }
    return quarantine_struct_col(values)


def with_filter_barrier(df: DataFrame) -> DataFrame:
    """``df`` behind an always-true filter on a non-deterministic column: Catalyst pushes no filter
    through it (nor through the projection computing that column), so the filters above are
    evaluated on ``df``'s computed columns. Optimization only; results are unchanged."""
    return df.withColumn("_filter_barrier", F.spark_partition_id()).filter(F.col("_filter_barrier") >= 0)


def late_col(late_bound_seconds: int, event_time: Column) -> Column:
    """The event reached Kafka more than the late bound after it happened."""
    return F.col("produced_at") > event_time + F.expr(f"INTERVAL {int(late_bound_seconds)} SECONDS")


def deduplicated(on_time_df: DataFrame) -> DataFrame:
    """Exactly one row per transaction_id within the horizon (the first produced): twice the delay of
    the watermark on ``produced_at`` (:func:`split_transactions`,
    :attr:`StreamSettings.watermark_delay_seconds`)."""
    return on_time_df.dropDuplicatesWithinWatermark(["transaction_id"])


# --- fraud signals ---------------------------------------------------------------------

_SIGNAL_TEXT_SCHEMA = StructType([StructField(f.name, StringType(), True) for f in FRAUD_MODEL_OUTPUT_SCHEMA.fields])


def split_signals(kafka_df: DataFrame, watermark_delay_seconds: int) -> tuple[DataFrame, DataFrame]:
    """(typed ML outputs + their produce time, dead letters) from the fraud-signals topic, both with
    the watermark on ``signal_produced_at``. A dead letter has the same columns plus ``dead_letter``.
    Parsed and validated once per micro-batch, then shuffled by ``signal_transaction_id`` for the
    join, the dead letters above that shuffle (as in :func:`split_transactions`)."""
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
        "transaction_id": F.when(F.length(text["transaction_id"]) <= MAX_FIELD_LENGTH, text["transaction_id"]),
        "payload_masked": mask_payload_text_col(F.coalesce(F.col("value"), F.lit(""))),
        "run_id": F.lit("stream"),
        "quarantined_at": batch_time_placeholder_col(),
    }
    checked_df = tagged_df.select(
        text["transaction_id"].alias("signal_transaction_id"),
        score.alias("fraud_score"),
        text["model_version"].alias("model_version"),
        F.col("_s.explanations").alias("fraud_explanations"),
        inference.alias("inference_time"),
        F.col("produced_at").alias("signal_produced_at"),
        F.when(F.col("reason_code").isNotNull(), quarantine_struct_col(dead_letter)).alias("dead_letter"),
    )
    shuffled_df = with_filter_barrier(
        checked_df.withWatermark("signal_produced_at", f"{int(watermark_delay_seconds)} seconds").repartition(
            "signal_transaction_id"
        )
    )
    signals_df = shuffled_df.filter(F.col("dead_letter").isNull()).drop("dead_letter", "_filter_barrier")
    dead_df = shuffled_df.filter(F.col("dead_letter").isNotNull()).drop("_filter_barrier")
    return signals_df, dead_df


def matched_signals(txn_df: DataFrame, signals_df: DataFrame, settings: StreamSettings) -> DataFrame:
    """Deduplicated transactions joined with their ML outputs produced within +- the signal window."""
    window = int(settings.signal_window_seconds)
    condition = (F.col("transaction_id") == F.col("signal_transaction_id")) & F.col("signal_produced_at").between(
        F.col("produced_at") - F.expr(f"INTERVAL {window} SECONDS"), F.col("produced_at") + F.expr(f"INTERVAL {window} SECONDS")
    )
    return txn_df.drop(*SIGNAL_COLUMNS).join(signals_df, condition, "inner").drop("signal_transaction_id", "signal_produced_at")


# --- rule state -------------------------------------------------------------------------


def with_rule_bucket(df: DataFrame, buckets: int, layout: str = "balanced") -> DataFrame:
    """``rule_bucket``: the rule state's key for the row's user (a hash of user_id modulo ``buckets``,
    as the layout's key)."""
    bucket = F.pmod(F.xxhash64("user_id"), F.lit(buckets)).cast("int")
    if layout == "balanced":
        bucket = F.element_at(F.array(*[F.lit(k) for k in balanced_bucket_keys(buckets)]), bucket + 1)
    return df.withColumn("rule_bucket", bucket)


def with_rule_signals_from_state(rows_df: DataFrame, rules, settings: StreamSettings) -> DataFrame:
    """Run the stateful rule function over txn + signal rows (see spark_apps.streaming.rule_state)."""
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in rows_df.schema.fields)
    signals = ", ".join(f"{name} {dtype}" for name, dtype in RULE_SIGNAL_COLUMNS)
    return rows_df.groupBy("rule_bucket").applyInPandasWithState(
        make_rule_state_function(RuleWindows.from_rules(rules, settings.late_bound_seconds + settings.signal_window_seconds)),
        f"{columns}, {signals}",
        RULE_STATE_SCHEMA,
        "append",
        GroupStateTimeout.NoTimeout,
    )


def build_stream(
    transactions_df: DataFrame, signals_kafka_df: DataFrame, pan_key: bytes, rules, settings: StreamSettings
) -> DataFrame:
    """The whole streaming plan: one DataFrame of ``row_kind`` txn / signal / dead_letter rows."""
    on_time_df, txn_dead_df = split_transactions(
        transactions_df, pan_key, settings.late_bound_seconds, settings.watermark_delay_seconds
    )
    null_signals = [F.lit(None).cast(f.dataType).alias(n) for n, f in zip(SIGNAL_COLUMNS, _signal_fields(), strict=True)]
    txn_df = deduplicated(on_time_df).select("*", *null_signals)
    signals_df, signal_dead_df = split_signals(signals_kafka_df, settings.watermark_delay_seconds)
    signal_rows_df = matched_signals(txn_df, signals_df, settings).withColumn("row_kind", F.lit(ROW_SIGNAL))
    rule_input_df = with_rule_bucket(
        txn_df.withColumn("row_kind", F.lit(ROW_TXN)).unionByName(signal_rows_df),
        settings.rule_buckets,
        settings.rule_bucket_layout,
    )
    ruled_df = with_rule_signals_from_state(rule_input_df, rules, settings)
    # Dead letters keep their record's columns (see split_transactions); only row_kind and
    # dead_letter are read. They are few: one partition, not one per shuffle partition of each
    # topic, or every stage of the micro-batch's scoring runs that many more (empty) tasks.
    dead_rows_df = (
        txn_dead_df.unionByName(signal_dead_df, allowMissingColumns=True)
        .withColumn("row_kind", F.lit(ROW_DEAD_LETTER))
        .coalesce(1)
    )
    return ruled_df.unionByName(dead_rows_df, allowMissingColumns=True)


def _signal_fields():
    by_name = {f.name: f for f in FRAUD_MODEL_OUTPUT_SCHEMA.fields}
    return [
        by_name["fraud_score"],
        by_name["model_version"],
        StructField("fraud_explanations", StringType()),
        by_name["inference_time"],
    ]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
