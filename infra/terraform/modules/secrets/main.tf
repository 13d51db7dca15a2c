data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  secret_arn_base = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:secret"
}

resource "aws_secretsmanager_secret" "pan_token_key" {
  #checkov:skip=CKV2_AWS_57:Rotating the HMAC key changes every card token and breaks joins across history; rotation is a planned re-tokenization (bump pan_token_key_version), not a timer.
  name                    = var.pan_token_secret_name
  description             = "HMAC key turning card numbers into stable tokens (DESIGN decision 7). Read by the masking step only."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = merge(var.tags, { DataClassification = "pci-key-material" })
}

# The key is generated at apply time and written write-only: it never enters the
# Terraform plan or state.
ephemeral "random_password" "pan_token_key" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret_version" "pan_token_key" {
  secret_id                = aws_secretsmanager_secret.pan_token_key.id
  secret_string_wo         = ephemeral.random_password.pan_token_key.result
  secret_string_wo_version = var.pan_token_key_version
}
