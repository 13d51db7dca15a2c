"""Validate raw transaction records against the data contract (stream and batch share this).

Input ("raw events"): a DataFrame with every field of ``RAW_TRANSACTION_FIELDS`` as text,
plus ``_corrupt_record`` (non-null when the record could not be parsed at all),
``source_name``, ``source_format`` and ``source_location``. The readers
(spark_apps.readers) produce it for JSON lines / CSV / Parquet; :func:`parse_json_events`
produces it from a column of JSON text (a Kafka ``value``).

:func:`with_validation` tags each record with the FIRST failing check (one reason per
record, in this order) and the typed values:

1. unparseable             -- not a JSON object / CSV line with the header's columns
2. missing_required_field  -- a REQUIRED_TRANSACTION_FIELDS value is null or blank
3. oversize_field          -- any value longer than MAX_FIELD_LENGTH characters
4. wrong_type              -- amount is not a plain decimal number
5. invalid_timestamp       -- timestamp/updated_at not ISO-8601 (``YYYY-MM-DD[T ]hh:mm:ss[.f][Z|+hh:mm]``)
6. non_positive_amount     -- amount <= 0
7. unknown_currency        -- currency not in CURRENCY_MINOR_UNITS
8. invalid_value           -- status/channel outside their enums, more decimals than the
                              currency allows, an amount beyond DECIMAL(18,2), a PAN that is
                              not 12-19 digits

Two checks run only where the caller states them:

0. missing_header          -- (first) the reader found no usable CSV header in the record's file
                              (column ``_header_problem``, set by spark_apps.readers)
9. future_event_time       -- (with :class:`EventTimeBounds`) event_time more than the clock-skew
                              allowance after the run's time
10. outside_drop_date      -- (with :class:`EventTimeBounds` and a drop date) event_time further than
                              the bound outside the drop's date

The stream judges future events itself, against each record's Kafka produce time
(spark_apps.streaming.transforms), with the same reason code.

:func:`valid_events` and :func:`rejected_events` split a tagged frame; :func:`validate_events`
and :func:`validate_json_events` do both at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, StringType, StructField, StructType

from spark_apps.masking import mask_card_numbers_col, mask_payload_text_col, masked_payload_json_col, valid_pan_col
from spark_apps.schemas import (
    AMOUNT_TYPE,
    CHANNELS,
    CURRENCY_MINOR_UNITS,
    MAX_FIELD_LENGTH,
    QUARANTINE_SCHEMA,
    RAW_TRANSACTION_FIELDS,
    RAW_TRANSACTION_SCHEMA,
    REQUIRED_TRANSACTION_FIELDS,
    TRANSACTION_EVENT_SCHEMA,
    TRANSACTION_STATUSES,
    Reason,
)

CORRUPT_COLUMN = "_corrupt_record"
# Set by the readers on every record of a CSV file without a usable header (the detail), else null.
HEADER_PROBLEM_COLUMN = "_header_problem"
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300
DEFAULT_DROP_DATE_TOLERANCE_HOURS = 48
SOURCE_COLUMNS = ("source_name", "source_format", "source_location")
_AMOUNT_TEXT = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$"
RAW_WITH_CORRUPT_SCHEMA = StructType([*RAW_TRANSACTION_SCHEMA.fields, StructField(CORRUPT_COLUMN, StringType(), True)])


@dataclass(frozen=True)
class EventTimeBounds:
    """Where a batch record's event_time may lie (the batch job's arguments).

    ``reference_time``: the run's time; an event_time more than ``max_clock_skew_seconds`` after it
    is in the future (``future_event_time``). ``drop_date``: the partition date of the drop being
    processed; an event_time before its midnight minus ``drop_date_tolerance_hours`` or from the next
    midnight plus that many hours on is outside it (``outside_drop_date``). None: no date check.
    """

    reference_time: dt.datetime
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    drop_date: dt.date | None = None
    drop_date_tolerance_hours: int = DEFAULT_DROP_DATE_TOLERANCE_HOURS

    def __post_init__(self) -> None:
        if self.max_clock_skew_seconds < 0 or self.drop_date_tolerance_hours < 0:
            raise ValueError("max_clock_skew_seconds and drop_date_tolerance_hours must not be negative")

    @property
    def latest_event_time(self) -> dt.datetime:
        """The newest event_time that is not in the future (UTC)."""
        return _utc(self.reference_time) + dt.timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def drop_window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """[first, end) of the event times the drop may hold (UTC), or None without a drop date."""
        if self.drop_date is None:
            return None
        midnight = dt.datetime.combine(self.drop_date, dt.time(), tzinfo=dt.UTC)
        tolerance = dt.timedelta(hours=self.drop_date_tolerance_hours)
        return midnight - tolerance, midnight + dt.timedelta(days=1) + tolerance


def _utc(moment: dt.datetime) -> dt.datetime:
    """Aware UTC (a naive time is taken as UTC): PySpark reads a naive literal in the machine's zone."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso_text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time_text_col(event_time: Column) -> Column:
    return F.date_format(event_time, "yyyy-MM-dd'T'HH:mm:ss'Z'")


def parse_timestamp_col(text: Column) -> Column:
    """UTC timestamp from ISO-8601 text (no zone means UTC); null if the text is not one."""
    return F.when(F.trim(text).rlike(_TIMESTAMP_TEXT), F.trim(text).try_cast("timestamp"))


def parse_json_events(df: DataFrame, value_col: str = "value") -> DataFrame:
    """Raw events from a column of JSON text (string or binary, e.g. a Kafka ``value``).

    Keeps the other columns of ``df``. A value that is not a JSON object, or blank, gets
    ``_corrupt_record`` = the text. Numbers and nested values in a field arrive as their
    JSON text (``{"value": 1}`` in ``amount`` is then a wrong type).
    """
    text = F.col(value_col).cast("string")
    parsed = F.from_json(text, RAW_WITH_CORRUPT_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN})
    out = df.withColumn("_parsed", parsed)
    fields = [F.col(f"_parsed.{name}").alias(name) for name in RAW_TRANSACTION_FIELDS]
    blank = text.isNull() | (F.trim(text) == "")
    corrupt = F.when(blank | F.col(f"_parsed.{CORRUPT_COLUMN}").isNotNull(), F.coalesce(text, F.lit("")))
    others = [F.col(c) for c in df.columns if c not in (*RAW_TRANSACTION_FIELDS, CORRUPT_COLUMN)]
    return out.select(*others, *fields, corrupt.alias(CORRUPT_COLUMN))


# Fields kept in clear in index rows: a card number in one quarantines the record (invalid_value).
CARD_FREE_IDENTIFIERS = ("transaction_id", "user_id", "merchant_id")


def _names_where(conditions: dict[str, Column]) -> Column:
    """Comma-separated names whose condition is true."""
    return F.concat_ws(",", *[F.when(cond, F.lit(name)) for name, cond in conditions.items()])


def _units_col(currency: Column) -> Column:
    """Minor units of an accepted currency, else null (a CASE: no per-row map is built)."""
    code = F.upper(F.trim(currency))
    units = None
    for places in sorted(set(CURRENCY_MINOR_UNITS.values())):
        codes = [c for c, u in CURRENCY_MINOR_UNITS.items() if u == places]
        units = F.when(code.isin(*codes), F.lit(places)) if units is None else units.when(code.isin(*codes), F.lit(places))
    return units


def _bounds_checks(bounds: EventTimeBounds) -> list[tuple[str, Column, Column]]:
    """The event-time checks of ``bounds`` (after every other check: the record is otherwise valid)."""
    event_time = F.col("_event_time")
    latest = bounds.latest_event_time
    checks = [
        (
            Reason.FUTURE_EVENT_TIME,
            event_time > F.lit(latest),
            F.concat(
                F.lit("event_time "),
                event_time_text_col(event_time),
                F.lit(
                    f" is more than {bounds.max_clock_skew_seconds}s after the run's time "
                    f"{_iso_text(_utc(bounds.reference_time))}"
                ),
            ),
        )
    ]
    window = bounds.drop_window
    if window is not None:
        first, end = window
        checks.append(
            (
                Reason.OUTSIDE_DROP_DATE,
                (event_time < F.lit(first)) | (event_time >= F.lit(end)),
                F.concat(
                    F.lit("event_time "),
                    event_time_text_col(event_time),
                    F.lit(f" is more than {bounds.drop_date_tolerance_hours}h outside the drop date {bounds.drop_date}"),
                ),
            )
        )
    return checks


def _checks(bounds: EventTimeBounds | None = None, header_checked: bool = False) -> list[tuple[str, Column, Column]]:
    """(reason, failed condition, detail message) in check order, over the helper columns of with_validation.
    ``header_checked``: the frame has the readers' HEADER_PROBLEM_COLUMN (missing_header first)."""
    col = F.col
    amount_wide, units = col("_amount_wide"), col("_units")
    missing = {name: col(name).isNull() | (F.trim(col(name)) == "") for name in REQUIRED_TRANSACTION_FIELDS}
    oversize = {name: F.coalesce(F.length(col(name)) > MAX_FIELD_LENGTH, F.lit(False)) for name in RAW_TRANSACTION_FIELDS}
    bad_status = ~F.upper(F.trim(col("transaction_status"))).isin(*TRANSACTION_STATUSES)
    bad_channel = ~F.upper(F.trim(col("channel"))).isin(*CHANNELS)
    too_precise = F.lit(False)
    for places in sorted(set(CURRENCY_MINOR_UNITS.values())):  # round() needs a literal scale
        too_precise = F.when(F.coalesce(units, F.lit(2)) == places, amount_wide != F.round(amount_wide, places)).otherwise(
            too_precise
        )
    out_of_range = amount_wide.isNull() | (F.abs(amount_wide) >= F.lit(10**16))
    bad_pan = col("pan").isNotNull() & ~F.coalesce(valid_pan_col(col("pan")), F.lit(False))
    bad_time = {"timestamp": col("_event_time").isNull(), "updated_at": col("_updated_at").isNull()}
    invalid = {"transaction_status": bad_status, "channel": bad_channel, "amount": out_of_range | too_precise, "pan": bad_pan}
    # Identifiers stay in clear in the index (dedup and joins use them), so one holding a card number
    # is not a valid record: quarantined (its payload masked), never indexed.
    for name in CARD_FREE_IDENTIFIERS:
        invalid[f"{name} holds a card number"] = F.coalesce(mask_card_numbers_col(col(name)) != col(name), F.lit(False))
    checks = [
        (Reason.UNPARSEABLE, col(CORRUPT_COLUMN).isNotNull(), F.lit("record is not parseable as a transaction")),
        (Reason.MISSING_REQUIRED_FIELD, F.greatest(*missing.values()), F.concat(F.lit("missing: "), _names_where(missing))),
        (
            Reason.OVERSIZE_FIELD,
            F.greatest(*oversize.values()),
            F.concat(F.lit(f"longer than {MAX_FIELD_LENGTH}: "), _names_where(oversize)),
        ),
        (Reason.WRONG_TYPE, ~col("_amount_text").rlike(_AMOUNT_TEXT), F.lit("amount: not a decimal number")),
        (
            Reason.INVALID_TIMESTAMP,
            bad_time["timestamp"] | bad_time["updated_at"],
            F.concat(F.lit("not an ISO-8601 timestamp: "), _names_where(bad_time)),
        ),
        (Reason.NON_POSITIVE_AMOUNT, amount_wide <= 0, F.lit("amount <= 0")),
        (Reason.UNKNOWN_CURRENCY, units.isNull(), F.lit("currency: not a supported ISO 4217 code")),
        (Reason.INVALID_VALUE, F.greatest(*invalid.values()), _names_where(invalid)),
    ]
    if header_checked:
        header = col(HEADER_PROBLEM_COLUMN)
        checks.insert(0, (Reason.MISSING_HEADER, header.isNotNull(), header))
    return checks + (_bounds_checks(bounds) if bounds is not None else [])


def with_validation(raw_df: DataFrame, bounds: EventTimeBounds | None = None) -> DataFrame:
    """Add ``reason_code`` (null when valid), the typed ``_event_time``, ``_updated_at`` and
    ``_amount`` columns, and helper columns (``_amount_text``, ``_units``, ``_amount_wide``)
    that :func:`rejected_events` uses for ``reason_detail``. ``bounds``: the event-time checks
    (batch); a frame with the readers' HEADER_PROBLEM_COLUMN is checked for missing_header first.

    The detail message is built only for rejected rows (in :func:`rejected_events`): Spark may
    inline ``reason_code``'s whole CASE into every expression that reads it, so nothing
    evaluated for every row reads it besides the final filter.
    """
    col = F.col
    helpers_df = raw_df.select(
        "*",
        F.trim(col("amount")).alias("_amount_text"),
        _units_col(col("currency")).alias("_units"),
        parse_timestamp_col(col("timestamp")).alias("_event_time"),
        parse_timestamp_col(col("updated_at")).alias("_updated_at"),
    ).withColumn("_amount_wide", col("_amount_text").try_cast(DecimalType(38, 10)))
    code = None
    for reason, failed, _message in reversed(_checks(bounds, HEADER_PROBLEM_COLUMN in raw_df.columns)):
        code = F.when(failed, F.lit(reason)) if code is None else F.when(failed, F.lit(reason)).otherwise(code)
    # Exact for valid rows (at most 2 decimals, below 10^16); never read for rejected ones.
    return helpers_df.withColumn("reason_code", code).withColumn("_amount", col("_amount_wide").try_cast(AMOUNT_TYPE))


def reason_detail_col(bounds: EventTimeBounds | None = None, header_checked: bool = False) -> Column:
    """Which field(s) failed the record's reason_code check (for rejected rows of with_validation;
    the same ``bounds``, and ``header_checked`` if the frame has HEADER_PROBLEM_COLUMN)."""
    detail = None
    for reason, _failed, message in _checks(bounds, header_checked):
        condition = F.col("reason_code") == reason
        detail = F.when(condition, message) if detail is None else detail.when(condition, message)
    return detail


def valid_event_columns(available: list[str], keep: tuple[str, ...] = SOURCE_COLUMNS) -> list[Column]:
    """The typed TRANSACTION_EVENT_SCHEMA columns (then ``keep``) of a with_validation frame.

    Meaningful for rows whose reason_code is null; null-safe (never fails) for the others.
    """
    col = F.col
    typed = {
        "event_time": col("_event_time"),
        "amount": col("_amount"),
        "currency": F.upper(F.trim(col("currency"))),
        "transaction_status": F.upper(F.trim(col("transaction_status"))),
        "channel": F.upper(F.trim(col("channel"))),
        "updated_at": col("_updated_at"),
        "transaction_id": F.trim(col("transaction_id")),
        "user_id": F.trim(col("user_id")),
        "merchant_id": F.trim(col("merchant_id")),
        "country": F.upper(F.trim(col("country"))),
    }
    # Raw fields are text: a text field passes through as the same column, not an alias of it. The
    # optimizer removes such an alias in some branches of a plan and not in others, and then two
    # branches over the same records no longer share their shuffle (spark_apps.streaming.transforms).
    columns = [
        typed.get(f.name, col(f.name)).cast(f.dataType).alias(f.name)
        if f.name in typed or f.dataType != StringType()
        else col(f.name)
        for f in TRANSACTION_EVENT_SCHEMA.fields
    ]
    return columns + [col(c) for c in keep if c in available]


def valid_events(tagged_df: DataFrame, keep: tuple[str, ...] = SOURCE_COLUMNS) -> DataFrame:
    """Typed rows (TRANSACTION_EVENT_SCHEMA columns, then ``keep``) of records that passed."""
    return tagged_df.filter(F.col("reason_code").isNull()).select(*valid_event_columns(tagged_df.columns, keep))


def payload_masked_col() -> Column:
    """The original record, masked: the raw text for unparseable records, else the fields as JSON."""
    return F.when(F.col(CORRUPT_COLUMN).isNotNull(), mask_payload_text_col(F.col(CORRUPT_COLUMN))).otherwise(
        masked_payload_json_col()
    )


def quarantine_columns(
    version: str, quarantined_at: dt.datetime, bounds: EventTimeBounds | None = None, header_checked: bool = False
) -> dict[str, Column]:
    """QUARANTINE_SCHEMA column expressions over a with_validation frame (for rejected rows; the
    frame's ``bounds`` and ``header_checked`` as in :func:`reason_detail_col`)."""
    col = F.col
    values = {
        "reason_code": col("reason_code"),
        "reason_detail": reason_detail_col(bounds, header_checked),
        "source_name": col("source_name"),
        "source_format": col("source_format"),
        "source_location": col("source_location"),
        "transaction_id": mask_card_numbers_col(
            F.when(F.length(col("transaction_id")) <= MAX_FIELD_LENGTH, col("transaction_id"))
        ),
        "payload_masked": payload_masked_col(),
        "version": F.lit(version),
        "quarantined_at": F.lit(quarantined_at).cast("timestamp"),
    }
    return {f.name: values[f.name].cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields}


def rejected_events(
    tagged_df: DataFrame, version: str, quarantined_at: dt.datetime, bounds: EventTimeBounds | None = None
) -> DataFrame:
    """QUARANTINE_SCHEMA rows for the records that failed a check (``bounds``: as given to with_validation)."""
    columns = quarantine_columns(version, quarantined_at, bounds, HEADER_PROBLEM_COLUMN in tagged_df.columns)
    return tagged_df.filter(F.col("reason_code").isNotNull()).select(*columns.values())


def with_source_columns(df: DataFrame, source_name: str, source_format: str, source_location: Column | None = None) -> DataFrame:
    """Add the source columns the quarantine rows need, where ``df`` lacks them."""
    defaults = {
        "source_name": F.lit(source_name),
        "source_format": F.lit(source_format),
        "source_location": source_location if source_location is not None else F.lit(None).cast("string"),
    }
    for name, value in defaults.items():
        if name not in df.columns:
            df = df.withColumn(name, value)
    return df


def validate_events(
    raw_df: DataFrame, version: str, quarantined_at: dt.datetime, bounds: EventTimeBounds | None = None
) -> tuple[DataFrame, DataFrame]:
    """(valid typed events, quarantine rows) from raw events (``bounds``: the event-time checks)."""
    tagged_df = with_validation(raw_df, bounds)
    return valid_events(tagged_df), rejected_events(tagged_df, version, quarantined_at, bounds)


def validate_json_events(
    df: DataFrame,
    value_col: str = "value",
    version: str = "stream",
    quarantined_at: dt.datetime | None = None,
    source_name: str = "kafka",
    source_format: str = "kafka",
    source_location: Column | None = None,
) -> tuple[DataFrame, DataFrame]:
    """The stream's entry point: JSON text column -> (valid TRANSACTION_EVENT_SCHEMA rows + the
    source columns and any other input columns you keep, QUARANTINE_SCHEMA rows).

    ``source_location`` may be a column such as ``concat_ws('/', topic, partition, offset)``.
    Works on streaming DataFrames (no actions). The valid rows still hold pan/cvv/expiry:
    pass them through spark_apps.masking.with_masked_card_fields before anything is written.
    """
    events_df = with_source_columns(parse_json_events(df, value_col), source_name, source_format, source_location)
    tagged_df = with_validation(events_df)
    extra = tuple(c for c in df.columns if c != value_col and c not in RAW_TRANSACTION_FIELDS)
    return valid_events(tagged_df, keep=SOURCE_COLUMNS + extra), rejected_events(
        tagged_df, version, quarantined_at or dt.datetime.now(dt.UTC)
    )
