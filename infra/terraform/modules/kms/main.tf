data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition
  # The role EKS managed node groups launch instances with (and so create encrypted volumes).
  autoscaling_service_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
  # Domains whose key policy names that role: it must exist before the key (see below).
  autoscaling_key_domains = [for domain, spec in var.domains : domain if contains(spec.services, "autoscaling-ebs")]
}

# --- service-linked roles named in key policies ------------------------------------
# KMS refuses a key policy whose principal does not exist (MalformedPolicyDocumentException),
# and a fresh account has no Auto Scaling service-linked role until its first Auto Scaling
# group: the EKS node group would create it, but only after the key that must name it. So
# it is created here, before the keys. Where the account already has it, set
# create_autoscaling_service_linked_role = false (or terraform import it).
resource "aws_iam_service_linked_role" "autoscaling" {
  count = length(local.autoscaling_key_domains) > 0 && var.create_autoscaling_service_linked_role ? 1 : 0

  aws_service_name = "autoscaling.amazonaws.com"
  description      = "Auto Scaling (EKS node groups); named in the ${join(", ", local.autoscaling_key_domains)} key policy"

  tags = var.tags
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
  # CloudTrail encrypts the log files of this account's trails (SSE-KMS) and describes the key
  # when a trail is created or updated.
  dynamic "statement" {
    for_each = contains(each.value.services, "cloudtrail") ? [1] : []
    content {
      sid       = "AllowCloudTrailToEncryptLogs"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }

      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:aws:cloudtrail:arn"
        values   = ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(each.value.services, "cloudtrail") ? [1] : []
    content {
      sid       = "AllowCloudTrailToDescribeKey"
      effect    = "Allow"
      actions   = ["kms:DescribeKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
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

  # The autoscaling-ebs statements name the Auto Scaling service-linked role: it must exist first.
  depends_on = [aws_iam_service_linked_role.autoscaling]
}

resource "aws_kms_alias" "this" {
  for_each = var.domains

  name          = "alias/${var.name_prefix}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
