output "bucket_names" {
  description = "Bucket name per role: raw, processed, quarantine, checkpoints, artifacts, athena-results, logs."
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
