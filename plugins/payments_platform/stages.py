"""The Airflow tasks of the daily pipeline: plan, verify, publish, resolve, summarize, prune.

Each is a thin TaskFlow task over the plugin package, keyed by the run's plan (the
``plan_run`` XCom: the day ``dt``, this run's ``version`` id, the first stage to
rebuild and the business indexes selected).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from payments_platform import lake_io
from payments_platform.pipeline import BUSINESS_INDEXES, STAGE_TABLES, STAGES
from payments_platform.profiles import get_profile
from payments_platform.publishing import Publication, get_publisher, publish_together
from payments_platform.quality_gate import run_quality_gate

PLAN_TASK_ID = "plan_run"
UPSTREAM_TABLES = ("batch_index", "aggregate_index")


def version_id(airflow_run_id: str, unique: str | None = None) -> str:
    """A path-safe, unique version id for one attempt of one DAG run."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]+", "_", airflow_run_id).strip("_.-")[:100] or "run"
    return f"{safe}-{unique or uuid.uuid4().hex[:8]}"


def validate_plan_params(params: dict[str, Any]) -> tuple[str, list[str]]:
    from_stage = params.get("from_stage") or "batch"
    if from_stage not in STAGES:
        raise AirflowFailException(f"param from_stage={from_stage!r}: expected one of {', '.join(STAGES)}")
    indexes = list(params.get("indexes") or BUSINESS_INDEXES)
    unknown = sorted(set(indexes) - set(BUSINESS_INDEXES))
    if unknown:
        raise AirflowFailException(f"param indexes: unknown index {unknown[0]!r}; expected some of {', '.join(BUSINESS_INDEXES)}")
    return from_stage, [index for index in BUSINESS_INDEXES if index in indexes]


@task(task_id=PLAN_TASK_ID)
def plan_daily_run() -> dict[str, Any]:
    """Fix the day, this run's version id and what to rebuild; fail fast on bad params."""
    context = get_current_context()
    from_stage, indexes = validate_plan_params(dict(context["params"]))
    dt = context["params"].get("date") or context["data_interval_start"].strftime("%Y-%m-%d")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", dt):
        raise AirflowFailException(f"param date={dt!r}: expected YYYY-MM-DD")
    return {"dt": dt, "version": version_id(context["run_id"]), "from_stage": from_stage, "indexes": indexes}


def _plan(context: dict[str, Any]) -> dict[str, Any]:
    return context["ti"].xcom_pull(task_ids=PLAN_TASK_ID)


def skip_unless_stage(stage: str) -> Callable[[dict[str, Any]], None]:
    """``pre_execute`` hook: skip a stage's build when the run starts at a later stage."""

    def check(context: dict[str, Any]) -> None:
        plan = _plan(context)
        if STAGES.index(stage) < STAGES.index(plan["from_stage"]):
            raise AirflowSkipException(f"stage {stage!r} skipped: this run rebuilds from {plan['from_stage']!r}")

    return check


def staged_location(table: str, plan: dict[str, Any]) -> str:
    lake = get_profile().lake
    root = lake.quarantine_uri if table == "quarantine" else lake.index_uri
    return lake_io.version_location(root, table, plan["dt"], plan["version"])


@task
def verify_version(table: str) -> dict[str, Any]:
    """Run the table's Soda contract on the version this run wrote."""
    context = get_current_context()
    plan = _plan(context)
    location = staged_location(table, plan)
    # Balance checks compare with the upstream versions this run built from: those published for the day.
    publisher = get_publisher()
    references = {
        upstream: current["location"] for upstream in UPSTREAM_TABLES if (current := publisher.current(upstream, plan["dt"]))
    }
    result = run_quality_gate(table, location, plan["dt"], references=references, context=context)
    return {"table": table, "location": location, "passed": result["passed"], "checks_total": result.get("checks_total")}


@task
def publish_version(table: str, verification: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create or repoint the ``dt`` partition to this run's verified version."""
    plan = _plan(get_current_context())
    location = verification["location"] if verification else staged_location(table, plan)
    publisher = get_publisher()
    return _publication(publisher.publish(table, plan["dt"], location))


def _publication(publication: Publication) -> dict[str, Any]:
    return {
        "table": publication.table,
        "dt": publication.dt,
        "location": publication.location,
        "previous_location": publication.previous_location,
        "changed": publication.changed,
    }


@task
def publish_stage(stage: str, verifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish the stage's tables (``STAGE_TABLES[stage]``) together or not at all.

    ``verifications`` are the stage's ``verify_version`` results (every gate passed, or this
    task would not run). When one table's publish fails, the tables published before it are
    restored to their previous partitions and the task fails (its retry publishes the stage
    again: publishing is idempotent)."""
    plan = _plan(get_current_context())
    found = {verification["table"]: verification["location"] for verification in verifications}
    versions = [(table, found.get(table) or staged_location(table, plan)) for table in STAGE_TABLES[stage]]
    return [_publication(publication) for publication in publish_together(get_publisher(), plan["dt"], versions)]


@task
def resolve_published(tables: list[str], previous_day_tables: list[str] | None = None) -> dict[str, str | None]:
    """Locations currently published for the run's day (None when never published).

    ``previous_day_tables`` are looked up for the day before, under ``previous_<table>``:
    the aggregate index builds on the previous day's published state.
    """
    plan = _plan(get_current_context())
    publisher = get_publisher()
    previous_dt = (dt.date.fromisoformat(plan["dt"]) - dt.timedelta(days=1)).isoformat()
    found = {table: (publisher.current(table, plan["dt"]) or {}).get("location") for table in tables}
    for table in previous_day_tables or ():
        found[f"previous_{table}"] = (publisher.current(table, previous_dt) or {}).get("location")
    return found


@task
def summarize_daily_run() -> dict[str, Any]:
    """Collect every version's manifest, gate result and publication into one summary."""
    context = get_current_context()
    plan = _plan(context)
    if plan is None:
        return {"status": "not planned"}
    publisher = get_publisher()
    tables: dict[str, Any] = {}
    for table in ("batch_index", "quarantine", "aggregate_index", "audit_trail", *plan["indexes"]):
        location = staged_location(table, plan)
        current = publisher.current(table, plan["dt"]) or {}
        tables[table] = {
            "location": location,
            "manifest": lake_io.read_json(lake_io.join(location, "_manifest.json")),
            "quality": (lake_io.read_json(lake_io.join(location, "_quality.json")) or {}).get("passed"),
            "published": current.get("location") == location,
        }
    summary = {"dt": plan["dt"], "version": plan["version"], "from_stage": plan["from_stage"], "tables": tables}
    lake_io.write_json(
        lake_io.join(get_profile().lake.metrics_uri, "daily", f"dt={plan['dt']}", f"summary-{plan['version']}.json"), summary
    )
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
