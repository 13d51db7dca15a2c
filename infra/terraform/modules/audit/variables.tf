variable "trail_name" {
  description = "Name of the CloudTrail trail (module lake admits exactly this trail to its cloudtrail bucket: pass the same name as its cloudtrail_name)."
  type        = string
}

variable "bucket_name" {
  description = "Bucket receiving the trail's log files (module lake output cloudtrail_bucket_name: versioned, KMS-encrypted, access-logged)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the log files (SSE-KMS by CloudTrail) and the trail's log group; its policy must admit CloudTrail (kms domain service \"cloudtrail\")."
  type        = string
}

variable "data_event_bucket_arns" {
  description = "Buckets whose object-level reads and writes are recorded (S3 data events): those holding cardholder data (PCI DSS 10.2.1.1)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the trail's CloudWatch log group (PCI DSS 10.5.1: at least one year; the bucket keeps the files longer)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
