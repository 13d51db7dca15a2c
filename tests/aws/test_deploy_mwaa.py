"""scripts/deploy.py: no upload when nothing changed (moto S3), and the Airflow pools created on MWAA
through InvokeRestApi (moto has no MWAA: botocore's Stubber checks each exact request)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts import deploy
from tests.infra.test_deploy import BUCKET, REGION, STARTUP_ENVIRONMENT
from tests.infra.test_deploy import project as project  # the small project tree (a fixture)

ENVIRONMENT = "payments-dev"


@pytest.fixture
def artifacts(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key_arn = boto3.client("kms", region_name=REGION).create_key(Description="artifacts")["KeyMetadata"]["Arn"]
        yield s3, key_arn


def puts(s3) -> list[str]:
    keys: list[str] = []
    s3.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: keys.append(params["Key"]))
    return keys


def deploy_args(project: Path, key_arn: str, *extra: str) -> list[str]:
    return ["--bucket", BUCKET, "--kms-key-id", key_arn, "--project-root", str(project), *extra]


def write_outputs(tmp_path: Path, **outputs) -> Path:
    path = tmp_path / "outputs.json"
    document = {"mwaa_startup_environment": STARTUP_ENVIRONMENT, **outputs}
    path.write_text(json.dumps({name: {"value": value} for name, value in document.items()}))
    return path


def test_a_second_deploy_of_an_unchanged_tree_uploads_nothing(project, artifacts, tmp_path):
    s3, key_arn = artifacts
    outputs = write_outputs(tmp_path)
    first = deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3)
    sent = puts(s3)
    second = deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3)

    assert sent == [], "no PutObject when nothing changed"
    assert second["unchanged"] == sorted(first["objects"])
    assert second["artifact_versions"] == first["artifact_versions"], "MWAA stays pinned to the same versions"
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="plugins.zip")["Versions"]
    assert len(versions) == 1

    (project / "dags" / "payments_daily.py").write_text("# dag, changed\n")
    third = deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3)
    assert sent == ["dags/payments_daily.py"], "only what changed"
    assert third["artifact_versions"] == first["artifact_versions"], "plugins, requirements, startup untouched"
    head = s3.head_object(Bucket=BUCKET, Key="dags/payments_daily.py")
    assert head["Metadata"] == {"sha256": deploy.hashlib.sha256(b"# dag, changed\n").hexdigest()}


def test_an_object_under_another_key_or_without_the_digest_is_uploaded_again(project, artifacts, tmp_path):
    s3, key_arn = artifacts
    outputs = write_outputs(tmp_path)
    deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3)
    # Someone uploaded requirements.txt by hand (same bytes, no digest); and a new artifacts key.
    body = (project / "requirements.txt").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    sent = puts(s3)
    deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3)
    assert sent == ["requirements.txt"]

    new_key = boto3.client("kms", region_name=REGION).create_key(Description="rotated")["KeyMetadata"]["Arn"]
    sent.clear()
    report = deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, new_key)], s3=s3)
    assert sorted(sent) == sorted(report["objects"]) and report["unchanged"] == [], "re-encrypted under the new key"


# --- pools on MWAA -------------------------------------------------------------------------------

POOLS = {
    "quality_gate": {"slots": 6, "description": "Quality gate verifications at once (each an EMR on EKS Spark job)"},
    "spark_jobs": {
        "slots": 12,
        "description": "EMR on EKS Spark jobs of the daily pipeline at once (the virtual cluster scales out under them)",
    },
}


def rest(method: str, path: str, body: dict | None = None) -> dict:
    request = {"Name": ENVIRONMENT, "Method": method, "Path": path}
    return request | ({"Body": body} if body is not None else {})


def test_the_profile_pools_are_the_ones_deployed():
    from payments_platform.profiles import PROJECT_ROOT

    assert deploy.profile_pools(PROJECT_ROOT) == POOLS


def test_deploy_creates_missing_pools_and_updates_changed_ones_on_mwaa(project, artifacts, tmp_path):
    s3, key_arn = artifacts
    (project / "include" / "profiles" / "aws.yaml").write_text(
        (deploy.PROJECT_ROOT / "include" / "profiles" / "aws.yaml").read_text()
    )
    mwaa = boto3.client("mwaa", region_name=REGION)
    wanted = {name: {**pool, "include_deferred": False} for name, pool in POOLS.items()}
    with Stubber(mwaa) as stub:
        # quality_gate: missing -> POST /pools
        stub.add_client_error(
            "invoke_rest_api",
            service_error_code="RestApiClientException",
            http_status_code=400,
            modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"detail": "Pool not found"}},
            expected_params=rest("GET", "/pools/quality_gate"),
        )
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 201, "RestApiResponse": {"name": "quality_gate"}},
            rest("POST", "/pools", {"name": "quality_gate", **wanted["quality_gate"]}),
        )
        # spark_jobs: exists with 1 slot (made by hand) -> PATCH /pools/spark_jobs
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"name": "spark_jobs", "slots": 1, "description": "x"}},
            rest("GET", "/pools/spark_jobs"),
        )
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"name": "spark_jobs", "slots": 12}},
            rest("PATCH", "/pools/spark_jobs", {"name": "spark_jobs", **wanted["spark_jobs"]}),
        )
        outputs = write_outputs(tmp_path, mwaa_environment_name=ENVIRONMENT)
        report = deploy.main(["--terraform-outputs", str(outputs), *deploy_args(project, key_arn)], s3=s3, mwaa=mwaa)
        stub.assert_no_pending_responses()
    assert report["pools"] == {"quality_gate": "created", "spark_jobs": "updated"}


def test_pools_as_wanted_are_left_alone_and_an_api_error_fails_the_deploy():
    mwaa = boto3.client("mwaa", region_name=REGION)
    with Stubber(mwaa) as stub:
        for name, pool in sorted(POOLS.items()):
            answer = {"name": name, **pool, "include_deferred": False, "occupied_slots": 2}
            stub.add_response(
                "invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": answer}, rest("GET", f"/pools/{name}")
            )
        assert deploy.ensure_pools(mwaa, ENVIRONMENT, POOLS) == {"quality_gate": "unchanged", "spark_jobs": "unchanged"}
        stub.assert_no_pending_responses()
    with Stubber(mwaa) as stub:
        stub.add_client_error(
            "invoke_rest_api",
            service_error_code="RestApiClientException",
            http_status_code=400,
            modeled_fields={"RestApiStatusCode": 403, "RestApiResponse": {"detail": "Forbidden"}},
            expected_params=rest("GET", "/pools/quality_gate"),
        )
        with pytest.raises(deploy.DeployError, match="pool quality_gate on MWAA environment payments-dev: .* answered 403"):
            deploy.ensure_pools(mwaa, ENVIRONMENT, POOLS)


def test_without_an_environment_no_pool_request_is_made(project, artifacts, tmp_path):
    s3, key_arn = artifacts
    mwaa = boto3.client("mwaa", region_name=REGION)
    with Stubber(mwaa):  # any request would fail: none is stubbed
        report = deploy.main(
            ["--terraform-outputs", str(write_outputs(tmp_path)), *deploy_args(project, key_arn)], s3=s3, mwaa=mwaa
        )
    assert "pools" not in report
