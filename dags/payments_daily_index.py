"""
### Payments daily index

Builds, verifies and publishes every index for one day: the run's **planned day** `dt`
(`plan_run`: the `date` param, else the data interval's day). Each stage writes a **new
version** (`<lake>/indexes/<table>/dt=<dt>/run=<version>/`), a Soda contract verifies it
(pool `quality_gate`; on AWS an EMR job whose result this task checks, and only this task
writes `_quality.json`), and only then is the catalog partition `dt=<dt>` created or
repointed to it (Glue/Athena on AWS, the embedded DuckDB catalog locally). A failed gate
leaves the version quarantined: nothing half-built is ever visible. The batch and
aggregate stages publish their two tables in one task, all or nothing (batch index +
quarantine, aggregate index + audit trail): one failed gate stops both, and if the second
table's publish fails the first is restored to its previous partition.

Stages: wait for the planned day's raw drops (skipped from a later stage) -> **batch** (batch index + quarantine) ->
**aggregate** (stream ∪ batch ∪ settlements, audit trail) -> **business** indexes (one
mapped task per index) -> compact the day's stream-index files -> run summary ->
retention. The last two always run (teardown tasks) and do not decide the run's state:
a run whose gate failed is **failed**, not successful.

#### Retention
Versions a partition was repointed away from (superseded) are kept
`lake.retention_days` (30) for time travel and rollback. On AWS the publisher tags them
`payments-lifecycle=superseded` and S3 expires them; locally `prune_superseded_versions`
deletes versions older than that which are neither the current nor the previous version
of their partition. A rollback to a version that has expired fails (nothing is changed).

#### Params (manual runs and `payments_reprocess`)
* `date` — the day to build, `YYYY-MM-DD` (default: the data interval's day).
* `from_stage` — `batch` (default), `aggregate` or `business`: earlier stages are
  skipped and later ones read the versions currently published for the day.
* `indexes` — which business indexes to rebuild (default: all).

Spark jobs run in pool `spark_jobs` (on AWS: a new EMR job per task try, with the ingest
role for the batch job and the transform role for the others). The pools are created by
`scripts/setup.sh` locally and by `scripts/deploy.py --mwaa-environment` on MWAA.

#### When it pages
* **Deadline missed**: the run has not finished `payments_daily_deadline_hours`
  (default 30 h) after the start of its day. Check which task is running or waiting
  (often `wait_for_raw_drops`: a late upstream drop) — see docs/runbook.md.
* **Publish failed** (`publish_*_stage`): the stage's other table was restored to its
  previous partition; the task retries. See docs/runbook.md#rolling-back-a-partition.
* **Quality gate failed**: the page names the failed checks and the quarantined
  location. Fix the input or the job, then rerun the day with `payments_reprocess`.
* **Run failed**: any other task failed after its retries; read its log.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, DeadlineAlert, DeadlineReference, Param, TriggerRule, chain, task
from airflow.sdk.definitions.callback import AsyncCallback

from payments_platform import pipeline
from payments_platform.notifications import OnCallNotifier
from payments_platform.profiles import get_profile
from payments_platform.sensors import raw_drop_sensor
from payments_platform.spark_jobs import spark_job_operator, spark_job_task
from payments_platform.stages import (
    plan_daily_run,
    prune_superseded_versions,
    publish_stage,
    publish_version,
    resolve_published,
    skip_unless_stage,
    summarize_daily_run,
    verify_version,
)

DAG_ID = "payments_daily_index"
DEADLINE_HOURS = 30

profile = get_profile()
spark_operator, spark_operator_kwargs = spark_job_operator(profile)

with DAG(
    dag_id=DAG_ID,
    description="Daily batch, aggregate and business indexes: build, verify, publish",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["payments", "index", "daily"],
    default_args={
        "owner": "payments-data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=profile.orchestration.retry_delay_seconds),
        "retry_exponential_backoff": True,
    },
    params={
        "date": Param(
            None, type=["null", "string"], format="date", description="Day to build (default: the data interval's day)"
        ),
        "from_stage": Param("batch", enum=list(pipeline.STAGES), description="First stage to rebuild"),
        "indexes": Param(
            list(pipeline.BUSINESS_INDEXES),
            type="array",
            items={"type": "string", "enum": list(pipeline.BUSINESS_INDEXES)},
            minItems=1,
            description="Business indexes to rebuild",
        ),
    },
    on_failure_callback=OnCallNotifier(),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=DEADLINE_HOURS),
        callback=AsyncCallback(
            "payments_platform.notifications.deadline_missed",
            kwargs={"dag_id": DAG_ID, "deadline": f"{DEADLINE_HOURS}h after the start of the day"},
        ),
        name="daily_index_finished",
    ),
) as dag:
    plan_run = plan_daily_run()

    wait_for_raw_drops = raw_drop_sensor(profile, task_id="wait_for_raw_drops")

    build_batch_index = spark_job_task(
        pipeline.batch_index_job(profile), task_id="build_batch_index", pre_execute=skip_unless_stage("batch"), pool="spark_jobs"
    )
    verify_batch_index = verify_version.override(task_id="verify_batch_index", pool="quality_gate")(table="batch_index")
    verify_quarantine = verify_version.override(task_id="verify_quarantine", pool="quality_gate")(table="quarantine")
    # A stage publishes its tables together or not at all (one task; a failure restores the others).
    publish_batch_stage = publish_stage.override(task_id="publish_batch_stage")(
        stage="batch", verifications=[verify_batch_index, verify_quarantine]
    )

    resolve_aggregate_inputs = resolve_published.override(
        task_id="resolve_aggregate_inputs", trigger_rule=TriggerRule.NONE_FAILED
    )(tables=["batch_index"], previous_day_tables=["aggregate_index"])
    build_aggregate_index = spark_job_task(
        pipeline.aggregate_index_job(profile),
        task_id="build_aggregate_index",
        pre_execute=skip_unless_stage("aggregate"),
        pool="spark_jobs",
    )
    verify_aggregate_index = verify_version.override(task_id="verify_aggregate_index", pool="quality_gate")(
        table="aggregate_index"
    )
    verify_audit_trail = verify_version.override(task_id="verify_audit_trail", pool="quality_gate")(table="audit_trail")
    publish_aggregate_stage = publish_stage.override(task_id="publish_aggregate_stage")(
        stage="aggregate", verifications=[verify_aggregate_index, verify_audit_trail]
    )

    resolve_business_inputs = resolve_published.override(task_id="resolve_business_inputs", trigger_rule=TriggerRule.NONE_FAILED)(
        tables=["aggregate_index"]
    )

    @task
    def plan_business_indexes(plan: dict, inputs: dict) -> list[dict]:
        """One entry per selected business index: its table and the job's arguments."""
        return [
            {
                "table": index,
                "arguments": pipeline.business_index_arguments(
                    profile, index, plan["dt"], plan["version"], inputs["aggregate_index"] or ""
                ),
            }
            for index in plan["indexes"]
        ]

    business_plan = plan_business_indexes(plan_run, resolve_business_inputs)
    build_business_index = spark_operator.partial(
        task_id="build_business_index", job=pipeline.business_index_job(profile), pool="spark_jobs", **spark_operator_kwargs
    ).expand(arguments=business_plan.map(lambda entry: entry["arguments"]))
    verify_business_index = verify_version.override(task_id="verify_business_index", pool="quality_gate").expand(
        table=business_plan.map(lambda entry: entry["table"])
    )
    publish_business_index = publish_version.override(task_id="publish_business_index").expand(
        table=business_plan.map(lambda entry: entry["table"])
    )

    compact_stream_index = spark_job_task(pipeline.compact_stream_job(profile), task_id="compact_stream_index", pool="spark_jobs")
    # Teardowns: they run whatever happened upstream, and the run's state is that of the
    # real work (a plain ALL_DONE leaf would turn a run whose gate failed into a success).
    summarize_run = summarize_daily_run().as_teardown()
    prune_versions = prune_superseded_versions().as_teardown()

    chain(plan_run, wait_for_raw_drops, build_batch_index, [verify_batch_index, verify_quarantine], publish_batch_stage)
    chain(
        publish_batch_stage,
        resolve_aggregate_inputs,
        build_aggregate_index,
        [verify_aggregate_index, verify_audit_trail],
        publish_aggregate_stage,
        resolve_business_inputs,
    )
    chain(
        business_plan,
        build_business_index,
        verify_business_index,
        publish_business_index,
        compact_stream_index,
        summarize_run,
        prune_versions,
    )
