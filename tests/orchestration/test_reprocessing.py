"""Reprocessing requests: one daily run per date, and no date whose raw drops have expired."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException

from payments_platform.profiles import PROJECT_ROOT, load_profile
from payments_platform.reprocessing import plan_reprocess_runs

TODAY = date(2026, 12, 10)
PARAMS = {"from_stage": "batch", "indexes": ["fraud_index"]}


def plan(start: str, end: str, retention: int | None = 7, **params) -> list[dict]:
    request = {"start_date": start, "end_date": end, **PARAMS, **params}
    return plan_reprocess_runs(request, "payments_daily_index", today=TODAY, run_id="manual__r1", raw_retention_days=retention)


def test_days_within_the_raw_retention_are_planned_one_run_each():
    runs = plan("2026-12-03", "2026-12-04")
    assert [run["conf"] for run in runs] == [
        {"date": "2026-12-03", "from_stage": "batch", "indexes": ["fraud_index"]},
        {"date": "2026-12-04", "from_stage": "batch", "indexes": ["fraud_index"]},
    ]
    assert runs[0]["trigger_run_id"] == "reprocess__2026-12-03__manual__r1"


@pytest.mark.parametrize("from_stage", ["batch", "aggregate", "business"])
def test_a_day_older_than_the_raw_retention_is_refused_with_the_oldest_day_allowed(from_stage):
    """Every stage reads the day's raw inputs (drops or side sources): refused whatever the stage."""
    with pytest.raises(AirflowFailException) as refused:
        plan("2026-12-01", "2026-12-05", from_stage=from_stage)
    message = str(refused.value)
    assert message.startswith("param start_date=2026-12-01: raw drops are kept 7 days (lake.raw_retention_days")
    assert "the oldest day that can be reprocessed today (2026-12-10) is 2026-12-03" in message
    assert "raw inputs of 2026-12-01..2026-12-02 have expired" in message


def test_a_local_lake_without_raw_expiry_reprocesses_any_past_day():
    assert len(plan("2026-11-12", "2026-12-09", retention=None)) == 28


def test_the_retention_comes_from_the_profile_which_matches_terraform(aws_profile_env):
    import re

    load_profile.cache_clear()
    try:
        assert load_profile("aws").lake.raw_retention_days == 7
        assert load_profile("local").lake.raw_retention_days is None
    finally:
        load_profile.cache_clear()
    for env in ("dev", "prod"):
        variables = (PROJECT_ROOT / "infra" / "terraform" / "envs" / env / "variables.tf").read_text()
        block = variables[variables.index('variable "raw_retention_days"') :]
        assert re.search(r"default\s*=\s*(\d+)", block[: block.index("\n}\n")]).group(1) == "7", env
    aws = yaml.safe_load((PROJECT_ROOT / "include" / "profiles" / "aws.yaml").read_text())
    assert aws["lake"]["raw_retention_days"] == 7


def test_without_an_explicit_retention_the_active_profile_decides(monkeypatch, aws_profile_env):
    monkeypatch.setenv("PAYMENTS_PROFILE", "aws")
    load_profile.cache_clear()
    try:
        with pytest.raises(AirflowFailException, match="raw drops are kept 7 days"):
            plan_reprocess_runs(
                {"start_date": "2026-11-01", "end_date": "2026-11-02", **PARAMS}, "payments_daily_index", TODAY, "r1"
            )
    finally:
        load_profile.cache_clear()
