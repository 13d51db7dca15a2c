"""Validate a reprocessing request and plan one daily-index run per date.

Days older than the raw retention (profile ``lake.raw_retention_days``, Terraform's
``raw_retention_days``: raw drops hold card data and S3 expires them) are refused: every
stage reads raw inputs of the day (the batch stage the transaction drops, the aggregate and
business stages the side sources), so such a day cannot be rebuilt from the lake.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from payments_contract import ContractError, check_date
from payments_platform.profiles import get_profile
from payments_platform.stages import validate_plan_params

MAX_DAYS = 31
_FROM_PROFILE: Any = object()


def _day(params: dict[str, Any], name: str) -> date:
    value = params.get(name)
    if not isinstance(value, str):
        raise AirflowFailException(f"param {name}={value!r}: expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(check_date(value))  # the contract's date rule
    except ContractError as exc:
        raise AirflowFailException(f"param {name}={value!r}: {exc}") from None


def oldest_reprocessable_day(today: date, raw_retention_days: int | None) -> date | None:
    """The oldest day whose raw drops are still kept (None: nothing expires them).

    S3 expires an object ``raw_retention_days`` after it was written, at the next midnight UTC;
    a day's drops land from its end on, so ``today - raw_retention_days`` is the oldest day whose
    drops are certainly all still there."""
    return None if raw_retention_days is None else today - timedelta(days=raw_retention_days)


def plan_reprocess_runs(
    params: dict[str, Any],
    daily_dag_id: str,
    today: date | None = None,
    run_id: str | None = None,
    raw_retention_days: int | None = _FROM_PROFILE,
) -> list[dict[str, Any]]:
    """Keyword arguments for one ``TriggerDagRunOperator`` per date, oldest first.

    ``raw_retention_days`` defaults to the profile's ``lake.raw_retention_days``."""
    start, end = _day(params, "start_date"), _day(params, "end_date")
    today = today or datetime.now(UTC).date()
    if end < start:
        raise AirflowFailException(f"param end_date={end} is before start_date={start}")
    if end >= today:
        raise AirflowFailException(f"param end_date={end}: only complete past days can be reprocessed (today is {today})")
    if raw_retention_days is _FROM_PROFILE:
        raw_retention_days = get_profile().lake.raw_retention_days
    oldest = oldest_reprocessable_day(today, raw_retention_days)
    if oldest is not None and start < oldest:
        raise AirflowFailException(
            f"param start_date={start}: raw drops are kept {raw_retention_days} days (lake.raw_retention_days, "
            f"Terraform raw_retention_days), so the oldest day that can be reprocessed today ({today}) is {oldest}. "
            f"The raw inputs of {start}..{min(end, oldest - timedelta(days=1))} have expired; "
            "see docs/runbook.md#reprocessing-past-the-raw-retention."
        )
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
