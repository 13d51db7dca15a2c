"""Reading the inputs of the aggregate and business index jobs: published versions, raw side sources, run manifests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from payments_contract import QUALITY_RESULT_FILE, STREAM_METRICS_DIR, stream_batches_location
from spark_apps import lake
from spark_apps.readers import read_side_source
from spark_apps.sources import source_location


class InputError(ValueError):
    """A required input is missing or does not hold the expected columns."""


def exists(uri: str) -> bool:
    from pyarrow import fs as pafs

    filesystem, path = lake._filesystem(uri)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def read_table(spark: SparkSession, location: str | None, schema: StructType, name: str, required: bool = False) -> DataFrame:
    """The Parquet under ``location`` (recursively) with exactly ``schema``'s columns; empty when absent.

    Extra columns (partition folders, newer fields) are dropped; a missing column or a
    different type is an error.
    """
    if not location or not exists(location):
        if required:
            raise InputError(f"{name}: no data at {location!r}")
        return spark.createDataFrame([], schema)
    df = spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.parquet").parquet(location)
    missing = sorted(set(schema.fieldNames()) - set(df.columns))
    if missing:
        raise InputError(f"{name} at {location}: missing columns {missing}")
    try:
        return lake.conform_to_schema(df.select(*schema.fieldNames()), schema)
    except lake.LakeError as exc:
        raise InputError(f"{name} at {location}: {exc}") from None


def read_raw_side(
    spark: SparkSession, raw_uri: str, source: str, date: str, schema: StructType, version: str, at: dt.datetime
) -> tuple[DataFrame, DataFrame]:
    """(typed rows, rejected rows) of a raw side source for ``date`` (the batch job's reader)."""
    return read_side_source(spark, source_location(raw_uri, source, date), source, schema, version, at)


def read_manifest_or_none(location: str | None) -> dict[str, Any] | None:
    if not location:
        return None
    try:
        return lake.read_manifest(location)
    except (FileNotFoundError, OSError):
        return None


def resolve_previous_aggregate(location: str | None, run_date: str) -> str | None:
    """The aggregate version the new one is compared against: the latest version of an EARLIER date.

    The DAG may pass the version currently published for the run date itself (a rerun);
    its manifest names the version it was built over, which is used instead, so a rerun
    audits the same changes as the first run.
    """
    seen = set()
    while location:
        if location in seen:
            raise InputError(f"previous aggregate: manifest cycle at {location}")
        seen.add(location)
        manifest = read_manifest_or_none(location)
        if manifest is None:
            raise InputError(f"previous aggregate {location}: no {lake.MANIFEST_FILE} (not a finished run)")
        if str(manifest.get("date")) < run_date:
            return location
        location = manifest.get("previous_aggregate_location") or None
    return None


def latest_verified_version(base_uri: str, table: str, before: str, max_days: int) -> str | None:
    """The newest version (by manifest ``finished_at``) that passed the quality gate, of the latest
    date before ``before`` that has one, looking back at most ``max_days`` days; None if there is none."""
    day = dt.date.fromisoformat(before)
    for back in range(1, max_days + 1):
        date = (day - dt.timedelta(days=back)).isoformat()
        verified = []
        for version in lake.list_versions(base_uri, table, date):
            location = lake.version_location(base_uri, table, date, version)
            try:
                passed = json.loads(lake.read_text(f"{location}/{QUALITY_RESULT_FILE}")).get("passed") is True
            except (FileNotFoundError, OSError, ValueError):
                passed = False
            if passed:
                verified.append((str(lake.read_manifest(location).get("finished_at", "")), version, location))
        if verified:
            return max(verified)[2]
    return None


def list_manifests(base_uri: str, tables: list[str], date: str) -> list[dict[str, Any]]:
    """Every finished run's manifest of ``tables`` for ``date`` (all versions, failed gates included)."""
    manifests = []
    for table in tables:
        for version in lake.list_versions(base_uri, table, date):
            manifest = read_manifest_or_none(lake.version_location(base_uri, table, date, version))
            if manifest is not None:
                manifests.append({"table": table, **manifest})
    return manifests


def read_json_lines(uri: str) -> tuple[list[dict[str, Any]], int]:
    """(every JSON object in the ``*.jsonl``/``*.json`` files under ``uri``, recursively; count of unreadable lines)."""
    from pyarrow import fs as pafs

    filesystem, path = lake._filesystem(uri)
    if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
        return [], 0
    records, bad = [], 0
    for info in filesystem.get_file_info(pafs.FileSelector(path, recursive=True)):
        if info.type != pafs.FileType.File or not info.path.endswith((".jsonl", ".json")):
            continue
        with filesystem.open_input_stream(info.path) as stream:
            for line in stream.read().decode("utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    bad += 1
    return records, bad


def stream_metric_records(metrics_uri: str, date: str) -> tuple[list[dict[str, Any]], int]:
    """The streaming micro-batch records of ``date``: ``<metrics-uri>/stream/<query>/batches/dt=<date>/``."""
    from pyarrow import fs as pafs

    root = lake.table_location(metrics_uri, STREAM_METRICS_DIR)
    filesystem, path = lake._filesystem(root)
    if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
        return [], 0
    records, bad = [], 0
    for info in filesystem.get_file_info(pafs.FileSelector(path)):
        if info.type == pafs.FileType.Directory:
            query = info.path.rstrip("/").rsplit("/", 1)[-1]
            found, unreadable = read_json_lines(stream_batches_location(metrics_uri, query, date))
            records += found
            bad += unreadable
    return records, bad
