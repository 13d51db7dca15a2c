"""The Airflow tasks of the daily pipeline: plan, stage skipping, verify, publish, summarize, prune.

Each is a thin TaskFlow task over the plugin package. The run's plan (``plan_run``: the day
``dt``, this run's ``version`` id, the first stage to rebuild, the business indexes selected)
reaches every task as an argument (an XCom reference the DAG passes), never looked up by
task id. Published tables are Airflow Assets (:func:`table_asset`), outlets of the publish
tasks, so downstream DAGs can be scheduled on them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, AssetAlias, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from payments_contract import (
    BUSINESS_INDEXES,
    MANIFEST_FILE,
    QUALITY_RESULT_FILE,
    STAGE_TABLES,
    STAGES,
    ContractError,
    check_date,
    daily_summary_location,
    version_from_airflow_run_id,
)
from payments_platform import lake_io
from payments_platform.profiles import get_profile
from payments_platform.publishing import Publication, get_publisher, publish_together
from payments_platform.sensors import ready_marker_uri

UPSTREAM_TABLES = ("batch_index", "aggregate_index")
ASSET_URI_PREFIX = "x-payments://catalog/payments"
# The mapped business publish adds an event for the one index each instance published.
BUSINESS_INDEXES_ALIAS = AssetAlias("payments_business_indexes_published")


def table_asset(table: str) -> Asset:
    """The Airflow Asset of a published table: ``payments.<table>`` (the catalog's database.table)."""
    return Asset(name=f"payments.{table}", uri=f"{ASSET_URI_PREFIX}/{table}", group="payments_index")


def stage_assets(stage: str) -> list[Asset]:
    return [table_asset(table) for table in STAGE_TABLES[stage]]


def validate_plan_params(params: dict[str, Any]) -> tuple[str, list[str]]:
    from_stage = params.get("from_stage") or "batch"
    if from_stage not in STAGES:
        raise AirflowFailException(f"param from_stage={from_stage!r}: expected one of {', '.join(STAGES)}")
    indexes = list(params.get("indexes") or BUSINESS_INDEXES)
    unknown = sorted(set(indexes) - set(BUSINESS_INDEXES))
    if unknown:
        raise AirflowFailException(f"param indexes: unknown index {unknown[0]!r}; expected some of {', '.join(BUSINESS_INDEXES)}")
    return from_stage, [index for index in BUSINESS_INDEXES if index in indexes]


@task(multiple_outputs=True)
def plan_run() -> dict[str, Any]:
    """Fix the day, this run's version id and what to rebuild; fail fast on bad params.

    Each key is also its own XCom (``plan["dt"]``), for operator arguments."""
    context = get_current_context()
    from_stage, indexes = validate_plan_params(dict(context["params"]))
    day = context["params"].get("date") or context["data_interval_start"].strftime("%Y-%m-%d")
    try:
        day = check_date(day)
    except ContractError as exc:
        raise AirflowFailException(f"param date: {exc}") from None
    return {
        "dt": day,
        "version": version_from_airflow_run_id(context["run_id"]),
        "from_stage": from_stage,
        "indexes": indexes,
        "ready_marker": ready_marker_uri(get_profile().lake.raw_uri, day),
    }


@task
def should_run(plan: dict[str, Any], stage: str) -> str:
    """Skip the stage (and so its build, gates and publish) when the run starts at a later stage."""
    if STAGES.index(stage) < STAGES.index(plan["from_stage"]):
        raise AirflowSkipException(f"stage {stage!r} skipped: this run rebuilds from {plan['from_stage']!r}")
    return stage


def staged_location(table: str, plan: dict[str, Any]) -> str:
    lake = get_profile().lake
    root = lake.quarantine_uri if table == "quarantine" else lake.index_uri
    return lake_io.version_location(root, table, plan["dt"], plan["version"])


def gate_references(plan: dict[str, Any]) -> dict[str, str]:
    """The upstream versions a contract's balance checks compare with: those published for the day."""
    publisher = get_publisher()
    return {upstream: current["location"] for upstream in UPSTREAM_TABLES if (current := publisher.current(upstream, plan["dt"]))}


@task
def verify_in_process(table: str, plan: dict[str, Any]) -> dict[str, Any]:
    """The local gate: the table's Soda contract on DuckDB, in this process. Its verdict goes to
    ``record_verdict`` (which writes ``_quality.json``), as the EMR gate job's does."""
    from payments_platform.quality_gate import verify_locally

    location = staged_location(table, plan)
    result = verify_locally(table, location, {"dt": plan["dt"]}, gate_references(plan))
    return {"table": table, "dt": plan["dt"], "location": location, "result": result}


@task
def record_verdict(gate: dict[str, Any]) -> dict[str, Any]:
    """Check the gate's verdict, write ``_quality.json``; a failed gate pages and fails (no retry)."""
    from payments_platform.quality_gate import record_gate_verdict

    result = record_gate_verdict(gate)
    return {"table": gate["table"], "location": gate["location"], "passed": result["passed"]}


def _publication(publication: Publication) -> dict[str, Any]:
    return {
        "table": publication.table,
        "dt": publication.dt,
        "location": publication.location,
        "version": publication.version,
        "previous_location": publication.previous_location,
        "changed": publication.changed,
    }


def _asset_extra(publication: Publication) -> dict[str, Any]:
    """What an Asset event tells a consumer: the partition and the version it now points to."""
    return {"dt": publication.dt, "version": publication.version, "location": publication.location}


@task
def publish_stage(stage: str, plan: dict[str, Any], verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish the stage's tables (``STAGE_TABLES[stage]``) together or not at all.

    ``verdicts`` are the stage's ``record_verdict`` results (every gate passed, or this task
    would not run). When one table's publish fails, the tables published before it are
    restored to their previous partitions and the task fails (its retry publishes the stage
    again: publishing is idempotent). Each table's Asset (an outlet) gets an event."""
    found = {verdict["table"]: verdict["location"] for verdict in verdicts}
    versions = [(table, found.get(table) or staged_location(table, plan)) for table in STAGE_TABLES[stage]]
    publications = publish_together(get_publisher(), plan["dt"], versions)
    outlet_events = get_current_context()["outlet_events"]
    for publication in publications:
        outlet_events[table_asset(publication.table)].extra = _asset_extra(publication)
    return [_publication(publication) for publication in publications]


@task
def publish_business_index(verdict: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """Create or repoint the ``dt`` partition of one business index to this run's verified version,
    and add an event for that index's Asset (through the alias: each mapped instance publishes one)."""
    publication = get_publisher().publish(verdict["table"], plan["dt"], verdict["location"])
    outlet_events = get_current_context()["outlet_events"]
    outlet_events[BUSINESS_INDEXES_ALIAS].add(table_asset(publication.table), extra=_asset_extra(publication))
    return _publication(publication)


@task
def resolve_published(plan: dict[str, Any], tables: list[str], previous_day_tables: list[str] | None = None) -> dict[str, str]:
    """Locations currently published for the run's day (``""`` when never published).

    ``previous_day_tables`` are looked up for the day before, under ``previous_<table>``:
    the aggregate index builds on the previous day's published state.
    """
    publisher = get_publisher()
    previous_dt = (dt.date.fromisoformat(plan["dt"]) - dt.timedelta(days=1)).isoformat()
    found = {table: (publisher.current(table, plan["dt"]) or {}).get("location") or "" for table in tables}
    for table in previous_day_tables or ():
        found[f"previous_{table}"] = (publisher.current(table, previous_dt) or {}).get("location") or ""
    return found


@task
def plan_business_indexes(plan: dict[str, Any], inputs: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per selected business index: its table and the job's arguments."""
    from payments_platform import pipeline

    profile = get_profile()
    return [
        {
            "table": index,
            "arguments": pipeline.business_index_arguments(
                profile, index, plan["dt"], plan["version"], inputs["aggregate_index"]
            ),
        }
        for index in plan["indexes"]
    ]


@task
def summarize_daily_run(plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect every version's manifest, gate result and publication into one summary."""
    if not plan:
        return {"status": "not planned"}
    publisher = get_publisher()
    tables: dict[str, Any] = {}
    for table in ("batch_index", "quarantine", "aggregate_index", "audit_trail", *plan["indexes"]):
        location = staged_location(table, plan)
        current = publisher.current(table, plan["dt"]) or {}
        tables[table] = {
            "location": location,
            "manifest": lake_io.read_json(lake_io.join(location, MANIFEST_FILE)),
            "quality": (lake_io.read_json(lake_io.join(location, QUALITY_RESULT_FILE)) or {}).get("passed"),
            "published": current.get("location") == location,
        }
    summary = {"dt": plan["dt"], "version": plan["version"], "from_stage": plan["from_stage"], "tables": tables}
    lake_io.write_json(daily_summary_location(get_profile().lake.metrics_uri, plan["dt"], plan["version"]), summary)
    for table, info in tables.items():
        print(f"{table:28} quality={info['quality']!s:5} published={info['published']!s:5} {info['location']}")
    return summary


@task
def prune_superseded_versions() -> dict[str, Any]:
    """Retention: remove local versions older than ``lake.retention_days`` (never current or previous).

    Under ``aws`` this deletes nothing: the publisher tags superseded versions and the S3
    lifecycle rule expires them.
    """
    profile = get_profile()
    tables = [table for stage in STAGES for table in STAGE_TABLES[stage]]
    removed = get_publisher(profile).prune_superseded(tables, profile.lake.retention_days)
    for location in removed:
        print(f"pruned {location}")
    print(f"{len(removed)} version(s) older than {profile.lake.retention_days} days pruned")
    return {"retention_days": profile.lake.retention_days, "removed": removed}
