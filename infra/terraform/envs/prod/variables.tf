variable "environment" {
  description = "Environment name (dev, prod); part of every resource name."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the environment (AWS_REGION on MWAA)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  type        = string
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
}

variable "private_subnet_cidrs" {
  description = "Private subnet CIDRs per tier (msk, eks, mwaa), one per availability zone."
  type = object({
    msk  = list(string)
    eks  = list(string)
    mwaa = list(string)
  })
}

variable "public_subnet_cidrs" {
  description = "Public subnet CIDRs of the NAT gateways, one per availability zone."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC instead of one per zone."
  type        = bool
}

variable "index_retention_days" {
  description = "Days superseded index versions are kept (include/profiles/aws.yaml lake.retention_days)."
  type        = number
  default     = 30
}

variable "raw_retention_days" {
  description = "Days raw drops (clear card data, CVV included) are kept; module lake variable raw_retention_days explains the default."
  type        = number
  default     = 7
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete non-empty buckets (dev only)."
  type        = bool
  default     = false
}

variable "msk_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
}

variable "msk_broker_volume_size_gb" {
  description = "EBS storage per MSK broker in GiB."
  type        = number
}

variable "eks_node_instance_types" {
  description = "Instance types of the Spark node group."
  type        = list(string)
}

variable "eks_node_scaling" {
  description = "Spark node group autoscaling bounds."
  type = object({
    min_size     = number
    max_size     = number
    desired_size = number
  })
}

variable "spark_image_tag" {
  description = "Tag of the Spark custom image in ECR the jobs run."
  type        = string
}

variable "mwaa_environment_class" {
  description = "MWAA environment class."
  type        = string
}

variable "mwaa_workers" {
  description = "MWAA worker autoscaling bounds."
  type = object({
    min = number
    max = number
  })
}

variable "oncall_subscriptions" {
  description = "Subscriptions of the on-call SNS topic, which every alarm and Airflow page goes to: protocol \"https\" (a paging service's SNS integration URL, e.g. PagerDuty or Opsgenie) or \"email\", and the endpoint. Required (no default): prod must page someone, so prod needs at least one (a validation refuses []); dev may pass []. Account-specific: account.auto.tfvars (prod) or terraform.tfvars (dev)."
  type = list(object({
    protocol = string
    endpoint = string
  }))

  validation {
    condition     = var.environment != "prod" || length(var.oncall_subscriptions) > 0
    error_message = "prod needs at least one on-call subscription (oncall_subscriptions): alarms must page someone."
  }

  validation {
    condition = alltrue([
      for subscription in var.oncall_subscriptions :
      (subscription.protocol == "email" && can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", subscription.endpoint)))
      || (subscription.protocol == "https" && startswith(subscription.endpoint, "https://"))
    ])
    error_message = "oncall_subscriptions entries must be {protocol = \"email\", endpoint = <address>} or {protocol = \"https\", endpoint = \"https://...\"}."
  }
}

variable "eks_api_access" {
  description = "Who reaches the private EKS API endpoint on 443: the subnet CIDRs and/or security groups of the terraform apply runner / CI and of operators (at least one). Account-specific: account.auto.tfvars."
  type = object({
    cidr_blocks        = optional(list(string), [])
    security_group_ids = optional(list(string), [])
  })

  validation {
    condition     = length(var.eks_api_access.cidr_blocks) + length(var.eks_api_access.security_group_ids) > 0
    error_message = "eks_api_access needs at least one CIDR or security group: the apply runner must reach the private API endpoint."
  }
}

variable "eks_admin_role_arns" {
  description = "IAM role ARNs with EKS cluster admin (access entries, AmazonEKSClusterAdminPolicy): the role running terraform apply first, then CI and operators. Account-specific: account.auto.tfvars."
  type        = list(string)

  validation {
    condition     = length(var.eks_admin_role_arns) > 0
    error_message = "eks_admin_role_arns must list at least the role running terraform apply."
  }
}

variable "emr_job_role_name_base36" {
  description = "Base36 of the EMR job role names payments-<environment>-emr-ingest / -emr-transform (the suffix of their job pods' service accounts; tests/infra checks the values)."
  type = object({
    ingest    = string
    transform = string
  })
}

variable "create_service_linked_roles" {
  description = "Create the service-linked roles the estate names before first use (Auto Scaling, EMR on EKS). true for a fresh account; false where the account already has them."
  type        = bool
  default     = true
}

variable "pin_uploaded_artifacts" {
  description = "Pin MWAA to the current versions of plugins.zip, requirements.txt and startup.sh in the artifacts bucket (module airflow). Pass -var pin_uploaded_artifacts=false only on the very first apply of an environment, before scripts/deploy.py first uploaded them."
  type        = bool
  default     = true
}

variable "artifact_versions" {
  description = "Explicit object versions of plugins.zip, requirements.txt and startup.sh (a rollback: the versions scripts/deploy.py reported for an earlier release); unset ones follow pin_uploaded_artifacts."
  type = object({
    plugins        = optional(string)
    requirements   = optional(string)
    startup_script = optional(string)
  })
  default = {}
}
