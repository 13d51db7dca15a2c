data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition
  # The role EKS managed node groups launch instances with (and so create encrypted volumes).
  autoscaling_service_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

# Key policies: in a key policy "Resource = *" means "this key" (the policy is
# attached to exactly one key), so the wildcard below is not an account-wide grant.
data "aws_iam_policy_document" "key" {
  for_each = var.domains

  #checkov:skip=CKV_AWS_109:Key policy; Resource "*" is the key itself and the root principal keeps IAM in control (AWS default key policy).
  #checkov:skip=CKV_AWS_111:Key policy; Resource "*" is the key itself and the root principal keeps IAM in control (AWS default key policy).
  #checkov:skip=CKV_AWS_356:Key policy; Resource "*" is the key itself, there is no narrower resource to name.
  statement {
    sid       = "EnableIamPoliciesOfThisAccount"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "logs") ? [1] : []
    content {
      sid       = "AllowCloudWatchLogsOfThisAccount"
      effect    = "Allow"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${local.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "s3-access-logs") ? [1] : []
    content {
      sid       = "AllowS3ServerAccessLogDelivery"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "cloudwatch-alarms") ? [1] : []
    content {
      sid       = "AllowCloudWatchAlarmsToPublish"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["cloudwatch.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "events") ? [1] : []
    content {
      sid       = "AllowEventBridgeToPublish"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
  dynamic "statement" {
    for_each = contains(each.value.services, "autoscaling-ebs") ? [1] : []
    content {
      sid       = "AllowAutoScalingToUseKeyForNodeVolumes"
      effect    = "Allow"
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = [local.autoscaling_service_role_arn]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "autoscaling-ebs") ? [1] : []
    content {
      sid       = "AllowAutoScalingGrantsForNodeVolumes"
      effect    = "Allow"
      actions   = ["kms:CreateGrant"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = [local.autoscaling_service_role_arn]
      }

      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  for_each = var.domains

  description             = "${var.name_prefix} ${each.key}: ${each.value.description}"
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  is_enabled              = true
  policy                  = data.aws_iam_policy_document.key[each.key].json

  tags = merge(var.tags, { DataDomain = each.key })
}

resource "aws_kms_alias" "this" {
  for_each = var.domains

  name          = "alias/${var.name_prefix}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
