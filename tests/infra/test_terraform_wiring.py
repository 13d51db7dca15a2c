"""Terraform structure and wiring: module layout, env composition, one source of truth for
the Glue tables (include/sql), and agreement with the aws runtime profile."""

from __future__ import annotations

import json
import re

import pytest
import sqlglot
import yaml
from sqlglot import exp

from tests.infra import terraform_model as tm

SQL_DIR = tm.PROJECT_ROOT / "include" / "sql"
TABLES_JSON = SQL_DIR / "tables.json"
DDL_DIR = SQL_DIR / "ddl"
AWS_PROFILE = tm.PROJECT_ROOT / "include" / "profiles" / "aws.yaml"
CATALOG = tm.MODULES_ROOT / "catalog"


def _aws_profile() -> dict:
    return yaml.safe_load(AWS_PROFILE.read_text())


# --- layout ----------------------------------------------------------------------------


@pytest.mark.parametrize("module", tm.MODULE_NAMES)
def test_module_has_the_standard_files(module):
    directory = tm.MODULES_ROOT / module
    assert {p.name for p in directory.glob("*.tf")} == {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    versions = tm.parse_file(directory / "versions.tf")["terraform"][0]
    assert versions["required_version"] == ">= 1.11.0"
    assert "aws" in versions["required_providers"][0]


@pytest.mark.parametrize("directory", tm.all_directories(), ids=lambda d: d.relative_to(tm.TERRAFORM_ROOT).as_posix())
def test_every_variable_is_typed_and_described_and_every_output_described(directory):
    for name, spec in tm.variables_of(directory).items():
        assert spec.get("type"), f"variable {name} has no type"
        assert str(spec.get("description", "")).strip(), f"variable {name} has no description"
    for name, spec in tm.outputs_of(directory).items():
        assert str(spec.get("description", "")).strip(), f"output {name} has no description"


# --- envs ------------------------------------------------------------------------------


def _without_backend(text: str) -> str:
    return re.sub(r'backend "s3" \{.*?\n  \}\n', "", text, flags=re.DOTALL)


def test_dev_and_prod_compose_the_same_modules():
    dev = (tm.ENVS_ROOT / "dev" / "main.tf").read_text()
    prod = (tm.ENVS_ROOT / "prod" / "main.tf").read_text()
    assert _without_backend(dev) == _without_backend(prod), "envs differ in tfvars only"
    for name in ("variables.tf", "outputs.tf", "versions.tf"):
        assert (tm.ENVS_ROOT / "dev" / name).read_text() == (tm.ENVS_ROOT / "prod" / name).read_text(), name
    modules = tm.modules_of(tm.ENVS_ROOT / "dev")
    assert set(modules) == set(tm.MODULE_NAMES)
    for name, spec in modules.items():
        assert spec["source"] == f"../../modules/{name}"


@pytest.mark.parametrize("env", tm.ENV_NAMES)
def test_env_keeps_encrypted_locked_remote_state(env):
    [terraform] = [t for t in tm.parse_file(tm.ENVS_ROOT / env / "main.tf")["terraform"] if "backend" in t]
    backend = terraform["backend"][0]["s3"]
    assert backend["key"] == f"payments/{env}/terraform.tfstate"
    assert backend["encrypt"] is True
    assert backend["use_lockfile"] is True


# Required variables whose values belong to one AWS account (who may reach and administer the
# cluster, who is paged in prod): not committed in terraform.tfvars but documented, with the
# expected shape, in the env's account.auto.tfvars.example (copied to account.auto.tfvars).
ACCOUNT_VARIABLES = {
    "dev": {"eks_api_access", "eks_admin_role_arns"},
    "prod": {"eks_api_access", "eks_admin_role_arns", "oncall_subscriptions"},
}


@pytest.mark.parametrize("env", tm.ENV_NAMES)
def test_env_tfvars_set_every_required_variable(env):
    variables = tm.variables_of(tm.ENVS_ROOT / env)
    values = tm.parse_file(tm.ENVS_ROOT / env / "terraform.tfvars")
    account = tm.parse_file(tm.ENVS_ROOT / env / "account.auto.tfvars.example")
    required = {name for name, spec in variables.items() if "default" not in spec}
    assert set(account) == ACCOUNT_VARIABLES[env], f"{env}/account.auto.tfvars.example"
    assert not set(account) & set(values), "an account-specific value is committed in terraform.tfvars"
    assert required - set(values) == ACCOUNT_VARIABLES[env], (
        f"missing in {env}/terraform.tfvars: {sorted(required - set(values))}"
    )
    assert set(values) | set(account) <= set(variables), "tfvars sets an undeclared variable"
    assert values["environment"] == env


def test_module_arguments_exist_as_module_variables():
    for name, arguments in tm.modules_of(tm.ENVS_ROOT / "dev").items():
        declared = set(tm.variables_of(tm.MODULES_ROOT / name))
        passed = {key for key in arguments if key not in ("source", "__is_block__")}
        assert passed <= declared, f"module {name}: unknown arguments {sorted(passed - declared)}"
        required = {v for v, spec in tm.variables_of(tm.MODULES_ROOT / name).items() if "default" not in spec}
        assert required <= passed, f"module {name}: missing arguments {sorted(required - passed)}"


# --- the aws runtime profile -----------------------------------------------------------------


# Exported by the startup script although include/profiles/aws.yaml does not reference them
# (yet): the transform jobs' EMR execution role, for the profile to pick per job (today every
# job runs with PAYMENTS_EMR_EXECUTION_ROLE_ARN, the ingest role). Nothing else may be extra.
EXPORTED_AHEAD_OF_THE_PROFILE = {"PAYMENTS_EMR_TRANSFORM_ROLE_ARN"}


def test_startup_environment_provides_every_variable_of_the_aws_profile():
    from scripts import deploy

    referenced = deploy.profile_variables(AWS_PROFILE.read_text())
    assert "PAYMENTS_MSK_BOOTSTRAP_BROKERS" in referenced and "NAME" not in referenced
    for env in tm.ENV_NAMES:
        exported = tm.outputs_of(tm.ENVS_ROOT / env)["mwaa_startup_environment"]["value"]
        assert set(exported) == referenced | {"PAYMENTS_PROFILE"} | EXPORTED_AHEAD_OF_THE_PROFILE, env
        assert exported["PAYMENTS_PROFILE"] == "aws"
        # The role the profile runs jobs with is the ingest role: it can run every job (the
        # transform role cannot read raw drops or the token key); the transform role is the
        # second export.
        assert tm.expression(exported["PAYMENTS_EMR_EXECUTION_ROLE_ARN"]) == "module.compute.ingest_job_role_arn", env
        assert tm.expression(exported["PAYMENTS_EMR_TRANSFORM_ROLE_ARN"]) == "module.compute.transform_job_role_arn", env


def test_terraform_names_match_the_aws_profile():
    profile = _aws_profile()
    catalog = tm.variables_of(CATALOG)
    assert catalog["database_name"]["default"] == profile["catalog"]["database"]
    assert catalog["athena_workgroup_name"]["default"] == profile["catalog"]["athena_workgroup"]
    compute = tm.variables_of(tm.MODULES_ROOT / "compute")
    assert compute["emr_log_group_name"]["default"] == profile["spark"]["log_group"]
    lake = tm.variables_of(tm.MODULES_ROOT / "lake")
    assert lake["index_retention_days"]["default"] == profile["lake"]["retention_days"]
    assert tm.variables_of(tm.ENVS_ROOT / "dev")["index_retention_days"]["default"] == profile["lake"]["retention_days"]
    secret_name = tm.variables_of(tm.MODULES_ROOT / "secrets")["pan_token_secret_name"]["default"]
    assert profile["secrets"]["pan_token_key"] == f"secretsmanager:{secret_name}"
    topics = set(tm.variables_of(tm.MODULES_ROOT / "msk")["topics"]["default"])
    assert topics == {value for key, value in profile["kafka"].items() if key.endswith("_topic")}
    assert profile["kafka"]["security"] == "iam"


def test_alarms_and_job_role_use_one_metrics_namespace():
    from spark_apps.streaming.cloudwatch import CLOUDWATCH_NAMESPACE

    alerting = tm.variables_of(tm.MODULES_ROOT / "alerting")["metrics_namespace"]["default"]
    compute = tm.variables_of(tm.MODULES_ROOT / "compute")["metrics_namespace"]["default"]
    assert alerting == compute == CLOUDWATCH_NAMESPACE == "Payments/Streaming"
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        assert tm.locals_of(directory)["metrics_namespace"] == alerting
        modules = tm.modules_of(directory)
        assert tm.expression(modules["compute"]["metrics_namespace"]) == "local.metrics_namespace"
        assert tm.expression(modules["alerting"]["metrics_namespace"]) == "local.metrics_namespace"
        assert "metric_dimensions" not in modules["alerting"], "the app publishes without dimensions"
    alarms = {
        name: tm.block(tm.MODULES_ROOT / "alerting", "aws_cloudwatch_metric_alarm", name).body
        for name in ("stream_freshness", "consumer_lag", "quarantine_rate")
    }
    metrics = {body["metric_name"] for body in alarms.values()}
    assert metrics == {"FreshnessSeconds", "ConsumerLag", "QuarantineRate"}
    docs = (tm.PROJECT_ROOT / "docs" / "infrastructure.md").read_text()
    for metric in metrics | {alerting}:
        assert metric in docs, f"docs/infrastructure.md must name {metric}"


def test_alarms_read_exactly_what_the_stream_app_publishes():
    """Namespace, metric names, units and dimensions: the app's one definition (spark_apps.streaming.cloudwatch)."""
    from spark_apps.streaming.cloudwatch import CLOUDWATCH_DIMENSIONS, CLOUDWATCH_METRICS, CLOUDWATCH_NAMESPACE

    alerting = tm.MODULES_ROOT / "alerting"
    assert tm.variables_of(alerting)["metrics_namespace"]["default"] == CLOUDWATCH_NAMESPACE
    assert tm.variables_of(alerting)["metric_dimensions"]["default"] == CLOUDWATCH_DIMENSIONS
    read = {}
    for alarm in tm.blocks(alerting):
        if alarm.type != "aws_cloudwatch_metric_alarm" or tm.expression(alarm.body["namespace"]) != "var.metrics_namespace":
            continue
        assert tm.expression(alarm.body["dimensions"]) == "var.metric_dimensions", alarm.address
        read[alarm.body["metric_name"]] = alarm.body.get("unit")
    assert read == CLOUDWATCH_METRICS
    [statement] = [
        s
        for s in tm.block(tm.MODULES_ROOT / "compute", "aws_iam_policy_document", "ingest_job", kind="data").body["statement"]
        if "cloudwatch:PutMetricData" in s["actions"]
    ]
    [condition] = statement["condition"]
    assert (condition["variable"], tm.expression(condition["values"][0])) == ("cloudwatch:namespace", "var.metrics_namespace")


def test_mwaa_runs_the_pinned_airflow_version():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (tm.PROJECT_ROOT / "constraints.txt").read_text(), re.MULTILINE))
    airflow_version = tm.variables_of(tm.MODULES_ROOT / "airflow")["airflow_version"]["default"]
    assert airflow_version == pins["apache-airflow"] == "3.3.1"


def test_mwaa_reads_the_keys_the_deploy_script_writes():
    from scripts import deploy

    keys = tm.locals_of(tm.MODULES_ROOT / "airflow")["artifact_keys"]
    assert keys == {
        "dags": deploy.DAGS_PREFIX,
        "plugins": deploy.PLUGINS_KEY,
        "requirements": deploy.REQUIREMENTS_KEY,
        "startup_script": deploy.STARTUP_SCRIPT_KEY,
    }
    for directory in (tm.MODULES_ROOT / "airflow", tm.ENVS_ROOT / "dev"):
        declared = re.findall(
            r"(\w+)\s*=\s*optional\(string\)", tm.expression(tm.variables_of(directory)["artifact_versions"]["type"])
        )
        assert set(declared) == set(deploy.PINNED_ARTIFACTS), directory
    profile = _aws_profile()
    assert profile["spark"]["entrypoint_uri"] == "s3://${PAYMENTS_ARTIFACTS_BUCKET}/" + deploy.SPARK_JOBS_PREFIX.rstrip("/")
    assert profile["spark"]["py_files_uri"] == "s3://${PAYMENTS_ARTIFACTS_BUCKET}/" + deploy.SPARK_APPS_ZIP_KEY
    assert profile["quality"]["contracts_dir"] == "s3://${PAYMENTS_ARTIFACTS_BUCKET}/" + deploy.INCLUDE_PREFIX + "contracts"


# --- Glue tables: one source of truth ----------------------------------------------------------


def _normalised_type(text: str) -> str:
    return text.lower().replace(" ", "")


def _ddl_tables() -> dict[str, dict]:
    """Columns and partition keys of every include/sql/ddl/*.sql, parsed as Athena SQL."""
    tables = {}
    for path in sorted(DDL_DIR.glob("*.sql")):
        create = sqlglot.parse_one(path.read_text(), dialect="athena")
        assert isinstance(create, exp.Create) and create.args["kind"] == "TABLE", path.name
        schema = create.this
        columns = [{"name": c.name, "type": _normalised_type(c.args["kind"].sql("hive"))} for c in schema.expressions]
        partitioned = create.find(exp.PartitionedByProperty)
        keys = (
            [{"name": c.name, "type": _normalised_type(c.args["kind"].sql("hive"))} for c in partitioned.this.expressions]
            if partitioned
            else []
        )
        tables[schema.this.name] = {"database": schema.this.db, "columns": columns, "partition_keys": keys}
    return tables


def _tables_json() -> dict:
    return json.loads(TABLES_JSON.read_text())


def test_tables_json_equals_the_ddl():
    document = _tables_json()
    ddl = _ddl_tables()
    assert ddl, "no DDL files in include/sql/ddl"
    assert set(document["tables"]) == set(ddl)
    for name, table in document["tables"].items():
        expected = [{"name": c["name"], "type": _normalised_type(c["type"])} for c in table["columns"]]
        expected_keys = [{"name": c["name"], "type": _normalised_type(c["type"])} for c in table["partition_keys"]]
        assert ddl[name]["columns"] == expected, name
        assert ddl[name]["partition_keys"] == expected_keys, name
        assert ddl[name]["database"] == document["database"]


def test_ddl_parser_sees_a_column_change():
    create = sqlglot.parse_one(
        "CREATE EXTERNAL TABLE payments.t (`a` string, `b` decimal(18,2)) PARTITIONED BY (`dt` string) STORED AS PARQUET",
        dialect="athena",
    )
    assert [_normalised_type(c.args["kind"].sql("hive")) for c in create.this.expressions] == ["string", "decimal(18,2)"]


@pytest.mark.parametrize("env", tm.ENV_NAMES)
def test_envs_feed_the_catalog_from_tables_json(env):
    directory = tm.ENVS_ROOT / env
    tables_expression = tm.expression(tm.locals_of(directory)["tables"])
    match = re.fullmatch(r'jsondecode\(file\("\$\{path\.root\}/(.+)"\)\)\.tables', tables_expression)
    assert match, tables_expression
    assert (directory / match.group(1)).resolve() == TABLES_JSON.resolve()
    assert tm.expression(tm.modules_of(directory)["catalog"]["tables"]) == "local.tables"
    assert _tables_json()["database"] == tm.variables_of(CATALOG)["database_name"]["default"]


def test_catalog_variable_type_matches_the_tables_json_shape():
    declared = re.sub(r"\s+", "", tm.expression(tm.variables_of(CATALOG)["tables"]["type"]))
    column = "list(object({name=string,type=string}))"
    assert declared == f"map(object({{description=string,columns={column},partition_keys={column}}}))"
    for table in _tables_json()["tables"].values():
        assert set(table) == {"description", "columns", "partition_keys"}
        for column_spec in table["columns"] + table["partition_keys"]:
            assert set(column_spec) == {"name", "type"}


def _render_glue_tables(tables: dict, processed_bucket: str) -> dict[str, dict]:
    """What the catalog module creates for ``tables``: evaluates its for_each/dynamic blocks.

    Only the expression forms the module uses are understood; anything else fails loudly,
    so a change in the module's mapping cannot pass unnoticed.
    """
    body = tm.block(CATALOG, "aws_glue_catalog_table", "this").body
    assert tm.expression(body["for_each"]) == "var.tables"
    assert tm.expression(body["name"]) == "each.key"
    [storage] = tm.as_list(body["storage_descriptor"])

    def dynamic_rows(container: dict, label: str, rows: list[dict]) -> list[dict]:
        [spec] = [d[label] for d in tm.as_list(container.get("dynamic")) if label in d]
        assert tm.expression(spec["for_each"]) == f"each.value.{label}"
        [content] = tm.as_list(spec["content"])
        fields = {k: tm.expression(v) for k, v in content.items() if k != "__is_block__"}
        rendered = []
        for row in rows:
            item = {}
            for field, source in fields.items():
                source_match = re.fullmatch(rf"{label}\.value\.(\w+)", source)
                assert source_match, f"{label}.{field} = {source}"
                item[field] = row[source_match.group(1)]
            rendered.append(item)
        return rendered

    rendered = {}
    for name, table in tables.items():
        rendered[name] = {
            "location": storage["location"]
            .replace("${var.processed_bucket_name}", processed_bucket)
            .replace("${each.key}", name),
            "serde": tm.as_list(storage["ser_de_info"])[0]["serialization_library"],
            "columns": dynamic_rows(storage, "columns", table["columns"]),
            "partition_keys": dynamic_rows(body, "partition_keys", table["partition_keys"]),
        }
    return rendered


def test_catalog_module_turns_each_json_table_into_a_glue_table_with_exactly_its_columns():
    tables = _tables_json()["tables"]
    glue = _render_glue_tables(tables, "payments-prod-processed-bucket")
    assert set(glue) == set(tables)
    for name, table in tables.items():
        assert glue[name]["columns"] == table["columns"], name
        assert glue[name]["partition_keys"] == table["partition_keys"], name
        assert glue[name]["location"] == f"s3://payments-prod-processed-bucket/indexes/{name}/"
        assert glue[name]["serde"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert glue["stream_index"]["partition_keys"] == [{"name": "dt", "type": "string"}, {"name": "hour", "type": "int"}]


def test_glue_arns_cover_every_table_by_name():
    arns = tm.expression(tm.outputs_of(CATALOG)["glue_resource_arns"]["value"])
    assert ":catalog" in arns and ":database/${aws_glue_catalog_database.this.name}" in arns
    assert "table/${aws_glue_catalog_database.this.name}/${name}" in arns and "aws_glue_catalog_table.this" in arns


def test_the_sent_marker_lifecycle_prefix_is_where_the_aws_stream_writes_its_markers():
    """The job's markers: <checkpoint_uri>/<query name>/_sent/<topic>/<batch> (spark_apps.kafka.sink)."""
    from payments_platform.stream_control import STREAM_QUERY_NAME

    checkpoint_uri = _aws_profile()["lake"]["checkpoint_uri"]
    bucket_and_path = checkpoint_uri.removeprefix("s3://")
    assert bucket_and_path.split("/", 1)[0] == "${PAYMENTS_CHECKPOINT_BUCKET}"
    prefix = f"{bucket_and_path.split('/', 1)[1].strip('/')}/{STREAM_QUERY_NAME}/_sent/"
    assert tm.variables_of(tm.MODULES_ROOT / "lake")["sent_marker_prefixes"]["default"] == [prefix]
