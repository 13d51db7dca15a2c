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
  ``<index_uri>/<table>/dt=<YYYY-MM-DD>/run=<run_id>/`` (DESIGN decision 4), so
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
    ("run_id", StringType(), False),
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
    ("run_id", StringType(), False),
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
