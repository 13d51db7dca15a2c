"""The quality gate between writing a version and publishing it (DESIGN decision 4).

The same Soda contract files (``include/contracts/<table>.yaml``) verify the staged
version under both profiles: DuckDB over the version's Parquet files locally, a Spark
job (``spark_apps/jobs/quality_gate.py``, Soda's Spark DataFrame source) on EMR on EKS.

Only the orchestrator writes the control file ``_quality.json`` next to the data; the
publisher refuses any version without a passing one. On EMR on EKS the gate job may not
write it (every job role is denied ``*/_quality.json`` in Terraform: a job never vouches for
its own output): the job writes its result to ``<version>/_quality_result/<token>.json``
(:func:`gate_result_uri`, one file per try: the token is the try's EMR client token).

A gate is two tasks in the daily DAG. ``verify_<table>`` produces the verdict: on EMR the
:class:`QualityGateEmrOperator` (the project's EMR operator, deferrable, pool
``quality_gate``: no worker slot waits for the job), locally the contract on DuckDB in the
task's process (:func:`verify_locally`). ``check_<table>`` (:func:`record_gate_verdict`, a
light task) reads the EMR job's result file, checks it against the job run that was
submitted (same table and location, a pass only from a job run that ``COMPLETED``) and
writes ``_quality.json``.

A failed gate leaves the version quarantined (staged, never visible), pages on-call naming
the failed checks and fails the task without retry.
Under ``aws`` the rejected version's objects are also tagged for the lake's lifecycle rule
(``publishing.SUPERSEDED_TAG``), so it expires ``lake.retention_days`` after it was
written; locally the daily DAG's retention step removes it after that time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from payments_platform import lake_io
from payments_platform.notifications import page_on_call
from payments_platform.profiles import Profile, get_profile
from payments_platform.publishing import PAN_SCAN_FAILED_TAG, QUALITY_RESULT_FILE, SUPERSEDED_TAG, get_publisher
from payments_platform.spark_jobs import PaymentsEmrContainerOperator, SparkJob, client_request_token

log = logging.getLogger(__name__)
# The contracts' PAN scan: a failed check whose name says it found a card number (e.g. the
# quarantine contract's "payload_masked holds no card number").
PAN_SCAN_CHECK = "no card number"

# Where the EMR gate job writes its result, under the version (a name no job role is denied).
GATE_RESULTS_DIR = "_quality_result"
GATE_POLL_SECONDS = 30


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


def verify_locally(table: str, location: str, variables: dict[str, str], references: dict[str, str]) -> dict[str, Any]:
    """The local gate: the contract on DuckDB over the version's Parquet files, in this process."""
    from spark_apps.quality import verify_staged_version

    return json.loads(
        verify_staged_version(table, location, engine="duckdb", variables=variables, references=references).to_json()
    )


def gate_job(table: str) -> SparkJob:
    return SparkJob(name=f"quality-gate-{table}", entrypoint="quality_gate.py", role=gate_job_role(table))


def gate_job_arguments(gate: dict[str, Any], result_uri: str, contracts_dir: str) -> list[str]:
    """The gate job's command line: the table, its staged version, where to write the result."""
    arguments = ["--table", gate["table"], "--location", gate["location"], "--result-uri", result_uri]
    arguments += ["--contracts-dir", contracts_dir]
    for name, reference in sorted((gate.get("references") or {}).items()):
        arguments += ["--reference", f"{name}={reference}"]
    return arguments


class QualityGateEmrOperator(PaymentsEmrContainerOperator):
    """The quality gate of one staged version as an EMR on EKS job run (deferrable).

    ``plan`` (templated; the DAG passes ``plan_run``'s XCom reference) gives the day and the
    version; the staged location and the balance checks' references are looked up when the
    task runs. Each try submits its own job (the client token of the try) that writes its
    verdict to :func:`gate_result_uri` for that token. The job exits non-zero when the
    contract failed, after writing its verdict: a job run that ended with a verdict is
    returned for ``check_<table>`` to judge (a failed contract is not retried); one that
    ended without a verdict fails this task, and its retry submits a new job.
    Returns the gate (table, dt, location) plus ``job_run_id``, ``job_run_state``, ``result_uri``.
    """

    template_fields: Sequence[str] = (*PaymentsEmrContainerOperator.template_fields, "plan")

    def __init__(self, *, table: str, plan: Any, profile: Profile, **kwargs: Any) -> None:
        kwargs.setdefault("aws_conn_id", profile.aws_conn_id)
        kwargs.setdefault("region_name", profile.region)
        kwargs.setdefault("poll_interval", GATE_POLL_SECONDS)
        kwargs.setdefault("tags", {"project": "payments-index"})
        super().__init__(job=gate_job(table), spark=profile.spark, **kwargs)
        self.table = table
        self.plan = plan
        self.contracts_dir = profile.quality.contracts_dir

    def gate(self) -> dict[str, Any]:
        from payments_platform.stages import staged_location

        return {"table": self.table, "dt": self.plan["dt"], "location": staged_location(self.table, self.plan)}

    def result_uri(self, context: Any) -> str:
        ti = context["ti"]
        token = client_request_token(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)
        return gate_result_uri(self.gate()["location"], token)

    def execute(self, context: Any) -> dict[str, Any]:
        from payments_platform.stages import gate_references

        gate = self.gate() | {"references": gate_references(self.plan)}
        self.arguments = gate_job_arguments(gate, self.result_uri(context), self.contracts_dir)
        job_run_id = super().execute(context)  # deferred until the job run ends: execute_complete
        return self.outcome(context, job_run_id)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.outcome(context, (event or {}).get("job_id") or self.job_id)

    def outcome(self, context: Any, job_run_id: str | None) -> dict[str, Any]:
        state = self.hook.check_query_status(job_run_id) if job_run_id else None
        result_uri = self.result_uri(context)
        if state != "COMPLETED" and lake_io.read_json(result_uri, self.aws_conn_id) is None:
            raise GateResultError(f"quality gate job {job_run_id} ended {state} without writing {result_uri}")
        return self.gate() | {"job_run_id": job_run_id, "job_run_state": state, "result_uri": result_uri}


def gate_verdict(gate: dict[str, Any], aws_conn_id: str | None = None) -> dict[str, Any]:
    """The verdict of a gate: the in-process ``result``, or the EMR job's result file, checked."""
    if "result" in gate:
        return gate["result"]
    result = lake_io.read_json(gate["result_uri"], aws_conn_id)
    checked = checked_gate_result(result, gate["table"], gate["location"], gate["job_run_state"], gate["result_uri"])
    return checked | {key: gate[key] for key in ("job_run_id", "job_run_state", "result_uri")}


def record_gate_verdict(gate: dict[str, Any], profile: Profile | None = None) -> dict[str, Any]:
    """Write the gate's verdict as ``_quality.json`` (the orchestrator, and only it, does); a failed
    gate tags the version for expiry, pages on-call and fails without retry."""
    profile = profile or get_profile()
    table, location, dt = gate["table"], gate["location"], gate["dt"]
    result = gate_verdict(gate, profile.aws_conn_id)
    lake_io.write_json(lake_io.join(location, QUALITY_RESULT_FILE), result, profile.aws_conn_id)
    if result.get("passed"):
        return result
    names = failed_check_names(result)
    _mark_rejected(location, names, profile)
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


def _mark_rejected(location: str, names: list[str], profile: Profile) -> None:
    """aws: tag a rejected version for the lifecycle rule so it expires like a superseded one; one
    that failed the PAN scan (a card number in clear) expires within days instead."""
    try:
        pan_leak = any(PAN_SCAN_CHECK in name for name in names)
        get_publisher(profile).mark_superseded(location, PAN_SCAN_FAILED_TAG if pan_leak else SUPERSEDED_TAG)
    except Exception:  # the page matters more than the tag
        log.exception("could not mark the rejected version %s for expiry", location)
