"""Aggregate index job: stream index + batch index + settlement lines over the previous aggregate version.

    python -m spark_apps.jobs.aggregate_index --date 2026-11-21 --version <id> \
        --index-uri <lake.index_uri> --raw-uri <lake.raw_uri> \
        --batch-index-location <published batch_index version of the date> \
        [--previous-aggregate-location <published aggregate_index version>] \
        [--stream-index-location <folder> ...] [--config include/config/indexes.yaml] \
        [--master local[2]] [--conf key=value ...]

Writes (DESIGN decision 4, spark_apps.lake), each with a ``_manifest.json``:

* ``<index-uri>/aggregate_index/dt=<date>/version=<version>/`` -- AGGREGATE_INDEX_SCHEMA;
* ``<index-uri>/audit_trail/dt=<date>/version=<version>/`` -- AUDIT_TRAIL_SCHEMA.

The previous version is the latest aggregate of an earlier date; when the DAG passes the
version published for the run date itself (a rerun), its manifest's
``previous_aggregate_location`` is followed. When none is passed, the newest version that
passed the quality gate (``_quality.json``) of the latest earlier date within the
retention window is used (none: start empty). Stream index input defaults to
``<index-uri>/stream_index/dt=<date - 1>`` and ``dt=<date>`` (late events; read
recursively, duplicates across versions are harmless: the merge keeps the latest).
Prints the aggregate manifest (JSON) as the last stdout line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from payments_contract import AGGREGATE_INDEX, AUDIT_TRAIL, STREAM_INDEX
from spark_apps import lake
from spark_apps.indexes.config import load_index_config
from spark_apps.indexes.inputs import latest_verified_version, read_raw_side, read_table, resolve_previous_aggregate
from spark_apps.merge import audit_changes, merge_aggregate
from spark_apps.schemas import (
    AGGREGATE_INDEX_SCHEMA,
    AUDIT_TRAIL_SCHEMA,
    BATCH_INDEX_SCHEMA,
    SETTLEMENT_LINE_SCHEMA,
    STREAM_INDEX_SCHEMA,
)

AGGREGATE_TABLE = AGGREGATE_INDEX
AUDIT_TABLE = AUDIT_TRAIL


class ConservationError(RuntimeError):
    """A transaction of an input is missing from the new aggregate version (or one appeared from nowhere)."""


def _counts_by(df: DataFrame, column: str) -> dict[str, int]:
    return {str(row[column]): row["count"] for row in df.groupBy(column).count().collect()}


def default_stream_locations(index_uri: str, date: str) -> list[str]:
    day = dt.date.fromisoformat(date)
    return [
        lake.date_location(index_uri, STREAM_INDEX, day - dt.timedelta(days=1)),
        lake.date_location(index_uri, STREAM_INDEX, day),
    ]


@dataclass
class AggregateInputs:
    """The versions and raw files one aggregate run merges, each read once (persisted: the merge,
    the audit and the conservation counts all read them)."""

    previous_location: str | None  # the aggregate version compared against (an earlier date's)
    previous_version: str | None
    previous_df: DataFrame
    batch_df: DataFrame
    stream_df: DataFrame
    statements_df: DataFrame
    rejected_lines_df: DataFrame

    def unpersist(self) -> None:
        for df in (self.statements_df, self.stream_df, self.batch_df, self.previous_df):
            df.unpersist()


def previous_aggregate(index_uri: str, date: str, named_location: str | None, retention_days: int) -> str | None:
    """The aggregate version to compare against: the named one (or, for a rerun, the one it was built
    over), else the newest verified version of the latest earlier date within retention."""
    if named_location:
        return resolve_previous_aggregate(named_location, date)
    return latest_verified_version(index_uri, AGGREGATE_TABLE, date, retention_days)


def read_stream_index(spark: SparkSession, locations: list[str]) -> DataFrame:
    """The union of the stream index folders (an empty frame when there are none)."""
    stream_df = None
    for location in locations:
        part_df = read_table(spark, location, STREAM_INDEX_SCHEMA, "stream index")
        stream_df = part_df if stream_df is None else stream_df.unionByName(part_df)
    return stream_df if stream_df is not None else spark.createDataFrame([], STREAM_INDEX_SCHEMA)


def read_aggregate_inputs(
    spark: SparkSession,
    date: str,
    version: str,
    raw_uri: str,
    batch_index_location: str | None,
    previous_location: str | None,
    stream_index_locations: list[str],
    started_at: dt.datetime,
) -> AggregateInputs:
    previous_manifest = lake.read_manifest(previous_location) if previous_location else None
    previous_df = read_table(
        spark, previous_location, AGGREGATE_INDEX_SCHEMA, "previous aggregate", required=bool(previous_location)
    )
    batch_df = read_table(spark, batch_index_location, BATCH_INDEX_SCHEMA, "batch index", required=bool(batch_index_location))
    stream_df = read_stream_index(spark, stream_index_locations)
    stream_df, batch_df, previous_df = (df.persist(StorageLevel.MEMORY_AND_DISK) for df in (stream_df, batch_df, previous_df))
    statements_df, rejected_lines_df = read_raw_side(
        spark, raw_uri, "settlements", date, SETTLEMENT_LINE_SCHEMA, version, started_at
    )
    return AggregateInputs(
        previous_location,
        previous_manifest.get("version") if previous_manifest else None,
        previous_df,
        batch_df,
        stream_df,
        statements_df.persist(StorageLevel.MEMORY_AND_DISK),
        rejected_lines_df,
    )


def retention_cutoff(run_date: dt.date, retention_days: int) -> dt.datetime:
    """Previous rows with an event time before this leave the aggregate."""
    return dt.datetime.combine(run_date - dt.timedelta(days=retention_days), dt.time(), tzinfo=dt.UTC)


def distinct_input_transactions(inputs: AggregateInputs, cutoff: dt.datetime) -> int:
    """The transactions the aggregate must hold: every id of the stream, the batch and the retained previous rows."""
    return (
        inputs.stream_df.select("transaction_id")
        .unionByName(inputs.batch_df.select("transaction_id"))
        .unionByName(inputs.previous_df.where(F.col("event_time") >= F.lit(cutoff)).select("transaction_id"))
        .distinct()
        .count()
    )


def written_summary(written_df: DataFrame, run_date: dt.date) -> dict:
    """Rows of the written aggregate: in total, by record source, by settlement status, new today."""
    is_new = F.col("first_seen_date") == F.lit(run_date)
    summary = written_df.groupBy("record_source", "settlement_status", is_new.alias("is_new")).count().collect()
    by_record_source: dict[str, int] = {}
    by_settlement_status: dict[str, int] = {}
    for row in summary:
        by_record_source[row.record_source] = by_record_source.get(row.record_source, 0) + row["count"]
        status = row.settlement_status or "UNSETTLED"
        by_settlement_status[status] = by_settlement_status.get(status, 0) + row["count"]
    return {
        "rows": sum(row["count"] for row in summary),
        "by_record_source": by_record_source,
        "by_settlement_status": by_settlement_status,
        "new_transactions": sum(row["count"] for row in summary if row.is_new),
    }


def input_counts(inputs: AggregateInputs, written_df: DataFrame, cutoff: dt.datetime) -> dict:
    """Rows read per input, expired previous rows and statement lines (rejected, or naming no known transaction)."""
    previous_totals = inputs.previous_df.agg(
        F.count(F.lit(1)).alias("rows"), F.count(F.when(F.col("event_time") < F.lit(cutoff), 1)).alias("expired")
    ).first()
    known_ids = written_df.select(F.col("transaction_id").alias("transaction_ref"), F.lit(True).alias("known"))
    line_totals = (
        inputs.statements_df.join(known_ids, "transaction_ref", "left")
        .agg(F.count(F.lit(1)).alias("lines"), F.count(F.when(F.col("known").isNull(), 1)).alias("without_transaction"))
        .first()
    )
    return {
        "stream_rows": inputs.stream_df.count(),
        "batch_rows": inputs.batch_df.count(),
        "previous_rows": previous_totals["rows"],
        "previous_expired": previous_totals["expired"],
        "statement_lines": line_totals["lines"],
        "statement_lines_rejected": inputs.rejected_lines_df.count(),
        "statement_lines_without_transaction": line_totals["without_transaction"],
    }


def audit_and_count(
    spark: SparkSession,
    inputs: AggregateInputs,
    aggregate_location: str,
    index_uri: str,
    date: str,
    version: str,
    started_at: dt.datetime,
    retention_days: int,
) -> tuple[str, dict, dict[str, int]]:
    """Write the audit trail of what changed against the previous version, then count the written
    aggregate; (audit location, aggregate counts, audit rows by field). Raises ConservationError
    unless the aggregate holds exactly one row per distinct input transaction."""
    run_date = dt.date.fromisoformat(date)
    written_df = spark.read.parquet(aggregate_location).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        audit_df = audit_changes(inputs.previous_df, written_df, version, started_at, inputs.previous_version)
        audit_location = lake.write_versioned(audit_df, index_uri, AUDIT_TABLE, date, version, AUDIT_TRAIL_SCHEMA)
        cutoff = retention_cutoff(run_date, retention_days)
        expected_rows = distinct_input_transactions(inputs, cutoff)
        summary = written_summary(written_df, run_date)
        counts = {"rows": summary["rows"], "input_rows": input_counts(inputs, written_df, cutoff), **summary}
        audit_by_field = _counts_by(spark.read.parquet(audit_location), "field")
    finally:
        written_df.unpersist()
        inputs.unpersist()
    if counts["rows"] != expected_rows:
        raise ConservationError(f"aggregate rows {counts['rows']} != distinct input transactions {expected_rows}")
    return audit_location, counts, audit_by_field


def run_aggregate_index(
    spark: SparkSession,
    date: str,
    version: str,
    index_uri: str,
    raw_uri: str,
    batch_index_location: str | None,
    previous_aggregate_location: str | None,
    stream_index_locations: list[str],
    retention_days: int,
    started_at: dt.datetime | None = None,
) -> dict:
    """Merge, audit, write both versions with manifests; return the aggregate manifest.

    Steps: find the previous version, read the inputs, merge and write the aggregate, write the
    audit trail and count (conservation checked), write both manifests."""
    date, version = lake.check_date(date), lake.check_version(version)
    run_date = dt.date.fromisoformat(date)
    started_at = (started_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    clock = time.monotonic()
    previous_location = previous_aggregate(index_uri, date, previous_aggregate_location, retention_days)
    inputs = read_aggregate_inputs(
        spark, date, version, raw_uri, batch_index_location, previous_location, stream_index_locations, started_at
    )
    aggregate_df = merge_aggregate(
        inputs.stream_df, inputs.batch_df, inputs.statements_df, inputs.previous_df, run_date, version, started_at, retention_days
    )
    aggregate_location = lake.write_versioned(aggregate_df, index_uri, AGGREGATE_TABLE, date, version, AGGREGATE_INDEX_SCHEMA)
    audit_location, counts, audit_by_field = audit_and_count(
        spark, inputs, aggregate_location, index_uri, date, version, started_at, retention_days
    )
    common = {
        "date": date,
        "version": version,
        "started_at": started_at.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "seconds": round(time.monotonic() - clock, 1),
        "previous_aggregate_location": previous_location,
        "previous_version": inputs.previous_version,
        "batch_index_location": batch_index_location or None,
        "stream_index_locations": stream_index_locations,
        "raw_uri": raw_uri,
        "retention_days": retention_days,
        # {table: location} of the versions read, for the quality gate's contract references (the
        # previous aggregate stays out: it would shadow the version under test)
        "inputs": {"batch_index": batch_index_location} if batch_index_location else {},
    }
    audit_manifest = {"table": AUDIT_TABLE, "rows": sum(audit_by_field.values()), "counts": {"by_field": audit_by_field}}
    lake.write_manifest(audit_location, {**common, **audit_manifest, "location": audit_location})
    manifest = {
        **common,
        "table": AGGREGATE_TABLE,
        "rows": counts["rows"],
        "counts": counts,
        "audit_location": audit_location,
        "location": aggregate_location,
    }
    lake.write_manifest(aggregate_location, manifest)
    return manifest


def parse_conf(items: list[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--conf {item!r}: expected KEY=VALUE")
        conf[name] = value
    return conf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aggregate_index", description="Merge stream + batch + statements into the aggregate index."
    )
    parser.add_argument("--date", required=True, help="partition date YYYY-MM-DD")
    parser.add_argument("--version", required=True, help="version id of this run: [A-Za-z0-9_.-], <= 128 chars")
    parser.add_argument("--index-uri", required=True, help="root of the indexes (lake.index_uri)")
    parser.add_argument(
        "--raw-uri", required=True, help="root of the raw drops; statements from <raw-uri>/settlements/dt=<date>/"
    )
    parser.add_argument("--batch-index-location", default="", help="the batch_index version to merge ('' = none)")
    parser.add_argument(
        "--previous-aggregate-location",
        default="",
        help="a published aggregate_index version ('' = newest verified version of an earlier date, if any)",
    )
    parser.add_argument(
        "--stream-index-location",
        action="append",
        default=None,
        help="stream index folder(s) to merge (repeatable); default: <index-uri>/stream_index/dt=<date-1> and dt=<date>",
    )
    parser.add_argument("--config", help="index configuration YAML (default include/config/indexes.yaml)")
    parser.add_argument("--master", help="Spark master, e.g. local[2] (omit under spark-submit)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark configuration")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from spark_apps.session import build_session

    config = load_index_config(args.config)
    stream_locations = (
        args.stream_index_location
        if args.stream_index_location is not None
        else default_stream_locations(args.index_uri, args.date)
    )
    spark = build_session(f"aggregate-index-{args.date}", args.master, parse_conf(args.conf))
    try:
        manifest = run_aggregate_index(
            spark,
            args.date,
            args.version,
            args.index_uri,
            args.raw_uri,
            args.batch_index_location or None,
            args.previous_aggregate_location or None,
            [location for location in stream_locations if location],
            config.aggregate.retention_days,
        )
    finally:
        spark.stop()
    print(json.dumps(manifest, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
