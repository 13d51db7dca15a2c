output "environment_name" {
  description = "MWAA environment name."
  value       = aws_mwaa_environment.this.name
}

output "environment_arn" {
  description = "MWAA environment ARN."
  value       = aws_mwaa_environment.this.arn
}

output "webserver_url" {
  description = "Private Airflow UI URL (reachable from inside the VPC only)."
  value       = aws_mwaa_environment.this.webserver_url
}

output "execution_role_arn" {
  description = "MWAA execution role."
  value       = aws_iam_role.execution.arn
}

output "security_group_id" {
  description = "Security group of the MWAA components."
  value       = aws_security_group.mwaa.id
}

output "artifact_keys" {
  description = "Object keys in the artifacts bucket the environment reads (scripts/deploy.py uploads to these)."
  value       = local.artifact_keys
}

output "artifact_versions" {
  description = "Object versions of plugins.zip, requirements.txt and startup.sh the environment runs (null: not configured yet)."
  value       = local.artifact_versions
}
