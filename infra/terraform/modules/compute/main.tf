data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  cluster_name = "${var.name_prefix}-eks"
  account_id   = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.id
  partition    = data.aws_partition.current.partition
  oidc_host    = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")

  # EMR on EKS job roles (item: separate roles per job family). The ingest jobs (batch index,
  # stream index) read raw drops and the PAN token key; the transform jobs (aggregate,
  # business indexes, stream compaction, quality gate) read no card data.
  job_role_names = {
    ingest    = "${var.name_prefix}-emr-ingest"
    transform = "${var.name_prefix}-emr-transform"
  }
  # Quality results are the orchestrator's (MWAA) to publish: no job may write them.
  quality_result_arns = ["${var.bucket_arns.processed}/*/${var.quality_result_file}", "${var.bucket_arns.processed}/${var.quality_result_file}"]
}

# --- EKS control plane -------------------------------------------------------------

resource "aws_cloudwatch_log_group" "eks" {
  # EKS writes control-plane logs to this fixed name; creating it first sets KMS and retention.
  name              = "/aws/eks/${local.cluster_name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arns.logs

  tags = var.tags
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    sid     = "EksAssumeRole"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${local.cluster_name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  name     = local.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    # Private only: apply from a runner inside the VPC (see infra/terraform/README.md).
    endpoint_public_access = false
  }

  # Cluster access management (access entries). API_AND_CONFIG_MAP is the mode EMR on EKS
  # documents for its integration with access entries (it creates its own entry and
  # AmazonEMRJobPolicy association when the virtual cluster is created, see below); no
  # aws-auth ConfigMap is ever written, so in practice every principal is an access entry.
  # The creator gets no hidden admin grant: every administrator, the role running terraform
  # apply included, is an access entry of var.cluster_admin_role_arns (an entry for the
  # creator on top of the bootstrap one would fail with ResourceInUseException).
  access_config {
    authentication_mode                         = "API_AND_CONFIG_MAP"
    bootstrap_cluster_creator_admin_permissions = false
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = var.kms_key_arns.compute
    }
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.eks, aws_iam_role_policy_attachment.cluster]
}

# --- who reaches the private API endpoint ---------------------------------------------

# The endpoint is private: the apply runner / CI (the kubernetes provider creates the EMR
# namespace) and operators reach it on 443 through the cluster security group, from these
# CIDRs or security groups only.
resource "aws_vpc_security_group_ingress_rule" "api_from_cidr" {
  for_each = toset(var.api_access_cidrs)

  security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  description       = "Kubernetes API (HTTPS) from the apply runner / operators ${each.key}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_ingress_rule" "api_from_security_group" {
  for_each = toset(var.api_access_security_group_ids)

  security_group_id            = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  description                  = "Kubernetes API (HTTPS) from the apply runner / operators group ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.key
}

resource "aws_eks_access_entry" "admin" {
  for_each = toset(var.cluster_admin_role_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.key
  type          = "STANDARD"

  tags = var.tags
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = aws_eks_access_entry.admin

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value.principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

resource "aws_eks_addon" "this" {
  for_each = toset(["vpc-cni", "coredns", "kube-proxy"])

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  resolve_conflicts_on_update = "OVERWRITE"

  tags = var.tags

  depends_on = [aws_eks_node_group.spark]
}

resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

# --- worker nodes -------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    sid     = "Ec2AssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${local.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

resource "aws_launch_template" "node" {
  name_prefix = "${local.cluster_name}-node-"
  description = "Spark worker nodes: IMDSv2 only, hop limit 1 (pods use IRSA, never the node role), encrypted root volume"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.node_disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.kms_key_arns.compute
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${local.cluster_name}-spark" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "spark" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "spark"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.node_instance_types
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = "ON_DEMAND"

  scaling_config {
    min_size     = var.node_scaling.min_size
    max_size     = var.node_scaling.max_size
    desired_size = var.node_scaling.desired_size
  }

  update_config {
    max_unavailable_percentage = 33
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  labels = { workload = "spark" }

  tags = var.tags

  # The autoscaler owns desired_size once the group exists.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# Cluster Autoscaler (IRSA, kube-system/cluster-autoscaler): may only resize groups tagged for this cluster.
data "aws_iam_policy_document" "autoscaler_assume" {
  statement {
    sid     = "ClusterAutoscalerServiceAccount"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:kube-system:cluster-autoscaler"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "autoscaler" {
  #checkov:skip=CKV_AWS_356:Describe* calls of Auto Scaling and EC2 do not support resource-level permissions; the mutating statement is tag-scoped.
  statement {
    sid = "DescribeScalingState"
    actions = [
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
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ResizeOwnNodeGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.cluster_name}"
      values   = ["owned"]
    }
  }
}

resource "aws_iam_role" "autoscaler" {
  name               = "${local.cluster_name}-cluster-autoscaler"
  assume_role_policy = data.aws_iam_policy_document.autoscaler_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "autoscaler" {
  name   = "cluster-autoscaler"
  role   = aws_iam_role.autoscaler.id
  policy = data.aws_iam_policy_document.autoscaler.json
}

# The Cluster Autoscaler itself (the role above is only its permission): the upstream chart,
# pinned, in kube-system under the service account the role trusts, discovering the groups
# tagged for this cluster. Its image follows the cluster's minor version.
resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.cluster_autoscaler_chart_version
  namespace  = "kube-system"
  atomic     = true

  set {
    name  = "autoDiscovery.clusterName"
    value = local.cluster_name
  }
  set {
    name  = "awsRegion"
    value = local.region
  }
  set {
    name  = "image.tag"
    value = "v${var.kubernetes_version}.${var.cluster_autoscaler_patch}"
  }
  set {
    name  = "rbac.serviceAccount.name"
    value = "cluster-autoscaler"
  }
  set {
    name  = "rbac.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn"
    value = aws_iam_role.autoscaler.arn
  }
  set {
    name  = "extraArgs.balance-similar-node-groups"
    value = "true"
  }
  set {
    name  = "extraArgs.skip-nodes-with-local-storage"
    value = "false"
  }

  depends_on = [
    aws_eks_node_group.spark,
    aws_iam_role_policy.autoscaler,
    aws_eks_access_policy_association.admin,
    aws_vpc_security_group_ingress_rule.api_from_cidr,
    aws_vpc_security_group_ingress_rule.api_from_security_group,
  ]
}

# --- EMR on EKS ---------------------------------------------------------------------

# Created through the kubernetes provider by the role running terraform apply: it needs its
# admin access entry and a network path to the private endpoint first.
resource "kubernetes_namespace_v1" "emr" {
  metadata {
    name   = var.emr_namespace
    labels = { "app.kubernetes.io/part-of" = "payments" }
  }

  depends_on = [
    aws_eks_node_group.spark,
    aws_eks_access_policy_association.admin,
    aws_vpc_security_group_ingress_rule.api_from_cidr,
    aws_vpc_security_group_ingress_rule.api_from_security_group,
  ]
}

# EMR on EKS acts in the cluster as its service-linked role. A fresh account has none until
# the first virtual cluster, and the caller creating it then needs iam:CreateServiceLinkedRole;
# it is created here instead. Where the account already has it, set
# create_emr_service_linked_role = false (or terraform import it).
resource "aws_iam_service_linked_role" "emr_containers" {
  count = var.create_emr_service_linked_role ? 1 : 0

  aws_service_name = "emr-containers.amazonaws.com"
  description      = "Amazon EMR on EKS: virtual cluster ${var.name_prefix}-spark on namespace ${var.emr_namespace}"

  tags = var.tags
}

locals {
  # The role EMR on EKS uses inside the cluster (the resource above, or the account's own).
  emr_service_linked_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/emr-containers.amazonaws.com/AWSServiceRoleForAmazonEMRContainers"
  emr_job_access_policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEMRJobPolicy"
}

# Cluster access of EMR on EKS. With access entries enabled (access_config above), creating
# this virtual cluster makes EMR create the access entry of AWSServiceRoleForAmazonEMRContainers
# and associate AmazonEMRJobPolicy with it, scoped to the namespace (EMR's integration with EKS
# cluster access management). Terraform cannot declare that entry itself: EKS refuses access
# entries for a service-linked role from any other caller ("The caller is not allowed to
# modify access entries with a principalArn value of a Service Linked Role",
# hashicorp/terraform-provider-aws#36447). So the order is what Terraform owns: the
# service-linked role, the namespace (reached by the admin entries and the API rules), then
# the virtual cluster; and the check "emr_cluster_access" below reads the entry back after
# every apply. The role running terraform apply needs eks:CreateAccessEntry,
# eks:DescribeAccessEntry, eks:DeleteAccessEntry, eks:AssociateAccessPolicy,
# eks:DisassociateAccessPolicy and eks:ListAssociatedAccessPolicies on the cluster for EMR to
# do this on its behalf (infra/terraform/README.md).
resource "aws_emrcontainers_virtual_cluster" "this" {
  name = "${var.name_prefix}-spark"

  container_provider {
    id   = aws_eks_cluster.this.name
    type = "EKS"

    info {
      eks_info {
        namespace = kubernetes_namespace_v1.emr.metadata[0].name
      }
    }
  }

  tags = var.tags

  depends_on = [
    aws_iam_service_linked_role.emr_containers,
    aws_eks_access_policy_association.admin,
  ]
}

# After apply: EMR's access entry exists (a STANDARD entry of its service-linked role). A
# failed check is reported as a warning with this message; jobs would fail with
# "Unauthorized" on the namespace otherwise (see docs/infrastructure.md).
check "emr_cluster_access" {
  data "aws_eks_access_entry" "emr" {
    cluster_name  = aws_eks_cluster.this.name
    principal_arn = local.emr_service_linked_role_arn

    depends_on = [aws_emrcontainers_virtual_cluster.this]
  }

  assert {
    condition     = data.aws_eks_access_entry.emr.type == "STANDARD"
    error_message = "EMR on EKS did not create the access entry of AWSServiceRoleForAmazonEMRContainers (${local.emr_job_access_policy_arn}, namespace ${var.emr_namespace}) on ${aws_eks_cluster.this.name}: give the apply role the eks access-entry permissions and replace the virtual cluster (docs/infrastructure.md, release path)."
  }
}

resource "aws_cloudwatch_log_group" "emr" {
  name              = var.emr_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arns.logs

  tags = var.tags
}

# EMR on EKS runs each job's pods under a generated service account
# "emr-containers-sa-<component>-<job>-<account>-<base36 of the role name>" in the namespace
# (the AWS CLI's `aws emr-containers update-role-trust-policy` writes the same pattern). The
# base36 part pins each role to its own service accounts: a pod started with one role cannot
# assume the other. Terraform has no base36 function: the envs pass it (job_role_name_base36)
# and tests/infra recomputes it from the role names.
data "aws_iam_policy_document" "job_assume" {
  for_each = local.job_role_names

  statement {
    sid     = "EmrJobServiceAccounts"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }

    condition {
      test     = "StringLike"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${var.emr_namespace}:emr-containers-sa-*-*-${local.account_id}-${var.job_role_name_base36[each.key]}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# Ingest jobs: batch index (raw drops -> masked, tokenized index + quarantine) and stream
# index (MSK -> stream index, alerts, dead letters). The only roles reading raw drops and
# the PAN token key.
data "aws_iam_policy_document" "ingest_job" {
  statement {
    sid       = "ListLakeBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arns.raw, var.bucket_arns.processed, var.bucket_arns.quarantine, var.bucket_arns.checkpoints, var.bucket_arns.artifacts]
  }

  statement {
    sid       = "ReadRawDrops"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arns.raw}/*"]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arns.artifacts}/*"]
  }

  statement {
    sid = "WriteIndexesQuarantineCheckpoints"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.bucket_arns.processed}/*", "${var.bucket_arns.quarantine}/*", "${var.bucket_arns.checkpoints}/*"]
  }

  # Only the orchestrator (MWAA) marks a version verified and publishes it: explicit denies,
  # so no later grant to this role can let a job vouch for its own output.
  statement {
    sid       = "DenyWritingQualityResults"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = local.quality_result_arns
  }

  statement {
    sid       = "DenyCatalogWrites"
    effect    = "Deny"
    actions   = local.glue_write_actions
    resources = var.glue_resource_arns
  }

  statement {
    sid       = "WriteSparkLogs"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arns.logs}/emr-on-eks/*"]
  }

  statement {
    sid       = "UseLakeKeys"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arns.data, var.kms_key_arns.logs]
  }

  statement {
    sid       = "DecryptArtifacts"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.kms_key_arns.artifacts]
  }

  # Read only: partitions are published by the orchestrator (MWAA) after the quality gate.
  statement {
    sid       = "ReadGlueCatalog"
    actions   = local.glue_read_actions
    resources = var.glue_resource_arns
  }

  statement {
    sid       = "MskConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }

  statement {
    sid       = "MskReadInputTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = var.msk_read_topic_arns
  }

  statement {
    sid       = "MskWriteOutputTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = var.msk_write_topic_arns
  }

  # Spark's Kafka source names its groups <groupIdPrefix>-<uuid>-<hash>; the prefix is the stream job's.
  statement {
    sid       = "MskConsumerGroups"
    actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = [for prefix in var.msk_consumer_group_prefixes : "${var.msk_group_arn_prefix}${prefix}*"]
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.emr.arn, "${aws_cloudwatch_log_group.emr.arn}:*"]
  }

  statement {
    sid       = "DescribeJobLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  # PutMetricData has no resource-level permissions; the namespace condition scopes it.
  statement {
    sid       = "PublishStreamingMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  statement {
    sid       = "ReadPanTokenKey"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.pan_token_secret_arn]
  }

  statement {
    sid       = "DecryptPanTokenKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arns.secrets]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

# Transform jobs: aggregate index, business indexes, stream-index compaction, quality gate.
# They read published/staged index versions and the raw side sources without card data
# (transform_raw_read_prefixes); no raw transaction drop, no PAN token key, no Kafka.
data "aws_iam_policy_document" "transform_job" {
  statement {
    sid       = "ListLakeBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arns.raw, var.bucket_arns.processed, var.bucket_arns.artifacts]
  }

  statement {
    sid       = "ReadRawSideSources"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for prefix in var.transform_raw_read_prefixes : "${var.bucket_arns.raw}/${prefix}*"]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arns.artifacts}/*"]
  }

  statement {
    sid = "WriteIndexes"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.bucket_arns.processed}/*"]
  }

  # Only the orchestrator (MWAA) marks a version verified and publishes it: explicit denies,
  # so no later grant to this role can let a job vouch for its own output.
  statement {
    sid       = "DenyWritingQualityResults"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = local.quality_result_arns
  }

  statement {
    sid       = "DenyCatalogWrites"
    effect    = "Deny"
    actions   = local.glue_write_actions
    resources = var.glue_resource_arns
  }

  statement {
    sid       = "WriteSparkLogs"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arns.logs}/emr-on-eks/*"]
  }

  statement {
    sid       = "UseLakeKeys"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arns.data, var.kms_key_arns.logs]
  }

  statement {
    sid       = "DecryptArtifacts"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.kms_key_arns.artifacts]
  }

  statement {
    sid       = "ReadGlueCatalog"
    actions   = local.glue_read_actions
    resources = var.glue_resource_arns
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.emr.arn, "${aws_cloudwatch_log_group.emr.arn}:*"]
  }

  statement {
    sid       = "DescribeJobLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }
}

locals {
  # Catalog changes are publishing: the MWAA role's (modules/airflow), never a job's.
  glue_write_actions = [
    "glue:CreateDatabase",
    "glue:UpdateDatabase",
    "glue:DeleteDatabase",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:DeleteTable",
    "glue:BatchDeleteTable",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:BatchUpdatePartition",
    "glue:DeletePartition",
    "glue:BatchDeletePartition",
  ]
  glue_read_actions = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
  ]
}

resource "aws_iam_role" "job" {
  for_each = local.job_role_names

  name               = each.value
  description        = "EMR on EKS job execution role: ${each.key} jobs"
  assume_role_policy = data.aws_iam_policy_document.job_assume[each.key].json

  tags = var.tags
}

resource "aws_iam_role_policy" "ingest_job" {
  name   = "payments-spark-ingest-jobs"
  role   = aws_iam_role.job["ingest"].id
  policy = data.aws_iam_policy_document.ingest_job.json
}

resource "aws_iam_role_policy" "transform_job" {
  name   = "payments-spark-transform-jobs"
  role   = aws_iam_role.job["transform"].id
  policy = data.aws_iam_policy_document.transform_job.json
}

# --- ECR ------------------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  for_each = toset(var.ecr_repositories)

  name                 = "${var.name_prefix}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arns.compute
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 newest images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}
