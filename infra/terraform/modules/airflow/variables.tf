variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod; also the MWAA environment name."
  type        = string
}

variable "airflow_version" {
  description = "Airflow version of the MWAA image; must match the project's pin (requirements.txt / constraints.txt)."
  type        = string
  default     = "3.3.1"
}

variable "environment_class" {
  description = "MWAA environment class."
  type        = string
  default     = "mw1.medium"
}

variable "workers" {
  description = "Celery worker autoscaling bounds."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 1
    max = 10
  }
}

variable "schedulers" {
  description = "Number of schedulers (2 or more for high availability)."
  type        = number
  default     = 2
}

variable "vpc_id" {
  description = "VPC of the environment."
  type        = string
}

variable "subnet_ids" {
  description = "Exactly two private subnets in different zones (MWAA requirement)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 2
    error_message = "MWAA needs exactly two private subnets."
  }
}

variable "artifacts_bucket_arn" {
  description = "Bucket holding dags/, plugins.zip, requirements.txt and startup.sh (scripts/deploy.py uploads them)."
  type        = string
}

variable "artifact_versions" {
  description = "Explicit S3 object versions of plugins.zip, requirements.txt and startup.sh (a rollback to an earlier deploy: the versions scripts/deploy.py reported then). null = the version pin_uploaded_artifacts looks up."
  type = object({
    plugins        = optional(string)
    requirements   = optional(string)
    startup_script = optional(string)
  })
  default = {}
}

variable "pin_uploaded_artifacts" {
  description = "Pin MWAA to the current S3 version of plugins.zip, requirements.txt and startup.sh (what the last scripts/deploy.py uploaded), read from the bucket at plan time, so a fresh checkout applies the same versions without any local tfvars. false only for the very first apply of an environment, before the first upload (the objects do not exist yet)."
  type        = bool
  default     = true
}

variable "kms_key_arns" {
  description = "Customer-managed key ARNs by domain (module kms output key_arns)."
  type = object({
    data      = string
    artifacts = string
    secrets   = string
    alerting  = string
  })
}

variable "bucket_arns" {
  description = "Lake bucket ARNs by role (module lake output bucket_arns)."
  type = object({
    raw            = string
    processed      = string
    quarantine     = string
    athena-results = string
  })
}

variable "emr_virtual_cluster_arn" {
  description = "EMR on EKS virtual cluster the DAGs submit job runs to."
  type        = string
}

variable "emr_job_execution_role_arns" {
  description = "The only execution roles DAGs may start EMR job runs with (module compute: the ingest and the transform job roles)."
  type        = list(string)

  validation {
    condition     = length(var.emr_job_execution_role_arns) > 0 && alltrue([for arn in var.emr_job_execution_role_arns : !strcontains(arn, "*")])
    error_message = "emr_job_execution_role_arns must name at least one role, without wildcards."
  }
}

variable "emr_job_run_tag_keys" {
  description = "Tag keys MWAA may set on the EMR job runs it starts: the tags of PaymentsEmrContainerOperator (plugins/payments_platform/spark_jobs.py) and of the stream supervisor's submit (stream_control.py). tests/infra reads both."
  type        = list(string)
  default     = ["job", "project"]

  validation {
    condition     = length(var.emr_job_run_tag_keys) > 0 && alltrue([for key in var.emr_job_run_tag_keys : !strcontains(key, "*")])
    error_message = "emr_job_run_tag_keys must list tag keys without wildcards."
  }
}

variable "raw_ready_marker_pattern" {
  description = "Key pattern of the raw drops' ready markers in the raw bucket: the path of include/profiles/aws.yaml lake.raw_uri plus plugins/payments_platform/sensors.py READY_MARKER with * for the date. The MWAA role may read these objects and no other raw object."
  type        = string
  default     = "raw/_ready/dt=*.json"

  validation {
    condition     = can(regex("^[A-Za-z0-9_./=-]+/_ready/[A-Za-z0-9_.=*-]+$", var.raw_ready_marker_pattern)) && !startswith(var.raw_ready_marker_pattern, "*")
    error_message = "raw_ready_marker_pattern must name the _ready/ marker folder, not a pattern over the whole bucket."
  }
}

variable "msk_cluster_arn" {
  description = "MSK cluster the stream supervisor connects to (module msk output cluster_arn)."
  type        = string
}

variable "msk_topic_arns" {
  description = "IAM ARNs of exactly the platform topics the stream supervisor creates and alters (module msk output topic_arns); no wildcards."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.msk_topic_arns : !strcontains(arn, "*")])
    error_message = "msk_topic_arns must name topics, not patterns."
  }
}

variable "msk_security_group_id" {
  description = "Security group of the MSK brokers (module msk output security_group_id); this module adds the rules letting MWAA reach it on port 9098."
  type        = string
}

variable "glue_resource_arns" {
  description = "Glue catalog, database and table ARNs whose partitions the DAGs publish."
  type        = list(string)
}

variable "athena_workgroup_arn" {
  description = "Athena workgroup the DAGs query."
  type        = string
}

variable "oncall_topic_arn" {
  description = "SNS topic the notifier publishes to."
  type        = string
}

variable "airflow_secret_arn_patterns" {
  description = "Secret ARN patterns of the Airflow connections/variables prefixes (module secrets output)."
  type        = list(string)
}

variable "secrets_backend_kwargs" {
  description = "backend_kwargs of the Secrets Manager secrets backend (connections_prefix, variables_prefix)."
  type = object({
    connections_prefix = string
    variables_prefix   = string
  })
}

variable "log_level" {
  description = "Level of the MWAA CloudWatch logs."
  type        = string
  default     = "INFO"
}

variable "weekly_maintenance_window_start" {
  description = "Weekly maintenance window start (DAY:HH:MM, UTC)."
  type        = string
  default     = "SUN:03:00"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "quality_result_file" {
  description = "Name of the quality verdict the orchestrator writes next to each staged version (plugins/payments_platform/quality_gate.py QUALITY_RESULT_FILE)."
  type        = string
  default     = "_quality.json"
}
