output "bucket_names" {
  description = "Bucket name per role: raw, processed, quarantine, checkpoints, artifacts, athena-results, cloudtrail, logs."
  value       = { for name, bucket in local.all_buckets : name => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARN per role."
  value       = { for name, bucket in local.all_buckets : name => bucket.arn }
}

output "superseded_tag" {
  description = "Object tag the partition publisher sets on replaced index versions so the lifecycle rule expires them."
  value       = var.superseded_tag
}

output "index_retention_days" {
  description = "Days superseded index versions are kept."
  value       = var.index_retention_days
}

output "cloudtrail_bucket_name" {
  description = "Bucket of the CloudTrail trail, once its policy admits the trail (a trail is refused until it does)."
  value       = aws_s3_bucket_policy.this["cloudtrail"].bucket
}

output "pan_scan_failed_tag" {
  description = "Object tag the quality gate sets on an index version that failed the PAN scan, so the lifecycle rule expires it within pan_scan_failed_retention_days."
  value       = var.pan_scan_failed_tag
}
