"""scripts/release_image.py: the Spark image is released to the repository the jobs name, under
a new immutable tag, from a commit (ECR through moto; Docker is not on this machine, so the
build / login / push commands are checked as sent)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.infra import terraform_model as tm

sys.path.insert(0, str(tm.PROJECT_ROOT / "scripts"))
import release_image

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
REPOSITORY = "payments-dev/spark"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:0.2.0"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []})


@pytest.fixture
def ecr(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("ecr", region_name=REGION)
        client.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
        yield client


def test_the_image_uri_the_jobs_run_is_the_terraform_repository_and_tag():
    """Terraform names the repository <prefix>/spark and the URI the jobs run repository_url:spark_image_tag."""
    compute = tm.MODULES_ROOT / "compute"
    repository = tm.block(compute, "aws_ecr_repository", "this")
    assert repository.body["name"] == "${var.name_prefix}/${each.key}"
    assert repository.body["image_tag_mutability"] == "IMMUTABLE"
    assert "spark" in tm.variables_of(compute)["ecr_repositories"]["default"]
    uri = tm.outputs_of(compute)["spark_image_uri"]["value"]
    assert uri == '${aws_ecr_repository.this["spark"].repository_url}:${var.spark_image_tag}'
    image = release_image.parse_image(IMAGE)
    assert (image.account, image.region, image.repository, image.tag) == (ACCOUNT, REGION, REPOSITORY, "0.2.0")


def test_the_dockerfile_builds_on_the_public_emr_image():
    dockerfile = (tm.PROJECT_ROOT / "Dockerfile").read_text()
    assert "ARG EMR_BASE_REGISTRY=public.ecr.aws/emr-on-eks\n" in dockerfile
    assert "FROM ${EMR_BASE_REGISTRY}/spark/" in dockerfile
    assert "scripts/release_image.py" in dockerfile


def test_a_dry_run_checks_the_repository_and_prints_build_login_push(ecr):
    result = release_image.release(IMAGE, dry_run=True, allow_dirty=True, ecr=ecr)
    revision = result["revision"]
    assert len(revision) == 40 and not result["pushed"]
    assert result["commands"] == [
        [
            "docker",
            "build",
            "--pull",
            "--label",
            f"org.opencontainers.image.revision={revision}",
            "-t",
            IMAGE,
            str(release_image.ROOT),
        ],
        ["docker", "login", "--username", "AWS", "--password-stdin", f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"],
        ["docker", "push", IMAGE],
    ]


def test_an_existing_tag_or_a_mutable_repository_is_refused(ecr):
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag="0.2.0")
    with pytest.raises(release_image.ReleaseError, match="already exists .* tags are immutable, set a new spark_image_tag"):
        release_image.release(IMAGE, dry_run=True, allow_dirty=True, ecr=ecr)
    ecr.create_repository(repositoryName="payments-dev/mutable", imageTagMutability="MUTABLE")
    with pytest.raises(release_image.ReleaseError, match="tags are MUTABLE, not IMMUTABLE"):
        release_image.release(IMAGE.replace("spark:", "mutable:"), dry_run=True, allow_dirty=True, ecr=ecr)
    with pytest.raises(release_image.ReleaseError, match="no ECR repository payments-dev/none"):
        release_image.release(IMAGE.replace("spark:", "none:"), dry_run=True, allow_dirty=True, ecr=ecr)
    for bad in (IMAGE.replace(":0.2.0", ":latest"), "payments-spark:0.2.0"):
        with pytest.raises(release_image.ReleaseError):
            release_image.parse_image(bad)


def test_the_release_builds_logs_in_with_the_ecr_token_pushes_and_reads_the_digest_back(ecr, monkeypatch):
    sent = []

    def run(command, **kwargs):
        sent.append((command, kwargs.get("input")))
        if command[:2] == ["docker", "push"]:  # what the registry then holds
            ecr.put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag="0.2.0")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(release_image.shutil, "which", lambda name: f"/usr/bin/{name}")
    result = release_image.release(IMAGE, allow_dirty=True, ecr=ecr, run=run)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().split(":", 1)[1]
    assert [command[:2] for command, _ in sent] == [["docker", "build"], ["docker", "login"], ["docker", "push"]]
    assert [stdin for _, stdin in sent] == [None, password, None]
    assert result["pushed"] and result["digest"].startswith("sha256:")


def test_no_docker_is_a_clear_error(ecr, monkeypatch):
    monkeypatch.setattr(release_image.shutil, "which", lambda name: None)
    with pytest.raises(release_image.ReleaseError, match="docker is not on PATH"):
        release_image.release(IMAGE, allow_dirty=True, ecr=ecr, run=None)


def test_uncommitted_changes_are_refused(tmp_path: Path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "first")
    (tmp_path / "tracked.txt").write_text("a")
    git("add", "tracked.txt")
    with pytest.raises(release_image.ReleaseError, match="uncommitted changes"):
        release_image.git_revision(tmp_path)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "second")
    assert len(release_image.git_revision(tmp_path)) == 40
