data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  environment_name = var.name_prefix
  account_id       = data.aws_caller_identity.current.account_id
  region           = data.aws_region.current.id
  partition        = data.aws_partition.current.partition
  environment_arn  = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${local.environment_name}"

  # Object keys in the artifacts bucket; scripts/deploy.py uploads to exactly these.
  artifact_keys = {
    dags           = "dags/"
    plugins        = "plugins.zip"
    requirements   = "requirements.txt"
    startup_script = "startup.sh"
  }
  # The artifacts MWAA pins by object version (scripts/deploy.py PINNED_ARTIFACTS).
  pinned_artifact_keys  = { for name, key in local.artifact_keys : name => key if name != "dags" }
  artifacts_bucket_name = split(":::", var.artifacts_bucket_arn)[1]
  # Explicit versions win (rollback); otherwise the current version in the bucket; null (not
  # configured) only before the first upload.
  artifact_versions = {
    for name, key in local.pinned_artifact_keys : name => (
      lookup(var.artifact_versions, name, null) != null ? lookup(var.artifact_versions, name, null) : try(data.aws_s3_object.pinned[name].version_id, null)
    )
  }
}

# The current version of each pinned artifact: what the last deploy uploaded. Read at plan
# time, so the versions live in the bucket (versioned, their old versions never expire: see
# module lake) instead of in a local tfvars file that a fresh checkout would not have.
data "aws_s3_object" "pinned" {
  for_each = var.pin_uploaded_artifacts ? { for name, key in local.pinned_artifact_keys : name => key if lookup(var.artifact_versions, name, null) == null } : {}

  bucket = local.artifacts_bucket_name
  key    = each.value
}

# --- execution role --------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "MwaaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  #checkov:skip=CKV_AWS_356:Only actions without resource-level permissions use "*" (cloudwatch:PutMetricData, s3:GetAccountPublicAccessBlock), as in the MWAA execution-role baseline.
  #checkov:skip=CKV_AWS_111:The "*" resources are non-resource actions (metrics, account public access block); every write is scoped to named ARNs.
  statement {
    sid       = "PublishEnvironmentMetrics"
    actions   = ["airflow:PublishMetrics"]
    resources = [local.environment_arn]
  }

  statement {
    sid       = "ReadArtifactsBucket"
    actions   = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    resources = [var.artifacts_bucket_arn, "${var.artifacts_bucket_arn}/*"]
  }

  statement {
    sid       = "CheckAccountPublicAccessBlock"
    actions   = ["s3:GetAccountPublicAccessBlock"]
    resources = ["*"]
  }

  statement {
    sid       = "ListLakeBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arns.raw, var.bucket_arns.processed, var.bucket_arns.quarantine, var.bucket_arns.athena-results]
  }

  # The raw-drop sensor (plugins/payments_platform/sensors.py, S3KeySensor) polls the day's
  # ready marker with HeadObject, which needs s3:GetObject: on the markers only, never on a drop.
  statement {
    sid       = "ReadRawReadyMarkers"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns.raw}/${var.raw_ready_marker_pattern}"]
  }

  # Publishing reads run manifests, writes quality results and summaries, and tags
  # superseded index versions for expiry.
  statement {
    sid       = "PublishIndexVersions"
    actions   = ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:PutObject"]
    resources = ["${var.bucket_arns.processed}/*"]
  }

  # The stream supervisor sets and clears its stop marker under metrics/.
  statement {
    sid       = "ClearSupervisorMarkers"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.bucket_arns.processed}/metrics/*"]
  }

  statement {
    sid       = "ReadQuarantineCounts"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns.quarantine}/*"]
  }

  # The quarantine table is gated and published like the indexes: the orchestrator (and only
  # it: the EMR job roles are denied this key) writes each version's quality verdict, and tags
  # a rejected or superseded version's objects for expiry.
  statement {
    sid       = "PublishQuarantineVersions"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arns.quarantine}/*/${var.quality_result_file}"]
  }

  statement {
    sid       = "TagQuarantineVersions"
    actions   = ["s3:GetObjectTagging", "s3:PutObjectTagging"]
    resources = ["${var.bucket_arns.quarantine}/*"]
  }

  statement {
    sid       = "AthenaResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arns.athena-results}/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arns.data]
  }

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"]
    resources = [var.kms_key_arns.artifacts]

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com", "s3.${local.region}.amazonaws.com", "logs.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid = "WriteAirflowLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:CreateLogGroup",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:GetLogRecord",
      "logs:GetLogGroupFields",
      "logs:GetQueryResults",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:airflow-${local.environment_name}-*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "PublishMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
  }

  # The Celery queue lives in an MWAA service account, hence the account wildcard.
  statement {
    sid = "CeleryQueue"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = ["arn:${local.partition}:sqs:${local.region}:*:airflow-celery-*"]
  }

  statement {
    sid       = "StartJobRunsWithTheJobRolesOnly"
    actions   = ["emr-containers:StartJobRun"]
    resources = [var.emr_virtual_cluster_arn]

    condition {
      test     = "ArnEquals"
      variable = "emr-containers:ExecutionRoleArn"
      values   = var.emr_job_execution_role_arns
    }
  }

  # StartJobRun carries tags (PaymentsEmrContainerOperator: project; the stream supervisor:
  # project, job); tagging on create is authorized as emr-containers:TagResource: on this
  # virtual cluster and its job runs only, with these tag keys only.
  statement {
    sid       = "TagJobRunsAtStart"
    actions   = ["emr-containers:TagResource"]
    resources = [var.emr_virtual_cluster_arn, "${var.emr_virtual_cluster_arn}/jobruns/*"]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = var.emr_job_run_tag_keys
    }
  }

  statement {
    sid       = "SuperviseJobRuns"
    actions   = ["emr-containers:DescribeJobRun", "emr-containers:CancelJobRun", "emr-containers:ListJobRuns", "emr-containers:DescribeVirtualCluster"]
    resources = [var.emr_virtual_cluster_arn, "${var.emr_virtual_cluster_arn}/jobruns/*"]
  }

  # The stream supervisor talks to MSK itself (Airflow Kafka provider, IAM auth on 9098): its
  # deploy action creates the platform topics and sets their partitions and retention
  # (CreateTopics, CreatePartitions, DescribeConfigs, IncrementalAlterConfigs), its health
  # check reads the input topics' end offsets (Metadata, ListOffsets). It never reads or
  # writes records and touches no consumer group.
  statement {
    sid       = "MskConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.msk_cluster_arn]
  }

  statement {
    sid = "MskAdministerPlatformTopics"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:AlterTopic",
      "kafka-cluster:DescribeTopicDynamicConfiguration",
      "kafka-cluster:AlterTopicDynamicConfiguration",
    ]
    resources = var.msk_topic_arns
  }

  statement {
    sid = "PublishPartitions"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:BatchUpdatePartition",
      "glue:DeletePartition",
      "glue:BatchDeletePartition",
    ]
    resources = var.glue_resource_arns
  }

  statement {
    sid       = "QueryAthena"
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup"]
    resources = [var.athena_workgroup_arn]
  }

  statement {
    sid       = "PageOnCall"
    actions   = ["sns:Publish"]
    resources = [var.oncall_topic_arn]
  }

  statement {
    sid       = "EncryptOnCallMessages"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = [var.kms_key_arns.alerting]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "SecretsBackend"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = var.airflow_secret_arn_patterns
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arns.secrets]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.environment_name}-mwaa-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "payments-airflow"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- network -------------------------------------------------------------------------

resource "aws_security_group" "mwaa" {
  name        = "${local.environment_name}-mwaa"
  description = "MWAA workers, schedulers and private web server"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${local.environment_name}-mwaa" })
}

# MWAA components talk to each other inside this group (required by MWAA).
resource "aws_vpc_security_group_ingress_rule" "self" {
  security_group_id            = aws_security_group.mwaa.id
  description                  = "MWAA components among themselves"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.mwaa.id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.mwaa.id
  description       = "HTTPS to AWS APIs (VPC endpoints) and PyPI through the NAT gateway"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# The stream supervisor talks to MSK (IAM auth, port 9098): both sides of that path live here,
# next to the MWAA group, so the msk module does not depend on this one (the MWAA role
# already needs the cluster's and topics' ARNs from it).
resource "aws_vpc_security_group_egress_rule" "msk" {
  security_group_id            = aws_security_group.mwaa.id
  description                  = "Kafka over TLS with IAM auth to the MSK brokers (stream supervisor: topics, lag)"
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
  referenced_security_group_id = var.msk_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "msk_from_mwaa" {
  security_group_id            = var.msk_security_group_id
  description                  = "Kafka over TLS with IAM auth from MWAA (stream supervisor: topics, lag)"
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
  referenced_security_group_id = aws_security_group.mwaa.id
}

resource "aws_vpc_security_group_egress_rule" "self" {
  security_group_id            = aws_security_group.mwaa.id
  description                  = "MWAA components among themselves (metadata DB, Celery)"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.mwaa.id
}

# --- environment -----------------------------------------------------------------------

resource "aws_mwaa_environment" "this" {
  name                            = local.environment_name
  airflow_version                 = var.airflow_version
  environment_class               = var.environment_class
  min_workers                     = var.workers.min
  max_workers                     = var.workers.max
  schedulers                      = var.schedulers
  execution_role_arn              = aws_iam_role.execution.arn
  kms_key                         = var.kms_key_arns.artifacts
  webserver_access_mode           = "PRIVATE_ONLY"
  endpoint_management             = "SERVICE"
  weekly_maintenance_window_start = var.weekly_maintenance_window_start

  source_bucket_arn                = var.artifacts_bucket_arn
  dag_s3_path                      = local.artifact_keys.dags
  plugins_s3_path                  = local.artifact_versions.plugins == null ? null : local.artifact_keys.plugins
  plugins_s3_object_version        = local.artifact_versions.plugins
  requirements_s3_path             = local.artifact_versions.requirements == null ? null : local.artifact_keys.requirements
  requirements_s3_object_version   = local.artifact_versions.requirements
  startup_script_s3_path           = local.artifact_versions.startup_script == null ? null : local.artifact_keys.startup_script
  startup_script_s3_object_version = local.artifact_versions.startup_script

  airflow_configuration_options = {
    "secrets.backend"        = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    "secrets.backend_kwargs" = jsonencode(var.secrets_backend_kwargs)
    "core.default_timezone"  = "utc"
    "core.load_examples"     = "False"
  }

  network_configuration {
    security_group_ids = [aws_security_group.mwaa.id]
    subnet_ids         = var.subnet_ids
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = var.log_level
    }

    scheduler_logs {
      enabled   = true
      log_level = var.log_level
    }

    task_logs {
      enabled   = true
      log_level = var.log_level
    }

    webserver_logs {
      enabled   = true
      log_level = var.log_level
    }

    worker_logs {
      enabled   = true
      log_level = var.log_level
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.execution]
}
