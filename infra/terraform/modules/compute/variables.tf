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
  description = "Glue catalog, database and table ARNs the jobs may read and add partitions to (module catalog output glue_resource_arns)."
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
