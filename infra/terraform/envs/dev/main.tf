# One environment of the payments platform. envs/dev and envs/prod share this file
# (a test keeps them identical apart from the state key); they differ in tfvars only.
terraform {
  # Partial values: pass the real state bucket with -backend-config (README.md).
  backend "s3" {
    bucket       = "payments-terraform-state"
    key          = "payments/dev/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

provider "kubernetes" {
  host                   = module.compute.cluster_endpoint
  cluster_ca_certificate = base64decode(module.compute.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.compute.cluster_name, "--region", var.region]
  }
}

# The same cluster access for Helm (the Cluster Autoscaler release of the compute module).
provider "helm" {
  kubernetes {
    host                   = module.compute.cluster_endpoint
    cluster_ca_certificate = base64decode(module.compute.cluster_certificate_authority_data)

    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.compute.cluster_name, "--region", var.region]
    }
  }
}

locals {
  name_prefix = "payments-${var.environment}"
  tags = {
    Project     = "payments-reconciliation-index"
    Environment = var.environment
    ManagedBy   = "terraform"
    Compliance  = "pci-dss"
  }
  # CloudWatch namespace of the streaming app's metrics: the job role may publish only
  # there, and the alarms watch it.
  metrics_namespace = "Payments/Streaming"
  # Index table definitions generated from spark_apps/schemas.py (one source of truth).
  tables = jsondecode(file("${path.root}/../../../../include/sql/tables.json")).tables
  # The account's CloudTrail trail; the lake's cloudtrail bucket admits exactly this trail.
  trail_name = "${local.name_prefix}-trail"
}

module "kms" {
  source = "../../modules/kms"

  name_prefix                            = local.name_prefix
  create_autoscaling_service_linked_role = var.create_service_linked_roles
  tags                                   = local.tags
}

module "network" {
  source = "../../modules/network"

  name_prefix          = local.name_prefix
  cidr_block           = var.vpc_cidr_block
  availability_zones   = var.availability_zones
  private_subnet_cidrs = var.private_subnet_cidrs
  public_subnet_cidrs  = var.public_subnet_cidrs
  single_nat_gateway   = var.single_nat_gateway
  logs_kms_key_arn     = module.kms.key_arns.logs
  tags                 = local.tags
}

module "lake" {
  source = "../../modules/lake"

  name_prefix           = local.name_prefix
  data_kms_key_arn      = module.kms.key_arns.data
  artifacts_kms_key_arn = module.kms.key_arns.artifacts
  logs_kms_key_arn      = module.kms.key_arns.logs
  index_retention_days  = var.index_retention_days
  raw_retention_days    = var.raw_retention_days
  cloudtrail_name       = local.trail_name
  force_destroy         = var.force_destroy_buckets
  tags                  = local.tags
}

module "audit" {
  source = "../../modules/audit"

  trail_name             = local.trail_name
  bucket_name            = module.lake.cloudtrail_bucket_name
  logs_kms_key_arn       = module.kms.key_arns.logs
  data_event_bucket_arns = [module.lake.bucket_arns.raw, module.lake.bucket_arns.quarantine]
  tags                   = local.tags
}

module "secrets" {
  source = "../../modules/secrets"

  kms_key_arn                    = module.kms.key_arns.secrets
  msk_bootstrap_brokers_sasl_iam = module.msk.bootstrap_brokers_sasl_iam
  tags                           = local.tags
}

module "msk" {
  source = "../../modules/msk"

  name_prefix           = local.name_prefix
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids.msk
  client_cidr_blocks    = var.private_subnet_cidrs.eks
  broker_instance_type  = var.msk_broker_instance_type
  broker_volume_size_gb = var.msk_broker_volume_size_gb
  kms_key_arn           = module.kms.key_arns.streaming
  logs_kms_key_arn      = module.kms.key_arns.logs
  tags                  = local.tags
}

module "catalog" {
  source = "../../modules/catalog"

  tables                     = local.tables
  processed_bucket_name      = module.lake.bucket_names.processed
  athena_results_bucket_name = module.lake.bucket_names["athena-results"]
  data_kms_key_arn           = module.kms.key_arns.data
  tags                       = local.tags
}

module "compute" {
  source = "../../modules/compute"

  name_prefix         = local.name_prefix
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids.eks
  node_instance_types = var.eks_node_instance_types
  node_scaling        = var.eks_node_scaling
  spark_image_tag     = var.spark_image_tag
  # Who reaches and administers the private cluster (account-specific: account.auto.tfvars).
  api_access_cidrs               = var.eks_api_access.cidr_blocks
  api_access_security_group_ids  = var.eks_api_access.security_group_ids
  cluster_admin_role_arns        = var.eks_admin_role_arns
  create_emr_service_linked_role = var.create_service_linked_roles
  job_role_name_base36           = var.emr_job_role_name_base36
  bucket_arns = {
    raw         = module.lake.bucket_arns.raw
    processed   = module.lake.bucket_arns.processed
    quarantine  = module.lake.bucket_arns.quarantine
    checkpoints = module.lake.bucket_arns.checkpoints
    artifacts   = module.lake.bucket_arns.artifacts
    logs        = module.lake.bucket_arns.logs
  }
  kms_key_arns = {
    data      = module.kms.key_arns.data
    artifacts = module.kms.key_arns.artifacts
    logs      = module.kms.key_arns.logs
    compute   = module.kms.key_arns.compute
    secrets   = module.kms.key_arns.secrets
  }
  glue_resource_arns   = module.catalog.glue_resource_arns
  msk_cluster_arn      = module.msk.cluster_arn
  msk_read_topic_arns  = [module.msk.topic_arns["payments.transactions"], module.msk.topic_arns["payments.fraud-signals"]]
  msk_write_topic_arns = [module.msk.topic_arns["payments.fraud-alerts"], module.msk.topic_arns["payments.dead-letter"]]
  msk_group_arn_prefix = module.msk.group_arn_prefix
  pan_token_secret_arn = module.secrets.pan_token_secret_arn
  metrics_namespace    = local.metrics_namespace
  tags                 = local.tags
}

module "alerting" {
  source = "../../modules/alerting"

  name_prefix            = local.name_prefix
  kms_key_arn            = module.kms.key_arns.alerting
  logs_kms_key_arn       = module.kms.key_arns.logs
  oncall_subscriptions   = var.oncall_subscriptions
  emr_virtual_cluster_id = module.compute.emr_virtual_cluster_id
  metrics_namespace      = local.metrics_namespace
  tags                   = local.tags
}

module "airflow" {
  source = "../../modules/airflow"

  name_prefix            = local.name_prefix
  environment_class      = var.mwaa_environment_class
  workers                = var.mwaa_workers
  vpc_id                 = module.network.vpc_id
  subnet_ids             = slice(module.network.private_subnet_ids.mwaa, 0, 2)
  artifacts_bucket_arn   = module.lake.bucket_arns.artifacts
  artifact_versions      = var.artifact_versions
  pin_uploaded_artifacts = var.pin_uploaded_artifacts
  kms_key_arns = {
    data      = module.kms.key_arns.data
    artifacts = module.kms.key_arns.artifacts
    secrets   = module.kms.key_arns.secrets
    alerting  = module.kms.key_arns.alerting
  }
  bucket_arns = {
    raw            = module.lake.bucket_arns.raw
    processed      = module.lake.bucket_arns.processed
    quarantine     = module.lake.bucket_arns.quarantine
    athena-results = module.lake.bucket_arns["athena-results"]
  }
  emr_virtual_cluster_arn     = module.compute.emr_virtual_cluster_arn
  emr_job_execution_role_arns = [module.compute.ingest_job_role_arn, module.compute.transform_job_role_arn]
  msk_cluster_arn             = module.msk.cluster_arn
  msk_security_group_id       = module.msk.security_group_id
  msk_topic_arns = [
    module.msk.topic_arns["payments.transactions"],
    module.msk.topic_arns["payments.fraud-signals"],
    module.msk.topic_arns["payments.fraud-alerts"],
    module.msk.topic_arns["payments.dead-letter"],
  ]
  glue_resource_arns          = module.catalog.glue_resource_arns
  athena_workgroup_arn        = module.catalog.athena_workgroup_arn
  oncall_topic_arn            = module.alerting.oncall_topic_arn
  airflow_secret_arn_patterns = module.secrets.airflow_secret_arn_patterns
  secrets_backend_kwargs      = module.secrets.airflow_secrets_backend_kwargs
  tags                        = local.tags
}
