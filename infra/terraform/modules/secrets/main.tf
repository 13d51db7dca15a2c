data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  secret_arn_base = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:secret"
}

resource "aws_secretsmanager_secret" "pan_token_key" {
  #checkov:skip=CKV2_AWS_57:Rotating the HMAC key changes every card token and breaks joins across history; rotation is a planned re-tokenization (bump pan_token_key_version), not a timer.
  name                    = var.pan_token_secret_name
  description             = "HMAC key turning card numbers into stable tokens (DESIGN decision 7). Read by the masking step only."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = merge(var.tags, { DataClassification = "pci-key-material" })
}

# The key comes from Secrets Manager's own generator (GetRandomPassword) at apply time and
# is written write-only: it never enters the Terraform plan or state. It is re-sent only
# when pan_token_key_version changes.
ephemeral "aws_secretsmanager_random_password" "pan_token_key" {
  password_length     = 64
  exclude_punctuation = true
}

# Written as `v<version>:<key>` (spark_apps/secrets.py): the tokens it makes say which key made
# them. A rotation keeps the old key for a while as a keyring written by hand (docs/security.md);
# Terraform never holds a key, so it cannot write that keyring itself.
resource "aws_secretsmanager_secret_version" "pan_token_key" {
  secret_id                = aws_secretsmanager_secret.pan_token_key.id
  secret_string_wo         = "v${var.pan_token_key_version}:${ephemeral.aws_secretsmanager_random_password.pan_token_key.random_password}"
  secret_string_wo_version = var.pan_token_key_version
}

# The Airflow connection the stream supervisor's KafkaAdminClientHook uses on MWAA
# (include/profiles/aws.yaml kafka.connection_id), read by the SecretsManagerBackend under
# the connections prefix. It holds no credential: MSK authenticates the MWAA execution role
# by IAM, and the Kafka provider adds the MSK IAM token signer itself for MSK bootstrap hosts
# with OAUTHBEARER, so the document is broker addresses and protocol settings only.
resource "aws_secretsmanager_secret" "kafka_connection" {
  #checkov:skip=CKV2_AWS_57:Holds no credential (broker addresses and protocol settings; MSK authenticates the MWAA role by IAM), so there is nothing to rotate; Terraform rewrites it when the brokers change.
  name                    = "${var.airflow_connections_prefix}/${var.kafka_connection_id}"
  description             = "Airflow connection ${var.kafka_connection_id}: MSK IAM bootstrap brokers for the stream supervisor (MWAA, Airflow Kafka provider)."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "kafka_connection" {
  secret_id = aws_secretsmanager_secret.kafka_connection.id
  secret_string = jsonencode({
    conn_type = "kafka"
    extra = {
      "bootstrap.servers" = var.msk_bootstrap_brokers_sasl_iam
      "security.protocol" = "SASL_SSL"
      "sasl.mechanism"    = "OAUTHBEARER"
    }
  })
}

# The Airflow Variable the daily DAG's deadline reads (Airflow's VariableInterval, in seconds;
# dags/payments_daily_index.py, airflow_settings.yaml locally). The scheduler resolves it when
# it creates a daily run and cannot create the run without it, so Terraform writes it with the
# environment. Not secret; Secrets Manager is where MWAA's backend reads Variables from.
resource "aws_secretsmanager_secret" "daily_deadline" {
  #checkov:skip=CKV2_AWS_57:Holds no credential (a number of seconds), so there is nothing to rotate; Terraform rewrites it when daily_deadline_hours changes.
  name                    = "${var.airflow_variables_prefix}/${var.daily_deadline_variable}"
  description             = "Airflow Variable ${var.daily_deadline_variable}: seconds after the start of its day by which a payments_daily_index run must finish."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "daily_deadline" {
  secret_id     = aws_secretsmanager_secret.daily_deadline.id
  secret_string = tostring(var.daily_deadline_hours * 3600)
}
