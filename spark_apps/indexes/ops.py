"""Ops index: per pipeline stage per hour, throughput, latency percentiles, error and quarantine rates.

Inputs are normalised first into *stage runs* (:data:`STAGE_RUN_COLUMNS`): one row per
streaming micro-batch (from the streaming metrics) or per batch job run (from the
run manifests), then summarised per stage and UTC hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from spark_apps.indexes.common import count_ratio, select_schema, with_lineage
from spark_apps.schemas import OPS_INDEX_SCHEMA, THROUGHPUT_TYPE

STAGE_RUN_SCHEMA = StructType(
    [
        StructField("stage", StringType(), False),
        StructField("for_date", DateType(), False),  # the run date of a batch run; the UTC day of a micro-batch
        StructField("finished_at", TimestampType(), False),
        StructField("records_in", LongType(), False),
        StructField("records_out", LongType(), False),
        StructField("error_count", LongType(), False),
        StructField("quarantine_count", LongType(), False),
        StructField("duration_ms", LongType(), False),
        StructField("latency_ms", LongType(), True),  # end-to-end latency of the run (event -> indexed) when known
    ]
)


def _timestamp(text: Any) -> dt.datetime | None:
    if not text:
        return None
    parsed = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def stage_run_from_manifest(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stage run from a batch job's ``_manifest.json`` (lake manifests); None without a finish time."""
    finished = _timestamp(manifest.get("finished_at"))
    if finished is None:
        return None
    counts = manifest.get("counts") or {}
    records_out = _int(manifest.get("rows", counts.get("indexed")))
    records_in = _int(counts.get("read", manifest.get("rows_in", records_out)))
    seconds = manifest.get("seconds")
    duration_ms = int(round(float(seconds) * 1000)) if seconds is not None else 0
    for_date = manifest.get("date")
    return {
        "stage": str(manifest.get("table") or "unknown"),
        "for_date": dt.date.fromisoformat(str(for_date)) if for_date else finished.date(),
        "finished_at": finished,
        "records_in": records_in,
        "records_out": records_out,
        "error_count": _int(counts.get("errors")),
        "quarantine_count": _int(counts.get("quarantined")),
        "duration_ms": duration_ms,
        "latency_ms": duration_ms,
    }


def stage_run_from_stream_metric(metric: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stage run from one streaming metrics record (one micro-batch; spark_apps.streaming.metrics).

    Uses ``query_name`` (the stage; default ``stream_index``), ``committed_at``,
    ``input_rows``, ``duplicates_dropped``, ``batch_duration_ms`` and, when present,
    ``index_rows`` (measured output), ``dead_letters`` / ``dead_letter_rows``, ``error_rows`` and ``latency_ms`` (event time to indexed;
    the batch duration otherwise). Spark's own progress names (``timestamp``,
    ``numInputRows``, ``durationMs.triggerExecution``) are accepted too.
    """
    finished = _timestamp(metric.get("committed_at") or metric.get("finished_at") or metric.get("timestamp"))
    if finished is None:
        return None
    durations = metric.get("duration_ms") if isinstance(metric.get("duration_ms"), Mapping) else metric.get("durationMs") or {}
    duration = metric.get("batch_duration_ms")
    if duration is None:
        duration = metric.get("duration_ms") if not isinstance(metric.get("duration_ms"), Mapping) else None
    if duration is None:
        duration = durations.get("triggerExecution")
    records_in = _int(metric.get("input_rows", metric.get("numInputRows")))
    quarantined = _int(metric.get("dead_letter_rows", metric.get("dead_letters")))
    # The stream counts its indexed rows (``index_rows``); older records only allow a derivation.
    derived = records_in - quarantined - _int(metric.get("duplicates_dropped"))
    records_out = _int(metric.get("output_rows", metric.get("index_rows") if metric.get("index_rows") is not None else derived))
    latency = metric.get("latency_ms")
    return {
        "stage": str(metric.get("stage") or metric.get("query_name") or "stream_index"),
        "for_date": finished.astimezone(dt.UTC).date(),
        "finished_at": finished,
        "records_in": records_in,
        "records_out": records_out,
        "error_count": _int(metric.get("error_rows")),
        "quarantine_count": quarantined,
        "duration_ms": _int(duration),
        "latency_ms": int(latency) if latency is not None else _int(duration),
    }


def stage_runs_df(spark: SparkSession, runs: Iterable[dict[str, Any] | None]) -> DataFrame:
    rows = [tuple(run[f.name] for f in STAGE_RUN_SCHEMA.fields) for run in runs if run is not None]
    return spark.createDataFrame(rows, STAGE_RUN_SCHEMA)


def _percentile(column: str, fraction: float) -> F.Column:
    # Nearest-rank percentile: an observed value, no interpolation.
    return F.expr(f"percentile_disc({fraction}) WITHIN GROUP (ORDER BY {column})").cast("long")


def build_ops_index(stage_runs: DataFrame, run_date: dt.date, version: str, indexed_at: dt.datetime) -> DataFrame:
    """OPS_INDEX_SCHEMA rows: one per stage and UTC hour with at least one run for ``run_date``.

    Micro-batches count on the day they finished; a batch run counts for the date it
    processed, in the hour it finished (usually the next day).
    """
    total_seconds = F.sum("duration_ms").cast("decimal(20,3)") / F.lit(1000)
    return (
        stage_runs.where(F.col("for_date") == F.lit(run_date))
        .withColumn("hour_start", F.date_trunc("hour", F.col("finished_at")))
        .groupBy("stage", "hour_start")
        .agg(
            F.count(F.lit(1)).alias("run_count"),
            F.sum("records_in").alias("records_in"),
            F.sum("records_out").alias("records_out"),
            F.sum("error_count").alias("error_count"),
            F.sum("quarantine_count").alias("quarantine_count"),
            F.when(total_seconds > 0, F.round(F.sum("records_in").cast("decimal(20,0)") / total_seconds, 3))
            .cast(THROUGHPUT_TYPE)
            .alias("throughput_per_second"),
            _percentile("latency_ms", 0.5).alias("latency_p50_ms"),
            _percentile("latency_ms", 0.95).alias("latency_p95_ms"),
            _percentile("latency_ms", 0.99).alias("latency_p99_ms"),
        )
        .withColumn("error_rate", count_ratio(F.col("error_count"), F.col("records_in")))
        .withColumn("quarantine_rate", count_ratio(F.col("quarantine_count"), F.col("records_in")))
        .transform(with_lineage, version, indexed_at, "indexed_at")
        .transform(select_schema, OPS_INDEX_SCHEMA)
    )
