variable "pan_token_secret_name" {
  description = "Secrets Manager name of the PAN tokenization (HMAC) key (include/profiles/aws.yaml secrets.pan_token_key)."
  type        = string
  default     = "payments/pan-token-key"
}

variable "pan_token_key_version" {
  description = "Bump to replace the key with a new random value. Replacing it changes every card token: plan a re-tokenization first (docs/infrastructure.md)."
  type        = number
  default     = 1
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
