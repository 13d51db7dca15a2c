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

variable "oncall_email_endpoints" {
  description = "E-mail addresses subscribed to the on-call topic."
  type        = list(string)
  default     = []
}

variable "artifact_versions" {
  description = "S3 object versions printed by scripts/deploy.py (written to artifacts.auto.tfvars.json)."
  type = object({
    plugins        = optional(string)
    requirements   = optional(string)
    startup_script = optional(string)
  })
  default = {}
}
