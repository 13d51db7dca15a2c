"""The ``aws`` profile against moto: exact EMR on EKS requests, Glue partitions, SNS pages."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from payments_platform import lake_io
from tests.aws.helpers import REGION, capture, virtual_cluster


def test_batch_job_start_job_run_request(aws):
    from payments_platform import pipeline
    from payments_platform.spark_jobs import PaymentsEmrContainerOperator, client_request_token, emr_job_name, spark_job_task

    operator = spark_job_task(pipeline.batch_index_job(aws), task_id="build_batch_index")
    assert isinstance(operator, PaymentsEmrContainerOperator)
    operator.arguments = ["--date", "2026-11-21", "--version", "v1"]  # as rendered
    operator.virtual_cluster_id = operator.hook.virtual_cluster_id = virtual_cluster()
    calls = capture(operator.hook.conn, "StartJobRun")
    ti = SimpleNamespace(
        dag_id="payments_daily_index",
        run_id="scheduled__2026-11-22T00:00:00+00:00",
        task_id="build_batch_index",
        map_index=-1,
        try_number=1,
    )
    operator.deferrable = False
    operator.wait_for_completion = False
    operator.execute({"ti": ti})

    [request] = calls
    assert request["name"] == emr_job_name("batch-index", "payments_daily_index", ti.run_id, "build_batch_index", -1)
    assert request["name"].startswith("batch-index-")
    assert request["releaseLabel"] == "emr-spark-8.0.0-20260421"
    assert request["executionRoleArn"] == "arn:aws:iam::123456789012:role/payments-emr-ingest", "reads raw drops"
    assert request["clientToken"] == client_request_token("payments_daily_index", ti.run_id, "build_batch_index", -1, 1)
    driver = request["jobDriver"]["sparkSubmitJobDriver"]
    assert driver["entryPoint"] == "s3://payments-artifacts-test/spark_apps/jobs/batch_index.py"
    assert driver["entryPointArguments"] == ["--date", "2026-11-21", "--version", "v1"]
    assert driver["sparkSubmitParameters"].startswith("--py-files s3://payments-artifacts-test/spark_apps/spark_apps.zip --conf ")
    assert "--conf spark.sql.session.timeZone=UTC" in driver["sparkSubmitParameters"]
    monitoring = request["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["cloudWatchMonitoringConfiguration"] == {
        "logGroupName": "/payments/emr-on-eks",
        "logStreamNamePrefix": "batch-index",
    }
    assert monitoring["s3MonitoringConfiguration"] == {"logUri": "s3://payments-logs-test/emr-on-eks"}
    assert request["configurationOverrides"]["applicationConfiguration"][0]["properties"] == {
        "spark.kubernetes.container.image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-spark:1.0.0"
    }
    assert "retryPolicyConfiguration" not in request, "batch jobs are retried by Airflow, not EMR"


def test_client_token_is_one_per_try_and_distinct_per_task():
    from payments_platform.spark_jobs import client_request_token

    first = client_request_token("d", "r", "t", -1, 1)
    assert first == client_request_token("d", "r", "t", -1, 1), "the same try asking again gets its own job back"
    assert len(first) <= 64 and first.endswith("-t1")
    assert first != client_request_token("d", "r", "t", -1, 2), "a retry or a cleared task is a new try: a new job"
    assert first != client_request_token("d", "r", "t", 0, 1)
    assert first != client_request_token("d", "r2", "t", -1, 1)
    assert first != client_request_token("d", "r", "t2", -1, 1)


def test_stream_job_gets_emr_retry_policy(aws):
    from payments_platform.stream_control import EmrStreamController

    profile = aws.model_copy(update={"spark": aws.spark.model_copy(update={"virtual_cluster_id": virtual_cluster()})})
    controller = EmrStreamController(profile)
    calls = capture(controller.hook.conn, "StartJobRun")
    controller.start()
    assert calls[0]["retryPolicyConfiguration"] == {"maxAttempts": 5}
    assert calls[0]["name"] == "payments-stream-index"
    arguments = calls[0]["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"]
    assert arguments[arguments.index("--security") + 1] == "iam"
    assert arguments[arguments.index("--checkpoint-uri") + 1] == "s3://payments-checkpoints-test/checkpoints"


def _glue_table(table: str) -> None:
    glue = boto3.client("glue", region_name=REGION)
    if "payments" not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]:
        glue.create_database(DatabaseInput={"Name": "payments"})
    glue.create_table(
        DatabaseName="payments",
        TableInput={
            "Name": table,
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "transaction_id", "Type": "string"}],
                "Location": f"s3://payments-processed-test/indexes/{table}/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
            },
        },
    )


def _stage_version(
    version: str, passed: bool = True, table: str = "batch_index", root: str = "s3://payments-processed-test/indexes"
) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = root.removeprefix("s3://").split("/", 1)[0]
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    location = lake_io.version_location(root, table, "2026-11-21", version)
    prefix = location.removeprefix(f"s3://{bucket}/")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/part-0.parquet", Body=b"PAR1")
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/_quality.json",
        Body=json.dumps({"passed": passed, "checks_failed": [] if passed else [{"name": "row_count > 0"}]}),
    )
    return location


def test_glue_partition_created_repointed_and_rolled_back(aws):
    from payments_platform.publishing import GluePublisher, PublishError

    _glue_table("batch_index")
    publisher = GluePublisher("payments", aws.lake.index_uri, aws.aws_conn_id, REGION)
    glue = boto3.client("glue", region_name=REGION)
    first, second = _stage_version("v1"), _stage_version("v2")

    created = publisher.publish("batch_index", "2026-11-21", first)
    assert created.changed and created.previous_location is None
    assert publisher.publish("batch_index", "2026-11-21", first).changed is False, "idempotent"
    repointed = publisher.publish("batch_index", "2026-11-21", second)
    assert repointed.previous_location == first
    partitions = glue.get_partitions(DatabaseName="payments", TableName="batch_index")["Partitions"]
    assert len(partitions) == 1
    assert partitions[0]["StorageDescriptor"]["Location"] == second + "/"
    assert partitions[0]["Parameters"]["version"] == "v2"
    assert partitions[0]["Parameters"]["previous_version"] == "v1"
    assert partitions[0]["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")

    publisher.rollback("batch_index", "2026-11-21")
    assert (
        glue.get_partition(DatabaseName="payments", TableName="batch_index", PartitionValues=["2026-11-21"])["Partition"][
            "StorageDescriptor"
        ]["Location"]
        == first + "/"
    )

    failed = _stage_version("v3", passed=False)
    with pytest.raises(PublishError, match=r"quality gate failed \(row_count > 0\)"):
        publisher.publish("batch_index", "2026-11-21", failed)
    assert publisher.current("batch_index", "2026-11-21")["location"] == first


SUPERSEDED = {"Key": "payments-lifecycle", "Value": "superseded"}
PROJECT_ROOT_FOR_TAGS = Path(__file__).resolve().parents[2]
OWNER = {"Key": "owner", "Value": "payments-data-platform"}


@pytest.fixture
def s3_requests(aws, monkeypatch):
    """Every ``PutObjectTagging`` request the publisher sends (through one recorded S3 client)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = boto3.client("s3", region_name=REGION)
    monkeypatch.setattr(S3Hook, "get_conn", lambda self: client)
    return capture(client, "PutObjectTagging")


def _tags(location: str) -> dict[str, list[dict]]:
    """Key (relative to the version) -> its tag set, for every object of a version."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]]
    return {key.removeprefix(prefix + "/"): s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] for key in sorted(keys)}


def _tag_request(location: str, name: str, tags: list[dict]) -> dict:
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    return {"Bucket": bucket, "Key": f"{prefix}/{name}", "Tagging": {"TagSet": tags}}


def test_superseded_versions_are_tagged_for_expiry_and_a_rollback_moves_the_tag(aws, s3_requests):
    from payments_platform.publishing import GluePublisher

    _glue_table("batch_index")
    publisher = GluePublisher("payments", aws.lake.index_uri, aws.aws_conn_id, REGION, aws.lake.quarantine_uri)
    v1, v2 = _stage_version("v1"), _stage_version("v2")
    s3 = boto3.client("s3", region_name=REGION)
    bucket, prefix = v1.removeprefix("s3://").split("/", 1)
    s3.put_object_tagging(Bucket=bucket, Key=f"{prefix}/part-0.parquet", Tagging={"TagSet": [OWNER]})  # someone else's tag

    publisher.publish("batch_index", "2026-11-21", v1)
    assert s3_requests == [], "a new version is published without tagging anything"

    publisher.publish("batch_index", "2026-11-21", v2)
    assert s3_requests == [
        _tag_request(v1, "_quality.json", [SUPERSEDED]),
        _tag_request(v1, "part-0.parquet", [OWNER, SUPERSEDED]),
    ], "every object of the version left behind, other tags kept"
    assert _tags(v2) == {"_quality.json": [], "part-0.parquet": []}, "the published version is never tagged"

    s3_requests.clear()
    publisher.publish("batch_index", "2026-11-21", v2)
    assert s3_requests == [], "idempotent: nothing to change"

    publisher.rollback("batch_index", "2026-11-21")
    assert s3_requests == [
        _tag_request(v1, "_quality.json", []),
        _tag_request(v1, "part-0.parquet", [OWNER]),
        _tag_request(v2, "_quality.json", [SUPERSEDED]),
        _tag_request(v2, "part-0.parquet", [SUPERSEDED]),
    ], "the tag leaves the version that is current again (first) and goes to the one left"
    assert _tags(v1) == {"_quality.json": [], "part-0.parquet": [OWNER]}
    assert _tags(v2) == {"_quality.json": [SUPERSEDED], "part-0.parquet": [SUPERSEDED]}
    assert publisher.current("batch_index", "2026-11-21")["location"] == v1


def test_a_republish_repairs_tags_an_interrupted_publish_left(aws, s3_requests):
    from payments_platform.publishing import GluePublisher

    _glue_table("batch_index")
    publisher = GluePublisher("payments", aws.lake.index_uri, aws.aws_conn_id, REGION, aws.lake.quarantine_uri)
    v1, v2 = _stage_version("v1"), _stage_version("v2")
    publisher.publish("batch_index", "2026-11-21", v1)
    original = GluePublisher._set_superseded
    calls = []

    def fail_when_tagging(self, location, superseded):
        calls.append((location, superseded))
        if superseded:
            raise RuntimeError("S3 throttled")
        return original(self, location, superseded)

    GluePublisher._set_superseded = fail_when_tagging
    try:
        with pytest.raises(RuntimeError, match="throttled"):
            publisher.publish("batch_index", "2026-11-21", v2)  # repointed, then tagging v1 failed
    finally:
        GluePublisher._set_superseded = original
    assert calls == [(v2, False), (v1, True)]
    assert publisher.current("batch_index", "2026-11-21")["location"] == v2
    assert _tags(v1) == {"_quality.json": [], "part-0.parquet": []}

    assert publisher.publish("batch_index", "2026-11-21", v2).changed is False  # the task's retry
    assert _tags(v1) == {"_quality.json": [SUPERSEDED], "part-0.parquet": [SUPERSEDED]}
    assert _tags(v2) == {"_quality.json": [], "part-0.parquet": []}


def test_quarantine_versions_are_not_tagged(aws, s3_requests):
    """The quarantine bucket expires every object by age; the MWAA role may not tag there."""
    from payments_platform.publishing import get_publisher

    _glue_table("quarantine")
    publisher = get_publisher(aws)
    root = aws.lake.quarantine_uri
    q1, q2 = (_stage_version(f"q{i}", table="quarantine", root=root) for i in (1, 2))
    publisher.publish("quarantine", "2026-11-21", q1)
    publisher.publish("quarantine", "2026-11-21", q2)
    assert publisher.rollback("quarantine", "2026-11-21", version="q1").location == q1
    assert s3_requests == []


def test_a_rejected_version_is_tagged_and_on_call_paged_with_its_failed_checks(aws, s3_requests):
    from airflow.sdk.exceptions import AirflowFailException

    from payments_platform import quality_gate

    sqs, queue_url = _sns_subscribed_queue()
    rejected = _stage_version("v9", passed=False)
    result = {"passed": False, "checks_total": 40, "checks_failed": [{"name": "merchant_risk_level is a known risk level"}]}
    with pytest.raises(AirflowFailException, match="merchant_risk_level is a known risk level"):
        quality_gate.record_gate_verdict(
            {"table": "batch_index", "dt": "2026-11-21", "location": rejected, "result": result}, aws
        )
    assert s3_requests == [
        _tag_request(rejected, "_quality.json", [SUPERSEDED]),
        _tag_request(rejected, "part-0.parquet", [SUPERSEDED]),
    ], "a rejected version expires like a superseded one"
    [envelope] = _received(sqs, queue_url)
    message = json.loads(envelope["Message"])
    assert message["details"]["failed_checks"] == ["merchant_risk_level is a known risk level"]
    assert message["details"]["location"] == rejected


def test_a_version_failing_the_pan_scan_is_tagged_to_expire_within_days(aws, s3_requests):
    """A version whose gate found a card number in clear is not kept for investigation like other
    rejected versions: it gets the lifecycle tag that expires in days (Terraform's pan_scan_failed_tag)."""
    from airflow.sdk.exceptions import AirflowFailException

    from payments_platform import quality_gate

    _sns_subscribed_queue()  # the on-call topic the page goes to
    pan_failed = {"Key": "payments-lifecycle", "Value": "pan-scan-failed"}
    leaked = _stage_version("v8", passed=False)
    result = {"passed": False, "checks_total": 40, "checks_failed": [{"name": "payload_masked holds no card number"}]}
    with pytest.raises(AirflowFailException, match="payload_masked holds no card number"):
        quality_gate.record_gate_verdict({"table": "batch_index", "dt": "2026-11-21", "location": leaked, "result": result}, aws)
    assert s3_requests == [
        _tag_request(leaked, "_quality.json", [pan_failed]),
        _tag_request(leaked, "part-0.parquet", [pan_failed]),
    ]
    variables = (PROJECT_ROOT_FOR_TAGS / "infra" / "terraform" / "modules" / "lake" / "variables.tf").read_text()
    block = variables[variables.index('variable "pan_scan_failed_tag"') :]
    assert f'key   = "{pan_failed["Key"]}"' in block and f'value = "{pan_failed["Value"]}"' in block


def test_the_tag_is_the_one_the_lifecycle_rule_expires():
    from payments_platform.profiles import PROJECT_ROOT
    from payments_platform.publishing import SUPERSEDED_TAG

    variables = (PROJECT_ROOT / "infra" / "terraform" / "modules" / "lake" / "variables.tf").read_text()
    block = variables[variables.index('variable "superseded_tag"') :]
    block = block[: block.index("\n}\n")]
    assert re.search(r'key\s*=\s*"([^"]+)"', block).group(1) == SUPERSEDED_TAG["Key"]
    assert re.search(r'value\s*=\s*"([^"]+)"', block).group(1) == SUPERSEDED_TAG["Value"]


def _sns_subscribed_queue() -> tuple[object, str]:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="payments-oncall")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return sqs, queue_url


def _received(sqs, queue_url) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_stage_whose_second_glue_publish_fails_leaves_both_partitions_unchanged(aws, s3_requests):
    """The rerun's batch index is repointed, then Glue throttles the quarantine's UpdatePartition: the
    batch index partition goes back to exactly what it was (location, run ids, previous pointer) and
    the superseded tag back to the version the rerun wrote."""
    from botocore.exceptions import ClientError

    from payments_platform.publishing import PublishError, get_publisher, publish_together

    _glue_table("batch_index")
    _glue_table("quarantine")
    publisher = get_publisher(aws)
    quarantine_root = aws.lake.quarantine_uri
    first = [
        ("batch_index", _stage_version("v1")),
        ("quarantine", _stage_version("v1", table="quarantine", root=quarantine_root)),
    ]
    publish_together(publisher, "2026-11-21", first)
    glue = publisher.hook.get_conn()

    def partition(table: str) -> dict:
        found = glue.get_partition(DatabaseName="payments", TableName=table, PartitionValues=["2026-11-21"])["Partition"]
        return {"Location": found["StorageDescriptor"]["Location"], "Parameters": found["Parameters"]}

    before = {table: partition(table) for table in ("batch_index", "quarantine")}
    rerun = [
        ("batch_index", _stage_version("v2")),
        ("quarantine", _stage_version("v2", table="quarantine", root=quarantine_root)),
    ]
    updates: list[str] = []

    def throttle_the_quarantine_once(params, **_):
        updates.append(params["TableName"])
        if params["TableName"] == "quarantine" and updates.count("quarantine") == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdatePartition")

    glue.meta.events.register("provide-client-params.glue.UpdatePartition", throttle_the_quarantine_once)
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

    original_get_conn = GlueCatalogHook.get_conn
    GlueCatalogHook.get_conn = lambda self: glue  # every hook the publisher makes sends through this client
    try:
        s3_requests.clear()
        with pytest.raises(
            PublishError, match="publishing quarantine dt=2026-11-21 failed .*Rate exceeded.*batch_index, quarantine"
        ):
            publish_together(publisher, "2026-11-21", rerun)
    finally:
        GlueCatalogHook.get_conn = original_get_conn

    assert updates == ["batch_index", "quarantine", "quarantine", "batch_index"], "repoint, fail, restore both"
    assert {table: partition(table) for table in ("batch_index", "quarantine")} == before
    v1, v2 = first[0][1], rerun[0][1]
    assert _tags(v1) == {"_quality.json": [], "part-0.parquet": []}, "what Athena reads again is not tagged"
    assert _tags(v2) == {"_quality.json": [SUPERSEDED], "part-0.parquet": [SUPERSEDED]}, "the rerun's version expires"


# --- paging: the Amazon provider's SnsNotifier (task failures, missed deadlines) ------------------

DEADLINE_SECONDS = 30 * 3600


def _deadline_alert():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_policy import DAGS_DIR

    [alert] = DagBag(dag_folder=str(DAGS_DIR / "payments_daily_index.py")).dags["payments_daily_index"].deadline
    return alert


def _run_deadline_callback(alert, dag_run: dict, deadline_time) -> list[dict]:
    """What the triggerer does with a missed deadline: the scheduler's context (the DagRun as the
    API returns it, the deadline) in the alert's callback kwargs, through Airflow's CallbackTrigger."""
    from airflow.triggers.callback import CallbackTrigger

    context = {"dag_run": dag_run, "deadline": {"id": "d1", "deadline_time": deadline_time}}
    trigger = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, "context": context})

    async def events():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(events())


def _daily_run(run_id: str, logical_date: str, queued_at: str) -> dict:
    """The DagRun as the scheduler puts it in a missed deadline's context (Deadline.handle_miss):
    the REST API's DAGRunResponse, dumped as JSON."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    return DAGRunResponse.model_validate(
        {
            "run_id": run_id,
            "dag_id": "payments_daily_index",
            "logical_date": logical_date,
            "queued_at": queued_at,
            "start_date": queued_at,
            "end_date": None,
            "duration": None,
            "data_interval_start": logical_date,
            "data_interval_end": None,
            "run_after": queued_at,
            "last_scheduling_decision": None,
            "run_type": "manual" if run_id.startswith("reprocess") else "scheduled",
            "state": "running",
            "triggered_by": None,
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "dag_versions": [],
            "bundle_version": None,
            "dag_model": {"dag_display_name": "payments_daily_index"},
            "partition_key": None,
            "partition_date": None,
        }
    ).model_dump(mode="json")


def test_a_task_failure_pages_through_the_providers_sns_notifier(aws):
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    from payments_platform.notifications import on_call_notifier

    sqs, queue_url = _sns_subscribed_queue()
    notifier = on_call_notifier(aws)
    assert isinstance(notifier, SnsNotifier)
    assert (notifier.target_arn, notifier.aws_conn_id, notifier.region_name) == (
        "arn:aws:sns:eu-west-1:123456789012:payments-oncall",
        "aws_default",
        REGION,
    )
    ti = SimpleNamespace(
        dag_id="payments_daily_index", run_id="r1", task_id="batch.build", try_number=3, log_url="http://mwaa/log"
    )
    notifier({"ti": ti, "exception": RuntimeError("spark-submit exited with 1")})  # as Airflow calls a callback
    [envelope] = _received(sqs, queue_url)
    assert envelope["Subject"] == "[CRITICAL] payments_daily_index.batch.build failed (r1)"
    message = json.loads(envelope["Message"])
    assert message["body"] == "\n".join(
        [
            "DAG: payments_daily_index",
            "Run: r1",
            "Task: batch.build",
            "Try: 3",
            "Error: spark-submit exited with 1",
            "Log: http://mwaa/log",
            "Runbook: docs/runbook.md",
        ]
    )
    assert message["details"] == {
        "dag_id": "payments_daily_index",
        "run_id": "r1",
        "task_id": "batch.build",
        "error": "spark-submit exited with 1",
    }
    assert (message["severity"], message["profile"]) == ("critical", "aws")
    assert envelope["MessageAttributes"]["severity"] == {"Type": "String", "Value": "critical"}


def test_the_daily_deadline_reads_its_interval_from_a_variable(aws):
    from airflow.sdk.definitions.deadline import VariableInterval

    alert = _deadline_alert()
    assert alert.interval == VariableInterval("payments_daily_deadline_seconds")
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.callback.path == "payments_platform.notifications.OnCallSnsNotifier"
    assert alert.callback.kwargs["target_arn"] == "arn:aws:sns:eu-west-1:123456789012:payments-oncall"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_VAR_PAYMENTS_DAILY_DEADLINE_SECONDS", str(DEADLINE_SECONDS))
        assert alert.interval.resolve() == timedelta(hours=30)
    import yaml

    from payments_platform.profiles import PROJECT_ROOT

    settings = yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["variables"]
    assert {v["variable_name"]: v["variable_value"] for v in settings}["payments_daily_deadline_seconds"] == str(DEADLINE_SECONDS)


def test_a_missed_deadline_pages_through_sns_from_the_triggerer(aws):
    sqs, queue_url = _sns_subscribed_queue()
    alert = _deadline_alert()
    run = _daily_run("scheduled__2026-11-21T00:00:00+00:00", "2026-11-21T00:00:00Z", "2026-11-22T00:00:04Z")
    events = _run_deadline_callback(alert, run, datetime(2026, 11, 22, 6, tzinfo=UTC))
    assert [event["state"] for event in events] == ["running", "success"]
    [envelope] = _received(sqs, queue_url)
    assert envelope["Subject"] == "[CRITICAL] payments_daily_index missed its deadline (scheduled__2026-11-21T00:00:00+00:00)"
    message = json.loads(envelope["Message"])
    assert message["body"].startswith(
        "DAG run payments_daily_index / scheduled__2026-11-21T00:00:00+00:00 has not finished by "
        "payments_daily_deadline_seconds after the start of the day (2026-11-22T06:00+00:00)."
    )
    assert message["details"]["deadline_time"] == "2026-11-22T06:00:00+00:00"


def test_a_backdated_reprocessing_run_does_not_page_for_a_deadline_past_before_it_started(aws):
    """payments_reprocess triggers a run of an old day: its deadline (day + 30 h) was past when the run
    was queued; the scheduler reports it missed at once, and the notifier sends nothing."""
    sqs, queue_url = _sns_subscribed_queue()
    alert = _deadline_alert()
    run = _daily_run("reprocess__2026-11-10__manual", "2026-11-10T00:00:00Z", "2026-11-21T09:15:00Z")
    events = _run_deadline_callback(alert, run, datetime(2026, 11, 11, 6, tzinfo=UTC))
    assert [event["state"] for event in events] == ["running", "success"]
    assert _received(sqs, queue_url) == []
    # The same run still pages for a deadline it really misses (one not yet past when it was queued).
    _run_deadline_callback(alert, run, datetime(2026, 11, 21, 15, tzinfo=UTC))
    [envelope] = _received(sqs, queue_url)
    assert envelope["Subject"] == "[CRITICAL] payments_daily_index missed its deadline (reprocess__2026-11-10__manual)"


def test_the_local_profile_pages_into_its_log_file(tmp_path):
    from payments_platform.notifications import LogFileNotifier, on_call_notifier, page_on_call
    from payments_platform.profiles import load_profile

    profile = load_profile("local")
    notifier = on_call_notifier(profile)
    assert isinstance(notifier, LogFileNotifier) and notifier.log_path == profile.notifier.log_path
    log_path = tmp_path / "oncall.log"
    LogFileNotifier(log_path=str(log_path))({"dag": None, "run_id": "manual__1", "reason": "task_failure"})
    page_on_call(
        "stream down",
        "restart it",
        profile=profile.model_copy(update={"notifier": profile.notifier.model_copy(update={"log_path": str(log_path)})}),
    )
    pages = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(page["subject"], page["profile"]) for page in pages] == [
        ("? failed (manual__1)", "local"),
        ("stream down", "local"),
    ]


def test_the_scheduler_dates_a_backdated_runs_deadline_in_the_past_and_nobody_is_paged(aws, monkeypatch):
    """The real path in a private Airflow home: the DAG serialized to the database, a run of an old day
    created as payments_reprocess's trigger creates it (the scheduler resolves the VariableInterval
    then), the deadline it records (the day + 30 h, long past), the miss handled by Airflow
    (Deadline.handle_miss: the callback and its context) and the callback run as the triggerer does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.models.deadline import Deadline
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    from tests.dags.test_dag_policy import DAGS_DIR

    monkeypatch.setenv("AIRFLOW_VAR_PAYMENTS_DAILY_DEADLINE_SECONDS", str(DEADLINE_SECONDS))
    sqs, queue_url = _sns_subscribed_queue()
    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(DAGS_DIR / "payments_daily_index.py"), bundle_path=DAGS_DIR, bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)

    def missed_deadline_callback(day: datetime, run_id: str, past_when_queued: bool) -> dict:
        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag("payments_daily_index", session=session)
            run = dag.create_dagrun(
                run_id=run_id,
                logical_date=day,
                data_interval=(day, day + timedelta(days=1)),
                run_after=datetime.now(UTC),
                conf={"date": day.date().isoformat()},
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.OPERATOR,
                state=DagRunState.QUEUED,
                session=session,
            )
            session.flush()
            [deadline] = session.scalars(select(Deadline).where(Deadline.dagrun_id == run.id)).all()
            assert deadline.deadline_time == day + timedelta(hours=30), "the logical date + the Variable's seconds"
            assert (deadline.deadline_time < run.queued_at) == past_when_queued
            deadline.handle_miss(session)  # what the scheduler does once the deadline has passed
            data = dict(deadline.callback.data)
            session.rollback()
        assert data["path"] == "payments_platform.notifications.OnCallSnsNotifier"
        return data

    async def triggerer(data: dict) -> list[dict]:
        return [event.payload async for event in CallbackTrigger(data["path"], dict(data["kwargs"])).run()]

    backdated = missed_deadline_callback(
        datetime(2026, 11, 10, tzinfo=UTC), f"reprocess__2026-11-10__{uuid.uuid4().hex[:8]}", True
    )
    assert [event["state"] for event in asyncio.run(triggerer(backdated))] == ["running", "success"]
    assert _received(sqs, queue_url) == [], "no page for a deadline past before the run started"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    current = missed_deadline_callback(today, f"manual__{uuid.uuid4().hex[:8]}", False)
    assert [event["state"] for event in asyncio.run(triggerer(current))] == ["running", "success"]
    [envelope] = _received(sqs, queue_url)
    assert envelope["Subject"].startswith("[CRITICAL] payments_daily_index missed its deadline (manual__")
