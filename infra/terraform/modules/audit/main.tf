data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition
}

# --- CloudTrail ------------------------------------------------------------------------
# One multi-region trail of every management event (and of the object-level events of the
# buckets holding card data), to the lake's cloudtrail bucket (KMS-encrypted, versioned,
# access-logged, TLS-only, kept log_retention_days) with log file validation (digest files)
# on, and to a CloudWatch log group for queries and metric filters. PCI DSS 10.2, 10.3, 10.5.

resource "aws_cloudwatch_log_group" "trail" {
  name              = "/aws/cloudtrail/${var.trail_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "trail_assume" {
  statement {
    sid     = "CloudTrailAssumeRole"
    actions = ["sts:AssumeRole"]

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

data "aws_iam_policy_document" "trail_logs" {
  statement {
    sid       = "DeliverTrailEvents"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.trail.arn}:log-stream:*"]
  }
}

resource "aws_iam_role" "trail_logs" {
  name               = "${var.trail_name}-cloudwatch-logs"
  description        = "CloudTrail ${var.trail_name} delivering events to ${aws_cloudwatch_log_group.trail.name}"
  assume_role_policy = data.aws_iam_policy_document.trail_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "trail_logs" {
  name   = "cloudtrail-to-cloudwatch-logs"
  role   = aws_iam_role.trail_logs.id
  policy = data.aws_iam_policy_document.trail_logs.json
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:No SNS notification per delivered log file: nothing consumes it; alerting on trail events goes through the CloudWatch log group.
  name                          = var.trail_name
  s3_bucket_name                = var.bucket_name
  kms_key_id                    = var.logs_kms_key_arn
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  enable_logging                = true
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.trail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.trail_logs.arn

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    dynamic "data_resource" {
      for_each = length(var.data_event_bucket_arns) > 0 ? [1] : []
      content {
        type   = "AWS::S3::Object"
        values = [for arn in var.data_event_bucket_arns : "${arn}/"]
      }
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.trail_logs]
}
