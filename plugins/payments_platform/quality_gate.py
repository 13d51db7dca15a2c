"""The quality gate between writing a version and publishing it (DESIGN decision 4).

The same Soda contract files (``include/contracts/<table>.yaml``) verify the staged
version under both profiles: DuckDB over the version's Parquet files locally, a Spark
job (``spark_apps/jobs/quality_gate.py``, Soda's Spark DataFrame source) on EMR on EKS.

Only the orchestrator writes the control file ``_quality.json`` next to the data; the
publisher refuses any version without a passing one. On EMR on EKS the gate job may not
write it (every job role is denied ``*/_quality.json`` in Terraform: a job never vouches for
its own output): the job writes its result to ``<version>/_quality_result/<token>.json``
(:func:`gate_result_uri`, one file per try: the token is the try's EMR client token), and
this task checks that result against the job run it submitted (same table and location, a
pass only from a job run that ``COMPLETED``) before it writes ``_quality.json``. Locally the
gate runs in this process and the task writes ``_quality.json`` directly.

A failed gate leaves the version quarantined (staged, never visible), pages on-call naming
the failed checks and fails the task without retry.
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
from payments_platform.publishing import PAN_SCAN_FAILED_TAG, QUALITY_RESULT_FILE, SUPERSEDED_TAG, get_publisher
from payments_platform.spark_jobs import (
    EMR_TERMINAL_STATES,
    SparkJob,
    client_request_token,
    emr_configuration_overrides,
    emr_job_driver,
    emr_job_name,
)

log = logging.getLogger(__name__)
# The contracts' PAN scan: a failed check whose name says it found a card number (e.g. the
# quarantine contract's "payload_masked holds no card number").
PAN_SCAN_CHECK = "no card number"

# Where the EMR gate job writes its result, under the version (a name no job role is denied).
GATE_RESULTS_DIR = "_quality_result"
GATE_POLL_SECONDS = 15


class GateResultError(RuntimeError):
    """The gate job's result is missing or does not belong to the job run that was submitted."""


def gate_result_uri(location: str, token: str) -> str:
    """Where the EMR gate job of one try writes its result (never ``_quality.json``)."""
    return lake_io.join(location, GATE_RESULTS_DIR, f"{token}.json")


def gate_job_role(table: str) -> str:
    """The gate job's execution role: ``ingest`` for the quarantine table (its versions live in the
    quarantine bucket, which only the ingest role may read), ``transform`` for every index."""
    return "ingest" if table == "quarantine" else "transform"


def checked_gate_result(
    result: dict[str, Any] | None, table: str, location: str, state: str | None, result_uri: str
) -> dict[str, Any]:
    """The gate job's result, if it is the verdict of that job on that version; raises otherwise.

    A pass counts only from a job run that ended ``COMPLETED`` (the job exits non-zero when the
    contract failed or could not run, always after writing its result)."""
    if result is None:
        raise GateResultError(f"quality gate job ended {state} without writing {result_uri}")
    if (result.get("table"), str(result.get("location", "")).rstrip("/")) != (table, location.rstrip("/")):
        raise GateResultError(
            f"{result_uri} is the result for {result.get('table')} at {result.get('location')}, not {table} at {location}"
        )
    if not isinstance(result.get("passed"), bool):
        raise GateResultError(f"{result_uri} has no boolean 'passed'")
    if result["passed"] and state != "COMPLETED":
        raise GateResultError(f"{result_uri} says passed but its job run ended {state}")
    return result


def failed_check_names(result: dict[str, Any]) -> list[str]:
    return [check.get("name", "?") for check in result.get("checks_failed", [])]


def _verify_locally(table: str, location: str, variables: dict[str, str], references: dict[str, str]) -> dict[str, Any]:
    from spark_apps.quality import verify_staged_version

    return json.loads(
        verify_staged_version(table, location, engine="duckdb", variables=variables, references=references).to_json()
    )


def _verify_on_emr(
    table: str, location: str, references: dict[str, str], profile: Profile, token_parts: tuple[str, str, str, int, int]
) -> dict[str, Any]:
    """Run the gate job of this try on EMR on EKS and return its checked result (see the module doc)."""
    from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook

    token = client_request_token(*token_parts)
    result_uri = gate_result_uri(location, token)
    job = SparkJob(name=f"quality-gate-{table}", entrypoint="quality_gate.py", role=gate_job_role(table))
    arguments = ["--table", table, "--location", location, "--result-uri", result_uri]
    arguments += ["--contracts-dir", profile.quality.contracts_dir]
    for name, reference in sorted(references.items()):
        arguments += ["--reference", f"{name}={reference}"]
    hook = EmrContainerHook(
        aws_conn_id=profile.aws_conn_id, region_name=profile.region, virtual_cluster_id=profile.spark.virtual_cluster_id
    )
    # A new try submits a new job under its own token and reads only its own result file: a retried
    # gate never re-attaches to (or reads the verdict of) an earlier try's failed job.
    job_id = hook.submit_job(
        emr_job_name(job.name, *token_parts[:4]),
        profile.spark.role_arn(job.role),
        profile.spark.release_label,
        emr_job_driver(profile.spark, job, arguments),
        emr_configuration_overrides(profile.spark, job),
        token,
        {"project": "payments-index", "job": job.name},
    )
    state = hook.poll_query_status(job_id, poll_interval=GATE_POLL_SECONDS)
    if state not in EMR_TERMINAL_STATES:
        raise GateResultError(f"quality gate job {job_id} is still {state}")
    result = lake_io.read_json(result_uri, profile.aws_conn_id)
    return checked_gate_result(result, table, location, state, result_uri) | {
        "job_run_id": job_id,
        "job_run_state": state,
        "result_uri": result_uri,
    }


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
        token_parts = (
            (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)
            if ti
            else ("manual", dt, table, -1, 1)
        )
        result = _verify_on_emr(table, location, references or {}, profile, token_parts)
    else:
        result = _verify_locally(table, location, {"dt": dt}, references or {})
    # The orchestrator, and only it, publishes the verdict next to the data (the publisher reads it).
    lake_io.write_json(lake_io.join(location, QUALITY_RESULT_FILE), result, profile.aws_conn_id)
    if not result.get("passed"):
        names = failed_check_names(result)
        try:
            # aws: tag it for the lifecycle rule so a rejected version expires like a superseded one;
            # one that failed the PAN scan (a card number in clear) expires within days instead.
            pan_leak = any(PAN_SCAN_CHECK in name for name in names)
            get_publisher(profile).mark_superseded(location, PAN_SCAN_FAILED_TAG if pan_leak else SUPERSEDED_TAG)
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
