"""HCL assertions over infra/terraform (python-hcl2): the PCI-DSS-minded invariants.

Every bucket is KMS-encrypted, versioned, public-blocked, TLS-only and access-logged;
no IAM policy grants "*" on S3, Glue, KMS or MSK resources; keys rotate; MSK needs IAM
auth over TLS; MWAA is private with all logs on; MWAA reaches MSK on 9098 by security group
and may administer only the four platform topics; the EMR job role's consumer groups are
the stream job's; MWAA's Kafka connection is a KMS-encrypted secret under the connections
prefix that the execution role may read, and that the Amazon secrets backend and the Kafka
provider turn into an MSK IAM connection.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import re
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from tests.infra import terraform_model as tm

LAKE = tm.MODULES_ROOT / "lake"

# Services whose resources must always be named (bucket/table/key/cluster/topic ARNs).
SCOPED_SERVICES = frozenset({"s3", "glue", "kms", "kafka", "kafka-cluster"})
# Actions that have no resource type at all: IAM only accepts "*" for them.
ACTIONS_WITHOUT_RESOURCES = frozenset(
    {
        "s3:GetAccountPublicAccessBlock",
        "cloudwatch:PutMetricData",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLaunchConfigurations",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:DescribeTags",
        "ec2:DescribeImages",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:GetInstanceTypesFromInstanceRequirements",
        "eks:DescribeNodegroup",
    }
)
# An ARN whose resource part is only a wildcard: arn:aws:s3:::*, arn:aws:glue:r:a:*, ...
UNSCOPED_ARN = re.compile(r"^arn:[^:]*:(s3|glue|kms|kafka|kafka-cluster):[^:]*:[^:]*:\*$")


# --- S3 ------------------------------------------------------------------------------


def _bucket_resources() -> dict[str, tm.Block]:
    buckets = {b.name: b for b in tm.all_blocks("aws_s3_bucket")}
    assert buckets, "no aws_s3_bucket found"
    assert {b.directory for b in buckets.values()} == {LAKE}, "every bucket must be declared in modules/lake"
    return buckets


def test_every_bucket_resource_is_covered_by_the_shared_bucket_settings():
    buckets = _bucket_resources()
    lake_locals = tm.locals_of(LAKE)
    # all_buckets is the map the shared settings iterate: it must include every bucket resource.
    referenced = set(re.findall(r"aws_s3_bucket\.(\w+)", tm.expression(lake_locals["all_buckets"])))
    assert referenced == set(buckets)
    assert tm.expression(buckets["this"].body["for_each"]) == "local.buckets"
    names = tm.expression(lake_locals["bucket_names"])
    assert "in local.buckets" in names and "logs =" in names, "bucket_names must span local.buckets plus the logs bucket"
    for resource_type in (
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_ownership_controls",
    ):
        [settings] = [b for b in tm.blocks(LAKE) if b.type == resource_type]
        assert tm.expression(settings.body["for_each"]) == "local.bucket_names", resource_type
        assert tm.expression(settings.body["bucket"]) == "local.all_buckets[each.key].id", resource_type


def test_the_lake_has_the_eight_bucket_roles():
    roles = set(tm.locals_of(LAKE)["buckets"]) | {"logs"}
    assert roles == {"raw", "processed", "quarantine", "checkpoints", "artifacts", "athena-results", "cloudtrail", "logs"}


def test_every_bucket_is_encrypted_with_a_customer_managed_key():
    sse = tm.block(LAKE, "aws_s3_bucket_server_side_encryption_configuration", "this")
    [rule] = tm.as_list(sse.body["rule"])
    [default] = tm.as_list(rule["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    assert tm.expression(default["kms_master_key_id"]) == "local.all_kms_key_arns[each.key]"
    assert rule["bucket_key_enabled"] is True
    lake_locals = tm.locals_of(LAKE)
    key_map = tm.expression(lake_locals["all_kms_key_arns"])
    assert "bucket.kms_key_arn" in key_map and "logs = var.logs_kms_key_arn" in key_map
    for role, spec in lake_locals["buckets"].items():
        assert re.fullmatch(r"\$\{var\.\w+_kms_key_arn\}", spec["kms_key_arn"]), role


def test_kms_key_inputs_are_mandatory_everywhere():
    """Payment data is never stored unencrypted by omission: no KMS variable has a default."""
    found = 0
    for directory in tm.all_directories():
        for name, spec in tm.variables_of(directory).items():
            if "kms_key_arn" in name:
                found += 1
                assert "default" not in spec, f"{directory.name}: variable {name} must not be optional"
                assert spec.get("nullable") is not True, f"{directory.name}: variable {name} must not be nullable"
    assert found >= 8


def test_every_bucket_is_versioned():
    versioning = tm.block(LAKE, "aws_s3_bucket_versioning", "this")
    [config] = tm.as_list(versioning.body["versioning_configuration"])
    assert config["status"] == "Enabled"


def test_every_bucket_blocks_public_access_and_disables_acls():
    block = tm.block(LAKE, "aws_s3_bucket_public_access_block", "this").body
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block[flag] is True, flag
    [rule] = tm.as_list(tm.block(LAKE, "aws_s3_bucket_ownership_controls", "this").body["rule"])
    assert rule["object_ownership"] == "BucketOwnerEnforced"


def test_every_bucket_policy_denies_plain_http_and_old_tls():
    document = tm.block(LAKE, "aws_iam_policy_document", "bucket", kind="data")
    assert tm.expression(document.body["for_each"]) == "local.bucket_names"
    statements = {s["sid"]: s for s in tm.policy_statements(document)}
    insecure = statements["DenyInsecureTransport"]
    assert insecure["effect"] == "Deny" and insecure["actions"] == ["s3:*"]
    [condition] = tm.as_list(insecure["condition"])
    assert (condition["test"], condition["variable"], condition["values"]) == ("Bool", "aws:SecureTransport", ["false"])
    old_tls = statements["DenyOutdatedTls"]
    [condition] = tm.as_list(old_tls["condition"])
    assert (condition["variable"], condition["values"]) == ("s3:TlsVersion", ["1.2"])
    policy = tm.block(LAKE, "aws_s3_bucket_policy", "this")
    assert tm.expression(policy.body["policy"]) == "data.aws_iam_policy_document.bucket[each.key].json"


def test_every_data_bucket_logs_access_to_the_logs_bucket():
    logging = tm.block(LAKE, "aws_s3_bucket_logging", "this").body
    assert tm.expression(logging["for_each"]) == "local.buckets"
    assert tm.expression(logging["target_bucket"]) == "aws_s3_bucket.logs.id"


def test_superseded_index_versions_expire_after_the_retention_period():
    lifecycle = tm.block(LAKE, "aws_s3_bucket_lifecycle_configuration", "this").body
    dynamic_rules = [d["rule"] for d in tm.as_list(lifecycle["dynamic"]) if "rule" in d]
    # Noncurrent versions: every bucket but artifacts keeps them index_retention_days, except
    # those listed in local.noncurrent_version_days (raw: see test_terraform_release.py).
    [noncurrent_rule] = [r for r in dynamic_rules if tm.as_list(r["content"])[0]["id"] == "expire-noncurrent-versions"]
    assert tm.expression(noncurrent_rule["for_each"]) == (
        'each.key == "artifacts" ? [] : [lookup(local.noncurrent_version_days, each.key, var.index_retention_days)]'
    )
    [noncurrent] = tm.as_list(tm.as_list(noncurrent_rule["content"])[0]["noncurrent_version_expiration"])
    assert tm.expression(noncurrent["noncurrent_days"]) == "rule.value"
    assert set(tm.locals_of(LAKE)["noncurrent_version_days"]) == {"raw"}
    [dynamic] = [r for r in dynamic_rules if tm.as_list(r["content"])[0]["id"] == "expire-superseded-index-versions"]
    assert tm.expression(dynamic["for_each"]) == 'each.key == "processed" ? [1] : []'
    [superseded] = tm.as_list(dynamic["content"])
    [filter_] = tm.as_list(superseded["filter"])
    [and_] = tm.as_list(filter_["and"])
    assert and_["prefix"] == "indexes/"
    assert "var.superseded_tag.key" in str(and_["tags"])
    [expiration] = tm.as_list(superseded["expiration"])
    assert tm.expression(expiration["days"]) == "var.index_retention_days"
    assert tm.variables_of(LAKE)["index_retention_days"]["default"] == 30


def test_only_the_streams_sent_markers_expire_in_the_checkpoints_bucket():
    """The stream stops deleting markers on S3 (spark_apps.kafka.sink); the bucket expires them. A
    prefix above _sent/ would expire the checkpoint's offsets and state: the variable refuses it."""
    lifecycle = tm.block(LAKE, "aws_s3_bucket_lifecycle_configuration", "this").body
    [dynamic] = [d["rule"] for d in tm.as_list(lifecycle["dynamic"]) if "rule" in d and "sent_marker" in d["rule"]["for_each"]]
    assert tm.expression(dynamic["for_each"]) == 'each.key == "checkpoints" ? var.sent_marker_prefixes : []'
    [markers] = tm.as_list(dynamic["content"])
    [filter_] = tm.as_list(markers["filter"])
    assert tm.expression(filter_["prefix"]) == "rule.value"
    [expiration] = tm.as_list(markers["expiration"])
    assert tm.expression(expiration["days"]) == "var.sent_marker_retention_days"
    variables = tm.variables_of(LAKE)
    assert variables["sent_marker_prefixes"]["default"] == ["checkpoints/stream_index/_sent/"]
    assert 'endswith(prefix, "/_sent/")' in str(variables["sent_marker_prefixes"]["validation"])
    assert variables["sent_marker_retention_days"]["default"] == 7


# --- IAM -------------------------------------------------------------------------------


def _key_policy_documents() -> set[tuple[str, str]]:
    used = set()
    for key in tm.all_blocks("aws_kms_key"):
        match = re.match(r"data\.aws_iam_policy_document\.(\w+)", tm.expression(key.body["policy"]))
        assert match, f"{key.address}: key policy must come from an aws_iam_policy_document"
        used.add((str(key.directory), match.group(1)))
    return used


def _strings(value) -> list[str]:
    """A list attribute, or one expression (for example a ``for`` comprehension) as a single item."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def unscoped_grants(statements: list[dict]) -> list[str]:
    """Allow statements granting S3/Glue/KMS/MSK actions on "*" or on a whole service."""
    problems = []
    for statement in statements:
        if statement.get("effect", "Allow") != "Allow":
            continue
        sid = statement.get("sid", "<no sid>")
        actions = _strings(statement.get("actions"))
        scoped_actions = [a for a in actions if a == "*" or a.split(":")[0] in SCOPED_SERVICES]
        for action in scoped_actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{sid}: action {action}")
        needing_resources = [a for a in scoped_actions if a not in ACTIONS_WITHOUT_RESOURCES]
        if not needing_resources:
            continue
        for resource in _strings(statement.get("resources")):
            if resource == "*" or UNSCOPED_ARN.match(resource) or resource == "arn:aws:s3:::*":
                problems.append(f"{sid}: {', '.join(needing_resources)} on {resource}")
    return problems


def _identity_policy_documents() -> list[tm.Block]:
    key_policies = _key_policy_documents()
    documents = [
        document
        for document in tm.all_blocks("aws_iam_policy_document", kind="data")
        if (str(document.directory), document.name) not in key_policies
    ]
    assert len(documents) >= 10
    return documents


@pytest.mark.parametrize("document", _identity_policy_documents(), ids=lambda d: d.address)
def test_no_policy_grants_wildcards_on_s3_glue_kms_or_msk(document):
    assert unscoped_grants(tm.policy_statements(document)) == []


@pytest.mark.parametrize("document", tm.all_blocks("aws_iam_policy_document", kind="data"), ids=lambda d: d.address)
def test_every_statement_has_a_unique_sid(document):
    sids = [s.get("sid") for s in tm.policy_statements(document)]
    assert all(sids), f"statement without sid in {document.address}"
    assert len(sids) == len(set(sids))


@pytest.mark.parametrize("document", _identity_policy_documents(), ids=lambda d: d.address)
def test_wildcard_resources_only_for_actions_without_resource_types(document):
    for statement in tm.policy_statements(document):
        if statement.get("effect", "Allow") == "Allow" and "*" in _strings(statement.get("resources")):
            assert set(statement["actions"]) <= ACTIONS_WITHOUT_RESOURCES, statement["sid"]


def test_the_wildcard_checker_catches_unscoped_grants():
    bad = tm.parse_hcl(
        """
        data "aws_iam_policy_document" "bad" {
          statement {
            sid       = "AllObjects"
            actions   = ["s3:GetObject"]
            resources = ["*"]
          }
          statement {
            sid       = "AnyTable"
            actions   = ["glue:GetTable"]
            resources = ["arn:aws:glue:eu-west-1:123456789012:*"]
          }
          statement {
            sid       = "AllKafka"
            actions   = ["kafka-cluster:*"]
            resources = ["${var.cluster_arn}"]
          }
          statement {
            sid       = "Fine"
            actions   = ["kms:Decrypt"]
            resources = ["${var.key_arn}"]
          }
        }
        """
    )
    document = tm.Block(
        tm.MODULES_ROOT, "data", "aws_iam_policy_document", "bad", bad["data"][0]["aws_iam_policy_document"]["bad"]
    )
    problems = unscoped_grants(tm.policy_statements(document))
    assert problems == [
        "AllObjects: s3:GetObject on *",
        "AnyTable: glue:GetTable on arn:aws:glue:eu-west-1:123456789012:*",
        "AllKafka: action kafka-cluster:*",
    ]


def test_policies_are_attached_from_policy_documents_only():
    """No inline JSON policies: every policy is an aws_iam_policy_document with sids."""
    for resource_type, attribute in (
        ("aws_iam_role_policy", "policy"),
        ("aws_iam_role", "assume_role_policy"),
        ("aws_s3_bucket_policy", "policy"),
        ("aws_sns_topic_policy", "policy"),
        ("aws_kms_key", "policy"),
        ("aws_cloudwatch_log_resource_policy", "policy_document"),
    ):
        for resource in tm.all_blocks(resource_type):
            assert tm.expression(resource.body[attribute]).startswith("data.aws_iam_policy_document."), resource.address


def test_irsa_roles_trust_only_their_service_accounts():
    compute = tm.MODULES_ROOT / "compute"
    for name, subject in (
        (
            "job_assume",
            "system:serviceaccount:${var.emr_namespace}:emr-containers-sa-*-*-${local.account_id}-${var.job_role_name_base36[each.key]}",
        ),
        ("autoscaler_assume", "system:serviceaccount:kube-system:cluster-autoscaler"),
    ):
        [statement] = tm.policy_statements(tm.block(compute, "aws_iam_policy_document", name, kind="data"))
        assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
        conditions = {c["variable"]: c for c in tm.as_list(statement["condition"])}
        assert conditions["${local.oidc_host}:sub"]["values"] == [subject]
        assert conditions["${local.oidc_host}:aud"]["values"] == ["sts.amazonaws.com"]


def test_mwaa_may_start_emr_jobs_only_with_the_job_execution_roles():
    document = tm.block(tm.MODULES_ROOT / "airflow", "aws_iam_policy_document", "execution", kind="data")
    statements = {s["sid"]: s for s in tm.policy_statements(document)}
    start = statements["StartJobRunsWithTheJobRolesOnly"]
    [condition] = tm.as_list(start["condition"])
    assert (condition["test"], condition["variable"]) == ("ArnEquals", "emr-containers:ExecutionRoleArn")
    assert tm.expression(condition["values"]) == "var.emr_job_execution_role_arns"
    assert not any("iam:PassRole" in s["actions"] for s in statements.values())
    for env in tm.ENV_NAMES:
        roles = tm.modules_of(tm.ENVS_ROOT / env)["airflow"]["emr_job_execution_role_arns"]
        assert [tm.expression(r) for r in roles] == [
            "module.compute.ingest_job_role_arn",
            "module.compute.transform_job_role_arn",
        ], env


# --- KMS -------------------------------------------------------------------------------


def test_keys_rotate_and_are_enabled():
    [key] = tm.all_blocks("aws_kms_key")
    assert key.body["enable_key_rotation"] is True
    assert key.body["is_enabled"] is True
    assert tm.expression(key.body["for_each"]) == "var.domains"
    domains = tm.variables_of(tm.MODULES_ROOT / "kms")["domains"]["default"]
    assert {"data", "artifacts", "logs", "streaming", "compute", "secrets", "alerting"} <= set(domains)


def test_key_policies_never_allow_an_anonymous_principal():
    document = tm.block(tm.MODULES_ROOT / "kms", "aws_iam_policy_document", "key", kind="data")
    for statement in tm.policy_statements(document):
        for principal in tm.as_list(statement.get("principals")):
            assert "*" not in principal["identifiers"], statement["sid"]
        if statement["sid"] != "EnableIamPoliciesOfThisAccount":
            assert statement.get("condition") or "autoscaling" in str(statement["principals"]), statement["sid"]


# --- MSK, EKS, ECR, MWAA, secrets -----------------------------------------------------------


def test_msk_has_three_private_brokers_with_iam_auth_tls_and_cmk():
    cluster = tm.block(tm.MODULES_ROOT / "msk", "aws_msk_cluster", "this").body
    assert cluster["number_of_broker_nodes"] == 3
    [auth] = tm.as_list(cluster["client_authentication"])
    assert auth["unauthenticated"] is False
    assert tm.as_list(auth["sasl"])[0]["iam"] is True
    [encryption] = tm.as_list(cluster["encryption_info"])
    assert tm.expression(encryption["encryption_at_rest_kms_key_arn"]) == "var.kms_key_arn"
    [transit] = tm.as_list(encryption["encryption_in_transit"])
    assert (transit["client_broker"], transit["in_cluster"]) == ("TLS", True)
    [broker_group] = tm.as_list(cluster["broker_node_group_info"])
    [connectivity] = tm.as_list(broker_group["connectivity_info"])
    assert tm.as_list(connectivity["public_access"])[0]["type"] == "DISABLED"
    [logging] = tm.as_list(cluster["logging_info"])
    assert tm.as_list(tm.as_list(logging["broker_logs"])[0]["cloudwatch_logs"])[0]["enabled"] is True
    config = tm.block(tm.MODULES_ROOT / "msk", "aws_msk_configuration", "this").body["server_properties"]
    for setting in ("auto.create.topics.enable=false", "min.insync.replicas=2", "unclean.leader.election.enable=false"):
        assert setting in config


def test_msk_brokers_stamp_records_with_their_append_time():
    """The stream job's produced_at is the Kafka record timestamp: its late bound and watermark
    must not follow a producer's clock (a future timestamp would move the watermark ahead)."""
    config = tm.block(tm.MODULES_ROOT / "msk", "aws_msk_configuration", "this").body["server_properties"]
    settings = dict(line.strip().split("=", 1) for line in config.splitlines() if "=" in line)
    assert settings["log.message.timestamp.type"] == "LogAppendTime"


def test_eks_is_private_with_encrypted_secrets_and_imdsv2_nodes():
    compute = tm.MODULES_ROOT / "compute"
    cluster = tm.block(compute, "aws_eks_cluster", "this").body
    [vpc] = tm.as_list(cluster["vpc_config"])
    assert vpc["endpoint_public_access"] is False and vpc["endpoint_private_access"] is True
    assert tm.as_list(cluster["encryption_config"])[0]["resources"] == ["secrets"]
    assert len(cluster["enabled_cluster_log_types"]) == 5
    [metadata] = tm.as_list(tm.block(compute, "aws_launch_template", "node").body["metadata_options"])
    assert metadata["http_tokens"] == "required" and metadata["http_put_response_hop_limit"] == 1
    group = tm.block(compute, "aws_eks_node_group", "spark").body
    [scaling] = tm.as_list(group["scaling_config"])
    assert tm.expression(scaling["max_size"]) == "var.node_scaling.max_size"


def test_ecr_repositories_are_immutable_scanned_and_kms_encrypted():
    [repository] = tm.all_blocks("aws_ecr_repository")
    assert repository.body["image_tag_mutability"] == "IMMUTABLE"
    assert tm.as_list(repository.body["image_scanning_configuration"])[0]["scan_on_push"] is True
    assert tm.as_list(repository.body["encryption_configuration"])[0]["encryption_type"] == "KMS"


def test_every_log_group_is_kms_encrypted_and_kept_a_year():
    groups = tm.all_blocks("aws_cloudwatch_log_group")
    assert len(groups) >= 5
    for group in groups:
        assert (
            tm.expression(group.body["kms_key_id"]).endswith("kms_key_arn") or "kms_key_arns.logs" in group.body["kms_key_id"]
        ), group.address
        retention = tm.expression(group.body["retention_in_days"])
        variable = tm.variables_of(group.directory)[retention.removeprefix("var.")]
        assert variable["default"] >= 365, group.address


def test_mwaa_is_private_logs_everything_and_uses_the_secrets_backend():
    airflow = tm.MODULES_ROOT / "airflow"
    environment = tm.block(airflow, "aws_mwaa_environment", "this").body
    assert environment["webserver_access_mode"] == "PRIVATE_ONLY"
    assert tm.expression(environment["kms_key"]) == "var.kms_key_arns.artifacts"
    [logging] = tm.as_list(environment["logging_configuration"])
    components = {"dag_processing_logs", "scheduler_logs", "task_logs", "webserver_logs", "worker_logs"}
    assert {k for k in logging if k != "__is_block__"} == components
    for component in components:
        assert tm.as_list(logging[component])[0]["enabled"] is True, component
    options = environment["airflow_configuration_options"]
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    assert tm.expression(options["secrets.backend_kwargs"]) == "jsonencode(var.secrets_backend_kwargs)"
    secrets = tm.variables_of(tm.MODULES_ROOT / "secrets")
    assert secrets["airflow_connections_prefix"]["default"] == "airflow/connections"
    assert secrets["airflow_variables_prefix"]["default"] == "airflow/variables"


def test_the_pan_token_key_never_enters_terraform_state():
    secrets = tm.MODULES_ROOT / "secrets"
    version = tm.block(secrets, "aws_secretsmanager_secret_version", "pan_token_key").body
    assert "secret_string" not in version and "secret_binary" not in version
    # The key carries its version (spark_apps.secrets reads `v<N>:<key>`; a bare key would be v1 forever).
    assert (
        tm.expression(version["secret_string_wo"])
        == "v${var.pan_token_key_version}:${ephemeral.aws_secretsmanager_random_password.pan_token_key.random_password}"
    )
    assert tm.expression(version["secret_string_wo_version"]) == "var.pan_token_key_version"
    secret = tm.block(secrets, "aws_secretsmanager_secret", "pan_token_key").body
    assert tm.expression(secret["kms_key_id"]) == "var.kms_key_arn"


# --- MWAA -> MSK (the stream supervisor's topic administration and lag check) --------------------

PLATFORM_TOPICS = frozenset({"payments.transactions", "payments.fraud-signals", "payments.fraud-alerts", "payments.dead-letter"})
MSK_IAM_PORT = 9098
STREAM_JOB = tm.PROJECT_ROOT / "spark_apps" / "jobs" / "stream_index.py"
_SECURITY_GROUP_ID = re.compile(r"aws_security_group\.(\w+)\.id")
_VARIABLE = re.compile(r"var\.(\w+)")
_MODULE_OUTPUT = re.compile(r"module\.(\w+)\.(\w+)")


def _security_group(directory: Path, value) -> tuple[str, str] | None:
    """The ``aws_security_group`` (module, name) an id expression of ``directory`` stands for,
    following module inputs (in every env) and module outputs; None if it is not one."""
    text = tm.expression(value)
    if match := _SECURITY_GROUP_ID.fullmatch(text):
        return (directory.name, tm.block(directory, "aws_security_group", match.group(1)).name)
    if (match := _VARIABLE.fullmatch(text)) and directory.parent == tm.MODULES_ROOT:
        found = set()
        for env in tm.ENV_NAMES:
            env_directory = tm.ENVS_ROOT / env
            argument = tm.modules_of(env_directory)[directory.name].get(match.group(1))
            found.add(None if argument is None else _security_group(env_directory, argument))
        assert len(found) == 1, f"envs wire {directory.name}.{match.group(1)} differently: {found}"
        return found.pop()
    if (match := _MODULE_OUTPUT.fullmatch(text)) and directory.parent == tm.ENVS_ROOT:
        module = tm.MODULES_ROOT / match.group(1)
        return _security_group(module, tm.outputs_of(module)[match.group(2)]["value"])
    return None


def _rules(resource_type: str) -> list[tm.Block]:
    return [rule for rule in tm.all_blocks(resource_type) if rule.directory.parent == tm.MODULES_ROOT]


def test_mwaa_reaches_the_msk_brokers_on_the_iam_port_by_security_group():
    """Ingress on the brokers' group from MWAA's group on 9098 (and MWAA's restricted egress
    back), traced through module inputs/outputs to the groups the cluster and MWAA really use."""
    [brokers] = tm.as_list(tm.block(tm.MODULES_ROOT / "msk", "aws_msk_cluster", "this").body["broker_node_group_info"])
    [msk_group] = {_security_group(tm.MODULES_ROOT / "msk", sg) for sg in brokers["security_groups"]}
    [network] = tm.as_list(tm.block(tm.MODULES_ROOT / "airflow", "aws_mwaa_environment", "this").body["network_configuration"])
    [mwaa_group] = {_security_group(tm.MODULES_ROOT / "airflow", sg) for sg in network["security_group_ids"]}
    assert msk_group == ("msk", "msk") and mwaa_group == ("airflow", "mwaa")

    def between(resource_type: str, owner: tuple[str, str], peer: tuple[str, str]) -> list[tm.Block]:
        return [
            rule
            for rule in _rules(resource_type)
            if _security_group(rule.directory, rule.body["security_group_id"]) == owner
            and _security_group(rule.directory, rule.body.get("referenced_security_group_id")) == peer
        ]

    [ingress] = between("aws_vpc_security_group_ingress_rule", msk_group, mwaa_group)
    [egress] = between("aws_vpc_security_group_egress_rule", mwaa_group, msk_group)
    for rule in (ingress, egress):
        body = rule.body
        assert (body["ip_protocol"], body["from_port"], body["to_port"]) == ("tcp", MSK_IAM_PORT, MSK_IAM_PORT), rule.address
        assert "MSK" in body["description"] or "MWAA" in body["description"], rule.address
        assert "for_each" not in body and "count" not in body, f"{rule.address} must always exist"
    # MWAA's egress is restricted (443 out, its own group): nothing else opens the brokers' port.
    others = [
        r.body
        for r in _rules("aws_vpc_security_group_egress_rule")
        if r.address != egress.address and r.directory.name == "airflow"
    ]
    assert all(body["ip_protocol"] == "-1" or body.get("to_port") == 443 for body in others)


def _execution_statements() -> dict[str, dict]:
    document = tm.block(tm.MODULES_ROOT / "airflow", "aws_iam_policy_document", "execution", kind="data")
    return {statement["sid"]: statement for statement in tm.policy_statements(document)}


def test_mwaa_role_may_administer_exactly_the_four_platform_topics():
    kafka = {sid: s for sid, s in _execution_statements().items() if any(a.startswith("kafka") for a in _strings(s["actions"]))}
    assert set(kafka) == {"MskConnect", "MskAdministerPlatformTopics"}
    for statement in kafka.values():
        assert statement.get("effect", "Allow") == "Allow" and "condition" not in statement, statement["sid"]
    connect = kafka["MskConnect"]
    assert connect["actions"] == ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    assert connect["resources"] == ["${var.msk_cluster_arn}"]
    topics = kafka["MskAdministerPlatformTopics"]
    assert len(set(topics["actions"])) == len(topics["actions"])
    assert sorted(topics["actions"]) == [
        "kafka-cluster:AlterTopic",
        "kafka-cluster:AlterTopicDynamicConfiguration",
        "kafka-cluster:CreateTopic",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:DescribeTopicDynamicConfiguration",
    ]
    assert tm.expression(topics["resources"]) == "var.msk_topic_arns"
    # What the envs pass: the msk module's ARN of each platform topic by name, nothing else.
    for env in tm.ENV_NAMES:
        arguments = tm.modules_of(tm.ENVS_ROOT / env)["airflow"]
        assert tm.expression(arguments["msk_cluster_arn"]) == "module.msk.cluster_arn", env
        topic_arns = arguments["msk_topic_arns"]
        assert isinstance(topic_arns, list), f"{env}: msk_topic_arns must list the topics by name"
        names = [re.fullmatch(r'module\.msk\.topic_arns\["([^"*]+)"\]', tm.expression(arn)) for arn in topic_arns]
        assert all(names), f"{env}: {topic_arns}"
        assert sorted(name.group(1) for name in names) == sorted(PLATFORM_TOPICS), env
    msk = tm.MODULES_ROOT / "msk"
    assert set(tm.variables_of(msk)["topics"]["default"]) == PLATFORM_TOPICS
    assert tm.expression(tm.outputs_of(msk)["cluster_arn"]["value"]) == "aws_msk_cluster.this.arn"
    assert tm.expression(tm.outputs_of(msk)["topic_arns"]["value"]) == (
        '{for topic, _ in var.topics : topic => "${local.arn_base}:topic/${local.cluster_name}/${aws_msk_cluster.this.cluster_uuid}/${topic}"}'
    )


def _render(text: str, values: dict[str, str]) -> str:
    """Substitute ``${expr}`` interpolations; an expression not in ``values`` fails."""

    def substitute(match: re.Match) -> str:
        assert match.group(1) in values, f"cannot render ${{{match.group(1)}}} in {text}"
        return values[match.group(1)]

    return re.sub(r"\$\{([^{}]+)\}", substitute, text)


def test_emr_job_role_may_use_only_the_stream_jobs_consumer_groups():
    """arn:aws:kafka:<region>:<account>:group/<cluster>/<uuid>/payments-stream-index*, the
    groupIdPrefix of the stream job's Kafka source, and no other group."""
    compute = tm.MODULES_ROOT / "compute"
    statements = tm.policy_statements(tm.block(compute, "aws_iam_policy_document", "ingest_job", kind="data"))
    [groups] = [s for s in statements if any(re.fullmatch(r"kafka-cluster:\w*Group\w*", a) for a in _strings(s["actions"]))]
    assert groups["sid"] == "MskConsumerGroups"
    assert sorted(groups["actions"]) == ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = re.fullmatch(r'\[for (\w+) in var\.msk_consumer_group_prefixes : "([^"]+)"\]', tm.expression(groups["resources"]))
    assert resources, groups["resources"]
    item, template = resources.groups()

    msk = tm.MODULES_ROOT / "msk"
    msk_locals = tm.locals_of(msk)
    partition_region_account = {
        "data.aws_partition.current.partition": "aws",
        "data.aws_region.current.id": "eu-west-1",
        "data.aws_caller_identity.current.account_id": "123456789012",
    }
    cluster = {
        "local.arn_base": _render(msk_locals["arn_base"], partition_region_account),
        "local.cluster_name": _render(msk_locals["cluster_name"], {"var.name_prefix": "payments-prod"}),
        "aws_msk_cluster.this.cluster_uuid": "0123abcd-uuid-1",
    }
    group_arn_prefix = _render(tm.outputs_of(msk)["group_arn_prefix"]["value"], cluster)
    default_prefixes = tm.variables_of(compute)["msk_consumer_group_prefixes"]["default"]
    for env in tm.ENV_NAMES:
        arguments = tm.modules_of(tm.ENVS_ROOT / env)["compute"]
        assert tm.expression(arguments["msk_group_arn_prefix"]) == "module.msk.group_arn_prefix", env
        prefixes = arguments.get("msk_consumer_group_prefixes", default_prefixes)
        rendered = [_render(template, {"var.msk_group_arn_prefix": group_arn_prefix, item: prefix}) for prefix in prefixes]
        expected = "arn:aws:kafka:eu-west-1:123456789012:group/payments-prod-msk/0123abcd-uuid-1/payments-stream-index*"
        assert rendered == [expected], env

    # The same name the job gives Spark (groupIdPrefix), read without importing pyspark.
    constants = {
        node.targets[0].id: node.value.value
        for node in ast.parse(STREAM_JOB.read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert constants["CONSUMER_GROUP_PREFIX"] == "payments-stream-index"


def test_msk_runs_the_kafka_3_9_line_of_the_local_broker_and_the_spark_connector():
    msk = tm.MODULES_ROOT / "msk"
    variable = tm.variables_of(msk)["kafka_version"]
    assert re.fullmatch(r"3\.9\.x(\.kraft)?", variable["default"])
    assert "3.9.1" in variable["description"]
    assert tm.expression(tm.block(msk, "aws_msk_cluster", "this").body["kafka_version"]) == "var.kafka_version"
    assert tm.block(msk, "aws_msk_configuration", "this").body["kafka_versions"] == ["${var.kafka_version}"]
    for env in tm.ENV_NAMES:
        assert "kafka_version" not in tm.modules_of(tm.ENVS_ROOT / env)["msk"], env


def test_no_security_group_admits_the_internet():
    for rule in tm.all_blocks("aws_vpc_security_group_ingress_rule"):
        assert rule.body.get("cidr_ipv4") != "0.0.0.0/0", rule.address
    for subnet in tm.all_blocks("aws_subnet"):
        assert subnet.body["map_public_ip_on_launch"] is False, subnet.address


# --- MWAA's Kafka connection (Secrets Manager backend) ----------------------------------------

SECRETS = tm.MODULES_ROOT / "secrets"
AWS_PROFILE = tm.PROJECT_ROOT / "include" / "profiles" / "aws.yaml"
REGION = "eu-west-1"
# What a module's partition/region/account data sources stand for in the rendered ARNs.
PARTITION_REGION_ACCOUNT = {
    "data.aws_partition.current.partition": "aws",
    "data.aws_region.current.id": REGION,
    "data.aws_caller_identity.current.account_id": "123456789012",
}
# bootstrap_brokers_sasl_iam of a provisioned MSK cluster (IAM listener, 9098).
MSK_IAM_BOOTSTRAP = ",".join(f"b-{n}.payments-prod-msk.a1b2c3.c2.kafka.{REGION}.amazonaws.com:{MSK_IAM_PORT}" for n in (1, 2, 3))


def _profile_kafka_connection_id() -> str:
    return yaml.safe_load(AWS_PROFILE.read_text())["kafka"]["connection_id"]


def _secrets_module_value(env: str, variable: str) -> str:
    """``var.<variable>`` of the secrets module in ``env``: the env's argument, else the default; a literal."""
    arguments = tm.modules_of(tm.ENVS_ROOT / env)["secrets"]
    value = arguments[variable] if variable in arguments else tm.variables_of(SECRETS)[variable]["default"]
    assert isinstance(value, str) and "${" not in value, f"{env}: secrets.{variable} must be a literal, not {value}"
    return value


def _secrets_values(env: str) -> dict[str, str]:
    """Everything the secret's name, the backend kwargs and the ARN patterns interpolate, in ``env``."""
    return {
        f"var.{name}": _secrets_module_value(env, name)
        for name in ("airflow_connections_prefix", "airflow_variables_prefix", "kafka_connection_id")
    } | {"local.secret_arn_base": _render(tm.locals_of(SECRETS)["secret_arn_base"], PARTITION_REGION_ACCOUNT)}


def _kafka_connection_secret_name(env: str) -> str:
    secret = tm.block(SECRETS, "aws_secretsmanager_secret", "kafka_connection").body
    return _render(secret["name"], _secrets_values(env))


def _backend_kwargs(env: str) -> dict[str, str]:
    """backend_kwargs MWAA's SecretsManagerBackend gets in ``env`` (the airflow module jsonencodes them)."""
    assert tm.expression(tm.modules_of(tm.ENVS_ROOT / env)["airflow"]["secrets_backend_kwargs"]) == (
        "module.secrets.airflow_secrets_backend_kwargs"
    ), env
    kwargs = tm.outputs_of(SECRETS)["airflow_secrets_backend_kwargs"]["value"]
    return {key: _render(value, _secrets_values(env)) for key, value in kwargs.items()}


def _kafka_connection_document() -> dict:
    """The secret's value as written in HCL: the object inside ``jsonencode(...)``."""
    version = tm.block(SECRETS, "aws_secretsmanager_secret_version", "kafka_connection").body
    assert tm.expression(version["secret_id"]) == "aws_secretsmanager_secret.kafka_connection.id"
    assert "secret_string_wo" not in version and "secret_binary" not in version
    match = re.fullmatch(r"jsonencode\((\{.*\})\)", tm.expression(version["secret_string"]), re.DOTALL)
    assert match, version["secret_string"]
    return tm.parse_hcl(f"document = {match.group(1)}\n")["document"]


def test_kafka_connection_secret_is_the_profiles_connection_under_mwaas_connections_prefix():
    """<connections_prefix>/<kafka.connection_id>: the name MWAA's backend looks the hook's connection up by."""
    connection_id = _profile_kafka_connection_id()
    assert connection_id == "kafka_payments"
    for env in tm.ENV_NAMES:
        kwargs = _backend_kwargs(env)
        # No "sep" (nor a lookup pattern): the backend joins prefix and connection id with "/".
        assert set(kwargs) == {"connections_prefix", "variables_prefix"}, env
        assert _kafka_connection_secret_name(env) == f"{kwargs['connections_prefix']}/{connection_id}", env
    assert _kafka_connection_secret_name("dev") == "airflow/connections/kafka_payments"


def _dag_deadline_variable() -> str:
    source = (tm.PROJECT_ROOT / "dags" / "payments_daily_index.py").read_text()
    match = re.search(r'^DEADLINE_VARIABLE = "([a-z_]+)"$', source, re.MULTILINE)
    assert match, "dags/payments_daily_index.py defines DEADLINE_VARIABLE"
    return match.group(1)


def test_the_daily_deadline_variable_exists_on_mwaa_under_the_variables_prefix():
    """The scheduler cannot create a daily run without the Variable its VariableInterval reads:
    Terraform writes it where MWAA's backend looks Variables up, in seconds, equal to the local setting."""
    variable = _dag_deadline_variable()
    assert tm.variables_of(SECRETS)["daily_deadline_variable"]["default"] == variable
    secret = tm.block(SECRETS, "aws_secretsmanager_secret", "daily_deadline").body
    assert tm.expression(secret["kms_key_id"]) == "var.kms_key_arn"
    for env in tm.ENV_NAMES:
        values = _secrets_values(env) | {"var.daily_deadline_variable": _secrets_module_value(env, "daily_deadline_variable")}
        assert _render(secret["name"], values) == f"{_backend_kwargs(env)['variables_prefix']}/{variable}", env
    version = tm.block(SECRETS, "aws_secretsmanager_secret_version", "daily_deadline").body
    assert tm.expression(version["secret_id"]) == "aws_secretsmanager_secret.daily_deadline.id"
    assert tm.expression(version["secret_string"]) == "tostring(var.daily_deadline_hours * 3600)"
    local = yaml.safe_load((tm.PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["variables"]
    local_seconds = {v["variable_name"]: v["variable_value"] for v in local}[variable]
    assert int(local_seconds) == tm.variables_of(SECRETS)["daily_deadline_hours"]["default"] * 3600


def test_kafka_connection_document_is_an_msk_iam_kafka_connection():
    """conn_type kafka, SASL_SSL + OAUTHBEARER, the brokers of the MSK IAM listener; nothing else
    (no callback: the provider adds the MSK IAM token signer for MSK hosts itself)."""
    assert _kafka_connection_document() == {
        "conn_type": "kafka",
        "extra": {
            "bootstrap.servers": "${var.msk_bootstrap_brokers_sasl_iam}",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
        },
    }
    assert "default" not in tm.variables_of(SECRETS)["msk_bootstrap_brokers_sasl_iam"]
    for env in tm.ENV_NAMES:
        argument = tm.modules_of(tm.ENVS_ROOT / env)["secrets"]["msk_bootstrap_brokers_sasl_iam"]
        assert tm.expression(argument) == "module.msk.bootstrap_brokers_sasl_iam", env
    msk = tm.MODULES_ROOT / "msk"
    assert tm.expression(tm.outputs_of(msk)["bootstrap_brokers_sasl_iam"]["value"]) == (
        "aws_msk_cluster.this.bootstrap_brokers_sasl_iam"
    )


def test_kafka_connection_secret_is_encrypted_with_the_secrets_key():
    secret = tm.block(SECRETS, "aws_secretsmanager_secret", "kafka_connection").body
    assert tm.expression(secret["kms_key_id"]) == "var.kms_key_arn"
    assert "default" not in tm.variables_of(SECRETS)["kms_key_arn"]
    for env in tm.ENV_NAMES:
        assert tm.expression(tm.modules_of(tm.ENVS_ROOT / env)["secrets"]["kms_key_arn"]) == "module.kms.key_arns.secrets", env
    assert "secrets" in tm.variables_of(tm.MODULES_ROOT / "kms")["domains"]["default"]


def test_mwaa_role_may_read_and_decrypt_the_kafka_connection_secret():
    """The secret's ARN (name + Secrets Manager's 6-character suffix) matches the SecretsBackend
    statement's patterns as the envs wire them, and the role may decrypt with the key it is
    encrypted with, through Secrets Manager; the PAN key stays out of reach."""
    statements = _execution_statements()
    assert not [s for s in statements.values() if s.get("effect", "Allow") != "Allow"], "the execution policy has no Deny"
    backend = statements["SecretsBackend"]
    assert "secretsmanager:GetSecretValue" in _strings(backend["actions"]) and "condition" not in backend
    assert tm.expression(backend["resources"]) == "var.airflow_secret_arn_patterns"
    decrypt = statements["DecryptSecrets"]
    assert _strings(decrypt["actions"]) == ["kms:Decrypt"]
    assert decrypt["resources"] == ["${var.kms_key_arns.secrets}"]
    [via] = tm.as_list(decrypt["condition"])
    assert (via["variable"], via["values"]) == ("kms:ViaService", ["secretsmanager.${local.region}.amazonaws.com"])

    patterns = tm.outputs_of(SECRETS)["airflow_secret_arn_patterns"]["value"]
    for env in tm.ENV_NAMES:
        airflow = tm.modules_of(tm.ENVS_ROOT / env)["airflow"]
        assert tm.expression(airflow["airflow_secret_arn_patterns"]) == "module.secrets.airflow_secret_arn_patterns", env
        secrets_key = tm.expression(tm.modules_of(tm.ENVS_ROOT / env)["secrets"]["kms_key_arn"])
        assert tm.expression(airflow["kms_key_arns"]["secrets"]) == secrets_key, env
        values = _secrets_values(env)
        granted = [_render(pattern, values) for pattern in patterns]
        secret_arn = f"{values['local.secret_arn_base']}:{_kafka_connection_secret_name(env)}-AbC123"
        assert any(fnmatch.fnmatchcase(secret_arn, pattern) for pattern in granted), (env, secret_arn, granted)
        pan_key_arn = f"{values['local.secret_arn_base']}:{_secrets_module_value(env, 'pan_token_secret_name')}-AbC123"
        assert not any(fnmatch.fnmatchcase(pan_key_arn, pattern) for pattern in granted), env

    # The secrets key leaves access to IAM policies of the account (such as the execution role's).
    key_policy = tm.block(tm.MODULES_ROOT / "kms", "aws_iam_policy_document", "key", kind="data")
    [root] = [s for s in tm.as_list(key_policy.body["statement"]) if s["sid"] == "EnableIamPoliciesOfThisAccount"]
    assert root["effect"] == "Allow" and "condition" not in root


def test_mwaas_secrets_backend_and_the_kafka_hook_make_an_msk_iam_connection_of_the_secret(monkeypatch):
    """The rendered secret in (moto) Secrets Manager, read by the SecretsManagerBackend with MWAA's
    backend_kwargs, configures the KafkaAdminClientHook for MSK IAM: the provider's token
    callback for the region of the brokers."""
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

    class ConfigOnlyHook(KafkaAdminClientHook):
        def _get_client(self, config):  # the confluent-kafka configuration, no AdminClient
            return config

    document = json.loads(
        json.dumps(_kafka_connection_document()).replace("${var.msk_bootstrap_brokers_sasl_iam}", MSK_IAM_BOOTSTRAP)
    )
    connection_id = _profile_kafka_connection_id()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=_kafka_connection_secret_name("prod"), SecretString=json.dumps(document)
        )
        connection = SecretsManagerBackend(**_backend_kwargs("prod")).get_connection(connection_id)
    assert connection is not None, "the backend does not find the connection under its prefix"
    assert connection.conn_type == "kafka"
    assert connection.extra_dejson == document["extra"]

    hook = ConfigOnlyHook(kafka_config_id=connection_id)
    monkeypatch.setattr(hook, "get_connection", lambda conn_id: connection if conn_id == connection_id else None)
    config = hook.get_conn
    assert config["bootstrap.servers"] == MSK_IAM_BOOTSTRAP
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    token_callback = config["oauth_cb"]
    assert isinstance(token_callback, functools.partial) and token_callback.args == (REGION,)
