output "pan_token_secret_arn" {
  description = "ARN of the PAN tokenization key secret."
  value       = aws_secretsmanager_secret.pan_token_key.arn
}

output "pan_token_secret_name" {
  description = "Name of the PAN tokenization key secret."
  value       = aws_secretsmanager_secret.pan_token_key.name
}

output "kafka_connection_secret_arn" {
  description = "ARN of the Airflow connection secret of the Kafka admin connection (MSK IAM bootstrap brokers)."
  value       = aws_secretsmanager_secret.kafka_connection.arn
}

output "kafka_connection_secret_name" {
  description = "Name of the Airflow connection secret of the Kafka admin connection (<connections prefix>/<connection id>)."
  value       = aws_secretsmanager_secret.kafka_connection.name
}

output "airflow_secret_arn_patterns" {
  description = "Secret ARN patterns of MWAA's secrets backend (connections and variables prefixes)."
  value = [
    "${local.secret_arn_base}:${var.airflow_connections_prefix}/*",
    "${local.secret_arn_base}:${var.airflow_variables_prefix}/*",
  ]
}

output "airflow_secrets_backend_kwargs" {
  description = "backend_kwargs of Airflow's SecretsManagerBackend."
  value = {
    connections_prefix = var.airflow_connections_prefix
    variables_prefix   = var.airflow_variables_prefix
  }
}

output "daily_deadline_secret_name" {
  description = "Name of the Airflow Variable secret of the daily deadline (<variables prefix>/<variable>)."
  value       = aws_secretsmanager_secret.daily_deadline.name
}
