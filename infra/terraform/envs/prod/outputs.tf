output "mwaa_startup_environment" {
  description = "Variables the MWAA startup script exports for include/profiles/aws.yaml; scripts/deploy.py renders them into startup.sh."
  value = {
    AWS_REGION                      = var.region
    PAYMENTS_PROFILE                = "aws"
    PAYMENTS_RAW_BUCKET             = module.lake.bucket_names.raw
    PAYMENTS_PROCESSED_BUCKET       = module.lake.bucket_names.processed
    PAYMENTS_QUARANTINE_BUCKET      = module.lake.bucket_names.quarantine
    PAYMENTS_CHECKPOINT_BUCKET      = module.lake.bucket_names.checkpoints
    PAYMENTS_ARTIFACTS_BUCKET       = module.lake.bucket_names.artifacts
    PAYMENTS_LOGS_BUCKET            = module.lake.bucket_names.logs
    PAYMENTS_EMR_VIRTUAL_CLUSTER_ID = module.compute.emr_virtual_cluster_id
    PAYMENTS_EMR_EXECUTION_ROLE_ARN = module.compute.ingest_job_role_arn
    PAYMENTS_EMR_TRANSFORM_ROLE_ARN = module.compute.transform_job_role_arn
    PAYMENTS_SPARK_IMAGE_URI        = module.compute.spark_image_uri
    PAYMENTS_MSK_BOOTSTRAP_BROKERS  = module.msk.bootstrap_brokers_sasl_iam
    PAYMENTS_ONCALL_TOPIC_ARN       = module.alerting.oncall_topic_arn
  }
}

output "artifacts_bucket" {
  description = "Bucket scripts/deploy.py uploads to (--bucket)."
  value       = module.lake.bucket_names.artifacts
}

output "artifacts_kms_key_arn" {
  description = "Key scripts/deploy.py encrypts uploads with (--kms-key-id)."
  value       = module.kms.key_arns.artifacts
}

output "bucket_names" {
  description = "Lake bucket names by role."
  value       = module.lake.bucket_names
}

output "mwaa_webserver_url" {
  description = "Private Airflow UI URL."
  value       = module.airflow.webserver_url
}

output "glue_tables" {
  description = "Glue tables of the index catalog."
  value       = module.catalog.table_names
}

output "msk_topics" {
  description = "Kafka topics to create and their settings."
  value       = module.msk.topics
}

output "ecr_repository_urls" {
  description = "ECR repository URLs."
  value       = module.compute.ecr_repository_urls
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role of the Cluster Autoscaler."
  value       = module.compute.cluster_autoscaler_role_arn
}

output "alarm_names" {
  description = "On-call alarm names."
  value       = module.alerting.alarm_names
}

output "emr_job_role_arns" {
  description = "EMR on EKS job execution roles by job family: ingest (batch index, stream index) and transform (aggregate, business indexes, stream compaction, quality gate). The startup environment exports both (PAYMENTS_EMR_EXECUTION_ROLE_ARN = ingest, the role the aws profile runs every job with today; PAYMENTS_EMR_TRANSFORM_ROLE_ARN = transform, for the profile to pick per job)."
  value       = module.compute.job_role_arns
}

output "cloudtrail_arn" {
  description = "The account's multi-region CloudTrail trail."
  value       = module.audit.trail_arn
}

output "mwaa_artifact_versions" {
  description = "Object versions of plugins.zip, requirements.txt and startup.sh MWAA is pinned to (after scripts/deploy.py: the ones it uploaded)."
  value       = module.airflow.artifact_versions
}

output "mwaa_environment_name" {
  description = "MWAA environment scripts/deploy.py creates the Airflow pools in (InvokeRestApi; --mwaa-environment)."
  value       = module.airflow.environment_name
}
