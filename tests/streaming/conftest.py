"""Fixtures for the streaming tests (the Kafka broker fixtures are in tests/conftest.py)."""

from __future__ import annotations

import itertools
import urllib.parse

import pytest

_topic_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 behind a real HTTP endpoint on a free loopback port, for pyarrow's S3 client (it
    cannot use moto's in-process mock). Yields (endpoint URL, the requests it served as
    ``"METHOD /bucket/key STATUS"``, without query strings but multipart upload steps)."""
    from moto.server import MotoRequestHandler, ThreadedMotoServer

    served: list[str] = []
    original = MotoRequestHandler.log_request

    def record(handler, code="-", size="-"):
        path, _, query = handler.path.partition("?")
        path = urllib.parse.unquote(path)
        step = next((s for s in ("uploads", "partNumber", "uploadId") if s in query), "")
        served.append(" ".join(p for p in (handler.command, path, step, str(getattr(code, "value", code))) if p))

    MotoRequestHandler.log_request = record
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}", served
    finally:
        server.stop()
        MotoRequestHandler.log_request = original


@pytest.fixture
def s3_lake(s3_server, monkeypatch, request):
    """A fresh bucket on :func:`s3_server` with the AWS environment pointed at it. Returns
    (``s3://bucket``, the request list, emptied after the bucket is made)."""
    import boto3

    endpoint, served = s3_server
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"lake-{next(_topic_counter)}"
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    served.clear()
    return f"s3://{bucket}", served
