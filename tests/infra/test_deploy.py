"""scripts/deploy.py against moto S3 (+ KMS): exact keys, SSE-KMS, reported versions,
pruning, and the rendered MWAA startup script (run with bash)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from scripts import deploy

REGION = "eu-west-1"
BUCKET = "payments-dev-artifacts-123456789012-eu-west-1"
REPO = Path(__file__).resolve().parents[2]

STARTUP_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "PAYMENTS_PROFILE": "aws",
    "PAYMENTS_RAW_BUCKET": "payments-dev-raw",
    "PAYMENTS_PROCESSED_BUCKET": "payments-dev-processed",
    "PAYMENTS_QUARANTINE_BUCKET": "payments-dev-quarantine",
    "PAYMENTS_CHECKPOINT_BUCKET": "payments-dev-checkpoints",
    "PAYMENTS_ARTIFACTS_BUCKET": BUCKET,
    "PAYMENTS_LOGS_BUCKET": "payments-dev-logs",
    "PAYMENTS_EMR_VIRTUAL_CLUSTER_ID": "abcdefghijklmnopqrstuvwxy",
    "PAYMENTS_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/payments-dev-emr-ingest",
    "PAYMENTS_EMR_TRANSFORM_ROLE_ARN": "arn:aws:iam::123456789012:role/payments-dev-emr-transform",
    "PAYMENTS_SPARK_IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-dev/spark:0.1.0",
    "PAYMENTS_MSK_BOOTSTRAP_BROKERS": "b-1.msk:9098,b-2.msk:9098,b-3.msk:9098",
    "PAYMENTS_ONCALL_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:payments-dev-oncall",
}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def project(tmp_path) -> Path:
    """A small project tree with the real profile, requirements and startup script."""
    root = tmp_path / "project"
    _write(root / "dags" / "payments_daily.py", "# dag\n")
    _write(root / "dags" / "common" / "helpers.py", "# helper\n")
    _write(root / "dags" / "__pycache__" / "payments_daily.cpython-311.pyc", "bytecode")
    _write(root / "plugins" / "payments_platform" / "__init__.py", "")
    _write(root / "plugins" / "payments_platform" / "profiles.py", "# profiles\n")
    _write(root / "plugins" / "payments_platform" / "__pycache__" / "profiles.cpython-311.pyc", "bytecode")
    _write(root / "spark_apps" / "__init__.py", "")
    _write(root / "spark_apps" / "schemas.py", "# schemas\n")
    _write(root / "spark_apps" / "jobs" / "__init__.py", "")
    _write(root / "spark_apps" / "jobs" / "batch_index.py", "# job\n")
    _write(root / "spark_apps" / "jobs" / "stream_index.py", "# job\n")
    _write(root / "include" / "contracts" / "batch_index.yaml", "dataset: batch_index\n")
    _write(root / "include" / "config" / "indexes.yaml", "indexes: []\n")
    _write(root / "include" / "sql" / "tables.json", "{}\n")
    _write(root / "include" / "notes" / "scratch.txt", "not deployed\n")
    (root / "include" / "profiles").mkdir(parents=True)
    shutil.copy(REPO / "include" / "profiles" / "aws.yaml", root / "include" / "profiles" / "aws.yaml")
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    _write(root / "constraints.txt", "apache-airflow==3.3.1\npyspark==4.0.2\n")  # the local lock: not uploaded
    _write(root / "constraints-mwaa.txt", "apache-airflow==3.3.1\n")
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "mwaa_startup.sh", root / "scripts" / "mwaa_startup.sh")
    return root


EXPECTED_KEYS = {
    "dags/payments_daily.py",
    "dags/common/helpers.py",
    "dags/constraints.txt",
    "dags/include/contracts/batch_index.yaml",
    "dags/include/config/indexes.yaml",
    "dags/include/profiles/aws.yaml",
    "dags/include/sql/tables.json",
    "plugins.zip",
    "requirements.txt",
    "startup.sh",
    "spark_apps/spark_apps.zip",
    "spark_apps/jobs/batch_index.py",
    "spark_apps/jobs/stream_index.py",
    "include/contracts/batch_index.yaml",
    "include/config/indexes.yaml",
    "include/profiles/aws.yaml",
    "include/sql/tables.json",
}


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key_arn = boto3.client("kms", region_name=REGION).create_key(Description="artifacts")["KeyMetadata"]["Arn"]
        yield s3, key_arn


@pytest.fixture
def outputs_file(tmp_path, aws) -> Path:
    """`terraform output -json` as Terraform writes it."""
    _, key_arn = aws
    path = tmp_path / "outputs.json"
    document = {
        "artifacts_bucket": {"sensitive": False, "type": "string", "value": BUCKET},
        "artifacts_kms_key_arn": {"sensitive": False, "type": "string", "value": key_arn},
        "mwaa_startup_environment": {"sensitive": False, "type": ["object", {}], "value": STARTUP_ENVIRONMENT},
    }
    path.write_text(json.dumps(document))
    return path


def _all_keys(s3) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_deploy_uploads_exactly_the_expected_keys_with_sse_kms(project, aws, outputs_file):
    s3, key_arn = aws
    report = deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project)], s3=s3)

    assert _all_keys(s3) == EXPECTED_KEYS
    assert set(report["objects"]) == EXPECTED_KEYS
    assert report["deleted"] == []
    for key in EXPECTED_KEYS:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == key_arn, key
        assert report["objects"][key]["version_id"] == head["VersionId"], key
        assert report["objects"][key]["bytes"] == head["ContentLength"], key


def test_reported_artifact_versions_pin_what_mwaa_reads(project, aws, outputs_file, tmp_path):
    s3, _ = aws
    tfvars = tmp_path / "artifacts.auto.tfvars.json"
    first = deploy.main(
        ["--terraform-outputs", str(outputs_file), "--project-root", str(project), "--tfvars-out", str(tfvars)], s3=s3
    )
    (project / "requirements.txt").write_text((project / "requirements.txt").read_text() + "boto3==1.44.5\n")
    second = deploy.main(
        ["--terraform-outputs", str(outputs_file), "--project-root", str(project), "--tfvars-out", str(tfvars)], s3=s3
    )

    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="requirements.txt")["Versions"]
    assert {v["VersionId"] for v in versions} == {
        first["artifact_versions"]["requirements"],
        second["artifact_versions"]["requirements"],
    }
    assert first["artifact_versions"]["requirements"] != second["artifact_versions"]["requirements"]
    latest = {name: s3.head_object(Bucket=BUCKET, Key=key)["VersionId"] for name, key in deploy.PINNED_ARTIFACTS.items()}
    assert second["artifact_versions"] == latest
    assert json.loads(tfvars.read_text()) == {"artifact_versions": latest}
    pinned = s3.get_object(Bucket=BUCKET, Key="requirements.txt", VersionId=second["artifact_versions"]["requirements"])
    assert pinned["Body"].read().decode().endswith("boto3==1.44.5\n")


def test_archives_hold_the_packages_without_bytecode(project, aws, outputs_file):
    s3, _ = aws
    deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project)], s3=s3)

    def names(key: str) -> set[str]:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return set(zipfile.ZipFile(io.BytesIO(body)).namelist())

    assert names("plugins.zip") == {"payments_platform/__init__.py", "payments_platform/profiles.py"}
    assert names("spark_apps/spark_apps.zip") == {
        "spark_apps/__init__.py",
        "spark_apps/schemas.py",
        "spark_apps/jobs/__init__.py",
        "spark_apps/jobs/batch_index.py",
        "spark_apps/jobs/stream_index.py",
    }
    constraints = s3.get_object(Bucket=BUCKET, Key="dags/constraints.txt")["Body"].read()
    assert constraints == (project / "constraints-mwaa.txt").read_bytes()


def test_unchanged_tree_builds_byte_identical_archives(project):
    first = {a.key: a.body for a in deploy.build_artifacts(project, STARTUP_ENVIRONMENT)}
    second = {a.key: a.body for a in deploy.build_artifacts(project, STARTUP_ENVIRONMENT)}
    assert first["plugins.zip"] == second["plugins.zip"]
    assert first["spark_apps/spark_apps.zip"] == second["spark_apps/spark_apps.zip"]


def test_files_removed_locally_are_pruned_from_managed_prefixes_only(project, aws, outputs_file):
    s3, key_arn = aws
    s3.put_object(Bucket=BUCKET, Key="raw-note.txt", Body=b"not ours", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project)], s3=s3)
    (project / "dags" / "common" / "helpers.py").unlink()
    (project / "spark_apps" / "jobs" / "stream_index.py").unlink()

    report = deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project)], s3=s3)

    assert report["deleted"] == ["dags/common/helpers.py", "spark_apps/jobs/stream_index.py"]
    assert _all_keys(s3) == (EXPECTED_KEYS - {"dags/common/helpers.py", "spark_apps/jobs/stream_index.py"}) | {"raw-note.txt"}
    # Versioning keeps the removed DAG recoverable.
    assert s3.list_object_versions(Bucket=BUCKET, Prefix="dags/common/helpers.py")["DeleteMarkers"]


def test_prefix_is_applied_to_every_key(project, aws, outputs_file):
    s3, _ = aws
    deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project), "--prefix", "staging/"], s3=s3)
    assert _all_keys(s3) == {f"staging/{key}" for key in EXPECTED_KEYS}


def test_dry_run_uploads_nothing(project, aws, outputs_file):
    s3, _ = aws
    report = deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project), "--dry-run"], s3=s3)
    assert set(report["objects"]) == EXPECTED_KEYS
    assert _all_keys(s3) == set()


def test_unversioned_bucket_is_refused(project, aws, outputs_file):
    s3, _ = aws
    s3.create_bucket(Bucket="unversioned", CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(deploy.DeployError, match="versioning"):
        deploy.main(["--terraform-outputs", str(outputs_file), "--project-root", str(project), "--bucket", "unversioned"], s3=s3)
    assert s3.list_objects_v2(Bucket="unversioned").get("KeyCount") == 0


def test_missing_profile_variable_is_refused(project, aws, tmp_path):
    _, key_arn = aws
    environment = {k: v for k, v in STARTUP_ENVIRONMENT.items() if k != "PAYMENTS_MSK_BOOTSTRAP_BROKERS"}
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"mwaa_startup_environment": {"value": environment}, "artifacts_kms_key_arn": {"value": key_arn}}))
    with pytest.raises(deploy.DeployError, match="PAYMENTS_MSK_BOOTSTRAP_BROKERS"):
        deploy.main(["--terraform-outputs", str(path), "--project-root", str(project), "--bucket", BUCKET])


def test_requirements_without_the_mwaa_constraints_path_are_refused(project):
    (project / "requirements.txt").write_text("apache-airflow-providers-amazon==9.39.0\n")
    with pytest.raises(deploy.DeployError, match="/usr/local/airflow/dags/constraints.txt"):
        deploy.build_artifacts(project, STARTUP_ENVIRONMENT)


def test_missing_outputs_are_refused(project):
    with pytest.raises(deploy.DeployError, match="mwaa_startup_environment"):
        deploy.main(["--bucket", BUCKET, "--project-root", str(project), "--dry-run"])


def test_dry_run_of_the_real_project_lists_every_dag_and_job(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"mwaa_startup_environment": {"value": STARTUP_ENVIRONMENT}}))
    report = deploy.main(["--terraform-outputs", str(path), "--bucket", BUCKET, "--dry-run"])
    keys = set(report["objects"])
    for dag in (REPO / "dags").glob("*.py"):
        assert f"dags/{dag.name}" in keys
    for job in (REPO / "spark_apps" / "jobs").glob("*.py"):
        if job.name != "__init__.py":
            assert f"spark_apps/jobs/{job.name}" in keys
    assert "dags/include/profiles/aws.yaml" in keys and "include/contracts/batch_index.yaml" in keys


# --- the startup script ------------------------------------------------------------------


def _rendered_startup(environment: dict[str, str]) -> str:
    return deploy.render_startup_script((REPO / "scripts" / "mwaa_startup.sh").read_text(), environment)


def test_rendered_startup_script_exports_the_profile_environment(tmp_path):
    environment = {**STARTUP_ENVIRONMENT, "PAYMENTS_ONCALL_TOPIC_ARN": "arn:aws:sns:eu-west-1:1:it's $HOME `x`"}
    script = tmp_path / "startup.sh"
    script.write_text(_rendered_startup(environment))
    airflow_home = tmp_path / "airflow"
    (airflow_home / "dags" / "include" / "profiles").mkdir(parents=True)

    result = subprocess.run(
        ["bash", "-c", f'source "{script}" && env -0'],
        env={"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(airflow_home)},
        capture_output=True,
        text=True,
        check=True,
    )

    exported = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    for name, value in environment.items():
        assert exported[name] == value, name
    assert (airflow_home / "include").resolve() == (airflow_home / "dags" / "include").resolve()
    assert result.stderr == ""


def test_rendering_twice_replaces_the_block_instead_of_appending():
    once = _rendered_startup(STARTUP_ENVIRONMENT)
    twice = deploy.render_startup_script(once, {**STARTUP_ENVIRONMENT, "AWS_REGION": "us-east-1"})
    assert twice.count("export AWS_REGION=") == 1
    assert "export AWS_REGION=us-east-1" in twice


@pytest.mark.parametrize("bad", [{"lower_case": "x"}, {"PAYMENTS_RAW_BUCKET": ""}, {"PAYMENTS_RAW_BUCKET": "a\nb"}])
def test_startup_environment_rejects_bad_entries(bad):
    with pytest.raises(deploy.DeployError, match="startup environment"):
        _rendered_startup(bad)


def test_startup_script_template_is_valid_bash():
    subprocess.run(["bash", "-n", str(REPO / "scripts" / "mwaa_startup.sh")], check=True)
