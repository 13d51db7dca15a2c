"""Issue 22, Terraform side: what a first deploy on an empty account needs, and the card-data
hardening of the estate, read from the HCL (python-hcl2, tests/infra/terraform_model.py).

Where a value is decided by a variable's validation, the validation itself is run: a root
module holding only the env's variable blocks needs no provider, so ``terraform plan`` on it
evaluates them offline (skipped where the terraform binary is absent).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra import terraform_model as tm

KMS = tm.MODULES_ROOT / "kms"
COMPUTE = tm.MODULES_ROOT / "compute"
AIRFLOW = tm.MODULES_ROOT / "airflow"
ALERTING = tm.MODULES_ROOT / "alerting"
CATALOG = tm.MODULES_ROOT / "catalog"
LAKE = tm.MODULES_ROOT / "lake"
AUDIT = tm.MODULES_ROOT / "audit"
AWS_PROFILE = tm.PROJECT_ROOT / "include" / "profiles" / "aws.yaml"
PLUGINS = tm.PROJECT_ROOT / "plugins" / "payments_platform"


def _statements(directory: Path, name: str) -> dict[str, dict]:
    document = tm.block(directory, "aws_iam_policy_document", name, kind="data")
    return {s["sid"]: s for s in tm.policy_statements(document)}


def _expressions(values) -> list[str]:
    return [tm.expression(v) for v in tm.as_list(values)]


# --- running variable validations ----------------------------------------------------------


def _variable_blocks(directory: Path, names: list[str]) -> str:
    text = "".join(path.read_text() for path in sorted(directory.glob("*.tf")))
    blocks = []
    for name in names:
        match = re.search(rf'(?ms)^variable "{name}" \{{\n.*?^\}}\n', text)
        assert match, f"{directory.name}: variable {name}"
        blocks.append(match.group(0))
    return "\n".join(blocks)


def _plan_variables(tmp_path: Path, config: str, tfvars: str) -> subprocess.CompletedProcess:
    """``terraform plan`` of a root module made only of variable blocks (no provider needed)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH: variable validations cannot be evaluated here")
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "main.tf").write_text(config)
    (tmp_path / "values.tfvars").write_text(tfvars)
    env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    init = subprocess.run(
        [terraform, "init", "-input=false", "-no-color"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return subprocess.run(
        [terraform, "plan", "-input=false", "-no-color", "-lock=false", "-var-file=values.tfvars"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    return " ".join((result.stdout + result.stderr).split())


# --- 1. the Auto Scaling service-linked role before the compute key ------------------------------


def test_the_autoscaling_service_linked_role_is_created_before_the_key_policy_naming_it():
    role = tm.block(KMS, "aws_iam_service_linked_role", "autoscaling").body
    assert role["aws_service_name"] == "autoscaling.amazonaws.com"
    assert tm.expression(role["count"]) == (
        "length(local.autoscaling_key_domains) > 0 && var.create_autoscaling_service_linked_role ? 1 : 0"
    )
    key = tm.block(KMS, "aws_kms_key", "this").body
    assert _expressions(key["depends_on"]) == ["aws_iam_service_linked_role.autoscaling"]
    # The principal the key policy names is that role (its fixed path and name).
    kms_locals = tm.locals_of(KMS)
    assert kms_locals["autoscaling_service_role_arn"] == (
        "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
    statements = _statements(KMS, "key")
    for sid in ("AllowAutoScalingToUseKeyForNodeVolumes", "AllowAutoScalingGrantsForNodeVolumes"):
        [principal] = tm.as_list(statements[sid]["principals"])
        assert _expressions(principal["identifiers"]) == ["local.autoscaling_service_role_arn"], sid
    assert tm.expression(kms_locals["autoscaling_key_domains"]) == (
        '[for domain, spec in var.domains : domain if contains(spec.services, "autoscaling-ebs")]'
    )
    assert "autoscaling-ebs" in tm.variables_of(KMS)["domains"]["default"]["compute"]["services"]
    env_variables = tm.variables_of(tm.ENVS_ROOT / "dev")
    assert env_variables["create_service_linked_roles"]["default"] is True
    for env in tm.ENV_NAMES:
        modules = tm.modules_of(tm.ENVS_ROOT / env)
        assert tm.expression(modules["kms"]["create_autoscaling_service_linked_role"]) == "var.create_service_linked_roles"
        assert tm.expression(modules["compute"]["create_emr_service_linked_role"]) == "var.create_service_linked_roles"


# --- 2. who reaches and administers the private EKS endpoint -------------------------------------


def test_the_apply_runner_reaches_the_private_api_endpoint_on_443_only():
    cluster = tm.block(COMPUTE, "aws_eks_cluster", "this").body
    [vpc] = tm.as_list(cluster["vpc_config"])
    assert (vpc["endpoint_public_access"], vpc["endpoint_private_access"]) == (False, True)
    for name, source_attribute, variable in (
        ("api_from_cidr", "cidr_ipv4", "var.api_access_cidrs"),
        ("api_from_security_group", "referenced_security_group_id", "var.api_access_security_group_ids"),
    ):
        rule = tm.block(COMPUTE, "aws_vpc_security_group_ingress_rule", name).body
        assert tm.expression(rule["for_each"]) == f"toset({variable})", name
        assert tm.expression(rule["security_group_id"]) == "aws_eks_cluster.this.vpc_config[0].cluster_security_group_id"
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443), name
        assert tm.expression(rule[source_attribute]) == "each.key", name
    variables = tm.variables_of(COMPUTE)
    for name in ("api_access_cidrs", "api_access_security_group_ids", "cluster_admin_role_arns"):
        assert tm.expression(variables[name]["type"]) == "list(string)", name
    for env in tm.ENV_NAMES:
        compute = tm.modules_of(tm.ENVS_ROOT / env)["compute"]
        assert tm.expression(compute["api_access_cidrs"]) == "var.eks_api_access.cidr_blocks"
        assert tm.expression(compute["api_access_security_group_ids"]) == "var.eks_api_access.security_group_ids"
        assert tm.expression(compute["cluster_admin_role_arns"]) == "var.eks_admin_role_arns"
    # The namespace (created by the apply runner through the private endpoint) waits for both.
    namespace = tm.block(COMPUTE, "kubernetes_namespace_v1", "emr").body
    assert {
        "aws_eks_access_policy_association.admin",
        "aws_vpc_security_group_ingress_rule.api_from_cidr",
        "aws_vpc_security_group_ingress_rule.api_from_security_group",
    } <= set(_expressions(namespace["depends_on"]))


def test_operator_and_ci_roles_get_cluster_admin_access_entries():
    cluster = tm.block(COMPUTE, "aws_eks_cluster", "this").body
    [access] = tm.as_list(cluster["access_config"])
    assert access["bootstrap_cluster_creator_admin_permissions"] is False
    entry = tm.block(COMPUTE, "aws_eks_access_entry", "admin").body
    assert tm.expression(entry["for_each"]) == "toset(var.cluster_admin_role_arns)"
    assert (tm.expression(entry["principal_arn"]), entry["type"]) == ("each.key", "STANDARD")
    association = tm.block(COMPUTE, "aws_eks_access_policy_association", "admin").body
    assert tm.expression(association["for_each"]) == "aws_eks_access_entry.admin"
    assert tm.expression(association["principal_arn"]) == "each.value.principal_arn"
    assert association["policy_arn"] == "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert tm.as_list(association["access_scope"])[0]["type"] == "cluster"


def test_api_access_and_admin_roles_are_validated(tmp_path):
    config = _variable_blocks(COMPUTE, ["api_access_cidrs", "api_access_security_group_ids", "cluster_admin_role_arns"])
    good = 'api_access_cidrs = ["10.20.64.0/24"]\ncluster_admin_role_arns = ["arn:aws:iam::111122223333:role/ci"]\n'
    assert _plan_variables(tmp_path / "good", config, good).returncode == 0
    for name, tfvars, message in (
        (
            "open",
            'api_access_cidrs = ["0.0.0.0/0"]\ncluster_admin_role_arns = ["arn:aws:iam::111122223333:role/ci"]\n',
            "narrower than /0",
        ),
        ("nobody", 'cluster_admin_role_arns = ["arn:aws:iam::111122223333:role/ci"]\n', "must reach the private API endpoint"),
        (
            "no-admin",
            'api_access_cidrs = ["10.20.64.0/24"]\ncluster_admin_role_arns = []\n',
            "at least the role that runs terraform apply",
        ),
        (
            "slr-admin",
            'api_access_cidrs = ["10.20.64.0/24"]\ncluster_admin_role_arns = '
            '["arn:aws:iam::111122223333:role/aws-service-role/emr-containers.amazonaws.com/AWSServiceRoleForAmazonEMRContainers"]\n',
            "not service-linked roles",
        ),
    ):
        result = _plan_variables(tmp_path / name, config, tfvars)
        assert result.returncode != 0 and message in _one_line(result), name


# --- 3. EMR on EKS cluster access ------------------------------------------------------------------


def test_emr_on_eks_gets_cluster_access_through_access_entries():
    cluster = tm.block(COMPUTE, "aws_eks_cluster", "this").body
    [access] = tm.as_list(cluster["access_config"])
    # The mode EMR on EKS documents for its access-entry integration.
    assert access["authentication_mode"] == "API_AND_CONFIG_MAP"
    slr = tm.block(COMPUTE, "aws_iam_service_linked_role", "emr_containers").body
    assert slr["aws_service_name"] == "emr-containers.amazonaws.com"
    assert tm.expression(slr["count"]) == "var.create_emr_service_linked_role ? 1 : 0"
    virtual_cluster = tm.block(COMPUTE, "aws_emrcontainers_virtual_cluster", "this").body
    assert _expressions(virtual_cluster["depends_on"]) == [
        "aws_iam_service_linked_role.emr_containers",
        "aws_eks_access_policy_association.admin",
    ]
    [provider] = tm.as_list(virtual_cluster["container_provider"])
    [info] = tm.as_list(provider["info"])
    [eks] = tm.as_list(info["eks_info"])
    assert tm.expression(eks["namespace"]) == "kubernetes_namespace_v1.emr.metadata[0].name"
    compute_locals = tm.locals_of(COMPUTE)
    assert compute_locals["emr_service_linked_role_arn"] == (
        "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/emr-containers.amazonaws.com/AWSServiceRoleForAmazonEMRContainers"
    )
    assert (
        compute_locals["emr_job_access_policy_arn"] == "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEMRJobPolicy"
    )


def test_emrs_own_access_entry_is_read_back_after_apply_and_never_declared():
    """EKS refuses a service-linked role's access entry from any caller but the service (EMR
    creates it with the virtual cluster): declaring one would fail the apply. A check block
    reads EMR's entry back instead."""
    [check] = [entry["emr_cluster_access"] for entry in tm.directory_document(COMPUTE)["check"] if "emr_cluster_access" in entry]
    [data] = tm.as_list(check["data"])
    entry = data["aws_eks_access_entry"]["emr"]
    assert tm.expression(entry["principal_arn"]) == "local.emr_service_linked_role_arn"
    assert tm.expression(entry["cluster_name"]) == "aws_eks_cluster.this.name"
    assert _expressions(entry["depends_on"]) == ["aws_emrcontainers_virtual_cluster.this"]
    [assertion] = tm.as_list(check["assert"])
    assert tm.expression(assertion["condition"]) == 'data.aws_eks_access_entry.emr.type == "STANDARD"'
    for declared in tm.all_blocks("aws_eks_access_entry"):
        assert "aws-service-role" not in str(declared.body) and "emr_service_linked_role" not in str(declared.body)


# --- 4. tagged job runs ---------------------------------------------------------------------------


def _job_run_tag_keys_in_the_code() -> set[str]:
    """Keys of the tag dicts the operator and the stream supervisor pass to StartJobRun."""
    keys: set[str] = set()
    for path in (PLUGINS / "spark_jobs.py", PLUGINS / "stream_control.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                names = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                if "project" in names:
                    keys.update(names)
    return keys


def test_mwaa_may_tag_the_job_runs_it_starts_with_the_keys_the_code_sets():
    statements = _statements(AIRFLOW, "execution")
    tag = statements["TagJobRunsAtStart"]
    assert tag["actions"] == ["emr-containers:TagResource"]
    assert tag["resources"] == ["${var.emr_virtual_cluster_arn}", "${var.emr_virtual_cluster_arn}/jobruns/*"]
    [condition] = tm.as_list(tag["condition"])
    assert (condition["test"], condition["variable"]) == ("ForAllValues:StringEquals", "aws:TagKeys")
    assert tm.expression(condition["values"]) == "var.emr_job_run_tag_keys"
    code_keys = _job_run_tag_keys_in_the_code()
    assert code_keys == {"project", "job"}
    assert set(tm.variables_of(AIRFLOW)["emr_job_run_tag_keys"]["default"]) == code_keys
    start = statements["StartJobRunsWithTheJobRolesOnly"]
    assert start["resources"] == ["${var.emr_virtual_cluster_arn}"]


# --- 5. the raw-drop sensor's HeadObject -----------------------------------------------------------


def test_mwaa_may_read_the_ready_markers_and_no_other_raw_object():
    from payments_platform.sensors import READY_MARKER

    statements = _statements(AIRFLOW, "execution")
    markers = statements["ReadRawReadyMarkers"]
    assert markers["actions"] == ["s3:GetObject"]
    assert markers["resources"] == ["${var.bucket_arns.raw}/${var.raw_ready_marker_pattern}"]
    raw_uri = yaml.safe_load(AWS_PROFILE.read_text())["lake"]["raw_uri"]
    bucket, raw_path = raw_uri.removeprefix("s3://").split("/", 1)
    assert bucket == "${PAYMENTS_RAW_BUCKET}"
    pattern = tm.variables_of(AIRFLOW)["raw_ready_marker_pattern"]["default"]
    assert pattern == f"{raw_path}/{READY_MARKER.format(dt='*')}" == "raw/_ready/dt=*.json"
    assert fnmatch.fnmatchcase(f"{raw_path}/{READY_MARKER.format(dt='2026-03-01')}", pattern)
    assert not fnmatch.fnmatchcase(f"{raw_path}/gateway_a/dt=2026-03-01/part-0.jsonl", pattern)
    # No other statement of the MWAA role reads raw objects.
    for sid, statement in statements.items():
        if sid != "ReadRawReadyMarkers":
            assert not any(str(r).startswith("${var.bucket_arns.raw}/") for r in tm.as_list(statement.get("resources"))), sid


# --- 6. the freshness alarm and who is paged --------------------------------------------------------


def test_the_freshness_alarm_does_not_page_before_the_stream_first_publishes():
    alarm = tm.block(ALERTING, "aws_cloudwatch_metric_alarm", "stream_freshness").body
    # No datapoint in the evaluation range -> INSUFFICIENT_DATA, which has no action here; not
    # "breaching" (paged from the first apply), not "notBreaching" (a dead stream sent as OK).
    assert alarm["treat_missing_data"] == "missing"
    assert "insufficient_data_actions" not in alarm
    assert _expressions(alarm["alarm_actions"]) == ["aws_sns_topic.oncall.arn"]
    assert alarm["metric_name"] == "FreshnessSeconds"


def test_the_oncall_subscriptions_are_wired_to_the_topic():
    subscription = tm.block(ALERTING, "aws_sns_topic_subscription", "oncall").body
    assert tm.expression(subscription["for_each"]) == (
        '{for subscription in var.oncall_subscriptions : "${subscription.protocol}:${subscription.endpoint}" => subscription}'
    )
    assert tm.expression(subscription["topic_arn"]) == "aws_sns_topic.oncall.arn"
    assert tm.expression(subscription["protocol"]) == "each.value.protocol"
    assert tm.expression(subscription["endpoint"]) == "each.value.endpoint"
    assert "default" not in tm.variables_of(ALERTING)["oncall_subscriptions"]
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        assert tm.expression(tm.modules_of(directory)["alerting"]["oncall_subscriptions"]) == "var.oncall_subscriptions"
        variable = tm.variables_of(directory)["oncall_subscriptions"]
        assert "default" not in variable
        assert re.sub(r"\s+", "", tm.expression(variable["type"])) == "list(object({protocol=string,endpoint=string}))"
    assert tm.parse_file(tm.ENVS_ROOT / "dev" / "terraform.tfvars")["oncall_subscriptions"] == []
    assert "oncall_subscriptions" not in tm.parse_file(tm.ENVS_ROOT / "prod" / "terraform.tfvars")
    example = tm.parse_file(tm.ENVS_ROOT / "prod" / "account.auto.tfvars.example")["oncall_subscriptions"]
    assert {s["protocol"] for s in example} == {"https", "email"}


@pytest.mark.parametrize(
    ("environment", "subscriptions", "error"),
    [
        ("prod", "[]", "prod needs at least one on-call subscription"),
        ("prod", None, "No value for required variable"),
        ("prod", '[{ protocol = "https", endpoint = "http://pager.example.com/hook" }]', "must be {protocol"),
        ("prod", '[{ protocol = "sms", endpoint = "+15555550100" }]', "must be {protocol"),
        ("prod", '[{ protocol = "https", endpoint = "https://events.pagerduty.com/integration/k/enqueue" }]', None),
        ("prod", '[{ protocol = "email", endpoint = "oncall@example.com" }]', None),
        ("dev", "[]", None),
    ],
)
def test_prod_requires_a_non_empty_oncall_subscription(tmp_path, environment, subscriptions, error):
    config = _variable_blocks(tm.ENVS_ROOT / environment, ["environment", "oncall_subscriptions"])
    tfvars = f'environment = "{environment}"\n' + (f"oncall_subscriptions = {subscriptions}\n" if subscriptions else "")
    result = _plan_variables(tmp_path, config, tfvars)
    if error is None:
        assert result.returncode == 0, _one_line(result)
    else:
        assert result.returncode != 0 and error in _one_line(result), _one_line(result)


@pytest.mark.parametrize("env", tm.ENV_NAMES)
def test_each_env_plans_its_variables_from_the_committed_tfvars_and_the_account_example(tmp_path, env):
    """Every variable validation of the env passes with terraform.tfvars + account.auto.tfvars.example."""
    directory = tm.ENVS_ROOT / env
    config = (directory / "variables.tf").read_text()
    tfvars = (directory / "terraform.tfvars").read_text() + "\n" + (directory / "account.auto.tfvars.example").read_text()
    result = _plan_variables(tmp_path, config, tfvars)
    assert result.returncode == 0, _one_line(result)


# --- 7. the stream index in Athena ---------------------------------------------------------------------


def test_the_stream_index_is_queryable_through_partition_projection():
    projection = tm.locals_of(CATALOG)["hourly_partition_projection"]
    assert projection == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "${var.partition_projection_start_date},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
    }
    per_table = tm.expression(tm.locals_of(CATALOG)["projection_parameters"])
    assert per_table.startswith("{for name in var.hourly_projected_tables : name => merge(local.hourly_partition_projection, {")
    assert (
        '"storage.location.template" = "s3://${var.processed_bucket_name}/indexes/${name}/dt=$${dt}/hour=$${hour}/"' in per_table
    )
    table = tm.block(CATALOG, "aws_glue_catalog_table", "this").body
    assert "lookup(local.projection_parameters, each.key, {})" in tm.expression(table["parameters"])
    variables = tm.variables_of(CATALOG)
    assert variables["hourly_projected_tables"]["default"] == ["stream_index"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", variables["partition_projection_start_date"]["default"])
    # What the projection enumerates is where the stream writes: dt=YYYY-MM-DD/hour=HH (two
    # digits, from date_format "HH"), and the table's partition keys are exactly (dt, hour).
    tables = json.loads((tm.PROJECT_ROOT / "include" / "sql" / "tables.json").read_text())["tables"]
    assert [k["name"] for k in tables["stream_index"]["partition_keys"]] == ["dt", "hour"]
    transforms = (tm.PROJECT_ROOT / "spark_apps" / "streaming" / "transforms.py").read_text()
    assert 'F.date_format("event_time", "HH").alias("hour")' in transforms
    writer = (tm.PROJECT_ROOT / "spark_apps" / "streaming" / "writer.py").read_text()
    assert 'f"{table_path}/dt={date}/hour={hour}/' in writer


# --- 8. CloudTrail ----------------------------------------------------------------------------------------


def test_cloudtrail_records_every_region_and_the_card_data_buckets_objects():
    trail = tm.block(AUDIT, "aws_cloudtrail", "this").body
    assert trail["is_multi_region_trail"] is True
    assert trail["include_global_service_events"] is True
    assert trail["enable_log_file_validation"] is True
    assert trail["enable_logging"] is True
    assert tm.expression(trail["kms_key_id"]) == "var.logs_kms_key_arn"
    assert tm.expression(trail["s3_bucket_name"]) == "var.bucket_name"
    assert tm.expression(trail["cloud_watch_logs_group_arn"]) == "${aws_cloudwatch_log_group.trail.arn}:*"
    [selector] = tm.as_list(trail["event_selector"])
    assert (selector["read_write_type"], selector["include_management_events"]) == ("All", True)
    [data_resource] = [d["data_resource"] for d in tm.as_list(selector["dynamic"]) if "data_resource" in d]
    [content] = tm.as_list(data_resource["content"])
    assert content["type"] == "AWS::S3::Object"
    assert tm.expression(content["values"]) == '[for arn in var.data_event_bucket_arns : "${arn}/"]'
    for env in tm.ENV_NAMES:
        modules = tm.modules_of(tm.ENVS_ROOT / env)
        audit = modules["audit"]
        assert _expressions(audit["data_event_bucket_arns"]) == [
            "module.lake.bucket_arns.raw",
            "module.lake.bucket_arns.quarantine",
        ]
        assert tm.expression(audit["bucket_name"]) == "module.lake.cloudtrail_bucket_name"
        assert tm.expression(audit["logs_kms_key_arn"]) == "module.kms.key_arns.logs"
        assert tm.expression(audit["trail_name"]) == tm.expression(modules["lake"]["cloudtrail_name"]) == "local.trail_name"
    # The trail's role may write to its own log group only.
    [deliver] = tm.policy_statements(tm.block(AUDIT, "aws_iam_policy_document", "trail_logs", kind="data"))
    assert deliver["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert deliver["resources"] == ["${aws_cloudwatch_log_group.trail.arn}:log-stream:*"]


def test_the_trail_bucket_admits_exactly_the_trail_and_the_logs_key_admits_cloudtrail():
    lake_locals = tm.locals_of(LAKE)
    assert lake_locals["buckets"]["cloudtrail"]["kms_key_arn"] == "${var.logs_kms_key_arn}"
    assert lake_locals["cloudtrail_arn"] == (
        "arn:${data.aws_partition.current.partition}:cloudtrail:${data.aws_region.current.id}:"
        "${data.aws_caller_identity.current.account_id}:trail/${var.cloudtrail_name}"
    )
    statements = _statements(LAKE, "bucket")
    acl, delivery = statements["AllowCloudTrailAclCheck"], statements["AllowCloudTrailLogDelivery"]
    assert acl["actions"] == ["s3:GetBucketAcl"] and delivery["actions"] == ["s3:PutObject"]
    assert delivery["resources"] == [
        "${local.all_buckets[each.key].arn}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
    ]
    for statement in (acl, delivery):
        assert tm.as_list(statement["principals"])[0]["identifiers"] == ["cloudtrail.amazonaws.com"]
        conditions = {c["variable"]: c for c in tm.as_list(statement["condition"])}
        assert conditions["aws:SourceArn"]["values"] == ["${local.cloudtrail_arn}"]
    # Digest files are SSE-S3 whatever the trail's key: only the trail bucket admits AES256.
    [header] = tm.as_list(statements["DenyNonKmsEncryptionHeader"]["condition"])
    assert tm.expression(header["values"]) == 'each.key == "cloudtrail" ? ["aws:kms", "AES256"] : ["aws:kms"]'
    assert "cloudtrail" in tm.variables_of(KMS)["domains"]["default"]["logs"]["services"]
    key_statements = _statements(KMS, "key")
    encrypt = key_statements["AllowCloudTrailToEncryptLogs"]
    assert encrypt["actions"] == ["kms:GenerateDataKey*"]
    conditions = {c["variable"]: c for c in tm.as_list(encrypt["condition"])}
    assert conditions["kms:EncryptionContext:aws:cloudtrail:arn"]["values"] == [
        "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
    ]
    assert key_statements["AllowCloudTrailToDescribeKey"]["actions"] == ["kms:DescribeKey"]


# --- 9. separate EMR job roles; only the orchestrator publishes -------------------------------------------------


def _base36(text: str) -> str:
    """The AWS CLI's encoding of a role name (awscli/customizations/emrcontainers/base36.py)."""
    number = 0
    for char in text:
        number = number * 256 + ord(char)
    digits = ""
    while number:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return digits or "0"


@pytest.mark.parametrize("env", tm.ENV_NAMES)
def test_each_job_role_trusts_only_its_own_service_accounts(env):
    names = tm.locals_of(COMPUTE)["job_role_names"]
    assert names == {"ingest": "${var.name_prefix}-emr-ingest", "transform": "${var.name_prefix}-emr-transform"}
    values = tm.parse_file(tm.ENVS_ROOT / env / "terraform.tfvars")["emr_job_role_name_base36"]
    for family, name in names.items():
        assert values[family] == _base36(name.replace("${var.name_prefix}", f"payments-{env}")), family
    assert tm.expression(tm.modules_of(tm.ENVS_ROOT / env)["compute"]["job_role_name_base36"]) == "var.emr_job_role_name_base36"
    role = tm.block(COMPUTE, "aws_iam_role", "job").body
    assert tm.expression(role["for_each"]) == "local.job_role_names"
    assert tm.expression(role["assume_role_policy"]) == "data.aws_iam_policy_document.job_assume[each.key].json"


def test_only_the_ingest_role_reads_raw_drops_and_the_token_key():
    ingest = _statements(COMPUTE, "ingest_job")
    transform = _statements(COMPUTE, "transform_job")
    assert ingest["ReadRawDrops"]["actions"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert ingest["ReadRawDrops"]["resources"] == ["${var.bucket_arns.raw}/*"]
    assert ingest["ReadPanTokenKey"]["resources"] == ["${var.pan_token_secret_arn}"]
    assert ingest["DecryptPanTokenKey"]["resources"] == ["${var.kms_key_arns.secrets}"]
    text = str(transform)
    for forbidden in (
        "pan_token_secret_arn",
        "kms_key_arns.secrets",
        "secretsmanager:",
        "kafka-cluster:",
        "${var.bucket_arns.raw}/*",
    ):
        assert forbidden not in text, forbidden
    # The transform jobs read only the side sources without card data, never a gateway drop.
    side = transform["ReadRawSideSources"]
    assert side["actions"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert (
        tm.expression(side["resources"])
        == '[for prefix in var.transform_raw_read_prefixes : "${var.bucket_arns.raw}/${prefix}*"]'
    )
    from spark_apps.sources import SIDE_SOURCES, TRANSACTION_SOURCES

    prefixes = tm.variables_of(COMPUTE)["transform_raw_read_prefixes"]["default"]
    assert prefixes == ["raw/settlements/", "raw/merchants/", "raw/users/", "raw/fraud_labels/"]
    side_names = {s.name for s in SIDE_SOURCES} | {"fraud_labels"}
    for prefix in prefixes:
        assert prefix.split("/")[1] in side_names, prefix
    for source in TRANSACTION_SOURCES:
        assert not any(f"raw/{source.name}/".startswith(p) for p in prefixes), source.name
    # Only these two documents are attached to the two roles.
    for name in ("ingest_job", "transform_job"):
        policy = tm.block(COMPUTE, "aws_iam_role_policy", name).body
        assert tm.expression(policy["policy"]) == f"data.aws_iam_policy_document.{name}.json"
        family = name.removesuffix("_job")
        assert tm.expression(policy["role"]) == f'aws_iam_role.job["{family}"].id'


@pytest.mark.parametrize("document", ["ingest_job", "transform_job"])
def test_no_job_role_may_write_the_catalog_or_a_quality_result(document):
    from payments_platform.publishing import QUALITY_RESULT_FILE

    statements = _statements(COMPUTE, document)
    quality = statements["DenyWritingQualityResults"]
    assert (quality["effect"], quality["actions"]) == ("Deny", ["s3:PutObject"])
    assert tm.expression(quality["resources"]) == "local.quality_result_arns"
    assert tm.locals_of(COMPUTE)["quality_result_arns"] == [
        "${var.bucket_arns.processed}/*/${var.quality_result_file}",
        "${var.bucket_arns.processed}/${var.quality_result_file}",
    ]
    assert tm.variables_of(COMPUTE)["quality_result_file"]["default"] == QUALITY_RESULT_FILE == "_quality.json"
    catalog = statements["DenyCatalogWrites"]
    assert catalog["effect"] == "Deny"
    assert tm.expression(catalog["actions"]) == "local.glue_write_actions"
    assert tm.expression(catalog["resources"]) == "var.glue_resource_arns"
    write_actions = set(tm.locals_of(COMPUTE)["glue_write_actions"])
    publishing = _statements(AIRFLOW, "execution")["PublishPartitions"]["actions"]
    assert {a for a in publishing if not a.startswith(("glue:Get", "glue:BatchGet"))} <= write_actions
    # Nothing allowed on Glue but reads.
    for sid, statement in statements.items():
        if statement.get("effect", "Allow") == "Allow":
            actions = statement["actions"]
            if isinstance(actions, str):
                assert tm.expression(actions) == "local.glue_read_actions", sid
                assert all(
                    a.startswith("glue:Get") or a.startswith("glue:BatchGet") for a in tm.locals_of(COMPUTE)["glue_read_actions"]
                )
            else:
                assert not any(a.startswith("glue:") for a in actions), sid


def test_both_job_roles_are_outputs_and_mwaa_may_start_jobs_with_either():
    outputs = tm.outputs_of(COMPUTE)
    assert tm.expression(outputs["ingest_job_role_arn"]["value"]) == 'aws_iam_role.job["ingest"].arn'
    assert tm.expression(outputs["transform_job_role_arn"]["value"]) == 'aws_iam_role.job["transform"].arn'
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        assert tm.expression(tm.outputs_of(directory)["emr_job_role_arns"]["value"]) == "module.compute.job_role_arns"
        assert _expressions(tm.modules_of(directory)["airflow"]["emr_job_execution_role_arns"]) == [
            "module.compute.ingest_job_role_arn",
            "module.compute.transform_job_role_arn",
        ]


# --- 10. retention: raw drops, PAN-scan failures, pinned MWAA artifacts -------------------------------------------


def _lake_default(name: str):
    return tm.variables_of(LAKE)[name]["default"]


def _lake_value(value, role: str, rule_value=None):
    """Evaluate the few expression forms the lake's lifecycle uses; anything else fails loudly."""
    if not isinstance(value, str) or not value.startswith("${"):
        return value  # a literal
    expression = tm.expression(value)
    if expression == "rule.value":
        return rule_value
    if match := re.fullmatch(r"var\.(\w+)", expression):
        return _lake_default(match.group(1))
    if match := re.fullmatch(r"lookup\(local\.(\w+), each\.key, var\.(\w+)\)", expression):
        table = tm.locals_of(LAKE)[match.group(1)]
        return _lake_value(table[role], role) if role in table else _lake_default(match.group(2))
    if match := re.fullmatch(r"local\.(\w+)\[each\.key\]", expression):
        return _lake_value(tm.locals_of(LAKE)[match.group(1)][role], role)
    if match := re.fullmatch(r"\[(.*)\]", expression):
        inner = match.group(1).strip()
        return [_lake_value("${" + inner + "}", role, rule_value)] if inner else []
    if re.fullmatch(r"\d+", expression):
        return int(expression)
    raise AssertionError(f"lifecycle expression not understood: {expression}")


def _lake_for_each(expression: str, role: str) -> list:
    if match := re.fullmatch(r'each\.key == "([\w-]+)" \? (.+?) : (.+)', expression):
        chosen = match.group(2) if role == match.group(1) else match.group(3)
        return _lake_value("${" + chosen + "}", role)
    if match := re.fullmatch(r"contains\(keys\(local\.(\w+)\), each\.key\) \? \[local\.\1\[each\.key\]\] : \[\]", expression):
        table = tm.locals_of(LAKE)[match.group(1)]
        return [_lake_value(table[role], role)] if role in table else []
    raise AssertionError(f"for_each not understood: {expression}")


def _lifecycle(role: str) -> list[dict]:
    """The lifecycle rules module lake gives the bucket of ``role``, with days evaluated."""
    body = tm.block(LAKE, "aws_s3_bucket_lifecycle_configuration", "this").body
    assert tm.expression(body["for_each"]) == "local.buckets" and role in tm.locals_of(LAKE)["buckets"]
    instances = [(rule, None, None) for rule in tm.as_list(body.get("rule"))]
    for dynamic in tm.as_list(body.get("dynamic")):
        spec = dynamic["rule"]
        [content] = tm.as_list(spec["content"])
        for index, item in enumerate(_lake_for_each(tm.expression(spec["for_each"]), role)):
            instances.append((content, item, index))
    rules = []
    for rule, value, index in instances:
        [filter_] = tm.as_list(rule["filter"])
        and_ = tm.as_list(filter_.get("and"))
        prefix = and_[0]["prefix"] if and_ else filter_.get("prefix", "")
        expiration = tm.as_list(rule.get("expiration"))
        noncurrent = tm.as_list(rule.get("noncurrent_version_expiration"))
        rules.append(
            {
                "id": rule["id"]
                .replace('${trimsuffix(rule.value, "/")}', str(value).rstrip("/"))
                .replace("${rule.key}", str(index)),
                "prefix": _lake_value(prefix, role, value) or "",
                "tags": and_[0]["tags"] if and_ else None,
                "expire_days": _lake_value(expiration[0]["days"], role, value)
                if expiration and "days" in expiration[0]
                else None,
                "noncurrent_days": _lake_value(noncurrent[0]["noncurrent_days"], role, value) if noncurrent else None,
            }
        )
    return rules


def _applies(rule: dict, key: str) -> bool:
    return rule["tags"] is None and key.startswith(rule["prefix"])


def test_raw_drops_and_their_old_versions_expire_within_days():
    rules = _lifecycle("raw")
    expiring = {r["id"]: r for r in rules if r["expire_days"] is not None or r["noncurrent_days"] is not None}
    assert set(expiring) == {"expire-objects", "expire-noncurrent-versions"}
    assert (expiring["expire-objects"]["prefix"], expiring["expire-objects"]["expire_days"]) == ("", 7)
    assert (expiring["expire-noncurrent-versions"]["prefix"], expiring["expire-noncurrent-versions"]["noncurrent_days"]) == (
        "",
        1,
    )
    assert tm.locals_of(LAKE)["object_expiry_days"]["raw"] == "${var.raw_retention_days}"
    assert tm.locals_of(LAKE)["noncurrent_version_days"]["raw"] == "${var.raw_noncurrent_version_days}"
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        assert tm.expression(tm.modules_of(directory)["lake"]["raw_retention_days"]) == "var.raw_retention_days"
        assert tm.variables_of(directory)["raw_retention_days"]["default"] == 7


def test_raw_retention_is_refused_beyond_two_weeks(tmp_path):
    config = _variable_blocks(LAKE, ["raw_retention_days", "raw_noncurrent_version_days"])
    assert _plan_variables(tmp_path / "ok", config, "raw_retention_days = 14\n").returncode == 0
    for name, tfvars in (
        ("year", "raw_retention_days = 365\n"),
        ("zero", "raw_retention_days = 0\n"),
        ("old", "raw_noncurrent_version_days = 30\n"),
    ):
        result = _plan_variables(tmp_path / name, config, tfvars)
        assert result.returncode != 0 and "card data" in _one_line(result), name


def test_versions_failing_the_pan_scan_expire_after_a_day():
    [rule] = [r for r in _lifecycle("processed") if r["id"] == "expire-pan-scan-failures"]
    assert rule["prefix"] == "indexes/"
    assert rule["tags"] == {"${(var.pan_scan_failed_tag.key)}": "${var.pan_scan_failed_tag.value}"}
    assert _lake_default("pan_scan_failed_tag") == {"key": "payments-lifecycle", "value": "pan-scan-failed"}
    assert (rule["expire_days"], rule["noncurrent_days"]) == (1, 1)
    superseded = _lake_default("superseded_tag")
    assert superseded["key"] == _lake_default("pan_scan_failed_tag")["key"] and superseded["value"] == "superseded"
    assert tm.expression(tm.outputs_of(LAKE)["pan_scan_failed_tag"]["value"]) == "var.pan_scan_failed_tag"
    assert not any(r["id"] == "expire-pan-scan-failures" for r in _lifecycle("raw"))


def test_pinned_mwaa_artifacts_keep_their_old_versions():
    from scripts import deploy

    rules = _lifecycle("artifacts")
    for key in deploy.PINNED_ARTIFACTS.values():
        touching = [r["id"] for r in rules if _applies(r, key) and (r["expire_days"] or r["noncurrent_days"])]
        assert touching == [], key
    # Whatever the deploy rewrites wholesale does not pile up old versions forever.
    for key in (
        deploy.DAGS_PREFIX + "payments_daily_index.py",
        deploy.SPARK_APPS_ZIP_KEY,
        deploy.INCLUDE_PREFIX + "contracts/x.yaml",
    ):
        assert [r["noncurrent_days"] for r in rules if _applies(r, key) and r["noncurrent_days"]] == [30], key
    for key in (*deploy.MANAGED_PREFIXES, deploy.SPARK_APPS_ZIP_KEY):
        assert any(key.startswith(p) for p in _lake_default("artifact_unpinned_prefixes")), key
    # Every other data bucket still expires noncurrent versions.
    for role in ("processed", "quarantine", "checkpoints", "athena-results", "cloudtrail"):
        assert [r["noncurrent_days"] for r in _lifecycle(role) if r["id"] == "expire-noncurrent-versions"] == [30], role


def test_mwaa_runs_the_uploaded_artifact_versions_without_local_tfvars():
    """The versions come from the bucket (the current version of each pinned key), so a fresh
    checkout applies what the last deploy uploaded; explicit versions still win (rollback)."""
    from scripts import deploy

    lookup = tm.block(AIRFLOW, "aws_s3_object", "pinned", kind="data").body
    assert tm.expression(lookup["for_each"]) == (
        "var.pin_uploaded_artifacts ? {for name, key in local.pinned_artifact_keys : name => key "
        "if lookup(var.artifact_versions, name, null) == null} : {}"
    )
    assert (tm.expression(lookup["bucket"]), tm.expression(lookup["key"])) == ("local.artifacts_bucket_name", "each.value")
    airflow_locals = tm.locals_of(AIRFLOW)
    assert (
        tm.expression(airflow_locals["pinned_artifact_keys"])
        == '{for name, key in local.artifact_keys : name => key if name != "dags"}'
    )
    pinned = {name: key for name, key in airflow_locals["artifact_keys"].items() if name != "dags"}
    assert pinned == deploy.PINNED_ARTIFACTS
    assert "try(data.aws_s3_object.pinned[name].version_id, null)" in tm.expression(airflow_locals["artifact_versions"])
    environment = tm.block(AIRFLOW, "aws_mwaa_environment", "this").body
    for name in pinned:
        assert tm.expression(environment[f"{name}_s3_object_version"]) == f"local.artifact_versions.{name}"
        assert tm.expression(environment[f"{name}_s3_path"]) == (
            f"local.artifact_versions.{name} == null ? null : local.artifact_keys.{name}"
        )
    assert tm.variables_of(AIRFLOW)["pin_uploaded_artifacts"]["default"] is True
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        assert tm.expression(tm.modules_of(directory)["airflow"]["pin_uploaded_artifacts"]) == "var.pin_uploaded_artifacts"
        assert tm.variables_of(directory)["pin_uploaded_artifacts"]["default"] is True
        assert "artifact_versions" not in tm.parse_file(directory / "terraform.tfvars")


def test_real_account_tfvars_stay_out_of_git_and_the_examples_in():
    git = shutil.which("git")
    if git is None or not (tm.PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(relative: str) -> bool:
        return subprocess.run([git, "check-ignore", "-q", "--no-index", relative], cwd=tm.PROJECT_ROOT).returncode == 0

    for env in tm.ENV_NAMES:
        base = f"infra/terraform/envs/{env}"
        assert ignored(f"{base}/account.auto.tfvars")
        assert ignored(f"{base}/artifacts.auto.tfvars.json")
        assert not ignored(f"{base}/account.auto.tfvars.example")
        assert not ignored(f"{base}/terraform.tfvars")


# --- item 8: the Cluster Autoscaler runs --------------------------------------------------


def test_the_cluster_autoscaler_is_deployed_under_the_service_account_its_role_trusts():
    """The IRSA role alone scales nothing: the chart is released (pinned) into kube-system, under
    the service account the role's trust policy names, annotated with that role, discovering this
    cluster's groups, after the nodes, its permissions and the apply runner's cluster access."""
    release = tm.block(COMPUTE, "helm_release", "cluster_autoscaler")
    body = release.body
    assert (body["repository"], body["chart"], body["namespace"]) == (
        "https://kubernetes.github.io/autoscaler",
        "cluster-autoscaler",
        "kube-system",
    )
    assert tm.expression(body["version"]) == "var.cluster_autoscaler_chart_version"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tm.variables_of(COMPUTE)["cluster_autoscaler_chart_version"]["default"])
    values = {s["name"]: tm.expression(s["value"]) for s in tm.as_list(body["set"])}
    [trusted] = [
        value
        for statement in tm.policy_statements(tm.block(COMPUTE, "aws_iam_policy_document", "autoscaler_assume", kind="data"))
        for condition in tm.as_list(statement["condition"])
        if condition["variable"].endswith(":sub")
        for value in condition["values"]
    ]
    assert trusted == f"system:serviceaccount:kube-system:{values['rbac.serviceAccount.name']}"
    assert values["rbac.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn"] == "aws_iam_role.autoscaler.arn"
    assert values["autoDiscovery.clusterName"] == "local.cluster_name"
    assert values["awsRegion"] == "local.region"
    assert values["image.tag"] == "v${var.kubernetes_version}.${var.cluster_autoscaler_patch}"
    assert {
        "aws_eks_node_group.spark",
        "aws_iam_role_policy.autoscaler",
        "aws_eks_access_policy_association.admin",
    } <= set(_expressions(body["depends_on"]))


def test_each_env_gives_helm_the_clusters_access():
    for env in tm.ENV_NAMES:
        directory = tm.ENVS_ROOT / env
        providers = {name: body for entry in tm.directory_document(directory)["provider"] for name, body in entry.items()}
        [kubernetes] = tm.as_list(providers["helm"]["kubernetes"])
        assert (
            tm.expression(kubernetes["host"])
            == tm.expression(providers["kubernetes"]["host"])
            == "module.compute.cluster_endpoint"
        )
        assert kubernetes["exec"] == providers["kubernetes"]["exec"]
        required = tm.parse_file(directory / "versions.tf")["terraform"][0]["required_providers"][0]
        assert required["helm"]["source"] == "hashicorp/helm"


def test_mwaa_writes_the_quarantine_verdict_and_tags_its_versions():
    """The orchestrator writes `_quality.json` for the quarantine table too (the job roles may not),
    and tags rejected / superseded quarantine versions: on that key and those actions only."""
    from payments_platform.quality_gate import QUALITY_RESULT_FILE

    statements = _statements(AIRFLOW, "execution")
    assert tm.variables_of(AIRFLOW)["quality_result_file"]["default"] == QUALITY_RESULT_FILE
    write = statements["PublishQuarantineVersions"]
    assert (write["actions"], write["resources"]) == (
        ["s3:PutObject"],
        ["${var.bucket_arns.quarantine}/*/${var.quality_result_file}"],
    )
    tag = statements["TagQuarantineVersions"]
    assert (tag["actions"], tag["resources"]) == (
        ["s3:GetObjectTagging", "s3:PutObjectTagging"],
        ["${var.bucket_arns.quarantine}/*"],
    )


def test_each_env_names_the_mwaa_environment_the_deploy_creates_pools_in():
    deploy_source = (tm.PROJECT_ROOT / "scripts" / "deploy.py").read_text()
    assert 'outputs.get("mwaa_environment_name")' in deploy_source
    for env in tm.ENV_NAMES:
        output = tm.outputs_of(tm.ENVS_ROOT / env)["mwaa_environment_name"]
        assert tm.expression(output["value"]) == "module.airflow.environment_name"
