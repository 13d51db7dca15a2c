"""EMR on EKS job runs against moto: the execution role of each job, one job per try, the quality
gate's result and who writes ``_quality.json``.

moto's ``StartJobRun`` leaves a job ``RUNNING`` for ever; :func:`emr_runs` plays the job instead
(sets its final state and, for a gate job, writes the result the real job would write).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest

from payments_platform import lake_io
from tests.aws.helpers import REGION, capture, virtual_cluster

INGEST = "arn:aws:iam::123456789012:role/payments-emr-ingest"
TRANSFORM = "arn:aws:iam::123456789012:role/payments-emr-transform"
RUN_ID = "scheduled__2026-11-22T00:00:00+00:00"
DAY = "2026-11-21"


@pytest.fixture
def cluster(aws):
    """The aws profile on a moto virtual cluster."""
    cluster_id = virtual_cluster()
    return aws.model_copy(update={"spark": aws.spark.model_copy(update={"virtual_cluster_id": cluster_id})})


@pytest.fixture
def emr_client(monkeypatch, cluster):
    """The one EMR on EKS client every EmrContainerHook uses (so its requests can be recorded)."""
    from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook

    client = boto3.client("emr-containers", region_name=REGION)
    monkeypatch.setattr(EmrContainerHook, "conn", property(lambda self: client))
    return client


@pytest.fixture
def s3_client(monkeypatch, aws):
    """The one S3 client every S3Hook (the orchestrator's side) uses."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = boto3.client("s3", region_name=REGION)
    monkeypatch.setattr(S3Hook, "get_conn", lambda self: client)
    for bucket in ("payments-processed-test", "payments-quarantine-test"):
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def emr_runs(monkeypatch):
    """``plays(fn)``: every started job run is passed to ``fn(job_run, arguments)``, which may end it."""
    import moto.emrcontainers.models as models

    original = models.EMRContainersBackend.start_job_run
    players = []

    def start_job_run(self, *args, **kwargs):
        job_run = original(self, *args, **kwargs)
        arguments = job_run.job_driver["sparkSubmitJobDriver"].get("entryPointArguments", [])
        for play in players:
            play(job_run, arguments)
        return job_run

    monkeypatch.setattr(models.EMRContainersBackend, "start_job_run", start_job_run)
    return players.append


def task_instance(task_id: str, try_number: int, map_index: int = -1) -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="payments_daily_index", run_id=RUN_ID, task_id=task_id, map_index=map_index, try_number=try_number
    )


def argument(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


# --- item 2: each job runs with its family's role ----------------------------------------------


def run_operator(job, task_id: str, profile, arguments: list[str] | None = None, try_number: int = 1):
    from payments_platform.spark_jobs import spark_job_task

    operator = spark_job_task(job, task_id=task_id, profile=profile)
    if arguments is not None:
        operator.arguments = arguments
    operator.deferrable = operator.wait_for_completion = False
    return operator.execute({"ti": task_instance(task_id, try_number)})


def test_batch_and_stream_jobs_run_as_ingest_every_other_job_as_transform(cluster, emr_client):
    from payments_platform import pipeline
    from payments_platform.stream_control import EmrStreamController

    requests = capture(emr_client, "StartJobRun")
    run_operator(pipeline.batch_index_job(cluster), "build_batch_index", cluster)
    run_operator(pipeline.aggregate_index_job(cluster), "build_aggregate_index", cluster)
    run_operator(pipeline.business_index_job(cluster), "build_business_index", cluster, ["--index", "fraud_index"])
    run_operator(pipeline.compact_stream_job(cluster), "compact_stream_index", cluster)
    EmrStreamController(cluster).start()

    assert [(request["name"].rsplit("-", 1)[0], request["executionRoleArn"]) for request in requests] == [
        ("batch-index", INGEST),
        ("aggregate-index", TRANSFORM),
        ("business-index", TRANSFORM),
        ("compact-stream-index", TRANSFORM),
        ("payments-stream", INGEST),  # payments-stream-index: its name carries no task suffix
    ]


def test_an_option_with_no_value_is_left_out_of_the_job_run(cluster, emr_client):
    """The first day has no previous aggregate (and a first run no batch index): EMR rejects an empty
    argument, so the option is left out and the job reads its default ('' = none)."""
    from payments_platform import pipeline

    requests = capture(emr_client, "StartJobRun")
    job = pipeline.aggregate_index_job(
        cluster, dt=DAY, version="v1", batch_index_location="s3://b/batch_index/v1", previous_aggregate_location=""
    )
    run_operator(job, "aggregate.build", cluster)
    arguments = requests[0]["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"]
    assert arguments[:4] == ["--date", DAY, "--version", "v1"]
    assert argument(arguments, "--batch-index-location") == "s3://b/batch_index/v1"
    assert "--previous-aggregate-location" not in arguments and "" not in arguments


def test_the_profile_carries_both_roles_from_the_startup_environment(aws):
    assert (aws.spark.ingest_role_arn, aws.spark.transform_role_arn) == (INGEST, TRANSFORM)
    assert aws.spark.role_arn("ingest") == INGEST and aws.spark.role_arn("transform") == TRANSFORM


# --- item 7: one job per try -------------------------------------------------------------------


def test_each_try_submits_its_own_job_and_cancels_an_earlier_try_still_running(cluster, emr_client):
    """Try 1's worker died with its job still running; try 2 (a retry, or the task cleared and run
    again) cancels it and submits a job under its own token; try 2 asking again gets its own back."""
    from payments_platform import pipeline
    from payments_platform.spark_jobs import client_request_token, emr_job_name

    starts, cancels = capture(emr_client, "StartJobRun"), capture(emr_client, "CancelJobRun")
    job = pipeline.aggregate_index_job(cluster)
    first = run_operator(job, "build_aggregate_index", cluster, try_number=1)
    second = run_operator(job, "build_aggregate_index", cluster, try_number=2)

    tokens = [request["clientToken"] for request in starts]
    assert tokens == [
        client_request_token("payments_daily_index", RUN_ID, "build_aggregate_index", -1, 1),
        client_request_token("payments_daily_index", RUN_ID, "build_aggregate_index", -1, 2),
    ]
    assert tokens[0] != tokens[1] and first != second
    name = emr_job_name("aggregate-index", "payments_daily_index", RUN_ID, "build_aggregate_index", -1)
    assert {request["name"] for request in starts} == {name}
    assert cancels == [{"id": first, "virtualClusterId": cluster.spark.virtual_cluster_id}]
    states = {
        run["id"]: run["state"] for run in emr_client.list_job_runs(virtualClusterId=cluster.spark.virtual_cluster_id)["jobRuns"]
    }
    assert states == {first: "CANCELLED", second: "RUNNING"}


def test_another_task_instances_running_job_is_not_cancelled(cluster, emr_client):
    """The mapped business-index tasks run side by side: map index 1 leaves map index 0's job alone."""
    from payments_platform import pipeline
    from payments_platform.spark_jobs import PaymentsEmrContainerOperator

    cancels = capture(emr_client, "CancelJobRun")
    job = pipeline.business_index_job(cluster)
    for map_index in (0, 1):
        operator = PaymentsEmrContainerOperator(task_id="build_business_index", job=job, spark=cluster.spark, arguments=[])
        operator.deferrable = operator.wait_for_completion = False
        operator.execute({"ti": task_instance("build_business_index", 1, map_index=map_index)})
    assert cancels == []
    runs = emr_client.list_job_runs(virtualClusterId=cluster.spark.virtual_cluster_id)["jobRuns"]
    assert sorted(run["state"] for run in runs) == ["RUNNING", "RUNNING"]


# --- item 1: the gate job's result, and _quality.json written by the orchestrator ----------------

PLAN = {"dt": DAY, "version": "v1", "from_stage": "batch", "indexes": []}


def staged_version(s3, table: str = "batch_index") -> str:
    root = "s3://payments-quarantine-test/quarantine" if table == "quarantine" else "s3://payments-processed-test/indexes"
    location = lake_io.version_location(root, table, DAY, "v1")
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/part-0.parquet", Body=b"PAR1")
    return location


def gate_job(passed: bool | None, state: str):
    """What the gate job does on EMR: write its result where it was told, exit by verdict."""
    s3 = boto3.client("s3", region_name=REGION)

    def play(job_run, arguments):
        if passed is not None:
            result = {
                "table": argument(arguments, "--table"),
                "location": argument(arguments, "--location"),
                "engine": "spark",
                "passed": passed,
                "checks_total": 40,
                "checks_failed": [] if passed else [{"name": "row_count > 0", "path": "checks", "diagnostic": "0"}],
            }
            bucket, key = argument(arguments, "--result-uri").removeprefix("s3://").split("/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(result).encode())
        job_run.state = state

    return play


@pytest.fixture
def started(emr_runs):
    """The gate job runs submitted, as (moto job run, arguments): the test ends them."""
    runs = []
    emr_runs(lambda job_run, arguments: runs.append((job_run, arguments)))
    return runs


def run_gate(profile, started, outcome, table: str = "batch_index", try_number: int = 1):
    """One try of ``verify_<table>`` (submitted, deferred; the job run ends as ``outcome`` plays it;
    the trigger's event resumes the task) and then ``check_<table>``."""
    from airflow.providers.amazon.aws.triggers.emr import EmrContainerTrigger
    from airflow.sdk.exceptions import TaskDeferred

    from payments_platform.quality_gate import QualityGateEmrOperator, record_gate_verdict

    operator = QualityGateEmrOperator(task_id=f"verify_{table}", table=table, plan=PLAN, profile=profile)
    context = {"ti": task_instance(f"verify_{table}", try_number)}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, EmrContainerTrigger) and deferred.value.method_name == "execute_complete"
    job_run, arguments = started[-1]
    assert trigger.job_id == job_run.id
    outcome(job_run, arguments)
    event = {"status": "success" if job_run.state == "COMPLETED" else "error", "job_id": job_run.id}
    verdict = QualityGateEmrOperator(task_id=f"verify_{table}", table=table, plan=PLAN, profile=profile).execute_complete(
        context, event
    )
    return record_gate_verdict(verdict, profile)


def test_the_gate_is_a_deferred_emr_job_submission_with_the_exact_request(cluster, emr_client, s3_client, started):
    """The task submits the gate job and defers (no worker slot polls); the StartJobRun request, exactly."""
    from airflow.sdk.exceptions import TaskDeferred

    from payments_platform.quality_gate import QualityGateEmrOperator
    from payments_platform.spark_jobs import client_request_token, emr_job_name

    location = staged_version(s3_client)
    requests = capture(emr_client, "StartJobRun")
    operator = QualityGateEmrOperator(
        task_id="verify_batch_index", table="batch_index", plan=PLAN, profile=cluster, pool="quality_gate"
    )
    assert operator.deferrable and operator.pool == "quality_gate"
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": task_instance("batch.verify_batch_index", 1)})
    assert deferred.value.trigger.waiter_delay == 30

    token = client_request_token("payments_daily_index", RUN_ID, "batch.verify_batch_index", -1, 1)
    [request] = requests
    parameters = request["jobDriver"]["sparkSubmitJobDriver"].pop("sparkSubmitParameters")
    assert parameters.startswith("--py-files s3://payments-artifacts-test/spark_apps/spark_apps.zip --conf ")
    assert request == {
        "name": emr_job_name("quality-gate-batch_index", "payments_daily_index", RUN_ID, "batch.verify_batch_index", -1),
        "virtualClusterId": cluster.spark.virtual_cluster_id,
        "executionRoleArn": TRANSFORM,
        "releaseLabel": "emr-spark-8.0.0-20260421",
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": "s3://payments-artifacts-test/spark_apps/jobs/quality_gate.py",
                "entryPointArguments": [
                    "--table", "batch_index",
                    "--location", location,
                    "--result-uri", f"{location}/_quality_result/{token}.json",
                    "--contracts-dir", "s3://payments-artifacts-test/include/contracts",
                ],
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {
                "persistentAppUI": "ENABLED",
                "cloudWatchMonitoringConfiguration": {
                    "logGroupName": "/payments/emr-on-eks",
                    "logStreamNamePrefix": "quality-gate-batch_index",
                },
                "s3MonitoringConfiguration": {"logUri": "s3://payments-logs-test/emr-on-eks"},
            },
            "applicationConfiguration": [
                {
                    "classification": "spark-defaults",
                    "properties": {
                        "spark.kubernetes.container.image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-spark:1.0.0"
                    },
                }
            ],
        },
        "clientToken": token,
        "tags": {"project": "payments-index"},
    }  # fmt: skip


def test_the_gate_job_writes_its_own_result_and_the_orchestrator_writes_quality_json(cluster, emr_client, s3_client, started):
    from payments_platform.spark_jobs import client_request_token

    location = staged_version(s3_client)
    orchestrator_puts = capture(s3_client, "PutObject")

    result = run_gate(cluster, started, gate_job(passed=True, state="COMPLETED"))

    token = client_request_token("payments_daily_index", RUN_ID, "verify_batch_index", -1, 1)
    [(_, arguments)] = started
    assert argument(arguments, "--result-uri") == f"{location}/_quality_result/{token}.json"
    assert not any(arg.endswith("_quality.json") for arg in arguments), "the job is never told to write the control file"
    # The orchestrator (this task, through S3Hook) writes _quality.json and nothing else.
    prefix = location.removeprefix("s3://payments-processed-test/")
    assert [(put["Bucket"], put["Key"]) for put in orchestrator_puts] == [("payments-processed-test", f"{prefix}/_quality.json")]
    written = lake_io.read_json(f"{location}/_quality.json")
    assert written["passed"] is True and written["job_run_state"] == "COMPLETED"
    assert written["result_uri"] == f"{location}/_quality_result/{token}.json" and result == written


def test_a_failed_contract_is_judged_once_not_retried(cluster, emr_client, s3_client, started, monkeypatch):
    """The gate job exits non-zero after writing a failing verdict: the EMR task returns it (no retry,
    no new job), and check_<table> writes _quality.json, pages and fails without retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from payments_platform import quality_gate

    pages = []
    monkeypatch.setattr(quality_gate, "page_on_call", lambda subject, body, **kw: pages.append((subject, kw["details"])))
    location = staged_version(s3_client)
    with pytest.raises(AirflowFailException, match=r"quality gate failed for batch_index dt=2026-11-21 \(row_count > 0\)"):
        run_gate(cluster, started, gate_job(passed=False, state="FAILED"))
    assert len(started) == 1
    assert lake_io.read_json(f"{location}/_quality.json")["passed"] is False
    assert pages == [
        (
            "quality gate failed: batch_index dt=2026-11-21",
            {"table": "batch_index", "dt": DAY, "location": location, "failed_checks": ["row_count > 0"]},
        )
    ]


def test_the_quarantine_gate_runs_as_ingest_the_only_role_reading_the_quarantine_bucket(cluster, emr_client, s3_client, started):
    starts = capture(emr_client, "StartJobRun")
    staged_version(s3_client, "quarantine")
    run_gate(cluster, started, gate_job(passed=True, state="COMPLETED"), table="quarantine")
    assert [request["executionRoleArn"] for request in starts] == [INGEST]


def test_a_retried_gate_submits_a_new_job_and_reads_only_its_own_result(cluster, emr_client, s3_client, started):
    """Try 1's gate job died without a verdict (lost driver): the task fails and retries. Try 2 must
    not re-attach to try 1's failed job: a new token, a new job, its own result file."""
    from payments_platform.quality_gate import GateResultError
    from payments_platform.spark_jobs import client_request_token

    starts = capture(emr_client, "StartJobRun")
    location = staged_version(s3_client)

    with pytest.raises(GateResultError, match="ended FAILED without writing"):
        run_gate(cluster, started, gate_job(passed=None, state="FAILED"), try_number=1)
    assert lake_io.read_json(f"{location}/_quality.json") is None, "no verdict, no control file"
    result = run_gate(cluster, started, gate_job(passed=True, state="COMPLETED"), try_number=2)

    tokens = [client_request_token("payments_daily_index", RUN_ID, "verify_batch_index", -1, n) for n in (1, 2)]
    assert [request["clientToken"] for request in starts] == tokens
    assert result["passed"] and result["result_uri"] == f"{location}/_quality_result/{tokens[1]}.json"
    assert result["job_run_state"] == "COMPLETED"


@pytest.mark.parametrize(
    ("result", "state", "message"),
    [
        ({"table": "batch_index", "location": "L", "passed": True}, "FAILED", "says passed but its job run ended FAILED"),
        ({"table": "aggregate_index", "location": "L", "passed": True}, "COMPLETED", "not batch_index at L"),
        ({"table": "batch_index", "location": "L"}, "COMPLETED", "no boolean 'passed'"),
        (None, "COMPLETED", "without writing"),
    ],
)
def test_a_result_that_is_not_the_verdict_of_that_job_on_that_version_is_refused(result, state, message):
    from payments_platform.quality_gate import GateResultError, checked_gate_result

    with pytest.raises(GateResultError, match=message):
        checked_gate_result(result, "batch_index", "L", state, "L/_quality_result/t.json")
    assert checked_gate_result({"table": "batch_index", "location": "L/", "passed": False}, "batch_index", "L", "FAILED", "u")


def test_the_gate_job_refuses_to_write_the_control_file():
    from spark_apps.jobs import quality_gate

    base = ["--table", "batch_index", "--location", "s3://b/indexes/batch_index/dt=2026-11-21/version=v1"]
    with pytest.raises(SystemExit):
        quality_gate.parse_args([*base, "--result-uri", "s3://b/indexes/batch_index/dt=2026-11-21/version=v1/_quality.json"])
    assert quality_gate.parse_args([*base, "--result-uri", "s3://b/x/_quality_result/t.json"]).result_uri.endswith("t.json")
