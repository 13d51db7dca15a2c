data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  suffix = "${data.aws_caller_identity.current.account_id}-${data.aws_region.current.id}"
  # The trail (module audit) that delivers to the cloudtrail bucket; its bucket policy names it.
  cloudtrail_arn = "arn:${data.aws_partition.current.partition}:cloudtrail:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:trail/${var.cloudtrail_name}"

  # Every bucket but the logs bucket; each logs its requests to the logs bucket.
  buckets = {
    raw            = { kms_key_arn = var.data_kms_key_arn, purpose = "Raw daily drops (clear card data until masked)" }
    processed      = { kms_key_arn = var.data_kms_key_arn, purpose = "Versioned index tables and metrics" }
    quarantine     = { kms_key_arn = var.data_kms_key_arn, purpose = "Quarantined records with reason codes" }
    checkpoints    = { kms_key_arn = var.data_kms_key_arn, purpose = "Spark Structured Streaming checkpoints" }
    artifacts      = { kms_key_arn = var.artifacts_kms_key_arn, purpose = "MWAA DAGs, plugins, requirements and Spark applications" }
    athena-results = { kms_key_arn = var.data_kms_key_arn, purpose = "Athena query results" }
    cloudtrail     = { kms_key_arn = var.logs_kms_key_arn, purpose = "CloudTrail log files (multi-region trail, log file validation)" }
  }
  object_expiry_days = {
    raw            = var.raw_retention_days
    quarantine     = var.quarantine_retention_days
    athena-results = var.athena_results_retention_days
    cloudtrail     = var.log_retention_days
  }
  # Days an overwritten or deleted object stays recoverable. Raw drops hold card data
  # (sensitive authentication data included) until masked: their old versions go after a day.
  noncurrent_version_days = {
    raw = var.raw_noncurrent_version_days
  }
  bucket_names = merge(
    { for name, _ in local.buckets : name => "${var.name_prefix}-${name}-${local.suffix}" },
    { logs = "${var.name_prefix}-logs-${local.suffix}" },
  )
  all_buckets = merge(
    { for name, bucket in aws_s3_bucket.this : name => bucket },
    { logs = aws_s3_bucket.logs },
  )
  all_kms_key_arns = merge(
    { for name, bucket in local.buckets : name => bucket.kms_key_arn },
    { logs = var.logs_kms_key_arn },
  )
}

# --- data buckets -----------------------------------------------------------------

resource "aws_s3_bucket" "this" {
  for_each = local.buckets

  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice made per environment (second region, second key); not part of this single-region baseline.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events: Airflow orchestrates every step, so event notifications would have no subscriber.
  bucket        = local.bucket_names[each.key]
  force_destroy = var.force_destroy

  tags = merge(var.tags, { Purpose = each.value.purpose })
}

resource "aws_s3_bucket_logging" "this" {
  for_each = local.buckets

  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${each.key}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  # Incomplete uploads and delete markers without versions behind them go everywhere.
  rule {
    id     = "clean-up-uploads-and-delete-markers"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Overwritten or deleted objects stay recoverable for the retention period (raw: a day),
  # in every bucket but artifacts (next rule).
  dynamic "rule" {
    for_each = each.key == "artifacts" ? [] : [lookup(local.noncurrent_version_days, each.key, var.index_retention_days)]
    content {
      id     = "expire-noncurrent-versions"
      status = "Enabled"

      filter {}

      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }

  # Artifacts: MWAA runs plugins.zip, requirements.txt and startup.sh by object version (module
  # airflow), and a rollback pins an earlier one, so their old versions never expire. Only the
  # old versions under the prefixes scripts/deploy.py rewrites wholesale (DAGs, Spark apps,
  # include/) expire; the pinned keys sit at the bucket root, outside every prefix here.
  dynamic "rule" {
    for_each = each.key == "artifacts" ? var.artifact_unpinned_prefixes : []
    content {
      id     = "expire-noncurrent-${trimsuffix(rule.value, "/")}"
      status = "Enabled"

      filter {
        prefix = rule.value
      }

      noncurrent_version_expiration {
        noncurrent_days = var.index_retention_days
      }
    }
  }

  # Index versions replaced by a newer run: the publisher tags them when it
  # repoints the partition; they expire index_retention_days after they were written.
  dynamic "rule" {
    for_each = each.key == "processed" ? [1] : []
    content {
      id     = "expire-superseded-index-versions"
      status = "Enabled"

      filter {
        and {
          prefix = "indexes/"
          tags   = { (var.superseded_tag.key) = var.superseded_tag.value }
        }
      }

      expiration {
        days = var.index_retention_days
      }

      noncurrent_version_expiration {
        noncurrent_days = 1
      }
    }
  }

  # Versions whose quality gate found a card number in clear (the PAN scan of the contracts)
  # must not be kept for investigation like other rejected versions: once tagged with
  # pan_scan_failed_tag they expire after pan_scan_failed_retention_days, their noncurrent
  # copies a day later.
  dynamic "rule" {
    for_each = each.key == "processed" ? [1] : []
    content {
      id     = "expire-pan-scan-failures"
      status = "Enabled"

      filter {
        and {
          prefix = "indexes/"
          tags   = { (var.pan_scan_failed_tag.key) = var.pan_scan_failed_tag.value }
        }
      }

      expiration {
        days = var.pan_scan_failed_retention_days
      }

      noncurrent_version_expiration {
        noncurrent_days = 1
      }
    }
  }

  # The stream's sent markers (<checkpoint>/_sent/<topic>/<batch>): only a replayed batch's
  # marker is ever read, so they expire here rather than being deleted by the job (on S3 a
  # delete is 3 requests per topic and micro-batch).
  dynamic "rule" {
    for_each = each.key == "checkpoints" ? var.sent_marker_prefixes : []
    content {
      id     = "expire-sent-markers-${rule.key}"
      status = "Enabled"

      filter {
        prefix = rule.value
      }

      expiration {
        days = var.sent_marker_retention_days
      }
    }
  }

  # Whole-bucket expiry where data has a fixed useful life.
  dynamic "rule" {
    for_each = contains(keys(local.object_expiry_days), each.key) ? [local.object_expiry_days[each.key]] : []
    content {
      id     = "expire-objects"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }
    }
  }
}

# --- logs bucket (target of every other bucket's access logs) ---------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging it into itself would create a feedback loop of log objects.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice made per environment; not part of this single-region baseline.
  #checkov:skip=CKV2_AWS_62:Nothing consumes log bucket events; logs are read by Athena and auditors on demand.
  bucket        = local.bucket_names.logs
  force_destroy = var.force_destroy

  tags = merge(var.tags, { Purpose = "S3 server access logs and Spark/EMR logs" })
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "retain-logs"
    status = "Enabled"

    filter {}

    transition {
      days          = 90
      storage_class = "GLACIER_IR"
    }

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# --- settings shared by every bucket --------------------------------------------

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.bucket_names

  bucket = local.all_buckets[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.bucket_names

  bucket = local.all_buckets[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.all_kms_key_arns[each.key]
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.bucket_names

  bucket                  = local.all_buckets[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.bucket_names

  bucket = local.all_buckets[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.bucket_names

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.all_buckets[each.key].arn, "${local.all_buckets[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.all_buckets[each.key].arn, "${local.all_buckets[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  # Writers may omit the header (default encryption applies) but may not ask for another
  # algorithm. The one exception: CloudTrail writes its digest files (log file validation)
  # with SSE-S3 whatever the trail's key, so the cloudtrail bucket also admits AES256.
  statement {
    sid       = "DenyNonKmsEncryptionHeader"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.all_buckets[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = each.key == "cloudtrail" ? ["aws:kms", "AES256"] : ["aws:kms"]
    }
  }

  # CloudTrail delivery (the trail of module audit, by ARN): ACL check on the bucket, log
  # files under AWSLogs/<account>/ only.
  dynamic "statement" {
    for_each = each.key == "cloudtrail" ? [1] : []
    content {
      sid       = "AllowCloudTrailAclCheck"
      effect    = "Allow"
      actions   = ["s3:GetBucketAcl"]
      resources = [local.all_buckets[each.key].arn]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceArn"
        values   = [local.cloudtrail_arn]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "cloudtrail" ? [1] : []
    content {
      sid       = "AllowCloudTrailLogDelivery"
      effect    = "Allow"
      actions   = ["s3:PutObject"]
      resources = ["${local.all_buckets[each.key].arn}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceArn"
        values   = [local.cloudtrail_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "s3:x-amz-acl"
        values   = ["bucket-owner-full-control"]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "AllowS3ServerAccessLogDelivery"
      effect    = "Allow"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]

      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = [for name, bucket in aws_s3_bucket.this : bucket.arn]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.bucket_names

  bucket = local.all_buckets[each.key].id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
