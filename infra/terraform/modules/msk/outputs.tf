output "cluster_arn" {
  description = "MSK cluster ARN."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "MSK cluster name."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers for IAM-authenticated TLS clients (port 9098)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "topic_arns" {
  description = "IAM resource ARN per topic, for kafka-cluster:* policies."
  value       = { for topic, _ in var.topics : topic => "${local.arn_base}:topic/${local.cluster_name}/${aws_msk_cluster.this.cluster_uuid}/${topic}" }
}

output "group_arn_prefix" {
  description = "IAM resource ARN prefix of consumer groups of this cluster; append a group name (or name prefix followed by *)."
  value       = "${local.arn_base}:group/${local.cluster_name}/${aws_msk_cluster.this.cluster_uuid}/"
}

output "topics" {
  description = "Topic settings to create with kafka-topics.sh (auto-creation is disabled)."
  value       = var.topics
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.msk.id
}
