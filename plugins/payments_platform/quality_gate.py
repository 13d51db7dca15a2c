"""The quality gate between writing a version and publishing it (DESIGN decision 4).

The same Soda contract files (``include/contracts/<table>.yaml``) verify the staged
version under both profiles: DuckDB over the version's Parquet files locally, a Spark
job (``spark_apps/jobs/quality_gate.py``, Soda's Spark DataFrame source) on EMR on EKS.

The result is written next to the data as ``_quality.json``; the publisher refuses any
version without a passing result. A failed gate leaves the version quarantined (staged,
never visible), pages on-call naming the failed checks and fails the task without retry.
Under ``aws`` the rejected version's objects are also tagged for the lake's lifecycle rule
(``publishing.SUPERSEDED_TAG``), so it expires ``lake.retention_days`` after it was
written; locally the daily DAG's retention step removes it after that time.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from payments_platform import lake_io
from payments_platform.notifications import page_on_call
from payments_platform.profiles import Profile, get_profile
from payments_platform.publishing import QUALITY_RESULT_FILE, get_publisher
from payments_platform.spark_jobs import SparkJob, client_request_token, emr_configuration_overrides, emr_job_driver

log = logging.getLogger(__name__)


def failed_check_names(result: dict[str, Any]) -> list[str]:
    return [check.get("name", "?") for check in result.get("checks_failed", [])]


def _verify_locally(table: str, location: str, variables: dict[str, str], references: dict[str, str]) -> dict[str, Any]:
    from spark_apps.quality import verify_staged_version

    return json.loads(
        verify_staged_version(table, location, engine="duckdb", variables=variables, references=references).to_json()
    )


def _verify_on_emr(
    table: str, location: str, references: dict[str, str], profile: Profile, token_parts: tuple[str, str, str, int]
) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook

    result_uri = lake_io.join(location, QUALITY_RESULT_FILE)
    job = SparkJob(name=f"quality-gate-{table}", entrypoint="quality_gate.py")
    arguments = ["--table", table, "--location", location, "--result-uri", result_uri]
    for name, reference in sorted(references.items()):
        arguments += ["--reference", f"{name}={reference}"]
    hook = EmrContainerHook(
        aws_conn_id=profile.aws_conn_id, region_name=profile.region, virtual_cluster_id=profile.spark.virtual_cluster_id
    )
    job_id = hook.submit_job(
        job.name,
        profile.spark.execution_role_arn,
        profile.spark.release_label,
        emr_job_driver(profile.spark, job, arguments),
        emr_configuration_overrides(profile.spark, job),
        client_request_token(*token_parts),
    )
    state = hook.poll_query_status(job_id, poll_interval=15)
    result = lake_io.read_json(result_uri, profile.aws_conn_id)
    if result is None:
        raise RuntimeError(f"quality gate job {job_id} ended {state} without writing {result_uri}")
    return result


def run_quality_gate(
    table: str,
    location: str,
    dt: str,
    *,
    references: dict[str, str] | None = None,
    profile: Profile | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Verify one staged version; returns the gate result or raises (no retry) when it failed.

    ``references`` are the versions of other tables a contract's balance checks compare
    with (for example the aggregate index the reconciliation index was built from).
    """
    profile = profile or get_profile()
    if profile.quality.engine == "spark":
        ti = (context or {}).get("ti")
        token_parts = (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1)) if ti else ("manual", dt, table, -1)
        result = _verify_on_emr(table, location, references or {}, profile, token_parts)
    else:
        result = _verify_locally(table, location, {"dt": dt}, references or {})
        lake_io.write_json(lake_io.join(location, QUALITY_RESULT_FILE), result)
    if not result.get("passed"):
        names = failed_check_names(result)
        try:
            # aws: tag it for the lifecycle rule so a rejected version expires like a superseded one.
            get_publisher(profile).mark_superseded(location)
        except Exception:  # the page below matters more than the tag
            log.exception("could not mark the rejected version %s for expiry", location)
        page_on_call(
            f"quality gate failed: {table} dt={dt}",
            "The staged version was NOT published and stays quarantined at\n"
            f"  {location}\n(kept {profile.lake.retention_days} days after it was written, for investigation)\n"
            "Failed checks:\n" + "\n".join(f"  - {name}" for name in names) + "\nRunbook: docs/runbook.md#quality-gate-failed",
            details={"table": table, "dt": dt, "location": location, "failed_checks": names},
            profile=profile,
        )
        raise AirflowFailException(
            f"quality gate failed for {table} dt={dt} ({', '.join(names) or 'unknown checks'}); {location} stays quarantined"
        )
    return result
