variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod."
  type        = string
}

variable "domains" {
  description = <<-EOT
    Customer-managed keys to create, one per data domain. Each domain lists the AWS
    service principals (besides IAM principals of this account) that must use the key:
    "logs" (CloudWatch Logs), "s3-access-logs" (S3 server access log delivery),
    "cloudwatch-alarms" (alarms publishing to an encrypted SNS topic), "events"
    (EventBridge publishing to an encrypted SNS topic), "autoscaling-ebs" (the Auto
    Scaling service-linked role launching nodes with encrypted EBS volumes; this module
    creates that role), "cloudtrail" (CloudTrail encrypting trail log files).
  EOT
  type = map(object({
    description = string
    services    = list(string)
  }))
  default = {
    data = {
      description = "Cardholder-data lake: raw, processed indexes, quarantine, checkpoints, Glue catalog, Athena results"
      services    = []
    }
    artifacts = {
      description = "Deployment artifacts (DAGs, plugins, Spark apps) and the MWAA environment"
      services    = ["logs"]
    }
    logs = {
      description = "Audit and application logs: CloudWatch log groups, S3 access logs, VPC flow logs, CloudTrail"
      services    = ["logs", "s3-access-logs", "cloudtrail"]
    }
    streaming = {
      description = "MSK broker storage"
      services    = []
    }
    compute = {
      description = "EKS secrets envelope encryption, ECR images, node volumes"
      services    = ["autoscaling-ebs"]
    }
    secrets = {
      description = "Secrets Manager: PII tokenization key and Airflow connections/variables"
      services    = []
    }
    alerting = {
      description = "On-call SNS topic"
      services    = ["cloudwatch-alarms", "events"]
    }
  }

  validation {
    condition = alltrue([
      for domain in values(var.domains) : alltrue([
        for service in domain.services : contains(["logs", "s3-access-logs", "cloudwatch-alarms", "events", "autoscaling-ebs", "cloudtrail"], service)
      ])
    ])
    error_message = "services may only contain logs, s3-access-logs, cloudwatch-alarms, events, autoscaling-ebs or cloudtrail."
  }
}

variable "create_autoscaling_service_linked_role" {
  description = "Create the Auto Scaling service-linked role (AWSServiceRoleForAutoScaling) that the autoscaling-ebs key policies name. A fresh account has none; set false where the account already has it (creating it twice fails), or terraform import it."
  type        = bool
  default     = true
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic key material rotation period (90-2560 days)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
