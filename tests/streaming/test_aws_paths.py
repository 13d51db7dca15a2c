"""aws-profile paths of the stream: MSK IAM client settings and CloudWatch metrics (moto)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from spark_apps.kafka.security import client_config, msk_iam_token
from spark_apps.streaming.metrics import CloudWatchPublisher, progress_record
from tests.streaming.test_stream_parts import PROGRESS


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_plaintext_config_is_just_the_bootstrap():
    assert client_config("127.0.0.1:9092") == {"bootstrap.servers": "127.0.0.1:9092"}


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
    assert expiry > 0 and msk_iam_token("eu-west-1")[0] != ""


def test_iam_needs_a_region_and_unknown_modes_fail():
    with pytest.raises(ValueError, match="region"):
        client_config("b:9098", "iam")
    with pytest.raises(ValueError, match="security"):
        client_config("b:9098", "sasl_plain")


def test_cloudwatch_publisher_puts_the_headline_metrics(aws_env):
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        CloudWatchPublisher("eu-west-1", client=client)(progress_record(PROGRESS, {"tx": {"0": 4}}))
        metrics = client.list_metrics(Namespace="Payments/StreamIndex")["Metrics"]
        names = sorted(m["MetricName"] for m in metrics)
        assert names == sorted(
            [
                "InputRowsPerSecond",
                "ProcessedRowsPerSecond",
                "BatchDurationMs",
                "StateRows",
                "StateMemoryBytes",
                "LagRecords",
                "DuplicatesDropped",
            ]
        )
        assert all(m["Dimensions"] == [{"Name": "Query", "Value": "stream_index"}] for m in metrics)
        stats = client.get_metric_statistics(
            Namespace="Payments/StreamIndex",
            MetricName="LagRecords",
            Dimensions=[{"Name": "Query", "Value": "stream_index"}],
            StartTime="2000-01-01T00:00:00Z",
            EndTime="2100-01-01T00:00:00Z",
            Period=60,
            Statistics=["Maximum"],
        )
        assert [p["Maximum"] for p in stats["Datapoints"]] == [4.0]
