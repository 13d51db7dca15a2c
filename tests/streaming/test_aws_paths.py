"""aws-profile paths of the stream: MSK IAM client settings and CloudWatch metrics (moto)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from spark_apps.kafka.security import client_config, msk_iam_oauth_token, spark_kafka_options
from spark_apps.streaming.cloudwatch import (
    CLOUDWATCH_METRICS,
    CLOUDWATCH_NAMESPACE,
    CloudWatchPublisher,
    cloudwatch_metric_data,
)
from spark_apps.streaming.metrics import progress_record
from tests.streaming.test_stream_parts import PROGRESS


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_plaintext_config_is_just_the_bootstrap():
    assert client_config("127.0.0.1:9092") == {"bootstrap.servers": "127.0.0.1:9092"}


def test_spark_kafka_options_for_msk_iam_name_the_auth_jars_classes():
    """Spark's source and writer on MSK: SASL_SSL + AWS_MSK_IAM through aws-msk-iam-auth (a jar of the manifest)."""
    assert spark_kafka_options("b-1.msk:9098,b-2.msk:9098", "iam") == {
        "kafka.bootstrap.servers": "b-1.msk:9098,b-2.msk:9098",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "AWS_MSK_IAM",
        "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "kafka.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
    }
    assert spark_kafka_options("127.0.0.1:9092") == {"kafka.bootstrap.servers": "127.0.0.1:9092"}


def test_iam_classes_are_in_the_manifest_jars():
    """The class names above exist in the jars setup resolved (the image carries the same module)."""
    import zipfile

    from spark_apps.jvm import module_jars

    classes = set()
    for jar in module_jars("spark"):
        with zipfile.ZipFile(jar) as archive:
            classes.update(archive.namelist())
    for name in ("software.amazon.msk.auth.iam.IAMLoginModule", "software.amazon.msk.auth.iam.IAMClientCallbackHandler"):
        assert name.replace(".", "/") + ".class" in classes
    assert "org/apache/spark/sql/kafka010/KafkaSourceProvider.class" in classes


def test_iam_config_uses_sasl_oauthbearer_with_a_signed_connect_token(aws_env):
    config = client_config("b-1.msk:9098", "iam", "eu-west-1")
    assert (config["security.protocol"], config["sasl.mechanisms"]) == ("SASL_SSL", "OAUTHBEARER")
    token, expiry = config["oauth_cb"]("")
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert (
        query["X-Amz-Credential"][0].startswith("AKIAEXAMPLE/")
        and "/eu-west-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    )
    assert query["X-Amz-Expires"] == ["900"] and "X-Amz-Signature" in query
    assert expiry > 1_000_000_000 and msk_iam_oauth_token("eu-west-1")[0] != ""  # epoch seconds, not ms


def test_iam_needs_a_region_and_unknown_modes_fail():
    with pytest.raises(ValueError, match="region"):
        client_config("b:9098", "iam")
    with pytest.raises(ValueError, match="security"):
        client_config("b:9098", "sasl_plain")


def test_cloudwatch_publisher_puts_exactly_what_the_alarms_read(aws_env):
    """FreshnessSeconds / ConsumerLag / QuarantineRate / ConservationViolations in Payments/Streaming, no
    dimensions, the alarms' units (tests/infra/test_terraform_wiring.py checks the alarms against the same
    definition)."""
    import datetime as dt

    import boto3
    from moto import mock_aws

    now = dt.datetime(2026, 11, 21, 10, 0, 5, tzinfo=dt.UTC)
    progress = {**PROGRESS, "eventTime": {**PROGRESS["eventTime"], "max": "2026-11-21T10:00:00.000Z"}}
    # 7 transactions read: 4 indexed, 3 dead letters: the batch conserves (0 violations).
    stats = {"index_rows": 4, "duplicates": 0, "dead_letters": 3, "dead_letters_by_topic": {"tx": 3}}
    record = progress_record(progress, dead_letters=3, stats=stats, input_topics={"transactions": "tx", "signals": "sig"})
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        publisher = CloudWatchPublisher("eu-west-1", client=client, clock=lambda: now)
        publisher(record)
        metrics = client.list_metrics(Namespace=CLOUDWATCH_NAMESPACE)["Metrics"]
        assert CLOUDWATCH_NAMESPACE == "Payments/Streaming"
        assert (
            sorted(m["MetricName"] for m in metrics)
            == sorted(CLOUDWATCH_METRICS)
            == [
                "ConservationViolations",
                "ConsumerLag",
                "FreshnessSeconds",
                "QuarantineRate",
            ]
        )
        assert all(m["Dimensions"] == [] for m in metrics)  # the alarms set no dimensions

        def read(name):  # what an alarm without dimensions sees
            stats = client.get_metric_statistics(
                Namespace=CLOUDWATCH_NAMESPACE,
                MetricName=name,
                StartTime=now - dt.timedelta(minutes=5),
                EndTime=now + dt.timedelta(minutes=5),
                Period=60,
                Statistics=["Maximum"],
                Unit=CLOUDWATCH_METRICS[name],
            )
            return [(p["Maximum"], p["Unit"]) for p in stats["Datapoints"]]

        assert read("FreshnessSeconds") == [(5.0, "Seconds")]
        assert read("ConsumerLag") == [(3.0, "Count")]
        [(rate, unit)] = read("QuarantineRate")  # 3 of the batch's 7 records (offsets 5-9 and 0-3)
        assert rate == pytest.approx(3 / 7) and unit == "None"
        assert read("ConservationViolations") == [(0.0, "Count")]


def test_metric_data_of_an_empty_batch_and_of_an_idle_heartbeat():
    import datetime as dt

    now = dt.datetime(2026, 11, 21, 10, 1, 0, tzinfo=dt.UTC)
    empty = progress_record(
        {**PROGRESS, "numInputRows": 0, "sources": []}, dead_letters=0, newest_produced_at="2026-11-21T10:00:00Z"
    )
    data = {d["MetricName"]: d for d in cloudwatch_metric_data(empty, now)}
    assert set(data) == {"FreshnessSeconds", "ConsumerLag"}  # no rate without input
    assert data["FreshnessSeconds"]["Value"] == 60.0 and data["ConsumerLag"]["Value"] == 0.0
    assert cloudwatch_metric_data({"lag_total": 0}, now) == [
        {"MetricName": "ConsumerLag", "Dimensions": [], "Value": 0.0, "Unit": "Count", "Timestamp": now}
    ]


def test_the_aws_profile_reads_and_writes_msk_with_iam(aws_profile_env, monkeypatch, tmp_path):
    """What the stream job builds from the aws profile alone (as on EMR): Spark's source on MSK's IAM
    listener with aws-msk-iam-auth, failing on lost offsets, in the groups the IAM policy allows; the
    alert / dead-letter producer on OAUTHBEARER with AWS's signer, idempotent."""
    from payments_platform.profiles import load_profile
    from payments_platform.stream_control import stream_job
    from spark_apps.jobs.stream_index import CONSUMER_GROUP_PREFIX, kafka_source_options, options_from_args, parse_args
    from spark_apps.kafka.sink import BatchKafkaSink

    load_profile.cache_clear()
    try:
        options = options_from_args(parse_args(stream_job(load_profile("aws")).arguments))
    finally:
        load_profile.cache_clear()
    assert (options.bootstrap, options.security, options.region) == (
        aws_profile_env["PAYMENTS_MSK_BOOTSTRAP_BROKERS"],
        "iam",
        "eu-west-1",
    )
    assert kafka_source_options(options, options.transactions_topic) == {
        "kafka.bootstrap.servers": "b-1.payments.kafka.eu-west-1.amazonaws.com:9098",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "AWS_MSK_IAM",
        "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "kafka.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        "subscribe": "payments.transactions",
        "startingOffsets": "earliest",
        "failOnDataLoss": "true",
        "groupIdPrefix": CONSUMER_GROUP_PREFIX,
        "includeHeaders": "false",
        "maxOffsetsPerTrigger": "20000",
        "kafka.fetch.max.wait.ms": "10",  # a batch's read does not wait on the consumer's previous fetch
    }
    sink = BatchKafkaSink(options.bootstrap, str(tmp_path / "_sent"), options.security, options.region)
    config = sink.producer_config()
    assert {k: config[k] for k in ("security.protocol", "sasl.mechanisms", "enable.idempotence", "acks")} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "OAUTHBEARER",
        "enable.idempotence": True,
        "acks": "all",
    }
    assert callable(config["oauth_cb"])
