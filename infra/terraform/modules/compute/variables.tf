variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the EKS control plane ENIs and worker nodes."
  type        = list(string)
}

variable "api_access_cidrs" {
  description = "CIDRs allowed to reach the private Kubernetes API endpoint on 443: the subnet(s) of the terraform apply runner / CI (the kubernetes provider creates the EMR namespace) and of operators (VPN). At least one of api_access_cidrs and api_access_security_group_ids must be set."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.api_access_cidrs) + length(var.api_access_security_group_ids) > 0
    error_message = "Set api_access_cidrs or api_access_security_group_ids: the apply runner must reach the private API endpoint."
  }

  validation {
    condition     = alltrue([for cidr in var.api_access_cidrs : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "api_access_cidrs must be IPv4 CIDRs narrower than /0 (the endpoint is private; never open it to everything)."
  }
}

variable "api_access_security_group_ids" {
  description = "Security groups (of the apply runner / CI, in this VPC or a peered one) allowed to reach the private Kubernetes API endpoint on 443."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.api_access_security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "api_access_security_group_ids must be security group ids (sg-...)."
  }
}

variable "cluster_admin_role_arns" {
  description = "IAM role ARNs given cluster admin (access entry + AmazonEKSClusterAdminPolicy, cluster scope): the role running terraform apply (it must be listed: the creator gets no implicit access, and the kubernetes provider creates the EMR namespace with it), CI and operators."
  type        = list(string)

  validation {
    condition     = length(var.cluster_admin_role_arns) > 0
    error_message = "cluster_admin_role_arns must list at least the role that runs terraform apply."
  }

  validation {
    condition     = alltrue([for arn in var.cluster_admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn)) && !strcontains(arn, "aws-service-role/")])
    error_message = "cluster_admin_role_arns must be IAM role ARNs (not STS session ARNs, not service-linked roles)."
  }
}

variable "create_emr_service_linked_role" {
  description = "Create the EMR on EKS service-linked role (AWSServiceRoleForAmazonEMRContainers) before the virtual cluster. A fresh account has none; set false where the account already has it (creating it twice fails), or terraform import it."
  type        = bool
  default     = true
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.34"
}

variable "node_instance_types" {
  description = "Instance types of the Spark worker node group."
  type        = list(string)
  default     = ["m7i.2xlarge"]
}

variable "node_scaling" {
  description = "Node group autoscaling bounds (the Cluster Autoscaler moves desired_size between min and max)."
  type = object({
    min_size     = number
    max_size     = number
    desired_size = number
  })
  default = {
    min_size     = 2
    max_size     = 10
    desired_size = 2
  }

  validation {
    condition     = var.node_scaling.min_size <= var.node_scaling.desired_size && var.node_scaling.desired_size <= var.node_scaling.max_size
    error_message = "node_scaling needs min_size <= desired_size <= max_size."
  }
}

variable "node_disk_size_gb" {
  description = "Root volume size of each worker node in GiB (Spark shuffle and spill)."
  type        = number
  default     = 200
}

variable "emr_namespace" {
  description = "Kubernetes namespace of the EMR on EKS virtual cluster."
  type        = string
  default     = "emr-jobs"
}

variable "emr_log_group_name" {
  description = "CloudWatch log group of EMR on EKS job runs (include/profiles/aws.yaml spark.log_group)."
  type        = string
  default     = "/payments/emr-on-eks"
}

variable "ecr_repositories" {
  description = "ECR repositories to create (immutable tags, scan on push). 'spark' holds the EMR on EKS custom image."
  type        = list(string)
  default     = ["spark"]
}

variable "spark_image_tag" {
  description = "Tag of the Spark custom image the jobs run (immutable; bump it per release)."
  type        = string
}

variable "bucket_arns" {
  description = "Lake bucket ARNs by role (module lake output bucket_arns)."
  type = object({
    raw         = string
    processed   = string
    quarantine  = string
    checkpoints = string
    artifacts   = string
    logs        = string
  })
}

variable "kms_key_arns" {
  description = "Customer-managed key ARNs by domain (module kms output key_arns)."
  type = object({
    data      = string
    artifacts = string
    logs      = string
    compute   = string
    secrets   = string
  })
}

variable "glue_resource_arns" {
  description = "Glue catalog, database and table ARNs (module catalog output glue_resource_arns): the jobs may read them and are explicitly denied every write (publishing is the orchestrator's)."
  type        = list(string)
}

variable "msk_cluster_arn" {
  description = "MSK cluster ARN."
  type        = string
}

variable "msk_read_topic_arns" {
  description = "Topic ARNs the streaming app consumes."
  type        = list(string)
}

variable "msk_write_topic_arns" {
  description = "Topic ARNs the streaming app produces to (alerts, dead letters)."
  type        = list(string)
}

variable "msk_group_arn_prefix" {
  description = "Consumer group ARN prefix of the cluster (module msk output group_arn_prefix)."
  type        = string
}

variable "msk_consumer_group_prefixes" {
  description = "Consumer group name prefixes the jobs may use: the stream job sets Spark's Kafka source option groupIdPrefix to payments-stream-index (spark_apps/jobs/stream_index.py), so its groups are payments-stream-index*."
  type        = list(string)
  default     = ["payments-stream-index"]

  validation {
    condition     = alltrue([for prefix in var.msk_consumer_group_prefixes : length(prefix) > 0 && !strcontains(prefix, "*")])
    error_message = "Consumer group prefixes must be non-empty names without wildcards (the policy appends the * itself)."
  }
}

variable "job_role_name_base36" {
  description = "Base36 of each job role's name (<name_prefix>-emr-ingest, <name_prefix>-emr-transform), as EMR on EKS appends it to the job pods' service account names (AWS CLI emr-containers base36 encoding); it pins each role's trust to its own service accounts. tests/infra recomputes it from the role names."
  type = object({
    ingest    = string
    transform = string
  })

  validation {
    condition     = alltrue([for value in values(var.job_role_name_base36) : can(regex("^[0-9a-z]+$", value))])
    error_message = "job_role_name_base36 values are base36 (0-9, a-z), never wildcards."
  }
}

variable "transform_raw_read_prefixes" {
  description = "Key prefixes of the raw bucket the transform jobs may read: the side sources without card data they join (settlements, merchants, users, fraud labels; spark_apps/jobs/aggregate_index.py and business_indexes.py). Never a transaction source (gateway_*), which hold PAN and CVV."
  type        = list(string)
  default     = ["raw/settlements/", "raw/merchants/", "raw/users/", "raw/fraud_labels/"]

  validation {
    condition     = alltrue([for prefix in var.transform_raw_read_prefixes : can(regex("^raw/[a-z0-9_]+/$", prefix)) && !startswith(prefix, "raw/gateway_")])
    error_message = "transform_raw_read_prefixes must be raw/<source>/ folders, never a gateway_* transaction source."
  }
}

variable "quality_result_file" {
  description = "Object name of a quality gate result next to an index version (plugins/payments_platform/publishing.py QUALITY_RESULT_FILE); only the orchestrator (MWAA) may write it, every job role is denied."
  type        = string
  default     = "_quality.json"
}

variable "pan_token_secret_arn" {
  description = "Secrets Manager ARN of the PAN tokenization key the masking step reads."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the streaming app publishes its metrics to."
  type        = string
  default     = "Payments/Streaming"
}

variable "log_retention_days" {
  description = "Retention of the EKS control-plane and EMR log groups (PCI DSS 10.5.1: at least one year)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "cluster_autoscaler_chart_version" {
  description = "Version of the upstream cluster-autoscaler Helm chart (https://kubernetes.github.io/autoscaler)."
  type        = string
  default     = "9.50.1"
}

variable "cluster_autoscaler_patch" {
  description = "Patch release of the Cluster Autoscaler image for the cluster's minor version (image tag v<kubernetes_version>.<patch>)."
  type        = number
  default     = 0

  validation {
    condition     = var.cluster_autoscaler_patch >= 0 && floor(var.cluster_autoscaler_patch) == var.cluster_autoscaler_patch
    error_message = "cluster_autoscaler_patch is a whole number >= 0."
  }
}
