"""The stream job on EMR on EKS against moto: every setting passed as an argument (the pod has no
PAYMENTS_PROFILE), metrics publishing by option, and a restart that waits for the cancelled run."""

from __future__ import annotations

import pytest

from tests.aws.helpers import capture, virtual_cluster

INGEST = "arn:aws:iam::123456789012:role/payments-emr-ingest"


@pytest.fixture
def cluster(aws):
    cluster_id = virtual_cluster()
    return aws.model_copy(update={"spark": aws.spark.model_copy(update={"virtual_cluster_id": cluster_id})})


@pytest.fixture
def controller(cluster):
    from payments_platform.stream_control import EmrStreamController

    return EmrStreamController(cluster, stop_timeout_s=5, poll_s=0)


# What the job needs from the aws profile, as the supervisor passes it (option -> value).
EXPECTED_ARGUMENTS = {
    "--bootstrap": "b-1.payments.kafka.eu-west-1.amazonaws.com:9098",
    "--security": "iam",
    "--region": "eu-west-1",
    "--transactions-topic": "payments.transactions",
    "--fraud-signals-topic": "payments.fraud-signals",
    "--alerts-topic": "payments.fraud-alerts",
    "--dead-letter-topic": "payments.dead-letter",
    "--index-uri": "s3://payments-processed-test/indexes",
    "--checkpoint-uri": "s3://payments-checkpoints-test/checkpoints",
    "--metrics-uri": "s3://payments-processed-test/metrics",
    "--raw-uri": "s3://payments-raw-test/raw",
    "--token-key-ref": "secretsmanager:payments/pan-token-key",
    "--query-name": "stream_index",
    "--state-partitions": "12",
    "--publish-metrics": "cloudwatch",
}


def test_the_supervisor_passes_every_setting_and_the_job_builds_the_aws_options_from_them_alone(controller, monkeypatch):
    starts = capture(controller.hook.conn, "StartJobRun")
    controller.start()
    [request] = starts
    assert request["executionRoleArn"] == INGEST
    arguments = request["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"]
    assert all(argument.startswith("--") for argument in arguments[::2]), "option value pairs only"
    passed = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert {option: passed.get(option) for option in EXPECTED_ARGUMENTS} == EXPECTED_ARGUMENTS
    assert "--allow-data-loss" not in arguments, "the supervisor never lets the job skip lost offsets"

    # In the pod: no PAYMENTS_PROFILE, no profile variables; reading a profile at all is a failure.
    import payments_platform.profiles as profiles
    from spark_apps.jobs import stream_index
    from spark_apps.jobs.stream_index import (
        STREAM_SESSION_CONF,
        kafka_source_options,
        options_from_args,
        parse_args,
        session_settings,
    )

    for name in ("PAYMENTS_PROFILE", "AWS_REGION", "PAYMENTS_MSK_BOOTSTRAP_BROKERS", "PAYMENTS_RAW_BUCKET"):
        monkeypatch.delenv(name, raising=False)

    def no_profile():
        raise AssertionError("the stream job read a runtime profile")

    monkeypatch.setattr(profiles, "get_profile", no_profile)
    args = parse_args(arguments)
    options = options_from_args(args)
    assert (options.bootstrap, options.security, options.region) == (
        "b-1.payments.kafka.eu-west-1.amazonaws.com:9098",
        "iam",
        "eu-west-1",
    )
    assert (options.raw_uri, options.index_uri, options.checkpoint_uri, options.metrics_uri) == (
        "s3://payments-raw-test/raw",
        "s3://payments-processed-test/indexes",
        "s3://payments-checkpoints-test/checkpoints",
        "s3://payments-processed-test/metrics",
    )
    assert (options.transactions_topic, options.alerts_topic) == ("payments.transactions", "payments.fraud-alerts")
    assert options.publish_metrics == "cloudwatch" and options.fail_on_data_loss is True
    assert kafka_source_options(options, options.transactions_topic)["kafka.sasl.mechanism"] == "AWS_MSK_IAM"
    assert kafka_source_options(options, options.transactions_topic)["failOnDataLoss"] == "true"
    # No master of its own (spark-submit's on EMR) and no local profile's settings: 12 state partitions.
    assert session_settings(args) == (None, {**STREAM_SESSION_CONF, "spark.sql.shuffle.partitions": "12"})
    assert stream_index.REQUIRED_OPTIONS  # every one of them is in the arguments above
    assert all(f"--{name.replace('_', '-')}" in arguments for name in stream_index.REQUIRED_OPTIONS)


def test_metrics_go_to_cloudwatch_only_when_the_option_says_so(monkeypatch, tmp_path):
    """The job's publishers follow --publish-metrics, not the profile's name."""
    from spark_apps.jobs import stream_index

    built = []
    monkeypatch.setattr(
        stream_index, "run_until_stopped", lambda spark, options, key, rules, publishers: built.append(publishers)
    )
    monkeypatch.setattr("spark_apps.session.build_session", lambda *args, **kwargs: type("S", (), {"stop": lambda self: None})())
    base = [
        "--bootstrap", "127.0.0.1:9092", "--security", "plaintext",
        "--transactions-topic", "t", "--fraud-signals-topic", "s", "--alerts-topic", "a", "--dead-letter-topic", "d",
        "--raw-uri", str(tmp_path), "--index-uri", str(tmp_path), "--checkpoint-uri", str(tmp_path),
        "--metrics-uri", str(tmp_path), "--token-key-ref", "env:PAYMENTS_PAN_TOKEN_KEY", "--state-partitions", "1",
    ]  # fmt: skip
    monkeypatch.setenv("PAYMENTS_PROFILE", "aws")  # the profile's name no longer switches it on
    assert stream_index.main(base) == 0
    assert stream_index.main([*base, "--publish-metrics", "cloudwatch", "--region", "eu-west-1"]) == 0
    assert [[type(p).__name__ for p in publishers] for publishers in built] == [[], ["CloudWatchPublisher"]]
    with pytest.raises(SystemExit, match="needs --region"):
        stream_index.main([*base, "--publish-metrics", "cloudwatch"])


# --- restart on EMR: the cancelled run ends before a new one starts ------------------------------


@pytest.fixture
def slow_cancel(monkeypatch):
    """EMR's cancel takes a while: CancelJobRun leaves the run CANCEL_PENDING; it turns CANCELLED on the
    ``after``-th DescribeJobRun (never when ``after`` is None)."""
    import moto.emrcontainers.models as models

    settings = {"after": 2}
    describes: dict[str, int] = {}
    original_cancel, original_describe = models.EMRContainersBackend.cancel_job_run, models.EMRContainersBackend.describe_job_run

    def cancel_job_run(self, job_run_id, virtual_cluster_id):
        job_run = original_cancel(self, job_run_id, virtual_cluster_id)
        job_run.state = "CANCEL_PENDING"
        return job_run

    def describe_job_run(self, job_run_id, virtual_cluster_id):
        job_run = original_describe(self, job_run_id, virtual_cluster_id)
        if job_run.state == "CANCEL_PENDING":
            describes[job_run_id] = describes.get(job_run_id, 0) + 1
            if settings["after"] is not None and describes[job_run_id] >= settings["after"]:
                job_run.state = "CANCELLED"
        return job_run

    monkeypatch.setattr(models.EMRContainersBackend, "cancel_job_run", cancel_job_run)
    monkeypatch.setattr(models.EMRContainersBackend, "describe_job_run", describe_job_run)
    return settings


def request_log(client) -> list[tuple]:
    """(operation, job id, state) of every EMR request in order (states as EMR answered)."""
    log: list[tuple] = []

    def record(http_response, parsed, model, **_):
        run = parsed.get("jobRun") or {}
        log.append((model.name, parsed.get("id") or run.get("id"), run.get("state")))

    client.meta.events.register("after-call.emr-containers.*", record)
    return log


def test_a_restart_waits_until_the_cancelled_run_has_ended(controller, slow_cancel):
    first = controller.start().reference
    log = request_log(controller.hook.conn)
    stopped = controller.stop()
    second = controller.start().reference

    assert stopped.detail == f"{first} CANCELLED"
    calls = [(operation, job_id, state) for operation, job_id, state in log if operation != "ListJobRuns"]
    assert calls == [
        ("CancelJobRun", first, None),
        ("DescribeJobRun", first, "CANCEL_PENDING"),
        ("DescribeJobRun", first, "CANCELLED"),
        ("StartJobRun", second, None),
    ], "the new run starts only after EMR says the old one ended"


def test_a_run_that_never_ends_blocks_the_start(controller, slow_cancel):
    from payments_platform.stream_control import StreamStopTimeout

    slow_cancel["after"] = None
    first = controller.start().reference
    starts = capture(controller.hook.conn, "StartJobRun")
    with pytest.raises(StreamStopTimeout, match=f"{first} still not ended"):
        controller.stop()
    with pytest.raises(StreamStopTimeout, match=f"{first} still not ended"):
        controller.start()  # nothing active, but one run is still being cancelled: no second run
    assert starts == []
