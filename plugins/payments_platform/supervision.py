"""Tasks of ``payments_stream_supervisor``: inspect the streaming job, then act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import get_current_context, task

from payments_platform import lake_io
from payments_platform.kafka_topics import provision_topics, stream_lag
from payments_platform.notifications import page_on_call
from payments_platform.profiles import get_profile
from payments_platform.stream_control import (
    RestartState,
    assess_health,
    get_stream_controller,
    latest_heartbeat,
    latest_metrics,
    restart_decision,
    restart_state_uri,
)

RESTART_WINDOW = timedelta(hours=1)
BASE_BACKOFF = timedelta(minutes=2)
# A just-started job has no fresh metrics yet: give it this long before judging it.
STARTUP_GRACE = timedelta(minutes=3)


def stop_marker_uri() -> str:
    return lake_io.join(get_profile().lake.metrics_uri, "supervisor", "STOPPED")


@task
def inspect_stream() -> dict[str, Any]:
    context = get_current_context()
    params = context["params"]
    profile = get_profile()
    status = get_stream_controller(profile).status()
    metrics = latest_metrics(profile.lake.metrics_uri)
    # The lag from the broker now (the Kafka provider), not the job's last word on it: it keeps
    # growing while the job is dead or stuck.
    try:
        lag = stream_lag(profile, metrics)
    except Exception as exc:  # the broker unreachable is a finding, not a task failure
        lag = {"by_topic": {}, "total": None, "error": f"{type(exc).__name__}: {exc}"}
    health = assess_health(
        metrics,
        datetime.now(UTC),
        float(params["max_staleness_s"]),
        int(params["max_lag"]),
        heartbeat=latest_heartbeat(profile.lake.metrics_uri),
        broker_lag=lag["total"],
    )
    problems = [*health.problems, *([f"Kafka lag unreadable: {lag['error']}"] if "error" in lag else [])]
    return {
        "running": status.running,
        "reference": status.reference,
        "detail": status.detail,
        "healthy": health.healthy,
        "freshness_s": health.freshness_s,
        "total_lag": health.total_lag,
        "lag_by_topic": lag["by_topic"],
        "problems": problems,
        "action": params.get("action"),
    }


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
        controller.stop()
        lake_io.delete_file(stop_marker_uri())
        # deploy: the topics as the profile wants them (idempotent), before the job reads them.
        topics = provision_topics(profile) if action == "deploy" else None
        status = controller.start()
        state.restarts.append(now.isoformat())
        state.save(state_uri)
        return {"did": action, "reference": status.reference, **({"topics": topics} if topics else {})}
    if lake_io.read_text(stop_marker_uri()) is not None:
        return {"did": "nothing", "detail": "stopped on purpose (manual stop); trigger restart or deploy to resume"}

    recently_started = any(now - datetime.fromisoformat(t) < STARTUP_GRACE for t in state.restarts)
    if inspection["running"] and (inspection["healthy"] or recently_started):
        return {"did": "nothing", "detail": "healthy" if inspection["healthy"] else "starting up"}

    reason = "not running" if not inspection["running"] else "; ".join(inspection["problems"])
    backoff = timedelta(seconds=int(get_current_context()["params"].get("restart_backoff_s", BASE_BACKOFF.total_seconds())))
    allowed, why = restart_decision(state, now, int(restart_budget), RESTART_WINDOW, backoff)
    if not allowed:
        page_on_call(
            "streaming index job unhealthy and not restarted",
            f"Problem: {reason}\nSupervisor: {why}\nRunbook: docs/runbook.md#stream-unhealthy",
            details={"problems": inspection["problems"], "running": inspection["running"], "decision": why},
            profile=profile,
        )
        return {"did": "paged", "detail": why}
    if inspection["running"]:
        controller.stop()
    status = controller.start()
    state.restarts.append(now.isoformat())
    state.save(state_uri)
    return {
        "did": "restarted" if inspection["running"] else "started",
        "reference": status.reference,
        "reason": reason,
        "decision": why,
    }
