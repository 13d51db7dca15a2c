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
  description = "How long superseded index versions (.../dt=D/version=V/) and noncurrent object versions are kept (include/profiles/aws.yaml lake.retention_days)."
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

variable "pan_scan_failed_tag" {
  description = "Object tag marking an index version whose quality gate found a clear card number (PAN scan failed); tagged objects expire after pan_scan_failed_retention_days instead of index_retention_days. Same key as superseded_tag, so one object carries one lifecycle."
  type = object({
    key   = string
    value = string
  })
  default = {
    key   = "payments-lifecycle"
    value = "pan-scan-failed"
  }

  validation {
    condition     = var.pan_scan_failed_tag.value != "superseded"
    error_message = "pan_scan_failed_tag must differ from the superseded tag value."
  }
}

variable "pan_scan_failed_retention_days" {
  description = "Days an index version that leaked a card number is kept (long enough for the page to be read, not for the data to linger)."
  type        = number
  default     = 1

  validation {
    condition     = var.pan_scan_failed_retention_days >= 1 && var.pan_scan_failed_retention_days <= 3
    error_message = "pan_scan_failed_retention_days must be 1-3."
  }
}

variable "cloudtrail_name" {
  description = "Name of the trail delivering to the cloudtrail bucket (module audit); its bucket policy admits that trail only."
  type        = string
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
  description = <<-EOT
    Days raw drops are kept before they expire. They hold clear card data, CVV included,
    which PCI DSS 3.3.1 forbids keeping after authorization: they live only as long as
    processing needs them. 7 days = the daily batch (its sensor waits up to 12 h for the
    ready marker) plus retries, a weekend of incident handling and a reprocessing of the
    last days (payments_reprocess); older dates are rebuilt from the indexes, not from raw.
  EOT
  type        = number
  default     = 7

  validation {
    condition     = var.raw_retention_days >= 1 && var.raw_retention_days <= 14
    error_message = "raw_retention_days must be 1-14: raw drops hold card data that must not outlive processing."
  }
}

variable "raw_noncurrent_version_days" {
  description = "Days an overwritten or deleted raw object version (clear card data) stays recoverable; 1 is S3's minimum."
  type        = number
  default     = 1

  validation {
    condition     = var.raw_noncurrent_version_days >= 1 && var.raw_noncurrent_version_days <= 3
    error_message = "raw_noncurrent_version_days must be 1-3: old versions of raw drops still hold card data."
  }
}

variable "artifact_unpinned_prefixes" {
  description = "Prefixes of the artifacts bucket whose noncurrent versions expire after index_retention_days: what scripts/deploy.py rewrites on every release (dags/, spark_apps/, include/). The keys MWAA pins by version (plugins.zip, requirements.txt, startup.sh at the bucket root) must stay outside them: their old versions are kept for rollback."
  type        = list(string)
  default     = ["dags/", "spark_apps/", "include/"]

  validation {
    condition = alltrue([
      for prefix in var.artifact_unpinned_prefixes :
      endswith(prefix, "/") && length(prefix) > 1 && !anytrue([for pinned in ["plugins.zip", "requirements.txt", "startup.sh"] : startswith(pinned, prefix)])
    ])
    error_message = "artifact_unpinned_prefixes must be folders (ending in /) that contain none of plugins.zip, requirements.txt, startup.sh."
  }
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
