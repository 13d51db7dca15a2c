"""
### Payments daily index

Builds, verifies and publishes every index for one day: the run's **planned day** `dt`
(`plan_run`: the `date` param, else the data interval's day). Each stage writes a **new
version** (`<lake>/indexes/<table>/dt=<dt>/version=<version>/`), a Soda contract verifies
it, and only then is the catalog partition `dt=<dt>` created or repointed to it
(Glue/Athena on AWS, the embedded DuckDB catalog locally). A failed gate leaves the
version quarantined: nothing half-built is ever visible.

#### Shape: one task group per stage
```
plan_run
batch:     should_run -> wait_for_raw_drops -> build -> verify_batch_index -> check_batch_index  -> publish
                                                     -> verify_quarantine  -> check_quarantine   /
aggregate: should_run, resolve_inputs -> build -> verify_aggregate_index -> check_aggregate_index -> publish
                                               -> verify_audit_trail     -> check_audit_trail     /
business:  resolve_inputs -> plan_business_indexes -> build[i] -> verify[i] -> check[i] -> publish[i]
compact_stream_index -> summarize_daily_run (teardown) -> prune_superseded_versions (teardown)
```
* `verify_*` (pool `quality_gate`) runs the contract: on AWS an **EMR job, deferred**
  (no worker slot waits for it), locally DuckDB in the task. `check_*` reads the verdict
  (on AWS the job's result file, checked against the job run), writes `_quality.json` (only
  the orchestrator does) and fails on a failed contract, without retry.
* A stage's `publish` publishes its tables **together or not at all** (batch index +
  quarantine, aggregate index + audit trail): one failed gate stops both, and if the
  second table's publish fails the first is restored to its previous partition. The
  business indexes publish one by one (`business.publish[i]`).
* The plan and the published inputs reach every task as XCom references (`plan["dt"]`,
  `resolve_inputs` output): no task names another by id.
* `summarize_daily_run` and `prune_superseded_versions` always run (teardowns) and do
  not decide the run's state: a run whose gate failed is **failed**.

#### Assets (data lineage between DAGs)
Every published table is an Airflow Asset named `payments.<table>`
(`x-payments://catalog/payments/<table>`): `batch.publish` updates `payments.batch_index`
and `payments.quarantine`, `aggregate.publish` `payments.aggregate_index` and
`payments.audit_trail`, and each `business.publish[i]` its index (through the alias
`payments_business_indexes_published`). Each event's `extra` holds `dt`, `version` and
`location`. Schedule a downstream DAG on one (`example_reconciliation_consumer`).

#### Retention
Versions a partition was repointed away from (superseded) are kept
`lake.retention_days` (30) for time travel and rollback. On AWS the publisher tags them
`payments-lifecycle=superseded` and S3 expires them; locally `prune_superseded_versions`
deletes versions older than that which are neither the current nor the previous version
of their partition. A rollback to a version that has expired fails (nothing is changed).

#### Params (manual runs and `payments_reprocess`)
* `date` — the day to build, `YYYY-MM-DD` (default: the data interval's day).
* `from_stage` — `batch` (default), `aggregate` or `business`: the earlier stages'
  `should_run` skips them (and everything in their group) and later ones read the
  versions currently published for the day.
* `indexes` — which business indexes to rebuild (default: all).

Spark jobs run in pool `spark_jobs` (on AWS: a new EMR job per task try, with the ingest
role for the batch job and the transform role for the others). The pools are created by
`scripts/setup.sh` locally and by `scripts/deploy.py --mwaa-environment` on MWAA.

#### When it pages (SNS on AWS through the provider's `SnsNotifier`; `oncall.log` locally)
* **Deadline missed**: the run has not finished `payments_daily_deadline_seconds` (an
  Airflow Variable, 108000 = 30 h) after the start of its day. Check which task is
  running or waiting (often `batch.wait_for_raw_drops`: a late upstream drop) — see
  docs/runbook.md#missed-deadline. A backdated run (`payments_reprocess` of an old day)
  whose deadline was already past when it was queued does not page.
* **Publish failed** (`<stage>.publish`): the stage's other table was restored to its
  previous partition; the task retries. See docs/runbook.md#rolling-back-a-partition.
* **Quality gate failed** (`check_*`): the page names the failed checks and the
  quarantined location. Fix the input or the job, then rerun the day with `payments_reprocess`.
* **Run failed**: any other task failed after its retries; read its log.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, DeadlineAlert, DeadlineReference, Param, TaskGroup, TriggerRule, chain
from airflow.sdk.definitions.deadline import VariableInterval

from payments_platform import pipeline
from payments_platform.notifications import deadline_callback, on_call_notifier
from payments_platform.profiles import get_profile
from payments_platform.quality_gate import QualityGateEmrOperator
from payments_platform.sensors import raw_drop_sensor
from payments_platform.spark_jobs import spark_job_operator, spark_job_task
from payments_platform.stages import (
    BUSINESS_INDEXES_ALIAS,
    plan_business_indexes,
    plan_run,
    prune_superseded_versions,
    publish_business_index,
    publish_stage,
    record_verdict,
    resolve_published,
    should_run,
    stage_assets,
    summarize_daily_run,
    verify_in_process,
)

DAG_ID = "payments_daily_index"
# Seconds after the start of the run's day (Airflow's VariableInterval reads whole seconds).
DEADLINE_VARIABLE = "payments_daily_deadline_seconds"

profile = get_profile()
spark_operator, spark_operator_kwargs = spark_job_operator(profile)
GATE_ON_EMR = profile.quality.engine == "spark"


def gate(build, table, plan):
    """``build`` -> ``verify_<table>`` -> ``check_<table>``: the contract on the staged version (an EMR
    job on AWS, deferred; DuckDB in process locally), then its verdict written as _quality.json (a
    failed gate pages and fails the run)."""
    if GATE_ON_EMR:
        verify = QualityGateEmrOperator(task_id=f"verify_{table}", table=table, plan=plan, profile=profile, pool="quality_gate")
        verdict = verify.output
    else:
        verdict = verify_in_process.override(task_id=f"verify_{table}", pool="quality_gate")(table=table, plan=plan)
    build >> verdict
    return record_verdict.override(task_id=f"check_{table}")(verdict)


def mapped_gate(build, tables, plan):
    """``build`` -> ``verify`` -> ``check``, mapped over the selected business indexes."""
    if GATE_ON_EMR:
        verify = QualityGateEmrOperator.partial(task_id="verify", plan=plan, profile=profile, pool="quality_gate")
        verdicts = verify.expand(table=tables).output
    else:
        verdicts = verify_in_process.override(task_id="verify", pool="quality_gate").partial(plan=plan).expand(table=tables)
    build >> verdicts
    return record_verdict.override(task_id="check").expand(gate=verdicts)


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
    on_failure_callback=on_call_notifier(profile),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=VariableInterval(DEADLINE_VARIABLE),
        callback=deadline_callback(profile, f"{DEADLINE_VARIABLE} after the start of the day"),
        name="daily_index_finished",
    ),
) as dag:
    plan = plan_run()

    with TaskGroup("batch", tooltip="batch index + quarantine: wait, build, verify, publish together"):
        wait_for_raw_drops = raw_drop_sensor(profile, plan["ready_marker"], task_id="wait_for_raw_drops")
        build = spark_job_task(
            pipeline.batch_index_job(profile, dt=plan["dt"], version=plan["version"]), task_id="build", pool="spark_jobs"
        )
        verdicts = [gate(build, table, plan) for table in pipeline.STAGE_TABLES["batch"]]
        # The stage's tables publish together or not at all (one task; a failure restores the others).
        batch_published = publish_stage.override(task_id="publish", outlets=stage_assets("batch"))("batch", plan, verdicts)
        chain(should_run.override(task_id="should_run")(plan, "batch"), wait_for_raw_drops, build)

    with TaskGroup("aggregate", tooltip="aggregate index + audit trail: build, verify, publish together"):
        aggregate_inputs = resolve_published.override(task_id="resolve_inputs", trigger_rule=TriggerRule.NONE_FAILED)(
            plan, ["batch_index"], previous_day_tables=["aggregate_index"]
        )
        build = spark_job_task(
            pipeline.aggregate_index_job(
                profile,
                dt=plan["dt"],
                version=plan["version"],
                batch_index_location=aggregate_inputs["batch_index"],
                previous_aggregate_location=aggregate_inputs["previous_aggregate_index"],
            ),
            task_id="build",
            pool="spark_jobs",
        )
        verdicts = [gate(build, table, plan) for table in pipeline.STAGE_TABLES["aggregate"]]
        aggregate_published = publish_stage.override(task_id="publish", outlets=stage_assets("aggregate"))(
            "aggregate", plan, verdicts
        )
        should_run.override(task_id="should_run")(plan, "aggregate") >> build

    with TaskGroup("business", tooltip="per selected business index (mapped): build, verify, publish"):
        business_inputs = resolve_published.override(task_id="resolve_inputs", trigger_rule=TriggerRule.NONE_FAILED)(
            plan, ["aggregate_index"]
        )
        entries = plan_business_indexes(plan, business_inputs)
        build = spark_operator.partial(
            task_id="build", job=pipeline.business_index_job(profile), pool="spark_jobs", **spark_operator_kwargs
        ).expand(arguments=entries.map(lambda entry: entry["arguments"]))
        verdicts = mapped_gate(build, entries.map(lambda entry: entry["table"]), plan)
        # Each mapped instance publishes one index and adds that index's Asset event through the alias.
        business_published = (
            publish_business_index.override(task_id="publish", outlets=[BUSINESS_INDEXES_ALIAS])
            .partial(plan=plan)
            .expand(verdict=verdicts)
        )

    compact_stream_index = spark_job_task(
        pipeline.compact_stream_job(profile, dt=plan["dt"]), task_id="compact_stream_index", pool="spark_jobs"
    )
    # Teardowns: they run whatever happened upstream, and the run's state is that of the
    # real work (a plain ALL_DONE leaf would turn a run whose gate failed into a success).
    summarize_run = summarize_daily_run(plan).as_teardown()
    prune_versions = prune_superseded_versions().as_teardown()

    chain(batch_published, aggregate_inputs)
    chain(aggregate_published, business_inputs)
    chain(business_published, compact_stream_index, summarize_run, prune_versions)
