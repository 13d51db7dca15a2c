"""On-call notifications: SNS in the ``aws`` profile, a log file plus the console locally.

Used three ways:
* ``OnCallNotifier`` as a DAG/task ``on_failure_callback`` (sync, dag processor / worker);
* ``page_on_call`` from tasks that detect an unhealthy state (quality gate, supervisor);
* ``deadline_missed`` as the async ``DeadlineAlert`` callback (runs in the triggerer).

Every page carries a severity, a one-line subject and a body an operator can act on
(what failed, where the log is, what to do next).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from payments_platform.profiles import Profile, get_profile

log = logging.getLogger(__name__)

SNS_SUBJECT_LIMIT = 100  # SNS rejects longer subjects


def page_on_call(
    subject: str, body: str, *, severity: str = "critical", details: dict[str, Any] | None = None, profile: Profile | None = None
) -> dict[str, Any]:
    """Send one page through the profile's notifier; returns the message that was sent."""
    profile = profile or get_profile()
    message = {
        "severity": severity,
        "subject": subject,
        "body": body,
        "details": details or {},
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile.name,
    }
    if profile.notifier.kind == "sns":
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        SnsHook(aws_conn_id=profile.aws_conn_id, region_name=profile.region).publish_to_target(
            target_arn=profile.notifier.sns_topic_arn,
            message=json.dumps(message, indent=2, sort_keys=True),
            subject=f"[{severity.upper()}] {subject}"[:SNS_SUBJECT_LIMIT],
            message_attributes={"severity": severity},
        )
    else:
        path = Path(profile.notifier.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(message, sort_keys=True) + "\n")
        print(f"[ON-CALL {severity.upper()}] {subject}\n{body}", file=sys.stderr)
    log.warning("paged on-call: %s", subject)
    return message


def describe_failure(context: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Subject, body and details of a failed task or DAG run, from the Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")
    task_id = getattr(ti, "task_id", None)
    exception = context.get("exception") or context.get("reason")
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    subject = f"{where} failed ({run_id})"
    body = "\n".join(
        line
        for line in (
            f"DAG: {dag_id}",
            f"Run: {run_id}",
            f"Task: {task_id}" if task_id else None,
            f"Try: {getattr(ti, 'try_number', '?')}" if ti else None,
            f"Error: {exception}" if exception else None,
            f"Log: {getattr(ti, 'log_url', '(see the Airflow UI)')}" if ti else None,
            "Runbook: docs/runbook.md",
        )
        if line
    )
    details = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "error": str(exception) if exception else None}
    return subject, body, details


class OnCallNotifier(BaseNotifier):
    """Failure callback that pages on-call through the active profile's notifier."""

    def __init__(self, severity: str = "critical", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.severity = severity

    def notify(self, context: dict[str, Any]) -> None:
        subject, body, details = describe_failure(context)
        page_on_call(subject, body, severity=self.severity, details=details)


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """``DeadlineAlert`` callback: page that a DAG run has not finished in time."""
    context = context or {}
    dag_run = context.get("dag_run") or {}
    dag_id = kwargs.get("dag_id") or _field(dag_run, "dag_id") or "?"
    run_id = _field(dag_run, "run_id") or "?"
    deadline = kwargs.get("deadline") or "the configured deadline"
    subject = f"{dag_id} missed its deadline ({run_id})"
    body = (
        f"DAG run {dag_id} / {run_id} has not finished by {deadline}.\n"
        "Indexes for this date are not yet visible in Athena.\n"
        "Runbook: docs/runbook.md#missed-deadline"
    )
    return await asyncio.to_thread(
        page_on_call, subject, body, severity="critical", details={"dag_id": dag_id, "run_id": run_id, "deadline": str(deadline)}
    )


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
