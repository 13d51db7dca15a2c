"""Explicit schemas, enumerations and reason codes: the data contract of the platform.

Every job validates its inputs against these schemas and writes exactly these
output schemas; ``docs/data_dictionary.md`` documents them and
``include/sql/`` derives the Athena DDL from them (checked by tests).

Conventions:
* money is ``DecimalType(18, 2)``; FX rates ``DecimalType(18, 8)``; ML scores
  ``DecimalType(5, 4)`` in [0, 1]. No float ever holds an amount.
* timestamps are UTC ``TimestampType``; the raw field ``timestamp`` becomes
  ``event_time`` once parsed (``timestamp`` is a reserved word in Athena SQL).
* index tables are written to versioned locations
  ``<index_uri>/<table>/dt=<YYYY-MM-DD>/version=<version>/`` (DESIGN decision 4), so
  the partition key ``dt`` is a catalog partition, not a column in the files.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

AMOUNT_TYPE = DecimalType(18, 2)
FX_RATE_TYPE = DecimalType(18, 8)
SCORE_TYPE = DecimalType(5, 4)

REPORTING_CURRENCY = "USD"
# ISO 4217 codes the platform accepts, with their minor units (decimal places).
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "JPY": 0,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "SEK": 2,
    "SGD": 2,
    "INR": 2,
    "BRL": 2,
    "MXN": 2,
}
SUPPORTED_CURRENCIES = frozenset(CURRENCY_MINOR_UNITS)

TRANSACTION_STATUSES = ("AUTHORIZED", "DECLINED", "PENDING", "REFUNDED", "REVERSED")
CHANNELS = ("POS", "ECOM", "MOBILE")
SETTLEMENT_STATUSES = ("SETTLED", "REFUNDED", "CHARGEBACK")
RISK_LEVELS = ("LOW", "MEDIUM", "HIGH")
KYC_STATUSES = ("VERIFIED", "PENDING", "REJECTED", "NOT_STARTED")
PAYOUT_SCHEDULES = ("DAILY", "WEEKLY", "MONTHLY")
RECOMMENDED_ACTIONS = ("ALLOW", "MANUAL_REVIEW", "REQUIRE_3DS", "BLOCK_CARD")

# Longest accepted value of any free-text field; longer values are quarantined.
MAX_FIELD_LENGTH = 256


class Reason:
    """Reason codes of quarantine rows (batch) and dead-letter messages (stream)."""

    UNPARSEABLE = "unparseable"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    UNKNOWN_CURRENCY = "unknown_currency"
    INVALID_TIMESTAMP = "invalid_timestamp"
    OVERSIZE_FIELD = "oversize_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    LATE = "late"
    # event_time more than the clock-skew allowance after the run's time (batch) or the Kafka produce time (stream)
    FUTURE_EVENT_TIME = "future_event_time"
    # (batch) event_time further than the configured bound outside the drop's date
    OUTSIDE_DROP_DATE = "outside_drop_date"
    # (batch, CSV) the file has no header line, or its header lacks a required column or names one twice
    MISSING_HEADER = "missing_header"

    ALL = (
        UNPARSEABLE,
        MISSING_REQUIRED_FIELD,
        NON_POSITIVE_AMOUNT,
        UNKNOWN_CURRENCY,
        INVALID_TIMESTAMP,
        OVERSIZE_FIELD,
        WRONG_TYPE,
        INVALID_VALUE,
        LATE,
        FUTURE_EVENT_TIME,
        OUTSIDE_DROP_DATE,
        MISSING_HEADER,
    )


def _fields(*specs: tuple[str, DataType, bool]) -> StructType:
    return StructType([StructField(name, dtype, nullable) for name, dtype, nullable in specs])


# --- inputs -----------------------------------------------------------------

# Transaction event fields as they arrive (JSON lines, CSV, Parquet, Kafka JSON).
# Raw card fields pan/cvv/expiry must never be written anywhere in clear.
RAW_TRANSACTION_FIELDS = (
    "transaction_id",
    "user_id",
    "merchant_id",
    "timestamp",
    "amount",
    "currency",
    "transaction_status",
    "channel",
    "country",
    "device_id",
    "ip",
    "updated_at",
    "pan",
    "cvv",
    "expiry",
)
REQUIRED_TRANSACTION_FIELDS = (
    "transaction_id",
    "user_id",
    "merchant_id",
    "timestamp",
    "amount",
    "currency",
    "transaction_status",
    "channel",
    "updated_at",
)
CARD_FIELDS = ("pan", "cvv", "expiry")

# Every raw field as text, so validation can tell a wrong type from a missing value.
RAW_TRANSACTION_SCHEMA = StructType([StructField(name, StringType(), True) for name in RAW_TRANSACTION_FIELDS])

# A validated, typed transaction event, still holding the raw card fields: it exists
# only in memory between validation and masking.
TRANSACTION_EVENT_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("transaction_status", StringType(), False),
    ("channel", StringType(), False),
    ("country", StringType(), True),
    ("device_id", StringType(), True),
    ("ip", StringType(), True),
    ("updated_at", TimestampType(), False),
    ("pan", StringType(), True),
    ("cvv", StringType(), True),
    ("expiry", StringType(), True),
)

# The same event after PII masking (DESIGN decision 7): pan -> last4 + keyed HMAC
# token, cvv dropped, expiry month kept and year hidden ("MM/**"), ip reduced to
# its /24 (IPv4) or /48 (IPv6) network.
MASKED_TRANSACTION_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("transaction_status", StringType(), False),
    ("channel", StringType(), False),
    ("country", StringType(), True),
    ("device_id", StringType(), True),
    ("ip_masked", StringType(), True),
    ("updated_at", TimestampType(), False),
    ("card_last4", StringType(), True),
    ("card_token", StringType(), True),
    ("card_expiry_masked", StringType(), True),
)

FRAUD_MODEL_OUTPUT_SCHEMA = _fields(
    ("model_version", StringType(), False),
    ("transaction_id", StringType(), False),
    ("fraud_score", SCORE_TYPE, False),
    ("explanations", StringType(), True),  # JSON object text
    ("inference_time", TimestampType(), False),
)

MERCHANT_SCHEMA = _fields(
    ("merchant_id", StringType(), False),
    ("merchant_name", StringType(), False),
    ("risk_level", StringType(), False),
    ("mcc", StringType(), True),
    ("country", StringType(), True),
    ("payout_schedule", StringType(), False),
    ("payout_delay_days", IntegerType(), False),
)

USER_SCHEMA = _fields(
    ("user_id", StringType(), False),
    ("kyc_status", StringType(), False),
    ("risk_tier", StringType(), False),
    ("country", StringType(), True),
    ("created_at", TimestampType(), False),
)

# policy_data is JSON text, for example:
# {"velocity_per_minute": 3, "velocity_per_5min": 10, "blocked_countries": ["KP"],
#  "amount_limit": "5000.00", "amount_limit_currency": "USD"}
POLICY_SCHEMA = _fields(
    ("policy_id", StringType(), False),
    ("policy_name", StringType(), False),
    ("policy_data", StringType(), False),
    ("effective_date", TimestampType(), False),
)

SETTLEMENT_LINE_SCHEMA = _fields(
    ("statement_id", StringType(), False),
    ("line_id", StringType(), False),
    ("statement_source", StringType(), False),  # BANK or AGGREGATOR
    ("transaction_ref", StringType(), True),  # the transaction_id it settles
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("fee", AMOUNT_TYPE, False),
    ("settled_at", TimestampType(), False),
    ("settlement_status", StringType(), False),
)

FX_RATE_SCHEMA = _fields(
    ("rate_date", DateType(), False),
    ("currency", StringType(), False),
    ("rate_to_reporting", FX_RATE_TYPE, False),  # 1 unit of currency in REPORTING_CURRENCY
)

# --- outputs ------------------------------------------------------------------

# Columns every indexed transaction carries, in the stream index and the batch index.
_INDEXED_TRANSACTION_FIELDS: tuple[tuple[str, DataType, bool], ...] = (
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("amount_reporting", AMOUNT_TYPE, True),
    ("fx_rate", FX_RATE_TYPE, True),
    ("transaction_status", StringType(), False),
    ("channel", StringType(), False),
    ("country", StringType(), True),
    ("device_id", StringType(), True),
    ("ip_masked", StringType(), True),
    ("card_last4", StringType(), True),
    ("card_token", StringType(), True),
    ("card_expiry_masked", StringType(), True),
    ("updated_at", TimestampType(), False),
    ("merchant_risk_level", StringType(), True),
    ("policy_id", StringType(), True),
    ("policy_flags", ArrayType(StringType(), False), False),
    ("fraud_score", SCORE_TYPE, True),
    ("model_version", StringType(), True),
    ("fraud_explanations", StringType(), True),
    ("inference_time", TimestampType(), True),
    ("rule_flags", ArrayType(StringType(), False), False),
    ("risk_score", IntegerType(), False),  # 0-100, rules combined with the ML score
    ("recommended_action", StringType(), False),
    ("version", StringType(), False),
    ("ingested_at", TimestampType(), False),
)

BATCH_INDEX_SCHEMA = _fields(
    *_INDEXED_TRANSACTION_FIELDS,
    ("source_name", StringType(), False),  # which raw drop the winning record came from
)

STREAM_INDEX_SCHEMA = _fields(
    *_INDEXED_TRANSACTION_FIELDS,
    ("kafka_partition", IntegerType(), False),
    ("kafka_offset", LongType(), False),
    ("produced_at", TimestampType(), False),  # Kafka record timestamp
)

# Bad records: batch quarantine rows; the stream's dead-letter messages carry the same fields.
QUARANTINE_SCHEMA = _fields(
    ("reason_code", StringType(), False),
    ("reason_detail", StringType(), True),
    ("source_name", StringType(), False),
    ("source_format", StringType(), False),  # json, csv, parquet, kafka
    ("source_location", StringType(), True),  # file path or topic/partition/offset
    ("transaction_id", StringType(), True),
    ("payload_masked", StringType(), False),  # the original record with card data masked
    ("version", StringType(), False),
    ("quarantined_at", TimestampType(), False),
)

FRAUD_ALERT_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("card_token", StringType(), True),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("fraud_score", SCORE_TYPE, True),
    ("rule_flags", ArrayType(StringType(), False), False),
    ("risk_score", IntegerType(), False),
    ("reasons", ArrayType(StringType(), False), False),
    ("recommended_action", StringType(), False),
    ("alert_time", TimestampType(), False),
)

# Output tables by name, for the DDL generator and the schema tests. Later issues
# add the aggregate index, audit trail and business indexes here.
TABLE_SCHEMAS: dict[str, StructType] = {
    "batch_index": BATCH_INDEX_SCHEMA,
    "stream_index": STREAM_INDEX_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
}
# Catalog partition keys per table (not stored in the data files).
TABLE_PARTITION_KEYS: dict[str, tuple[str, ...]] = {
    "batch_index": ("dt",),
    "stream_index": ("dt", "hour"),
    "quarantine": ("dt",),
}

# --- aggregate index, audit trail and business indexes (issue 5) -------------------

from pyspark.sql.types import BooleanType  # noqa: E402  (kept with the section that uses it)

RATIO_TYPE = DecimalType(7, 6)  # rates and ratios in [0, 1], exact
THROUGHPUT_TYPE = DecimalType(18, 3)  # records per second

# Which inputs have seen a transaction (aggregate_index.record_source).
RECORD_SOURCES = ("STREAM", "BATCH", "STREAM_AND_BATCH")
# Who supplied a changed value (audit_trail.source, aggregate status_source / score_source).
CHANGE_SOURCES = ("STREAM", "BATCH", "STATEMENT", "PREVIOUS")
AUDITED_FIELDS = ("transaction_status", "fraud_score", "settlement_status")
MATCH_STATUSES = (
    "MATCHED",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
    "MISSING_IN_STATEMENT",
    "MISSING_INTERNAL",
    "DUPLICATE_SETTLEMENT",
    "LATE_SETTLEMENT",
)
PAYOUT_STATUSES = ("SCHEDULED", "DUE", "ON_HOLD")
AML_FLAGS = ("STRUCTURING", "HIGH_RISK_COUNTRY", "KYC_NOT_VERIFIED")
ML_LABEL_SOURCES = ("CHARGEBACK", "CONFIRMED_FRAUD", "NONE")

# Latest state per transaction: stream index, batch index and settlement lines merged
# over the previous aggregate version (carried forward for aggregate_retention_days).
AGGREGATE_INDEX_SCHEMA = _fields(
    *_INDEXED_TRANSACTION_FIELDS,  # version = the merge run; ingested_at = of the winning record
    ("source_name", StringType(), True),  # raw drop of the batch record, if the batch saw it
    ("record_source", StringType(), False),  # RECORD_SOURCES
    ("status_source", StringType(), False),  # CHANGE_SOURCES: who supplied transaction_status
    ("score_source", StringType(), True),  # CHANGE_SOURCES: who supplied fraud_score
    ("source_version", StringType(), False),  # run that produced the winning input record
    ("first_seen_date", DateType(), False),  # run date of the first aggregate version holding it
    ("settlement_status", StringType(), True),  # SETTLEMENT_STATUSES, from statements (final)
    ("settlement_amount", AMOUNT_TYPE, True),
    ("settlement_currency", StringType(), True),
    ("settlement_fee", AMOUNT_TYPE, True),
    ("settled_at", TimestampType(), True),
    ("settlement_statement_id", StringType(), True),
    ("settlement_line_id", StringType(), True),
    ("settlement_source", StringType(), True),  # BANK or AGGREGATOR
    ("merged_at", TimestampType(), False),
)

AUDIT_TRAIL_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("field", StringType(), False),  # AUDITED_FIELDS
    ("old_value", StringType(), True),  # null: the transaction is new in this version
    ("new_value", StringType(), True),
    ("source", StringType(), False),  # CHANGE_SOURCES
    ("changed_at", TimestampType(), True),  # updated_at / inference_time / settled_at of the new value
    ("previous_version", StringType(), True),  # the aggregate version compared against
    ("version", StringType(), False),
    ("recorded_at", TimestampType(), False),
)

FRAUD_INDEX_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("card_token", StringType(), True),
    ("card_last4", StringType(), True),
    ("device_id", StringType(), True),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("amount_reporting", AMOUNT_TYPE, True),
    ("transaction_status", StringType(), False),
    ("channel", StringType(), False),
    ("country", StringType(), True),
    ("merchant_risk_level", StringType(), True),
    ("fraud_score", SCORE_TYPE, True),
    ("model_version", StringType(), True),
    ("rule_flags", ArrayType(StringType(), False), False),
    ("policy_flags", ArrayType(StringType(), False), False),
    ("risk_score", IntegerType(), False),
    ("reasons", ArrayType(StringType(), False), False),
    ("recommended_action", StringType(), False),
    ("settlement_status", StringType(), True),
    ("record_source", StringType(), False),
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

# One row per internal transaction and per statement line: each appears exactly once.
RECONCILIATION_INDEX_SCHEMA = _fields(
    ("reconciliation_key", StringType(), False),  # "txn:<transaction_id>" or "line:<statement_id>/<line_id>"
    ("transaction_id", StringType(), True),  # the internal transaction; null when none is known
    ("transaction_ref", StringType(), True),  # the statement line's reference
    ("statement_id", StringType(), True),
    ("line_id", StringType(), True),
    ("statement_source", StringType(), True),
    ("merchant_id", StringType(), True),
    ("match_status", StringType(), False),  # MATCH_STATUSES
    ("break_reason", StringType(), True),  # null when MATCHED
    ("internal_amount", AMOUNT_TYPE, True),
    ("internal_currency", StringType(), True),
    ("statement_amount", AMOUNT_TYPE, True),
    ("statement_currency", StringType(), True),
    ("amount_difference", AMOUNT_TYPE, True),  # statement - internal, same currency only
    ("fee", AMOUNT_TYPE, True),
    ("transaction_status", StringType(), True),
    ("settlement_status", StringType(), True),
    ("event_time", TimestampType(), True),
    ("settled_at", TimestampType(), True),
    ("days_to_settle", IntegerType(), True),
    ("version", StringType(), False),
    ("reconciled_at", TimestampType(), False),
)

MERCHANT_PERFORMANCE_INDEX_SCHEMA = _fields(
    ("merchant_id", StringType(), False),
    ("merchant_name", StringType(), True),
    ("merchant_risk_level", StringType(), True),
    ("business_date", DateType(), False),
    ("transaction_count", LongType(), False),
    ("approved_count", LongType(), False),
    ("declined_count", LongType(), False),
    ("gross_volume", AMOUNT_TYPE, False),  # approved, in REPORTING_CURRENCY
    ("approval_rate", RATIO_TYPE, True),  # null when no transactions
    ("refund_count", LongType(), False),
    ("refund_amount", AMOUNT_TYPE, False),
    ("chargeback_count", LongType(), False),
    ("chargeback_amount", AMOUNT_TYPE, False),
    ("chargeback_ratio", RATIO_TYPE, True),  # chargebacks / approved; null when none approved
    ("average_ticket", AMOUNT_TYPE, True),
    ("baseline_days", IntegerType(), False),  # trailing days with activity in the baseline window
    ("baseline_average_volume", AMOUNT_TYPE, True),
    ("baseline_average_count", AMOUNT_TYPE, True),
    ("is_anomaly", BooleanType(), False),
    ("anomaly_reasons", ArrayType(StringType(), False), False),
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

USER_SPEND_INDEX_SCHEMA = _fields(
    ("user_id", StringType(), False),
    ("as_of_date", DateType(), False),
    ("spend_1d", AMOUNT_TYPE, False),  # approved, REPORTING_CURRENCY
    ("spend_7d", AMOUNT_TYPE, False),
    ("spend_30d", AMOUNT_TYPE, False),
    ("transaction_count_1d", LongType(), False),
    ("transaction_count_7d", LongType(), False),
    ("transaction_count_30d", LongType(), False),
    ("average_ticket_30d", AMOUNT_TYPE, True),
    ("decline_count_1d", LongType(), False),
    ("max_declines_24h", IntegerType(), False),  # most declines in any 24 h window ending on the day
    ("has_repeated_declines", BooleanType(), False),
    ("max_transactions_5min", IntegerType(), False),  # velocity on the day
    ("max_transactions_1h", IntegerType(), False),
    ("last_transaction_at", TimestampType(), True),
    ("kyc_status", StringType(), True),
    ("risk_tier", StringType(), True),
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

COMPLIANCE_INDEX_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("user_id", StringType(), False),
    ("merchant_id", StringType(), False),
    ("event_time", TimestampType(), False),
    ("amount", AMOUNT_TYPE, False),
    ("currency", StringType(), False),
    ("amount_reporting", AMOUNT_TYPE, True),
    ("transaction_status", StringType(), False),
    ("country", StringType(), True),
    ("user_country", StringType(), True),
    ("card_last4", StringType(), True),
    ("card_token", StringType(), True),
    ("card_expiry_masked", StringType(), True),
    ("ip_masked", StringType(), True),
    ("kyc_status", StringType(), True),
    ("user_risk_tier", StringType(), True),
    ("merchant_risk_level", StringType(), True),
    ("aml_flags", ArrayType(StringType(), False), False),  # AML_FLAGS
    ("policy_id", StringType(), True),
    ("policy_flags", ArrayType(StringType(), False), False),
    ("requires_review", BooleanType(), False),
    ("record_source", StringType(), False),  # lineage: which inputs saw it
    ("source_name", StringType(), True),
    ("source_version", StringType(), False),
    ("ingested_at", TimestampType(), False),
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

# The payouts the day's statement lines feed: one row per merchant, payout date and currency.
SETTLEMENT_SCHEDULE_INDEX_SCHEMA = _fields(
    ("merchant_id", StringType(), False),
    ("merchant_name", StringType(), True),
    ("payout_schedule", StringType(), True),
    ("statement_date", DateType(), False),  # the statement drop (run date) the lines came from
    ("expected_payout_date", DateType(), True),  # null when the merchant is unknown
    ("currency", StringType(), False),
    ("line_count", LongType(), False),
    ("gross_amount", AMOUNT_TYPE, False),
    ("refund_amount", AMOUNT_TYPE, False),
    ("chargeback_amount", AMOUNT_TYPE, False),
    ("fee_amount", AMOUNT_TYPE, False),
    ("net_amount", AMOUNT_TYPE, False),  # gross - refunds - chargebacks - fees
    ("payout_status", StringType(), False),  # PAYOUT_STATUSES
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

OPS_INDEX_SCHEMA = _fields(
    ("stage", StringType(), False),
    ("hour_start", TimestampType(), False),
    ("run_count", LongType(), False),  # micro-batches or batch runs in the hour
    ("records_in", LongType(), False),
    ("records_out", LongType(), False),
    ("error_count", LongType(), False),
    ("quarantine_count", LongType(), False),
    ("throughput_per_second", THROUGHPUT_TYPE, True),
    ("latency_p50_ms", LongType(), True),
    ("latency_p95_ms", LongType(), True),
    ("latency_p99_ms", LongType(), True),
    ("error_rate", RATIO_TYPE, True),
    ("quarantine_rate", RATIO_TYPE, True),
    ("version", StringType(), False),
    ("indexed_at", TimestampType(), False),
)

# BR3 feedback loop: features known at scoring time plus the label known today.
ML_FEEDBACK_SCHEMA = _fields(
    ("transaction_id", StringType(), False),
    ("event_time", TimestampType(), False),
    ("amount_reporting", AMOUNT_TYPE, True),
    ("currency", StringType(), False),
    ("channel", StringType(), False),
    ("country", StringType(), True),
    ("merchant_risk_level", StringType(), True),
    ("hour_of_day", IntegerType(), False),
    ("user_transaction_count_24h", LongType(), False),
    ("user_decline_count_24h", LongType(), False),
    ("user_spend_24h", AMOUNT_TYPE, False),
    ("fraud_score", SCORE_TYPE, True),
    ("model_version", StringType(), True),
    ("risk_score", IntegerType(), False),
    ("rule_flags", ArrayType(StringType(), False), False),
    ("policy_flags", ArrayType(StringType(), False), False),
    ("label", IntegerType(), False),  # 1 fraud, 0 not fraud (as known on the export date)
    ("label_source", StringType(), False),  # ML_LABEL_SOURCES
    ("version", StringType(), False),
    ("exported_at", TimestampType(), False),
)

TABLE_SCHEMAS.update(
    {
        "aggregate_index": AGGREGATE_INDEX_SCHEMA,
        "audit_trail": AUDIT_TRAIL_SCHEMA,
        "fraud_index": FRAUD_INDEX_SCHEMA,
        "reconciliation_index": RECONCILIATION_INDEX_SCHEMA,
        "merchant_performance_index": MERCHANT_PERFORMANCE_INDEX_SCHEMA,
        "user_spend_index": USER_SPEND_INDEX_SCHEMA,
        "compliance_index": COMPLIANCE_INDEX_SCHEMA,
        "settlement_schedule_index": SETTLEMENT_SCHEDULE_INDEX_SCHEMA,
        "ops_index": OPS_INDEX_SCHEMA,
        "ml_feedback": ML_FEEDBACK_SCHEMA,
    }
)
TABLE_PARTITION_KEYS.update(
    {
        table: ("dt",)
        for table in (
            "aggregate_index",
            "audit_trail",
            "fraud_index",
            "reconciliation_index",
            "merchant_performance_index",
            "user_spend_index",
            "compliance_index",
            "settlement_schedule_index",
            "ops_index",
            "ml_feedback",
        )
    }
)
