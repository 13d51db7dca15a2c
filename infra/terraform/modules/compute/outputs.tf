output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Private EKS API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the EKS API."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IRSA)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "cluster_autoscaler_role_arn" {
  description = "Role to annotate on the kube-system/cluster-autoscaler service account."
  value       = aws_iam_role.autoscaler.arn
}

output "emr_virtual_cluster_id" {
  description = "EMR on EKS virtual cluster id (PAYMENTS_EMR_VIRTUAL_CLUSTER_ID)."
  value       = aws_emrcontainers_virtual_cluster.this.id
}

output "emr_virtual_cluster_arn" {
  description = "EMR on EKS virtual cluster ARN."
  value       = aws_emrcontainers_virtual_cluster.this.arn
}

output "ingest_job_role_arn" {
  description = "EMR on EKS execution role of the ingest jobs (batch index, stream index): raw drops, PAN token key, MSK."
  value       = aws_iam_role.job["ingest"].arn
}

output "transform_job_role_arn" {
  description = "EMR on EKS execution role of the transform jobs (aggregate, business indexes, stream compaction, quality gate): no raw transaction drops, no PAN token key."
  value       = aws_iam_role.job["transform"].arn
}

output "job_role_arns" {
  description = "Both EMR on EKS job execution roles, by job family (ingest, transform)."
  value       = { for family, role in aws_iam_role.job : family => role.arn }
}

output "emr_log_group_name" {
  description = "CloudWatch log group of EMR job runs."
  value       = aws_cloudwatch_log_group.emr.name
}

output "emr_log_group_arn" {
  description = "CloudWatch log group ARN of EMR job runs."
  value       = aws_cloudwatch_log_group.emr.arn
}

output "ecr_repository_urls" {
  description = "Repository URL per ECR repository."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.repository_url }
}

output "spark_image_uri" {
  description = "Image the Spark jobs run (PAYMENTS_SPARK_IMAGE_URI)."
  value       = "${aws_ecr_repository.this["spark"].repository_url}:${var.spark_image_tag}"
}
