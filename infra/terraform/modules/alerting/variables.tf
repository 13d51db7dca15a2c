variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the alerting domain, encrypting the on-call topic."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the EMR job-failure event log group."
  type        = string
}

variable "oncall_subscriptions" {
  description = "Subscriptions of the on-call topic: protocol \"email\" (an address) or \"https\" (a paging service's SNS integration URL). No default: the environment decides who is paged (prod refuses an empty list)."
  type = list(object({
    protocol = string
    endpoint = string
  }))

  validation {
    condition     = alltrue([for subscription in var.oncall_subscriptions : contains(["email", "https"], subscription.protocol)])
    error_message = "oncall_subscriptions protocols must be email or https."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the streaming app publishes FreshnessSeconds, ConsumerLag and QuarantineRate to."
  type        = string
  default     = "Payments/Streaming"
}

variable "metric_dimensions" {
  description = "Dimensions the streaming app attaches to FreshnessSeconds, ConsumerLag and QuarantineRate (none by default)."
  type        = map(string)
  default     = {}
}

variable "freshness_threshold_seconds" {
  description = "Page when the stream index is older than this (metric FreshnessSeconds, maximum per minute)."
  type        = number
  default     = 300
}

variable "consumer_lag_threshold" {
  description = "Page when the streaming app lags this many records behind the topic end (metric ConsumerLag, maximum per minute)."
  type        = number
  default     = 100000
}

variable "quarantine_rate_threshold" {
  description = "Page when this fraction of records (0-1) is quarantined (metric QuarantineRate, average per 5 minutes)."
  type        = number
  default     = 0.05
}

variable "emr_virtual_cluster_id" {
  description = "EMR on EKS virtual cluster whose failed job runs page on-call."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the job-failure event log group (PCI DSS 10.5.1: at least one year)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
