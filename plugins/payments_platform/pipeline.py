"""The daily pipeline's shape: stages, index names and each Spark job's arguments.

DAG files build their task graphs from this module so that the daily DAG, the
reprocessing DAG and the tests agree on one definition. Arguments are Jinja
templates rendered per task instance; ``{{ params }}`` and the ``plan_run`` XCom
decide the date and the version each job writes.
"""

from __future__ import annotations

from payments_platform.profiles import Profile
from payments_platform.spark_jobs import SparkJob

STAGES = ("batch", "aggregate", "business")
BUSINESS_INDEXES = (
    "fraud_index",
    "reconciliation_index",
    "merchant_performance_index",
    "user_spend_index",
    "compliance_index",
    "settlement_schedule_index",
    "ops_index",
    "ml_feedback",
)
# Tables each stage writes, gated and published in that order.
STAGE_TABLES = {
    "batch": ("batch_index", "quarantine"),
    "aggregate": ("aggregate_index", "audit_trail"),
    "business": BUSINESS_INDEXES,
}

PLAN = "ti.xcom_pull(task_ids='plan_run')"
DT = "{{ " + PLAN + "['dt'] }}"
VERSION = "{{ " + PLAN + "['version'] }}"


def published(task_id: str, table: str) -> str:
    """Template for the location a ``resolve_*`` task found published for ``table``."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['" + table + "'] or '' }}"


def batch_index_job(profile: Profile) -> SparkJob:
    lake = profile.lake
    return SparkJob(
        name="batch-index",
        entrypoint="batch_index.py",
        role="ingest",  # reads the raw drops (card data) and the PAN token key
        arguments=[
            "--date", DT,
            "--version", VERSION,
            "--raw-uri", lake.raw_uri,
            "--index-uri", lake.index_uri,
            "--quarantine-uri", lake.quarantine_uri,
            "--token-key-ref", profile.secrets.get("pan_token_key", ""),
            "--max-clock-skew-seconds", str(profile.validation.max_clock_skew_seconds),
            "--drop-date-tolerance-hours", str(profile.validation.drop_date_tolerance_hours),
        ],
    )  # fmt: skip


def aggregate_index_job(profile: Profile) -> SparkJob:
    lake = profile.lake
    return SparkJob(
        name="aggregate-index",
        entrypoint="aggregate_index.py",
        arguments=[
            "--date", DT,
            "--version", VERSION,
            "--index-uri", lake.index_uri,
            "--raw-uri", lake.raw_uri,
            "--batch-index-location", published("resolve_aggregate_inputs", "batch_index"),
            "--previous-aggregate-location", published("resolve_aggregate_inputs", "previous_aggregate_index"),
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


def compact_stream_job(profile: Profile) -> SparkJob:
    return SparkJob(
        name="compact-stream-index",
        entrypoint="compact_stream_index.py",
        arguments=["--date", DT, "--index-uri", profile.lake.index_uri],
    )
