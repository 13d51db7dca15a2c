"""Validate a reprocessing request and plan one daily-index run per date."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from payments_platform.stages import validate_plan_params

MAX_DAYS = 31


def _day(params: dict[str, Any], name: str) -> date:
    value = params.get(name)
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise AirflowFailException(f"param {name}={value!r}: expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise AirflowFailException(f"param {name}={value!r}: {exc}") from None


def plan_reprocess_runs(
    params: dict[str, Any], daily_dag_id: str, today: date | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Keyword arguments for one ``TriggerDagRunOperator`` per date, oldest first."""
    start, end = _day(params, "start_date"), _day(params, "end_date")
    today = today or datetime.now(UTC).date()
    if end < start:
        raise AirflowFailException(f"param end_date={end} is before start_date={start}")
    if end >= today:
        raise AirflowFailException(f"param end_date={end}: only complete past days can be reprocessed (today is {today})")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise AirflowFailException(f"params start_date..end_date span {days} days; at most {MAX_DAYS} per request")
    from_stage, indexes = validate_plan_params(params)
    if run_id is None:
        run_id = get_current_context()["run_id"]
    safe_run = re.sub(r"[^A-Za-z0-9_.\-]+", "_", run_id).strip("_")
    runs = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).isoformat()
        runs.append(
            {
                "trigger_run_id": f"reprocess__{day}__{safe_run}"[:250],
                "logical_date": f"{day}T00:00:00+00:00",
                "conf": {"date": day, "from_stage": from_stage, "indexes": indexes},
            }
        )
    return runs
