"""On-call paging: the Amazon provider's ``SnsNotifier`` under ``aws``, a log file locally.

One notifier per profile (:func:`on_call_notifier`), used three ways:

* as a DAG's ``on_failure_callback`` (``notify``: sync, in the DAG processor, or in the
  ``dag.test()`` process);
* as the ``DeadlineAlert`` callback (:func:`deadline_callback`: an ``AsyncCallback`` of the
  notifier class; the triggerer builds it with the alert's kwargs and awaits it, which runs
  ``async_notify``). A deadline that was already past when the run was queued (a backdated
  reprocessing run of an old day) pages nobody: that run is not late, its day is old;
* :func:`page_on_call` from tasks that find an unhealthy state (quality gate, supervisor).

``OnCallSnsNotifier`` is the provider's ``SnsNotifier``: it publishes through
``SnsHook.publish_to_target``. Its async path publishes through the same sync hook in a
worker thread (the provider's ``async_notify`` needs aiobotocore, which is not among the
packages the project installs). ``LogFileNotifier`` appends the same message as one JSON
line to ``notifier.log_path`` and prints it.

Every page carries a severity, a one-line subject and a body an operator can act on (what
failed, where the log is, which runbook section).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.sdk import BaseNotifier
from airflow.sdk.definitions.callback import AsyncCallback

from payments_platform.profiles import Profile, get_profile

SNS_SUBJECT_LIMIT = 100  # SNS rejects longer subjects
RUNBOOK = "docs/runbook.md"


@dataclass(frozen=True)
class Page:
    """One page: what on-call reads."""

    subject: str
    body: str
    severity: str = "critical"
    details: dict[str, Any] = field(default_factory=dict)

    def message(self, profile_name: str) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "subject": self.subject,
            "body": self.body,
            "details": self.details,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "profile": profile_name,
        }


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def failure_page(context: dict[str, Any], severity: str = "critical") -> Page:
    """The page of a failed task or DAG run, from the Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = _field(dag_run, "dag_id") or _field(ti, "dag_id") or _field(context.get("dag"), "dag_id") or "?"
    run_id = _field(dag_run, "run_id") or _field(ti, "run_id") or context.get("run_id") or "?"
    task_id = _field(ti, "task_id")
    error = context.get("exception") or context.get("reason")
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    lines = [
        f"DAG: {dag_id}",
        f"Run: {run_id}",
        f"Task: {task_id}" if task_id else None,
        f"Try: {_field(ti, 'try_number')}" if ti else None,
        f"Error: {error}" if error else None,
        f"Log: {_field(ti, 'log_url') or '(see the Airflow UI)'}" if ti else None,
        f"Runbook: {RUNBOOK}",
    ]
    details = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "error": str(error) if error else None}
    return Page(f"{where} failed ({run_id})", "\n".join(line for line in lines if line), severity, details)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def deadline_page(context: dict[str, Any], deadline: str = "its deadline") -> Page | None:
    """The page of a missed deadline; ``None`` when the deadline was already past when the run was
    queued (a backdated run, e.g. ``payments_reprocess`` rebuilding an old day: not late, old)."""
    dag_run = context.get("dag_run") or {}  # the scheduler sends the REST API's DAGRunResponse (dag_run_id)
    dag_id = _field(dag_run, "dag_id") or "?"
    run_id = _field(dag_run, "dag_run_id") or _field(dag_run, "run_id") or "?"
    due = _instant(_field(context.get("deadline") or {}, "deadline_time"))
    started = _instant(_field(dag_run, "queued_at")) or _instant(_field(dag_run, "start_date"))
    if due is not None and started is not None and due <= started:
        return None
    body = (
        f"DAG run {dag_id} / {run_id} has not finished by {deadline}"
        + (f" ({due.isoformat(timespec='minutes')})" if due else "")
        + ".\nIndexes for this date are not yet visible in Athena.\n"
        f"Runbook: {RUNBOOK}#missed-deadline"
    )
    details = {"dag_id": dag_id, "run_id": run_id, "deadline": deadline, "deadline_time": due.isoformat() if due else None}
    return Page(f"{dag_id} missed its deadline ({run_id})", body, "critical", details)


class _OnCallPaging:
    """What both notifiers do with a failure context and a deadline context; ``send`` differs."""

    severity: str
    deadline: str
    log: Any

    def get_template_env(self, dag: Any = None) -> Any:
        # dag.test() hands DAG callbacks the SerializedDAG, which has no template environment.
        return super().get_template_env(dag=dag if hasattr(dag, "get_template_env") else None)  # type: ignore[misc]

    def send(self, page: Page) -> dict[str, Any]:
        raise NotImplementedError

    def notify(self, context: dict[str, Any]) -> None:
        self.send(failure_page(context, self.severity))

    async def async_notify(self, context: dict[str, Any]) -> None:
        page = deadline_page(context, self.deadline)
        if page is None:
            self.log.info("deadline already past when the run was queued (a backdated run): not paged")
            return
        await asyncio.to_thread(self.send, page)


class OnCallSnsNotifier(_OnCallPaging, SnsNotifier):
    """The provider's ``SnsNotifier`` with the page built from the failure or deadline context."""

    def __init__(
        self, *, target_arn: str, severity: str = "critical", deadline: str = "its deadline", message: str = "", **kwargs: Any
    ) -> None:
        super().__init__(target_arn=target_arn, message=message, **kwargs)
        self.severity = severity
        self.deadline = deadline

    def send(self, page: Page) -> dict[str, Any]:
        message = page.message("aws")
        self.subject = f"[{page.severity.upper()}] {page.subject}"[:SNS_SUBJECT_LIMIT]
        self.message = json.dumps(message, indent=2, sort_keys=True)
        self.message_attributes = {"severity": page.severity}
        SnsNotifier.notify(self, {})
        self.log.warning("paged on-call through SNS: %s", page.subject)
        return message


class LogFileNotifier(_OnCallPaging, BaseNotifier):
    """The ``local`` profile's on-call: one JSON line per page in ``log_path``, echoed to stderr."""

    def __init__(self, *, log_path: str, severity: str = "critical", deadline: str = "its deadline", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log_path = log_path
        self.severity = severity
        self.deadline = deadline

    def send(self, page: Page) -> dict[str, Any]:
        message = page.message("local")
        path = Path(self.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(message, sort_keys=True) + "\n")
        print(f"[ON-CALL {page.severity.upper()}] {page.subject}\n{page.body}", file=sys.stderr)
        return message


def _notifier_kwargs(profile: Profile) -> tuple[type[BaseNotifier], dict[str, Any]]:
    if profile.notifier.kind == "sns":
        return OnCallSnsNotifier, {
            "target_arn": profile.notifier.sns_topic_arn,
            "aws_conn_id": profile.aws_conn_id,
            "region_name": profile.region,
        }
    return LogFileNotifier, {"log_path": profile.notifier.log_path}


def on_call_notifier(profile: Profile | None = None, severity: str = "critical") -> BaseNotifier:
    """The profile's notifier, e.g. for ``on_failure_callback``."""
    notifier_class, kwargs = _notifier_kwargs(profile or get_profile())
    return notifier_class(severity=severity, **kwargs)


def deadline_callback(profile: Profile, deadline: str) -> AsyncCallback:
    """The ``DeadlineAlert`` callback: the profile's notifier class, awaited in the triggerer."""
    notifier_class, kwargs = _notifier_kwargs(profile)
    return AsyncCallback(notifier_class, kwargs={**kwargs, "deadline": deadline})


def page_on_call(
    subject: str, body: str, *, severity: str = "critical", details: dict[str, Any] | None = None, profile: Profile | None = None
) -> dict[str, Any]:
    """Send one page through the profile's notifier; returns the message that was sent."""
    notifier = on_call_notifier(profile, severity)
    return notifier.send(Page(subject, body, severity, details or {}))  # type: ignore[attr-defined]
