"""
### Payments reprocess

Rebuilds a range of days on demand by running **the same task graph** as
`payments_daily_index` once per day (one triggered run per date, one after the other).
Every rebuilt version is verified by the quality gate before its partition is
repointed, so a reprocess never exposes a half-built day, never publishes twice and
never mixes versions: each day's partitions point at exactly one complete version.
The previous version stays available for rollback.

#### Params
* `start_date`, `end_date` — inclusive range of days, `YYYY-MM-DD`, at most 31 days,
  not in the future, and not older than the raw retention (`lake.raw_retention_days`: 7
  days on AWS, where S3 expires the raw drops; see
  docs/runbook.md#reprocessing-past-the-raw-retention).
* `indexes` — business indexes to rebuild (default: all).
* `from_stage` — `batch` (re-read the raw drops), `aggregate` (re-merge from the
  published batch index) or `business` (rebuild only the business indexes).

Bad params fail `validate_request` before anything runs, with a message naming the
param. Each day's run is visible in `payments_daily_index` with run id
`reprocess__<date>__<this run>`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, chain, task

from payments_platform import pipeline
from payments_platform.notifications import on_call_notifier
from payments_platform.reprocessing import plan_reprocess_runs

DAG_ID = "payments_reprocess"
DAILY_DAG_ID = "payments_daily_index"

with DAG(
    dag_id=DAG_ID,
    description="Rebuild and republish a range of days through the daily index graph",
    doc_md=__doc__,
    schedule=None,
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["payments", "index", "reprocess"],
    default_args={"owner": "payments-data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "start_date": Param(type="string", format="date", description="First day to rebuild (YYYY-MM-DD)"),
        "end_date": Param(type="string", format="date", description="Last day to rebuild, inclusive"),
        "indexes": Param(
            list(pipeline.BUSINESS_INDEXES),
            type="array",
            items={"type": "string", "enum": list(pipeline.BUSINESS_INDEXES)},
            minItems=1,
        ),
        "from_stage": Param("batch", enum=list(pipeline.STAGES)),
    },
    on_failure_callback=on_call_notifier(severity="warning"),
) as dag:

    @task(retries=0)
    def validate_request(params: dict) -> list[dict]:
        """Check the params and plan one daily run per date; fails fast on bad input."""
        return plan_reprocess_runs(params, DAILY_DAG_ID)

    runs = validate_request()
    rebuild_day = TriggerDagRunOperator.partial(
        task_id="rebuild_day",
        trigger_dag_id=DAILY_DAG_ID,
        wait_for_completion=True,
        poke_interval=60,
        deferrable=True,
        max_active_tis_per_dag=1,
        skip_when_already_exists=False,
    ).expand_kwargs(runs)

    chain(runs, rebuild_day)
