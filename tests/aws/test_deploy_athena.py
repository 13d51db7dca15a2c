"""scripts/deploy.py creates the BI views (include/sql/views) in Athena through the Amazon
provider's AthenaHook, against moto: the exact StartQueryExecution requests in order (query text
read from the files on disk, database, workgroup, output location), and a failed query stops the
deploy with Athena's reason. Terraform's Glue tables are the views' tables, so no table DDL is sent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
import sqlglot
from moto import mock_aws
from sqlglot import exp

from scripts import deploy
from tests.infra.test_deploy import BUCKET, REGION, REPO, STARTUP_ENVIRONMENT
from tests.infra.test_deploy import project as project  # the small project tree (a fixture)

RESULTS_BUCKET = "payments-dev-athena-results-123456789012-eu-west-1"
VIEW_FILES = sorted((REPO / "include" / "sql" / "views").glob("*.sql"))


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(deploy, "ATHENA_POLL_SECONDS", 0)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key_arn = boto3.client("kms", region_name=REGION).create_key(Description="artifacts")["KeyMetadata"]["Arn"]
        # What Terraform's catalog module creates: the workgroup with its enforced result location.
        boto3.client("athena", region_name=REGION).create_work_group(
            Name="payments",
            Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{RESULTS_BUCKET}/results/"}},
        )
        yield s3, key_arn


@pytest.fixture
def project_with_views(project: Path) -> Path:
    shutil.copytree(REPO / "include" / "sql" / "views", project / "include" / "sql" / "views")
    return project


@pytest.fixture
def athena():
    """The AthenaHook deploy uses, with every StartQueryExecution request recorded as sent."""
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    hook = AthenaHook(aws_conn_id=None, region_name=REGION, log_query=False)
    hook.sent = []
    hook.conn.meta.events.register(
        "provide-client-params.athena.StartQueryExecution", lambda params, **_: hook.sent.append(dict(params))
    )
    return hook


def outputs(tmp_path: Path, key_arn: str) -> Path:
    path = tmp_path / "outputs.json"
    document = {
        "artifacts_bucket": BUCKET,
        "artifacts_kms_key_arn": key_arn,
        "mwaa_startup_environment": STARTUP_ENVIRONMENT,
        "bucket_names": {"artifacts": BUCKET, "athena-results": RESULTS_BUCKET},
    }
    path.write_text(json.dumps({name: {"value": value} for name, value in document.items()}))
    return path


def assert_is_the_view_file(query: str, path: Path) -> None:
    """The query is the file's statement: the file ends with it and only comments precede it."""
    text = path.read_text().strip()
    assert query and text.endswith(query), path.name
    assert all(line.startswith("--") for line in text[: -len(query)].strip().splitlines()), path.name
    assert query.startswith(f"CREATE OR REPLACE VIEW payments.{path.stem} AS"), path.name


def test_deploy_creates_every_view_in_athena_in_order(project_with_views, aws, athena, tmp_path):
    s3, key_arn = aws
    report = deploy.main(
        ["--terraform-outputs", str(outputs(tmp_path, key_arn)), "--project-root", str(project_with_views)], s3=s3, athena=athena
    )

    assert len(VIEW_FILES) == 7 and len(athena.sent) == len(VIEW_FILES)
    for request, path in zip(athena.sent, VIEW_FILES, strict=True):  # in file-name order
        assert_is_the_view_file(request["QueryString"], path)
        assert request["QueryExecutionContext"] == {"Database": "payments"}
        assert request["ResultConfiguration"] == {"OutputLocation": f"s3://{RESULTS_BUCKET}/results/"}
        assert request["WorkGroup"] == "payments"
        # One statement, and no table DDL: Terraform's Glue resources own the tables.
        statements = sqlglot.parse(request["QueryString"], read="athena")
        assert len(statements) == 1 and isinstance(statements[0], exp.Create) and statements[0].kind == "VIEW"
    assert list(report["athena_views"]) == [path.stem for path in VIEW_FILES]
    executions = {q: athena.get_query_info(q)["QueryExecution"] for q in report["athena_views"].values()}
    assert {e["Status"]["State"] for e in executions.values()} == {"SUCCEEDED"}
    assert {e["WorkGroup"] for e in executions.values()} == {"payments"}


def test_a_second_deploy_replaces_the_views_with_the_same_queries(project_with_views, aws, athena, tmp_path):
    s3, key_arn = aws
    args = ["--terraform-outputs", str(outputs(tmp_path, key_arn)), "--project-root", str(project_with_views)]
    deploy.main(args, s3=s3, athena=athena)
    first = list(athena.sent)
    athena.sent.clear()
    deploy.main(args, s3=s3, athena=athena)
    assert athena.sent == first  # CREATE OR REPLACE: the same queries, nothing to drop first


def test_a_failed_view_query_stops_the_deploy_with_athenas_reason(project_with_views, aws, athena, tmp_path):
    s3, key_arn = aws
    reason = "COLUMN_NOT_FOUND: line 9:3: Column 'cardinality' cannot be resolved"
    failing: list[str] = []

    def fail_the_second_query(parsed, **_):  # what Athena answers for a query that failed
        execution = parsed.get("QueryExecution", {})
        if failing and execution.get("QueryExecutionId") == failing[0]:
            execution["Status"] = {"State": "FAILED", "StateChangeReason": reason}

    def remember_the_second_id(parsed, **_):
        if len(athena.sent) == 2 and not failing:
            failing.append(parsed["QueryExecutionId"])

    athena.conn.meta.events.register("after-call.athena.StartQueryExecution", remember_the_second_id)
    athena.conn.meta.events.register("after-call.athena.GetQueryExecution", fail_the_second_query)
    second = VIEW_FILES[1].stem
    with pytest.raises(deploy.DeployError, match=rf"Athena view payments\.{second}: query \S+ ended FAILED: {reason}"):
        deploy.main(
            ["--terraform-outputs", str(outputs(tmp_path, key_arn)), "--project-root", str(project_with_views)],
            s3=s3,
            athena=athena,
        )
    assert len(athena.sent) == 2, "nothing after the failed view"


def test_views_need_a_results_location_and_nothing_is_uploaded_without_one(project_with_views, aws, athena, tmp_path):
    s3, key_arn = aws
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"mwaa_startup_environment": {"value": STARTUP_ENVIRONMENT}}))
    args = ["--terraform-outputs", str(path), "--bucket", BUCKET, "--kms-key-id", key_arn]
    with pytest.raises(deploy.DeployError, match="no Athena output location"):
        deploy.main([*args, "--project-root", str(project_with_views)], s3=s3, athena=athena)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and athena.sent == []

    deploy.main(
        [*args, "--project-root", str(project_with_views), "--athena-output-location", "s3://elsewhere/q/"], s3=s3, athena=athena
    )
    assert {request["ResultConfiguration"]["OutputLocation"] for request in athena.sent} == {"s3://elsewhere/q/"}


def test_a_view_file_that_is_not_create_or_replace_is_refused(project_with_views):
    bad = project_with_views / "include/sql/views/daily_fraud_summary.sql"
    bad.write_text(bad.read_text().replace("CREATE OR REPLACE VIEW", "CREATE VIEW"))
    with pytest.raises(deploy.DeployError, match="daily_fraud_summary.sql must start with CREATE OR REPLACE VIEW"):
        deploy.view_statements(project_with_views, "payments")


def test_dry_run_lists_the_views_and_sends_nothing(project_with_views, aws, athena, tmp_path):
    s3, key_arn = aws
    report = deploy.main(
        ["--terraform-outputs", str(outputs(tmp_path, key_arn)), "--project-root", str(project_with_views), "--dry-run"],
        s3=s3,
        athena=athena,
    )
    assert report["athena_views"] == [path.stem for path in VIEW_FILES] and athena.sent == []


def test_the_views_read_only_tables_terraform_creates():
    """No table DDL is issued by the deploy because every table a view reads is one of
    Terraform's Glue tables (include/sql/tables.json, the catalog module's for_each)."""
    tables = set(json.loads((REPO / "include/sql/tables.json").read_text())["tables"])
    assert tables == {path.stem for path in (REPO / "include/sql/ddl").glob("*.sql")}
    for path in VIEW_FILES:
        statement = sqlglot.parse_one(path.read_text(), read="athena")
        ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
        read = {t.name for t in statement.expression.find_all(exp.Table) if t.name not in ctes}
        assert read <= tables, f"{path.name} reads {read - tables}"


def test_a_view_query_that_does_not_finish_stops_the_deploy(project_with_views, aws, athena, tmp_path, monkeypatch):
    from moto.moto_api import state_manager

    s3, key_arn = aws
    monkeypatch.setattr(deploy, "ATHENA_MAX_POLLS", 2)
    state_manager.set_transition(model_name="athena::execution", transition={"progression": "manual", "times": 1000})
    try:
        with pytest.raises(deploy.DeployError, match=r"query \S+ still (QUEUED|RUNNING) after 2 polls"):
            deploy.main(
                ["--terraform-outputs", str(outputs(tmp_path, key_arn)), "--project-root", str(project_with_views)],
                s3=s3,
                athena=athena,
            )
    finally:
        state_manager.unset_transition("athena::execution")
    assert len(athena.sent) == 1
