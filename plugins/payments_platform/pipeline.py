"""The daily pipeline's shape: stages, index names and each Spark job's arguments.

DAG files build their task graphs from this module so that the daily DAG, the
reprocessing DAG and the tests agree on one definition. The run-time values of a job's
arguments (the day, the version, the published inputs) are given by the caller: the daily
DAG passes XCom references of its ``plan_run`` and ``resolve_inputs`` tasks
(``plan["dt"]``), which Airflow resolves per task instance.
"""

from __future__ import annotations

from typing import Any

from payments_contract import BUSINESS_INDEXES as BUSINESS_INDEXES
from payments_contract import STAGE_TABLES as STAGE_TABLES
from payments_contract import STAGES as STAGES
from payments_platform.profiles import Profile
from payments_platform.spark_jobs import SparkJob

# STAGES, STAGE_TABLES (the tables each stage writes, gated and published in that order) and
# BUSINESS_INDEXES are the shared contract's, re-exported: the Spark jobs name the same tables.


def batch_index_job(profile: Profile, *, dt: Any = "", version: Any = "") -> SparkJob:
    lake = profile.lake
    return SparkJob(
        name="batch-index",
        entrypoint="batch_index.py",
        role="ingest",  # reads the raw drops (card data) and the PAN token key
        arguments=[
            "--date", dt,
            "--version", version,
            "--raw-uri", lake.raw_uri,
            "--index-uri", lake.index_uri,
            "--quarantine-uri", lake.quarantine_uri,
            "--token-key-ref", profile.secrets.get("pan_token_key", ""),
            "--max-clock-skew-seconds", str(profile.validation.max_clock_skew_seconds),
            "--drop-date-tolerance-hours", str(profile.validation.drop_date_tolerance_hours),
        ],
    )  # fmt: skip


def aggregate_index_job(
    profile: Profile,
    *,
    dt: Any = "",
    version: Any = "",
    batch_index_location: Any = "",
    previous_aggregate_location: Any = "",
) -> SparkJob:
    lake = profile.lake
    return SparkJob(
        name="aggregate-index",
        entrypoint="aggregate_index.py",
        arguments=[
            "--date", dt,
            "--version", version,
            "--index-uri", lake.index_uri,
            "--raw-uri", lake.raw_uri,
            "--batch-index-location", batch_index_location,
            "--previous-aggregate-location", previous_aggregate_location,
        ],
    )  # fmt: skip


def business_index_job(profile: Profile) -> SparkJob:
    """The business-index job; the DAG maps it over ``business_index_arguments``."""
    return SparkJob(name="business-index", entrypoint="business_indexes.py")


def business_index_arguments(profile: Profile, index: str, dt: str, version: str, aggregate_location: str) -> list[str]:
    lake = profile.lake
    return [
        "--index", index,
        "--date", dt,
        "--version", version,
        "--index-uri", lake.index_uri,
        "--raw-uri", lake.raw_uri,
        "--metrics-uri", lake.metrics_uri,
        "--aggregate-location", aggregate_location,
    ]  # fmt: skip


def compact_stream_job(profile: Profile, *, dt: Any = "") -> SparkJob:
    return SparkJob(
        name="compact-stream-index",
        entrypoint="compact_stream_index.py",
        arguments=["--date", dt, "--index-uri", profile.lake.index_uri],
    )
