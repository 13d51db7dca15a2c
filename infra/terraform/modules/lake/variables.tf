variable "name_prefix" {
  description = "Prefix of every bucket name, for example payments-prod. The account id and region are appended for global uniqueness."
  type        = string
}

variable "data_kms_key_arn" {
  description = "KMS key of the cardholder-data domain (raw, processed, quarantine, checkpoints, athena-results)."
  type        = string
}

variable "artifacts_kms_key_arn" {
  description = "KMS key of the artifacts bucket (DAGs, plugins, Spark applications)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the logs bucket (S3 server access logs, Spark event logs)."
  type        = string
}

variable "index_retention_days" {
  description = "How long superseded index versions (.../dt=D/run=R/) and noncurrent object versions are kept (include/profiles/aws.yaml lake.retention_days)."
  type        = number
  default     = 30
}

variable "superseded_tag" {
  description = "Object tag the partition publisher sets on index versions it replaced; tagged objects expire after index_retention_days."
  type = object({
    key   = string
    value = string
  })
  default = {
    key   = "payments-lifecycle"
    value = "superseded"
  }
}

variable "sent_marker_prefixes" {
  description = "Key prefixes of the streaming app's sent markers in the checkpoints bucket (<checkpoint_uri path>/<query name>/_sent/); they expire after sent_marker_retention_days."
  type        = list(string)
  default     = ["checkpoints/stream_index/_sent/"]

  validation {
    condition     = alltrue([for prefix in var.sent_marker_prefixes : endswith(prefix, "/_sent/")])
    error_message = "Each prefix must end in /_sent/: a shorter one would expire the checkpoint's offsets and state."
  }
}

variable "sent_marker_retention_days" {
  description = "Days a sent marker is kept. A stream restarted after a longer stop may resend its one uncommitted batch's alerts (same keys)."
  type        = number
  default     = 7
}

variable "raw_retention_days" {
  description = "Days raw drops (which still hold clear card data) are kept before expiry."
  type        = number
  default     = 90
}

variable "quarantine_retention_days" {
  description = "Days quarantine rows are kept for investigation."
  type        = number
  default     = 365
}

variable "athena_results_retention_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days access logs are kept (PCI DSS 10.5.1: at least one year, three months immediately available)."
  type        = number
  default     = 400
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete non-empty buckets (never in prod)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
