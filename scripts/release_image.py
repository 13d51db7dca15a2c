"""Build, tag and push the EMR on EKS Spark image (release path step 4, docs/infrastructure.md).

    python scripts/release_image.py --image "$(terraform -chdir=infra/terraform/envs/dev \\
        output -json mwaa_startup_environment | python -c 'import json,sys; print(json.load(sys.stdin)["PAYMENTS_SPARK_IMAGE_URI"])')"

``--image`` is the URI the Spark jobs run (``PAYMENTS_SPARK_IMAGE_URI``: the env's ECR repository
``<prefix>/spark`` and its ``spark_image_tag``), so the image pushed is the one the DAGs name. The
script refuses, before building anything:

* a repository whose tags are mutable (Terraform creates it IMMUTABLE: one tag, one image);
* a tag that is already in the repository (a new image needs a new ``spark_image_tag``);
* a working tree with uncommitted changes (the image is labelled with the commit it is built from).

Then ``docker build --pull`` of the repository's Dockerfile (its base: the public EMR on EKS image
of the profile's release, ``public.ecr.aws/emr-on-eks``), ``docker login`` to the private registry
with a token from ECR, ``docker push``, and a read-back of the pushed tag's digest. ``--dry-run``
makes the checks and prints the commands without running them. Run it before ``scripts/deploy.py``
uploads DAGs that start Spark jobs.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PATTERN = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)/(?P<repository>[a-z0-9._/-]+):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)


class ReleaseError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageRef:
    registry: str
    account: str
    region: str
    repository: str
    tag: str

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


def parse_image(uri: str) -> ImageRef:
    match = IMAGE_PATTERN.match(uri)
    if not match:
        raise ReleaseError(f"--image {uri!r} is not <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>")
    if match["tag"] == "latest":
        raise ReleaseError("--image: 'latest' is not a release tag (tags are immutable: name the release)")
    return ImageRef(match["registry"], match["account"], match["region"], match["repository"], match["tag"])


def git_revision(root: Path = ROOT, allow_dirty: bool = False) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    if not allow_dirty and git("status", "--porcelain", "--untracked-files=no"):
        raise ReleaseError("the working tree has uncommitted changes: commit them (the image is labelled with its commit)")
    return git("rev-parse", "HEAD")


def check_repository(ecr, image: ImageRef) -> None:
    """The repository exists with immutable tags, and does not hold the tag yet."""
    try:
        [repository] = ecr.describe_repositories(registryId=image.account, repositoryNames=[image.repository])["repositories"]
    except ecr.exceptions.RepositoryNotFoundException as exc:
        raise ReleaseError(
            f"no ECR repository {image.repository} in {image.account}/{image.region}: apply Terraform first"
        ) from exc
    if repository.get("imageTagMutability") != "IMMUTABLE":
        raise ReleaseError(
            f"{image.repository}: tags are {repository.get('imageTagMutability')}, not IMMUTABLE (Terraform sets it)"
        )
    try:
        found = ecr.describe_images(
            registryId=image.account, repositoryName=image.repository, imageIds=[{"imageTag": image.tag}]
        )["imageDetails"]
    except ecr.exceptions.ImageNotFoundException:
        found = []
    if found:
        raise ReleaseError(
            f"{image.uri} already exists (digest {found[0]['imageDigest']}): tags are immutable, "
            "set a new spark_image_tag and apply Terraform"
        )


def build_commands(image: ImageRef, revision: str, root: Path = ROOT) -> list[list[str]]:
    return [
        ["docker", "build", "--pull", "--label", f"org.opencontainers.image.revision={revision}", "-t", image.uri, str(root)],
        ["docker", "login", "--username", "AWS", "--password-stdin", f"https://{image.registry}"],
        ["docker", "push", image.uri],
    ]


def login_password(ecr, image: ImageRef) -> str:
    token = ecr.get_authorization_token(registryIds=[image.account])["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    if user != "AWS" or not password:
        raise ReleaseError("ECR returned an authorization token of an unexpected form")
    return password


def pushed_digest(ecr, image: ImageRef) -> str:
    [detail] = ecr.describe_images(registryId=image.account, repositoryName=image.repository, imageIds=[{"imageTag": image.tag}])[
        "imageDetails"
    ]
    return detail["imageDigest"]


def release(image_uri: str, dry_run: bool = False, allow_dirty: bool = False, ecr=None, run=subprocess.run) -> dict:
    image = parse_image(image_uri)
    if ecr is None:
        import boto3

        ecr = boto3.client("ecr", region_name=image.region)
    check_repository(ecr, image)
    revision = git_revision(allow_dirty=allow_dirty)
    commands = build_commands(image, revision)
    if dry_run:
        return {"image": image.uri, "revision": revision, "commands": commands, "pushed": False}
    if shutil.which("docker") is None:
        raise ReleaseError("docker is not on PATH: build the image on a machine with a Docker engine (or CI)")
    build, login, push = commands
    run(build, check=True)
    run(login, input=login_password(ecr, image), text=True, check=True)
    run(push, check=True)
    return {"image": image.uri, "revision": revision, "commands": commands, "pushed": True, "digest": pushed_digest(ecr, image)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="PAYMENTS_SPARK_IMAGE_URI of the env (repository URL:tag)")
    parser.add_argument("--dry-run", action="store_true", help="check and print the commands, build nothing")
    parser.add_argument("--allow-dirty", action="store_true", help="build from uncommitted changes (never for a release)")
    args = parser.parse_args(argv)
    try:
        result = release(args.image, dry_run=args.dry_run, allow_dirty=args.allow_dirty)
    except (ReleaseError, subprocess.CalledProcessError) as exc:
        print(f"[release-image] {exc}", file=sys.stderr)
        return 1
    for command in result["commands"]:
        print(("[dry-run] " if args.dry_run else "") + " ".join(command))
    if result["pushed"]:
        print(f"[release-image] pushed {result['image']} ({result['digest']}) from {result['revision']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
