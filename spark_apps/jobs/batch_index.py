"""Batch index job: one date's raw drops -> validated, masked, deduplicated, enriched batch index.

    python -m spark_apps.jobs.batch_index --date 2026-11-21 --version <id> \
        --raw-uri <lake.raw_uri> --index-uri <lake.index_uri> --quarantine-uri <lake.quarantine_uri> \
        [--token-key-ref env:PAYMENTS_PAN_TOKEN_KEY] [--fraud-rules include/config/fraud_rules.yaml] \
        [--max-clock-skew-seconds 300] [--drop-date-tolerance-hours 48] \
        [--master local[2]] [--conf spark.key=value ...]

(or ``spark-submit spark_apps/jobs/batch_index.py ...`` with the same arguments).

Writes (DESIGN decision 4, spark_apps.lake):

* ``<index-uri>/batch_index/dt=<date>/version=<version>/`` -- BATCH_INDEX_SCHEMA Parquet + ``_manifest.json``;
* ``<quarantine-uri>/quarantine/dt=<date>/version=<version>/`` -- QUARANTINE_SCHEMA Parquet + ``_manifest.json``.

An event whose time is more than ``--max-clock-skew-seconds`` after the run's start is
quarantined as ``future_event_time``; one more than ``--drop-date-tolerance-hours`` outside the
date being processed as ``outside_drop_date`` (spark_apps.validation.EventTimeBounds).

Prints the run manifest (JSON) on stdout as its last line. Counts conserve, measured on what
was written: records read (valid + quarantined) = rows in the written index + transaction rows
in the written quarantine + duplicates (valid records - their distinct transaction ids), or the
job fails with :class:`ConservationError` (a row lost or multiplied by an enrichment join or a
write) and writes no manifest. Rerunning a date with a new version gives the same rows (only
version / ingested_at differ; a record that was in the future at the first run may not be at a
later one); the same version replaces that version's files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from payments_contract import BATCH_INDEX, QUARANTINE
from spark_apps import lake
from spark_apps.dedup import filter_latest_per_transaction
from spark_apps.enrichment import with_fx_conversion, with_latest_fraud_output, with_merchant_risk, with_policy, with_policy_flags
from spark_apps.fraud_rules import FraudRules, load_rules, with_risk, with_rule_flags, with_rule_signals
from spark_apps.masking import with_masked_card_fields
from spark_apps.readers import read_raw_events, read_tagged_side_source, split_tagged_side_source
from spark_apps.schemas import (
    BATCH_INDEX_SCHEMA,
    FRAUD_MODEL_OUTPUT_SCHEMA,
    FX_RATE_SCHEMA,
    MERCHANT_SCHEMA,
    POLICY_SCHEMA,
    QUARANTINE_SCHEMA,
    Reason,
)
from spark_apps.secrets import DEFAULT_PAN_TOKEN_KEY_REF, pan_token_key
from spark_apps.sources import TRANSACTION_SOURCES, source_location
from spark_apps.validation import (
    DEFAULT_DROP_DATE_TOLERANCE_HOURS,
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    HEADER_PROBLEM_COLUMN,
    SOURCE_COLUMNS,
    EventTimeBounds,
    quarantine_columns,
    valid_event_columns,
    with_validation,
)

INDEX_TABLE = BATCH_INDEX
QUARANTINE_TABLE = QUARANTINE
SIDE_INPUTS = {
    "fraud_scores": FRAUD_MODEL_OUTPUT_SCHEMA,
    "merchants": MERCHANT_SCHEMA,
    "policies": POLICY_SCHEMA,
    "fx_rates": FX_RATE_SCHEMA,
}

# Side sources as large as the transactions (one row per scored transaction): persisted after
# parsing so the quarantine write and the index do not each parse the files.
PERSISTED_SIDE_INPUTS = ("fraud_scores",)


class ConservationError(RuntimeError):
    """read != indexed + quarantined + duplicates, measured on the written output: a record was
    lost (an enrichment join, a write) or multiplied."""


@dataclass
class BatchIndexFrames:
    """The job's outputs before writing (lazy), plus the checked input they derive from."""

    checked_df: DataFrame  # every raw transaction record: reason_code null (valid, masked) or set
    index_df: DataFrame  # BATCH_INDEX_SCHEMA columns
    quarantine_df: DataFrame  # QUARANTINE_SCHEMA, transactions and side sources
    persisted_side: list[DataFrame] = field(default_factory=list)  # side sources parsed once, for both writes


def read_transactions(spark: SparkSession, raw_uri: str, date: str) -> DataFrame:
    """Union of every transaction source's raw events for the date (empty frame if none)."""
    frames = [
        df
        for source in TRANSACTION_SOURCES
        if (df := read_raw_events(spark, source_location(raw_uri, source.name, date), source.name)) is not None
    ]
    if not frames:
        from spark_apps.validation import RAW_WITH_CORRUPT_SCHEMA

        empty = spark.createDataFrame([], RAW_WITH_CORRUPT_SCHEMA)
        return empty.select("*", *[F.lit(None).cast("string").alias(c) for c in SOURCE_COLUMNS])
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def with_checked_records(
    raw_df: DataFrame, key: bytes, version: str, started_at: dt.datetime, bounds: EventTimeBounds | None = None
) -> DataFrame:
    """Validate every record in ONE projection (no filter before the cache): each row carries
    its reason_code, the typed + masked event columns and, for rejected rows, the quarantine
    columns (``q_transaction_id``, ``reason_detail``, ``payload_masked``).

    Filtering on reason_code here would let Spark push the filter below the projection and
    inline the whole validation (each helper value several times) into it; splitting after
    the cache avoids that. PAN/CVV/expiry/ip leave the frame here, so caching it is safe.
    ``bounds``: the event-time checks (future_event_time, outside_drop_date).
    """
    tagged_df = with_validation(raw_df, bounds)
    rejected = F.col("reason_code").isNotNull()
    quarantine = quarantine_columns(version, started_at, bounds, HEADER_PROBLEM_COLUMN in tagged_df.columns)
    checked_df = tagged_df.select(
        "reason_code",
        *valid_event_columns(tagged_df.columns),
        F.when(rejected, quarantine["transaction_id"]).alias("q_transaction_id"),
        F.when(rejected, quarantine["reason_detail"]).alias("reason_detail"),
        F.when(rejected, quarantine["payload_masked"]).alias("payload_masked"),
    )
    return with_masked_card_fields(checked_df, key)


def quarantine_rows(checked_df: DataFrame, version: str, started_at: dt.datetime) -> DataFrame:
    values = {
        "transaction_id": F.col("q_transaction_id"),
        "version": F.lit(version),
        "quarantined_at": F.lit(started_at).cast("timestamp"),
    }
    return checked_df.filter(F.col("reason_code").isNotNull()).select(
        *[values.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields]
    )


def build_batch_index(
    spark: SparkSession,
    raw_uri: str,
    date: str,
    version: str,
    key: bytes,
    rules: FraudRules,
    started_at: dt.datetime,
    bounds: EventTimeBounds | None = None,
) -> BatchIndexFrames:
    checked_df = with_checked_records(read_transactions(spark, raw_uri, date), key, version, started_at, bounds)
    side = {}
    persisted_side = []
    for name, schema in SIDE_INPUTS.items():
        tagged_df = read_tagged_side_source(spark, source_location(raw_uri, name, date), schema)
        if tagged_df is not None and name in PERSISTED_SIDE_INPUTS:
            # The quarantine write and the index both read it: parse the files once.
            tagged_df = tagged_df.persist(StorageLevel.MEMORY_AND_DISK)
            persisted_side.append(tagged_df)
        side[name] = split_tagged_side_source(spark, tagged_df, name, schema, version, started_at)
    valid_df = checked_df.filter(F.col("reason_code").isNull()).drop(
        "reason_code", "q_transaction_id", "reason_detail", "payload_masked", "source_format"
    )
    index_df = (
        valid_df.transform(filter_latest_per_transaction)
        .transform(with_latest_fraud_output, side["fraud_scores"][0])
        .transform(with_fx_conversion, side["fx_rates"][0])
        .transform(with_merchant_risk, side["merchants"][0])
        .transform(with_rule_signals, rules)
        .transform(with_policy, side["policies"][0])
        .transform(with_policy_flags)
        .transform(with_rule_flags, rules)
        .transform(with_risk, rules)
        .withColumn("version", F.lit(version))
        .withColumn("ingested_at", F.lit(started_at).cast("timestamp"))
    )
    quarantine_df = quarantine_rows(checked_df, version, started_at)
    for _good, bad_df in side.values():
        quarantine_df = quarantine_df.unionByName(bad_df)
    index_df = index_df.select(*BATCH_INDEX_SCHEMA.fieldNames())  # drops the rule signals and source_location
    return BatchIndexFrames(checked_df, lake.conform_to_schema(index_df, BATCH_INDEX_SCHEMA), quarantine_df, persisted_side)


@dataclass
class WrittenBatch:
    """What :func:`write_batch_index` wrote, and the counts measured on the checked input on the way."""

    index_location: str
    quarantine_location: str
    by_reason_rows: list  # (source_name, reason_code, count) of every checked transaction record
    distinct_ids: int  # the valid records' distinct transaction ids: what dedup must keep


def write_batch_index(frames: BatchIndexFrames, date: str, version: str, index_uri: str, quarantine_uri: str) -> WrittenBatch:
    """Count the checked records, then write the quarantine and the index versions (the checked
    records cached once for all three; the side sources parsed for both writes released after)."""
    checked_df = frames.checked_df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        by_reason_rows = checked_df.groupBy("source_name", "reason_code").count().collect()
        # Measured, not derived: the valid records' distinct transaction ids (what dedup must keep).
        distinct_ids = checked_df.filter(F.col("reason_code").isNull()).agg(F.count_distinct("transaction_id")).first()[0]
        quarantine_location = lake.write_versioned(
            frames.quarantine_df, quarantine_uri, QUARANTINE_TABLE, date, version, QUARANTINE_SCHEMA
        )
        index_location = lake.write_versioned(frames.index_df, index_uri, INDEX_TABLE, date, version, BATCH_INDEX_SCHEMA)
    finally:
        checked_df.unpersist()
        for side_df in frames.persisted_side:
            side_df.unpersist()
    return WrittenBatch(index_location, quarantine_location, by_reason_rows, distinct_ids or 0)


def checked_counts(by_reason_rows: list) -> tuple[dict[str, int], dict[str, int], int]:
    """(records read per source, rejected records per reason code, valid records) of the checked input."""
    read_by_source: dict[str, int] = {}
    quarantined_by_reason = dict.fromkeys(Reason.ALL, 0)
    valid = 0
    for row in by_reason_rows:
        read_by_source[row.source_name] = read_by_source.get(row.source_name, 0) + row["count"]
        if row.reason_code is None:
            valid += row["count"]
        else:
            quarantined_by_reason[row.reason_code] += row["count"]
    return read_by_source, quarantined_by_reason, valid


def written_counts(spark: SparkSession, written: WrittenBatch) -> tuple[int, int, dict[str, int]]:
    """(index rows, quarantined transaction rows, quarantined rows per side source), read back from
    what was written (Parquet footers for the index; the quarantine is small)."""
    indexed = spark.read.parquet(written.index_location).count()
    transaction_sources = {s.name for s in TRANSACTION_SOURCES}
    written_by_source = {
        r.source_name: r["count"]
        for r in spark.read.parquet(written.quarantine_location).groupBy("source_name").count().collect()
    }
    quarantined = sum(n for name, n in written_by_source.items() if name in transaction_sources)
    side_rejects = {name: n for name, n in written_by_source.items() if name not in transaction_sources}
    return indexed, quarantined, side_rejects


def batch_counts(spark: SparkSession, written: WrittenBatch) -> tuple[dict, int]:
    """(the manifest's counts, rejected transaction records as checked) of one written batch."""
    read_by_source, quarantined_by_reason, valid = checked_counts(written.by_reason_rows)
    indexed, quarantined, side_rejects = written_counts(spark, written)
    counts = {
        "read": sum(read_by_source.values()),
        "indexed": indexed,
        "quarantined": quarantined,
        "duplicates": valid - written.distinct_ids,
        "valid": valid,
        "distinct_transaction_ids": written.distinct_ids,
        "quarantined_by_reason": {k: v for k, v in quarantined_by_reason.items() if v},
        "read_by_source": dict(sorted(read_by_source.items())),
        "side_sources_quarantined": dict(sorted(side_rejects.items())),
    }
    return counts, sum(quarantined_by_reason.values())


def write_batch_manifests(written: WrittenBatch, manifest: dict) -> None:
    """The quarantine's manifest, then the index's: ``rows`` is what each version holds (the quality
    gate checks the Parquet row count against it)."""
    counts = manifest["counts"]
    quarantine_rows_written = counts["quarantined"] + sum(counts["side_sources_quarantined"].values())
    lake.write_manifest(written.quarantine_location, {**manifest, "table": QUARANTINE_TABLE, "rows": quarantine_rows_written})
    lake.write_manifest(written.index_location, {**manifest, "rows": counts["indexed"]})


def run_batch_index(
    spark: SparkSession,
    date: str,
    version: str,
    raw_uri: str,
    index_uri: str,
    quarantine_uri: str,
    key: bytes,
    rules: FraudRules,
    started_at: dt.datetime | None = None,
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    drop_date_tolerance_hours: int = DEFAULT_DROP_DATE_TOLERANCE_HOURS,
) -> dict:
    """Build and write the date's batch index and quarantine; return the run manifest.

    Steps: build the frames (lazy), write both versions, count what was read and written, check
    conservation, write the manifests. Raises :class:`ConservationError` (no manifest written)
    unless the written output accounts for every record read (see the module docstring)."""
    date, version = lake.check_date(date), lake.check_version(version)
    started_at = (started_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    bounds = EventTimeBounds(started_at, max_clock_skew_seconds, dt.date.fromisoformat(date), drop_date_tolerance_hours)
    clock = time.monotonic()
    frames = build_batch_index(spark, raw_uri, date, version, key, rules, started_at, bounds)
    written = write_batch_index(frames, date, version, index_uri, quarantine_uri)
    counts, quarantined_checked = batch_counts(spark, written)
    check_conservation(counts, quarantined_checked, f"batch index {date} version {version}")
    manifest = {
        "table": INDEX_TABLE,
        "date": date,
        "version": version,
        "started_at": started_at.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "seconds": round(time.monotonic() - clock, 1),
        "index_location": written.index_location,
        "quarantine_location": written.quarantine_location,
        "raw_uri": raw_uri,
        "event_time_bounds": {
            "max_clock_skew_seconds": max_clock_skew_seconds,
            "drop_date_tolerance_hours": drop_date_tolerance_hours,
        },
        "counts": counts,
        "conserved": True,
    }
    write_batch_manifests(written, manifest)
    return manifest


def check_conservation(counts: dict, quarantined_checked: int, what: str) -> None:
    """Raise :class:`ConservationError` unless read = indexed + quarantined + duplicates, where
    ``indexed`` and ``quarantined`` are the rows written and ``duplicates`` the valid records minus
    their distinct transaction ids; the message names every count and the side that does not add up."""
    read, indexed, quarantined, duplicates = (counts[k] for k in ("read", "indexed", "quarantined", "duplicates"))
    valid, distinct = counts["valid"], counts["distinct_transaction_ids"]
    problems = []
    if indexed != distinct:
        problems.append(f"the index holds {indexed} rows for {distinct} distinct valid transaction ids")
    if quarantined != quarantined_checked:
        problems.append(f"the quarantine holds {quarantined} transaction rows for {quarantined_checked} rejected records")
    if read != indexed + quarantined + duplicates or problems:
        raise ConservationError(
            f"{what}: read {read} != indexed {indexed} + quarantined {quarantined} + duplicates {duplicates} "
            f"(valid {valid} - distinct transaction ids {distinct}): " + ("; ".join(problems) or "counts do not add up")
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch_index", description="Build one date's batch index (see module docstring).")
    parser.add_argument("--date", required=True, help="partition date YYYY-MM-DD")
    parser.add_argument("--version", required=True, help="version id of this run: [A-Za-z0-9_.-], <= 128 chars")
    parser.add_argument("--raw-uri", required=True, help="root of the raw drops (<raw-uri>/<source>/dt=<date>/)")
    parser.add_argument("--index-uri", required=True, help="root of the indexes (lake.index_uri)")
    parser.add_argument("--quarantine-uri", required=True, help="root of the quarantine tables (lake.quarantine_uri)")
    parser.add_argument(
        "--token-key-ref",
        "--pan-key-ref",
        dest="token_key_ref",
        default=DEFAULT_PAN_TOKEN_KEY_REF,
        help="secret reference of the PAN token key",
    )
    parser.add_argument("--region", help="AWS region for secretsmanager: references")
    parser.add_argument("--fraud-rules", help="fraud rules YAML (default include/config/fraud_rules.yaml)")
    parser.add_argument(
        "--max-clock-skew-seconds",
        type=int,
        default=DEFAULT_MAX_CLOCK_SKEW_SECONDS,
        help="an event_time more than this after the run's start is quarantined as future_event_time",
    )
    parser.add_argument(
        "--drop-date-tolerance-hours",
        type=int,
        default=DEFAULT_DROP_DATE_TOLERANCE_HOURS,
        help="an event_time more than this outside --date is quarantined as outside_drop_date",
    )
    parser.add_argument("--master", help="Spark master, e.g. local[2] (omit under spark-submit)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark configuration")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from spark_apps.session import build_session

    conf = {}
    for item in args.conf:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--conf {item!r}: expected KEY=VALUE")
        conf[name] = value
    key = pan_token_key(args.token_key_ref or DEFAULT_PAN_TOKEN_KEY_REF, args.region)
    rules = load_rules(args.fraud_rules)
    spark = build_session(f"batch-index-{args.date}", args.master, conf)
    try:
        manifest = run_batch_index(
            spark,
            args.date,
            args.version,
            args.raw_uri,
            args.index_uri,
            args.quarantine_uri,
            key,
            rules,
            max_clock_skew_seconds=args.max_clock_skew_seconds,
            drop_date_tolerance_hours=args.drop_date_tolerance_hours,
        )
    finally:
        spark.stop()
    print(json.dumps(manifest, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
