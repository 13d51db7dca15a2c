variable "pan_token_secret_name" {
  description = "Secrets Manager name of the PAN tokenization (HMAC) key (include/profiles/aws.yaml secrets.pan_token_key)."
  type        = string
  default     = "payments/pan-token-key"
}

variable "pan_token_key_version" {
  description = "Version of the generated key, written as v<version>:<key>. Bumping it replaces the key (every new card token changes): follow the rotation of docs/security.md first."
  type        = number
  default     = 1

  validation {
    condition     = var.pan_token_key_version >= 1 && floor(var.pan_token_key_version) == var.pan_token_key_version
    error_message = "pan_token_key_version is a whole number >= 1 (tokens read tok_v<version>_...)."
  }
}

variable "airflow_connections_prefix" {
  description = "Secrets Manager prefix MWAA's secrets backend reads connections from."
  type        = string
  default     = "airflow/connections"
}

variable "airflow_variables_prefix" {
  description = "Secrets Manager prefix MWAA's secrets backend reads variables from."
  type        = string
  default     = "airflow/variables"
}

variable "kafka_connection_id" {
  description = "Airflow connection id of the Kafka admin connection (include/profiles/aws.yaml kafka.connection_id); the secret is <airflow_connections_prefix>/<this>."
  type        = string
  default     = "kafka_payments"
}

variable "msk_bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers of the MSK IAM listener, port 9098 (module msk output bootstrap_brokers_sasl_iam); bootstrap.servers of the Kafka connection."
  type        = string

  validation {
    condition     = length(trimspace(var.msk_bootstrap_brokers_sasl_iam)) > 0
    error_message = "msk_bootstrap_brokers_sasl_iam is empty: the cluster needs IAM client authentication."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the secrets domain."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret stays recoverable."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "daily_deadline_variable" {
  description = "Airflow Variable the daily DAG's deadline reads (dags/payments_daily_index.py DEADLINE_VARIABLE); the secret is <airflow_variables_prefix>/<this>."
  type        = string
  default     = "payments_daily_deadline_seconds"
}

variable "daily_deadline_hours" {
  description = "Hours after the start of its day by which a daily index run must finish before on-call is paged (written in seconds, as Airflow's VariableInterval reads it)."
  type        = number
  default     = 30

  validation {
    condition     = var.daily_deadline_hours >= 1 && var.daily_deadline_hours <= 72 && floor(var.daily_deadline_hours) == var.daily_deadline_hours
    error_message = "daily_deadline_hours is a whole number of hours from 1 to 72."
  }
}
