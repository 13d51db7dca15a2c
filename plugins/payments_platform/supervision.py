"""Tasks of ``payments_stream_supervisor``: inspect the streaming job, then act.

What the reconciliation does with an inspection (docs/orchestration.md, the DAG's doc):

* offsets below what Kafka still keeps (data lost to retention): page ``data_loss`` and do
  not (re)start: the job fails on them by design (``failOnDataLoss``) and the supervisor
  never starts it with ``--allow-data-loss``; recovery is a person's call (runbook);
* running and healthy, or just started: nothing (an open incident is closed);
* running, lagging beyond ``max_lag`` but committing batches: catching up, not dead: no
  restart; page ``lagging`` (a warning) once;
* not running, or stalled (no batch or heartbeat within ``max_staleness_s``, or records
  waiting while nothing commits): restart within the budget and backoff, else page
  ``unhealthy``.

Every page is sent once per incident (``stream_control.IncidentState`` in the lake): the
runs in between, during backoff for example, only log that it was already paged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import get_current_context, task

from payments_contract import SUPERVISOR_STOP_MARKER, supervisor_location
from payments_platform import lake_io
from payments_platform.kafka_topics import lost_offsets, provision_topics, stream_lag
from payments_platform.notifications import page_on_call
from payments_platform.profiles import Profile, get_profile
from payments_platform.stream_control import (
    IncidentState,
    RestartState,
    assess_health,
    get_stream_controller,
    incident_state_uri,
    latest_heartbeat,
    latest_metrics,
    restart_decision,
    restart_state_uri,
)

RESTART_WINDOW = timedelta(hours=1)
BASE_BACKOFF = timedelta(minutes=2)
# A just-started job has no fresh metrics yet: give it this long before judging it.
STARTUP_GRACE = timedelta(minutes=3)
RUNBOOK = {
    "data_loss": "docs/runbook.md#stream-lost-data",
    "lagging": "docs/runbook.md#stream-lagging",
    "unhealthy": "docs/runbook.md#stream-unhealthy",
}


def stop_marker_uri() -> str:
    return supervisor_location(get_profile().lake.metrics_uri, SUPERVISOR_STOP_MARKER)


@task
def inspect_stream() -> dict[str, Any]:
    context = get_current_context()
    params = context["params"]
    profile = get_profile()
    status = get_stream_controller(profile).status()
    metrics = latest_metrics(profile.lake.metrics_uri)
    # The lag from the broker now (the Kafka provider), not the job's last word on it: it keeps
    # growing while the job is dead or stuck. Lost offsets: below the broker's earliest now.
    errors = []
    try:
        lag = stream_lag(profile, metrics)
    except Exception as exc:  # the broker unreachable is a finding, not a task failure
        lag = {"by_topic": {}, "total": None}
        errors.append(f"Kafka lag unreadable: {type(exc).__name__}: {exc}")
    try:
        lost = lost_offsets(profile, metrics)
    except Exception as exc:
        lost = {"partitions": [], "total": 0}
        errors.append(f"Kafka earliest offsets unreadable: {type(exc).__name__}: {exc}")
    health = assess_health(
        metrics,
        datetime.now(UTC),
        float(params["max_staleness_s"]),
        int(params["max_lag"]),
        heartbeat=latest_heartbeat(profile.lake.metrics_uri),
        broker_lag=lag["total"],
        lost=lost,
    )
    return {
        "running": status.running,
        "reference": status.reference,
        "detail": status.detail,
        "healthy": health.healthy,
        "stalled": health.stalled,
        "committing": health.committing,
        "freshness_s": health.freshness_s,
        "total_lag": health.total_lag,
        "lag_by_topic": lag["by_topic"],
        "lost_records": health.lost_records,
        "lost_partitions": lost["partitions"],
        "problems": [*health.problems, *errors],
        "action": params.get("action"),
    }


def page_once(
    incidents: IncidentState,
    kind: str,
    subject: str,
    body: str,
    details: dict[str, Any],
    profile: Profile,
    now: datetime,
    severity: str = "critical",
) -> bool:
    """Page for ``kind`` unless this incident was already paged for it; returns whether it paged."""
    incidents.opened(kind, now, subject)
    if not incidents.should_page(kind):
        print(f"incident {kind!r} open since {incidents.opened_at}, on-call paged at {incidents.paged_at}: not paged again")
        return False
    page_on_call(
        subject,
        f"{body}\nRunbook: {RUNBOOK[kind]}",
        severity=severity,
        details={**details, "incident": kind, "incident_opened_at": incidents.opened_at},
        profile=profile,
    )
    incidents.paged_at = now.isoformat()
    return True


@task
def reconcile_stream(inspection: dict[str, Any], restart_budget: str) -> dict[str, Any]:
    """Start, restart, stop or page, following the inspection and the manual action."""
    profile = get_profile()
    controller = get_stream_controller(profile)
    action = inspection.get("action")
    now = datetime.now(UTC)
    state_uri = restart_state_uri(profile)
    state = RestartState.load(state_uri)

    if action == "stop":
        lake_io.write_json(stop_marker_uri(), {"stopped_at": now.isoformat()})
        status = controller.stop()
        return {"did": "stopped", "detail": status.detail}
    if action in ("restart", "deploy"):
        controller.stop()  # waits until the stopped run has ended: one run per checkpoint
        lake_io.delete_file(stop_marker_uri())
        # deploy: the topics as the profile wants them (idempotent), before the job reads them.
        topics = provision_topics(profile) if action == "deploy" else None
        status = controller.start()
        state.restarts.append(now.isoformat())
        state.save(state_uri)
        return {"did": action, "reference": status.reference, **({"topics": topics} if topics else {})}
    if lake_io.read_text(stop_marker_uri()) is not None:
        return {"did": "nothing", "detail": "stopped on purpose (manual stop); trigger restart or deploy to resume"}

    incidents_uri = incident_state_uri(profile)
    incidents = IncidentState.load(incidents_uri)
    result = _reconcile(inspection, restart_budget, profile, controller, state, state_uri, incidents, now)
    incidents.save(incidents_uri)
    return result


def _reconcile(
    inspection: dict[str, Any],
    restart_budget: str,
    profile: Profile,
    controller: Any,
    state: RestartState,
    state_uri: str,
    incidents: IncidentState,
    now: datetime,
) -> dict[str, Any]:
    problems = "; ".join(inspection["problems"])
    details = {"problems": inspection["problems"], "running": inspection["running"]}
    if inspection.get("lost_records"):
        paged = page_once(
            incidents,
            "data_loss",
            "streaming index job: input offsets gone past Kafka retention",
            f"The stream would resume below the oldest offsets Kafka still keeps: {inspection['lost_records']} records "
            f"of its input are gone from the topics.\nProblem: {problems}\n"
            "The job fails on lost offsets (failOnDataLoss) and the supervisor does not restart it (never with "
            "--allow-data-loss): recover the hours from the daily drops, then decide how the stream resumes.",
            {**details, "lost_partitions": inspection.get("lost_partitions", [])},
            profile,
            now,
        )
        return {"did": "paged" if paged else "nothing", "detail": "data lost to Kafka retention: not restarted"}

    recently_started = any(now - datetime.fromisoformat(t) < STARTUP_GRACE for t in state.restarts)
    if inspection["running"] and inspection["healthy"]:
        closed = incidents.close()
        return {"did": "nothing", "detail": "healthy", **({"closed_incident": closed} if closed else {})}
    if inspection["running"] and recently_started:
        return {"did": "nothing", "detail": "starting up"}
    if inspection["running"] and not inspection.get("stalled", True):
        # Lag alone is not death: batches commit, the stream is catching up. A restart would only
        # throw away the batch in flight.
        paged = page_once(
            incidents,
            "lagging",
            "streaming index job lagging (catching up)",
            f"Problem: {problems}\nThe job commits micro-batches (last within max_staleness_s): not restarted.",
            details,
            profile,
            now,
            severity="warning",
        )
        return {"did": "paged" if paged else "nothing", "detail": f"catching up: {problems}"}

    reason = "not running" if not inspection["running"] else problems
    backoff = timedelta(seconds=int(get_current_context()["params"].get("restart_backoff_s", BASE_BACKOFF.total_seconds())))
    allowed, why = restart_decision(state, now, int(restart_budget), RESTART_WINDOW, backoff)
    if not allowed:
        paged = page_once(
            incidents,
            "unhealthy",
            "streaming index job unhealthy and not restarted",
            f"Problem: {reason}\nSupervisor: {why}",
            {**details, "decision": why},
            profile,
            now,
        )
        return {"did": "paged" if paged else "nothing", "detail": why}
    incidents.opened("unhealthy", now, reason)
    if inspection["running"]:
        controller.stop()  # waits until the stopped run has ended before the new one starts
    status = controller.start()
    state.restarts.append(now.isoformat())
    state.save(state_uri)
    return {
        "did": "restarted" if inspection["running"] else "started",
        "reference": status.reference,
        "reason": reason,
        "decision": why,
    }
