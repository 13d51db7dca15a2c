output "key_arns" {
  description = "Key ARN per data domain."
  value       = { for domain, key in aws_kms_key.this : domain => key.arn }
}

output "key_ids" {
  description = "Key id per data domain."
  value       = { for domain, key in aws_kms_key.this : domain => key.key_id }
}

output "alias_names" {
  description = "Alias name per data domain."
  value       = { for domain, alias in aws_kms_alias.this : domain => alias.name }
}
