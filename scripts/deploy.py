"""Package the project and upload it to the artifacts bucket that MWAA and EMR on EKS read.

    python scripts/deploy.py --terraform-outputs outputs.json [--bucket B] [--kms-key-id K]
                             [--prefix P] [--tfvars-out artifacts.auto.tfvars.json] [--dry-run]
                             [--mwaa-environment NAME] [--athena-output-location S3_URI]

``outputs.json`` is ``terraform output -json`` of an environment (infra/terraform/envs/<env>);
it supplies the bucket, the artifacts KMS key and the variables the MWAA startup script
exports. Objects written (keys relative to ``--prefix``):

* ``dags/...``                      every DAG file, plus ``dags/constraints.txt`` (constraints-mwaa.txt:
                                    requirements.txt points pip at /usr/local/airflow/dags/constraints.txt) and
                                    ``dags/include/...`` (runtime profiles etc. for the Airflow side)
* ``plugins.zip``                   the contents of plugins/ and the shared contract package
                                    ``payments_contract/`` (both at the zip's root, which MWAA puts on
                                    sys.path); nothing else (devtools/, tests/, bench/ never)
* ``requirements.txt``              as is
* ``startup.sh``                    scripts/mwaa_startup.sh with the environment block rendered
* ``spark_apps/spark_apps.zip``     the spark_apps package and ``payments_contract/`` (``--py-files`` of
                                    every job)
* ``spark_apps/jobs/<name>.py``     the job entrypoints
* ``include/...``                   contracts, config, profiles and SQL (quality.contracts_dir)

Every upload is SSE-KMS with the artifacts key, and carries the SHA-256 of its content in
its metadata (``x-amz-meta-sha256``). An object whose stored digest and KMS key match is not
uploaded again (HeadObject only): an unchanged tree creates no new object versions, so MWAA
(pinned to versions) sees no change and does not update. Files removed locally are deleted
from the managed prefixes (versioning keeps them recoverable). The JSON report on stdout
lists each object's version id (``unchanged`` the keys skipped); MWAA pins plugins.zip,
requirements.txt and startup.sh by object version, so ``--tfvars-out`` writes them as
``artifact_versions`` for ``terraform apply``.

``--mwaa-environment`` (or the Terraform output ``mwaa_environment_name``) also creates or
updates the Airflow pools of the aws profile (``orchestration.pools``: ``spark_jobs``,
``quality_gate``) on that environment through MWAA's ``InvokeRestApi`` (the Airflow REST API:
``GET /pools/<name>``, then ``POST /pools`` or ``PATCH /pools/<name>`` when missing or
different). Without pools the scheduler never runs the tasks that name them. Run it after the
environment exists (``terraform apply``); the caller needs ``airflow:InvokeRestApi`` on the
environment's Admin role (docs/infrastructure.md).

The BI views (``include/sql/views/*.sql``, each one ``CREATE OR REPLACE VIEW``) are then created
in Athena through the Amazon provider's ``AthenaHook``: one query per view, in file-name order,
in the aws profile's database and workgroup (``catalog.database``, ``catalog.athena_workgroup``;
Terraform creates both) with results under ``s3://<bucket_names["athena-results"]>/results/``
(``--athena-output-location`` overrides it). Each query is waited for; one that does not succeed
stops the deploy with Athena's reason. The tables the views read are Terraform's Glue tables
(``include/sql/tables.json``, the same tables as ``include/sql/ddl``), so no table DDL is issued.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shlex
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Keys MWAA reads; infra/terraform/modules/airflow (local.artifact_keys) points at the same.
DAGS_PREFIX = "dags/"
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"
STARTUP_SCRIPT_KEY = "startup.sh"
CONSTRAINTS_KEY = "dags/constraints.txt"
# Keys the aws profile's spark section points at (entrypoint_uri, py_files_uri).
SPARK_APPS_ZIP_KEY = "spark_apps/spark_apps.zip"
SPARK_JOBS_PREFIX = "spark_apps/jobs/"
INCLUDE_PREFIX = "include/"
DAGS_INCLUDE_PREFIX = "dags/include/"
# Prefixes this script owns: stale objects under them are deleted.
MANAGED_PREFIXES = (DAGS_PREFIX, SPARK_JOBS_PREFIX, INCLUDE_PREFIX)
# Terraform variable artifact_versions -> key.
PINNED_ARTIFACTS = {"plugins": PLUGINS_KEY, "requirements": REQUIREMENTS_KEY, "startup_script": STARTUP_SCRIPT_KEY}

MWAA_CONSTRAINTS_PATH = "/usr/local/airflow/dags/constraints.txt"
INCLUDE_DIRS = ("contracts", "config", "profiles", "sql")
ENV_BLOCK = re.compile(
    r"^# BEGIN PAYMENTS ENVIRONMENT[^\n]*\n(?:.*\n)*?# END PAYMENTS ENVIRONMENT\n",
    re.MULTILINE,
)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PROFILE_REFERENCE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
SKIPPED_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Dependency-free package both sides import (lake layout, control files, version ids, names):
# shipped in plugins.zip and in the Spark zip, at their roots.
SHARED_PACKAGES = ("payments_contract",)
VIEWS_DIR = "include/sql/views"
ATHENA_RESULTS_PREFIX = "results/"
ATHENA_POLL_SECONDS = 2
ATHENA_MAX_POLLS = 150  # 5 minutes per view
CREATE_VIEW = re.compile(r"^CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\.(\w+)\s+AS\b", re.IGNORECASE)
# Fixed timestamp in zip entries so an unchanged tree gives a byte-identical archive.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class DeployError(RuntimeError):
    """The project or the deployment target is not in a deployable state."""


@dataclass(frozen=True)
class Artifact:
    key: str
    body: bytes
    content_type: str


def project_files(root: Path, sub: str) -> list[Path]:
    """Regular files under root/sub, sorted, without caches and bytecode."""
    base = root / sub
    if not base.is_dir():
        raise DeployError(f"{base} is missing")
    return sorted(
        path
        for path in base.rglob("*")
        if path.is_file()
        and not any(part in SKIPPED_PARTS for part in path.relative_to(root).parts)
        and not path.name.endswith(SKIPPED_SUFFIXES)
    )


def zip_entries(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A deterministic zip of (name in the archive, file) pairs, sorted by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def shared_entries(root: Path) -> list[tuple[str, Path]]:
    """The shared contract package(s), named from the project root (``payments_contract/...``)."""
    return [
        (path.relative_to(root).as_posix(), path)
        for package in SHARED_PACKAGES
        if (root / package).is_dir()
        for path in project_files(root, package)
    ]


def plugins_zip(root: Path) -> bytes:
    """plugins/ at the archive root (MWAA adds it to sys.path) plus the shared contract."""
    plugins = [(path.relative_to(root / "plugins").as_posix(), path) for path in project_files(root, "plugins")]
    return zip_entries(plugins + shared_entries(root))


def spark_apps_zip(root: Path) -> bytes:
    """The spark_apps package plus the shared contract (``--py-files`` of every job)."""
    spark = [(path.relative_to(root).as_posix(), path) for path in project_files(root, "spark_apps")]
    return zip_entries(spark + shared_entries(root))


def profile_variables(profile_text: str) -> set[str]:
    """The ``${NAME}`` environment variables a runtime profile's values reference."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield from PROFILE_REFERENCE.findall(value)
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    return set(walk(yaml.safe_load(profile_text))) - {"PROJECT_ROOT"}


def render_startup_script(template: str, environment: Mapping[str, str]) -> str:
    """Fill the environment block of scripts/mwaa_startup.sh with ``export`` lines."""
    if not ENV_BLOCK.search(template):
        raise DeployError("scripts/mwaa_startup.sh has no '# BEGIN/END PAYMENTS ENVIRONMENT' block")
    lines = []
    for name, value in sorted(environment.items()):
        if not ENV_NAME.match(name):
            raise DeployError(f"startup environment: {name!r} is not a valid variable name")
        if not isinstance(value, str) or not value or "\n" in value:
            raise DeployError(f"startup environment: {name} must be a non-empty single-line string, got {value!r}")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    block = "# BEGIN PAYMENTS ENVIRONMENT (rendered by scripts/deploy.py)\n" + "".join(lines) + "# END PAYMENTS ENVIRONMENT\n"
    return ENV_BLOCK.sub(lambda _: block, template, count=1)


def check_requirements(requirements_text: str) -> None:
    """MWAA must resolve requirements.txt against the constraints file this script uploads."""
    if MWAA_CONSTRAINTS_PATH not in requirements_text:
        raise DeployError(f"requirements.txt must pin pip to {MWAA_CONSTRAINTS_PATH} (--constraint), which the deploy uploads")


def build_artifacts(root: Path, startup_environment: Mapping[str, str]) -> list[Artifact]:
    """Everything to upload, keyed relative to the deploy prefix."""
    profile_text = (root / "include" / "profiles" / "aws.yaml").read_text()
    missing = sorted(profile_variables(profile_text) - set(startup_environment))
    if missing:
        raise DeployError(f"startup environment lacks {', '.join(missing)} (referenced by include/profiles/aws.yaml)")
    requirements = (root / "requirements.txt").read_bytes()
    check_requirements(requirements.decode())

    artifacts = [
        Artifact(DAGS_PREFIX + path.relative_to(root / "dags").as_posix(), path.read_bytes(), _content_type(path))
        for path in project_files(root, "dags")
    ]
    # MWAA's lock (its Python, nothing local-only: scripts/lock.sh), under the name requirements.txt points at.
    artifacts.append(Artifact(CONSTRAINTS_KEY, (root / "constraints-mwaa.txt").read_bytes(), "text/plain"))
    artifacts.append(Artifact(PLUGINS_KEY, plugins_zip(root), "application/zip"))
    artifacts.append(Artifact(REQUIREMENTS_KEY, requirements, "text/plain"))
    template = (root / "scripts" / "mwaa_startup.sh").read_text()
    startup = render_startup_script(template, startup_environment)
    artifacts.append(Artifact(STARTUP_SCRIPT_KEY, startup.encode(), "text/x-shellscript"))
    artifacts.append(Artifact(SPARK_APPS_ZIP_KEY, spark_apps_zip(root), "application/zip"))
    jobs_dir = root / "spark_apps" / "jobs"
    artifacts += [
        Artifact(SPARK_JOBS_PREFIX + path.name, path.read_bytes(), "text/x-python")
        for path in sorted(jobs_dir.glob("*.py"))
        if path.name != "__init__.py"
    ]
    for sub in INCLUDE_DIRS:
        if not (root / "include" / sub).is_dir():
            continue
        for path in project_files(root, f"include/{sub}"):
            relative = path.relative_to(root / "include").as_posix()
            body = path.read_bytes()
            artifacts.append(Artifact(INCLUDE_PREFIX + relative, body, _content_type(path)))
            artifacts.append(Artifact(DAGS_INCLUDE_PREFIX + relative, body, _content_type(path)))
    keys = [artifact.key for artifact in artifacts]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DeployError(f"two artifacts map to the same key: {', '.join(duplicates)}")
    return artifacts


def _content_type(path: Path) -> str:
    return {
        ".py": "text/x-python",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".json": "application/json",
        ".sql": "text/plain",
        ".txt": "text/plain",
    }.get(path.suffix, "application/octet-stream")


def read_terraform_outputs(path: Path) -> dict[str, Any]:
    """Values of ``terraform output -json``."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DeployError(f"cannot read Terraform outputs {path}: {exc}") from exc
    return {name: output["value"] for name, output in document.items() if isinstance(output, dict) and "value" in output}


def _key(prefix: str, key: str) -> str:
    return f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key


CONTENT_DIGEST_METADATA = "sha256"


def _stored_version(s3: Any, bucket: str, key: str, digest: str, kms_key_id: str) -> str | None:
    """The version id of the object at ``key`` when it already holds this content under this key."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    stored_key = head.get("SSEKMSKeyId") or ""
    same_key = (
        head.get("ServerSideEncryption") == "aws:kms"
        and stored_key in (kms_key_id, f"key/{kms_key_id}")
        or (
            stored_key.endswith(f":key/{kms_key_id}")  # an ARN stored, a key id given
        )
    )
    if head.get("Metadata", {}).get(CONTENT_DIGEST_METADATA) == digest and same_key:
        return head.get("VersionId")
    return None


def upload(
    s3: Any, bucket: str, prefix: str, kms_key_id: str, artifacts: Sequence[Artifact], unchanged: list[str] | None = None
) -> dict[str, str]:
    """Upload every changed artifact with SSE-KMS; return key -> object version id (of the new
    object, or of the stored one when its content digest and KMS key already match). Keys not
    uploaded are appended to ``unchanged``."""
    versioning = s3.get_bucket_versioning(Bucket=bucket)
    if versioning.get("Status") != "Enabled":
        raise DeployError(
            f"bucket {bucket} must have versioning enabled: MWAA pins plugins/requirements/startup by object version"
        )
    versions: dict[str, str] = {}
    for artifact in artifacts:
        key = _key(prefix, artifact.key)
        digest = hashlib.sha256(artifact.body).hexdigest()
        stored = _stored_version(s3, bucket, key, digest, kms_key_id)
        if stored is not None:
            versions[artifact.key] = stored
            if unchanged is not None:
                unchanged.append(key)
            continue
        response = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=artifact.body,
            ContentType=artifact.content_type,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_id,
            ChecksumSHA256=_sha256_b64(artifact.body),
            Metadata={CONTENT_DIGEST_METADATA: digest},
        )
        versions[artifact.key] = response["VersionId"]
    return versions


def _sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def prune(s3: Any, bucket: str, prefix: str, keep: Iterable[str]) -> list[str]:
    """Delete objects under the managed prefixes that this deploy did not write."""
    wanted = {_key(prefix, key) for key in keep}
    stale: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for managed in MANAGED_PREFIXES:
        for page in paginator.paginate(Bucket=bucket, Prefix=_key(prefix, managed)):
            stale += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in wanted]
    for start in range(0, len(stale), 1000):
        batch = stale[start : start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
    return sorted(stale)


# --- Airflow pools on MWAA -------------------------------------------------------------------


def profile_pools(root: Path) -> dict[str, dict[str, Any]]:
    """``orchestration.pools`` of the aws profile: name -> {"slots", "description"}."""
    document = yaml.safe_load((root / "include" / "profiles" / "aws.yaml").read_text())
    pools = ((document or {}).get("orchestration") or {}).get("pools") or {}
    for name, pool in pools.items():
        if not isinstance(pool, dict) or not isinstance(pool.get("slots"), int) or pool["slots"] < 1:
            raise DeployError(f"include/profiles/aws.yaml: orchestration.pools.{name}.slots must be a positive integer")
    return {name: {"slots": pool["slots"], "description": pool.get("description") or ""} for name, pool in pools.items()}


def _rest(mwaa: Any, environment: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request: dict[str, Any] = {"Name": environment, "Method": method, "Path": path}
    if body is not None:
        request["Body"] = body
    try:
        response = mwaa.invoke_rest_api(**request)
    except mwaa.exceptions.RestApiClientException as exc:  # the Airflow API answered 4xx
        return int(exc.response.get("RestApiStatusCode") or 400), exc.response.get("RestApiResponse")
    return int(response["RestApiStatusCode"]), response.get("RestApiResponse")


def ensure_pools(mwaa: Any, environment: str, pools: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Create or update each pool on the MWAA environment; returns pool -> created/updated/unchanged."""
    done: dict[str, str] = {}
    for name, pool in sorted(pools.items()):
        wanted = {"slots": pool["slots"], "description": pool["description"], "include_deferred": False}
        status, current = _rest(mwaa, environment, "GET", f"/pools/{name}")
        if status == 404:
            status, answer = _rest(mwaa, environment, "POST", "/pools", {"name": name, **wanted})
            done[name] = "created"
        elif status == 200:
            current = current or {}
            if all(current.get(field) == value for field, value in wanted.items()):
                done[name] = "unchanged"
                continue
            status, answer = _rest(mwaa, environment, "PATCH", f"/pools/{name}", {"name": name, **wanted})
            done[name] = "updated"
        else:
            answer = current
        if status not in (200, 201):
            raise DeployError(f"pool {name} on MWAA environment {environment}: Airflow REST API answered {status}: {answer}")
    return done


# --- BI views in Athena -----------------------------------------------------------------------


@dataclass(frozen=True)
class AthenaTarget:
    database: str
    workgroup: str
    output_location: str


def statement_of(sql: str) -> str:
    """The statement of a view file as sent to Athena: without the leading ``--`` comment block
    (the text starts at ``CREATE``) and without a trailing semicolon (one statement per query)."""
    lines = sql.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).rstrip().rstrip(";").rstrip()


def view_statements(root: Path, database: str) -> list[tuple[str, str]]:
    """(view name, statement) of every include/sql/views/*.sql, in file-name order. Each must be
    ``CREATE OR REPLACE VIEW <database>.<file name> AS`` (idempotent: a second deploy replaces it)."""
    views_dir = root / VIEWS_DIR
    statements = []
    for path in sorted(views_dir.glob("*.sql")) if views_dir.is_dir() else []:
        statement = statement_of(path.read_text())
        match = CREATE_VIEW.match(statement)
        if not match or (match.group(1), match.group(2)) != (database, path.stem):
            raise DeployError(f"{VIEWS_DIR}/{path.name} must start with CREATE OR REPLACE VIEW {database}.{path.stem} AS")
        statements.append((path.stem, statement))
    return statements


def athena_target(root: Path, outputs: Mapping[str, Any], output_location: str | None) -> AthenaTarget:
    """Database and workgroup of the aws profile (Terraform creates both under the same names,
    tests/infra checks it); results under the athena-results bucket Terraform outputs."""
    document = yaml.safe_load((root / "include" / "profiles" / "aws.yaml").read_text()) or {}
    catalog = document.get("catalog") or {}
    if not catalog.get("database") or not catalog.get("athena_workgroup"):
        raise DeployError("include/profiles/aws.yaml: catalog.database and catalog.athena_workgroup are required")
    if not output_location:
        bucket = (outputs.get("bucket_names") or {}).get("athena-results")
        if not bucket:
            raise DeployError(
                "no Athena output location: pass --athena-output-location or --terraform-outputs with output "
                "bucket_names (athena-results)"
            )
        output_location = f"s3://{bucket}/{ATHENA_RESULTS_PREFIX}"
    return AthenaTarget(catalog["database"], catalog["athena_workgroup"], output_location)


def create_views(athena: Any, target: AthenaTarget, statements: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Run each statement with the AthenaHook and wait for it; returns view -> query execution id.
    The first query that does not succeed stops the deploy with Athena's reason."""
    done: dict[str, str] = {}
    for name, statement in statements:
        query_id = athena.run_query(
            statement,
            query_context={"Database": target.database},
            result_configuration={"OutputLocation": target.output_location},
            workgroup=target.workgroup,
        )
        state = athena.poll_query_status(query_id, max_polling_attempts=ATHENA_MAX_POLLS, sleep_time=ATHENA_POLL_SECONDS)
        where = f"Athena view {target.database}.{name}: query {query_id}"
        if state in ("QUEUED", "RUNNING", None):
            raise DeployError(
                f"{where} still {state or 'unknown'} after {ATHENA_MAX_POLLS} polls; see it in the workgroup's history"
            )
        if state != "SUCCEEDED":
            reason = athena.get_state_change_reason(query_id) or "Athena gave no reason"
            raise DeployError(f"{where} ended {state}: {reason}")
        done[name] = query_id
    return done


def _athena_hook(region: str | None) -> Any:
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    # No Airflow connection: the deploy runs with the caller's AWS credentials (boto3's chain).
    return AthenaHook(aws_conn_id=None, region_name=region, log_query=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terraform-outputs", type=Path, help="`terraform output -json` of the target environment")
    parser.add_argument("--bucket", help="artifacts bucket (default: output artifacts_bucket)")
    parser.add_argument("--kms-key-id", help="KMS key of the uploads (default: output artifacts_kms_key_arn)")
    parser.add_argument("--prefix", default="", help="key prefix inside the bucket (MWAA environments use none)")
    parser.add_argument("--tfvars-out", type=Path, help="write {'artifact_versions': ...} here for terraform apply")
    parser.add_argument("--project-root", type=Path, default=PROJECT_ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--region", help="AWS region of the bucket (default: the SDK's)")
    parser.add_argument("--dry-run", action="store_true", help="build and list the artifacts, upload nothing")
    parser.add_argument(
        "--mwaa-environment", help="create/update the profile's Airflow pools there (default: output mwaa_environment_name)"
    )
    parser.add_argument(
        "--athena-output-location",
        help="S3 URI of the view queries' results (default: s3://<output bucket_names.athena-results>/results/)",
    )
    return parser.parse_args(argv)


def _client(service: str, region: str | None, given: Any) -> Any:
    if given is not None:
        return given
    import boto3

    return boto3.client(service, region_name=region)


def _profile_database(root: Path) -> str:
    document = yaml.safe_load((root / "include" / "profiles" / "aws.yaml").read_text()) or {}
    return (document.get("catalog") or {}).get("database") or ""


def publish(args: argparse.Namespace, s3: Any, bucket: str, kms_key_id: str, artifacts: Sequence[Artifact]) -> dict[str, Any]:
    """Upload, prune and (with --tfvars-out) write the pinned versions; the report's S3 part."""
    unchanged: list[str] = []
    versions = upload(s3, bucket, args.prefix, kms_key_id, artifacts, unchanged)
    pinned = {name: versions[key] for name, key in PINNED_ARTIFACTS.items()}
    if args.tfvars_out:
        args.tfvars_out.write_text(json.dumps({"artifact_versions": pinned}, indent=2) + "\n")
    return {
        "versions": {_key(args.prefix, key): version for key, version in versions.items()},
        "unchanged": sorted(unchanged),
        "deleted": prune(s3, bucket, args.prefix, versions),
        "artifact_versions": pinned,
    }


def main(argv: Sequence[str] | None = None, s3: Any = None, mwaa: Any = None, athena: Any = None) -> dict[str, Any]:
    args = parse_args(argv)
    outputs = read_terraform_outputs(args.terraform_outputs) if args.terraform_outputs else {}
    bucket = args.bucket or outputs.get("artifacts_bucket")
    kms_key_id = args.kms_key_id or outputs.get("artifacts_kms_key_arn")
    startup_environment = outputs.get("mwaa_startup_environment")
    if not bucket:
        raise DeployError("no bucket: pass --bucket or --terraform-outputs with output artifacts_bucket")
    if startup_environment is None:
        raise DeployError("no startup environment: pass --terraform-outputs with output mwaa_startup_environment")
    artifacts = build_artifacts(args.project_root, startup_environment)
    views = view_statements(args.project_root, _profile_database(args.project_root))
    report: dict[str, Any] = {
        "bucket": bucket,
        "prefix": args.prefix,
        "dry_run": args.dry_run,
        "objects": {_key(args.prefix, a.key): {"bytes": len(a.body)} for a in artifacts},
    }
    if args.dry_run:
        return report | {"athena_views": [name for name, _ in views]}
    if not kms_key_id:
        raise DeployError("no KMS key: pass --kms-key-id or --terraform-outputs with output artifacts_kms_key_arn")
    # Checked before anything is uploaded: views without a place for their results fail early.
    target = athena_target(args.project_root, outputs, args.athena_output_location) if views else None
    published = publish(args, _client("s3", args.region, s3), bucket, kms_key_id, artifacts)
    for key, version in published.pop("versions").items():
        report["objects"][key]["version_id"] = version
    report.update(published)
    environment = args.mwaa_environment or outputs.get("mwaa_environment_name")
    if environment:
        report["pools"] = ensure_pools(_client("mwaa", args.region, mwaa), environment, profile_pools(args.project_root))
    if target is not None:
        report["athena_views"] = create_views(athena or _athena_hook(args.region), target, views)
    return report


if __name__ == "__main__":
    try:
        result = main()
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result, indent=2, sort_keys=True))
