data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id
}

# --- on-call topic ------------------------------------------------------------------

resource "aws_sns_topic" "oncall" {
  name              = "${var.name_prefix}-oncall"
  display_name      = "Payments on-call"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "oncall" {
  statement {
    sid       = "AllowCloudWatchAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.oncall.arn]

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

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.oncall.arn]

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
}

resource "aws_sns_topic_policy" "oncall" {
  arn    = aws_sns_topic.oncall.arn
  policy = data.aws_iam_policy_document.oncall.json
}

# Who is paged. E-mail and HTTPS subscriptions stay "pending confirmation" until the
# endpoint confirms (a paging service's integration URL does so itself).
resource "aws_sns_topic_subscription" "oncall" {
  for_each = { for subscription in var.oncall_subscriptions : "${subscription.protocol}:${subscription.endpoint}" => subscription }

  topic_arn = aws_sns_topic.oncall.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

# --- streaming alarms ------------------------------------------------------------
# Namespace, metric names, units and (no) dimensions are the app's CloudWatch contract,
# spark_apps/streaming/cloudwatch.py; tests/infra/test_terraform_wiring.py keeps them equal.

# Missing FreshnessSeconds data is "missing", not "breaching": from the first apply until the
# stream supervisor's first deploy there is no stream and no metric, and the alarm must not
# page for that. With "missing", an evaluation range without any datapoint puts the alarm in
# INSUFFICIENT_DATA, which has no action: nothing is sent. Once the stream runs, a stale
# index pages here; a stream that stopped publishing is the stream supervisor's to page
# (payments_stream_supervisor: liveness from the last batch or heartbeat, restart, page).
# "notBreaching" would also keep the first apply quiet, but would turn a dead stream into OK
# and send that OK to on-call (ok_actions), which reads as "recovered".
resource "aws_cloudwatch_metric_alarm" "stream_freshness" {
  alarm_name          = "${var.name_prefix}-stream-freshness"
  alarm_description   = "Stream index older than ${var.freshness_threshold_seconds}s. Without any datapoint (no stream yet, or a dead one) the alarm is INSUFFICIENT_DATA and sends nothing: the stream supervisor pages for a dead stream."
  namespace           = var.metrics_namespace
  metric_name         = "FreshnessSeconds"
  dimensions          = var.metric_dimensions
  unit                = "Seconds"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.freshness_threshold_seconds
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.oncall.arn]
  ok_actions          = [aws_sns_topic.oncall.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  alarm_name          = "${var.name_prefix}-stream-consumer-lag"
  alarm_description   = "Streaming app more than ${var.consumer_lag_threshold} records behind the input topics."
  namespace           = var.metrics_namespace
  metric_name         = "ConsumerLag"
  dimensions          = var.metric_dimensions
  unit                = "Count"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.oncall.arn]
  ok_actions          = [aws_sns_topic.oncall.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "quarantine_rate" {
  alarm_name          = "${var.name_prefix}-quarantine-rate-spike"
  alarm_description   = "More than ${var.quarantine_rate_threshold * 100}% of records quarantined: an upstream producer or schema change."
  namespace           = var.metrics_namespace
  metric_name         = "QuarantineRate"
  dimensions          = var.metric_dimensions
  unit                = "None"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.quarantine_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.oncall.arn]
  ok_actions          = [aws_sns_topic.oncall.arn]

  tags = var.tags
}

# A micro-batch whose records do not add up (spark_apps/streaming/metrics.py conservation_record:
# transactions read = indexed + duplicates + dead letters, up to the rows the watermark dropped)
# puts ConservationViolations = 1; every other batch puts 0. One such batch pages: a row was lost or
# invented. No batches (a quiet topic, no stream yet) put nothing, which is not a violation.
resource "aws_cloudwatch_metric_alarm" "stream_conservation" {
  alarm_name          = "${var.name_prefix}-stream-conservation"
  alarm_description   = "A stream micro-batch did not account for every record it read (lost or invented rows): see its conservation record in the stream metrics (docs/streaming.md)."
  namespace           = var.metrics_namespace
  metric_name         = "ConservationViolations"
  dimensions          = var.metric_dimensions
  unit                = "Count"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.oncall.arn]
  ok_actions          = [aws_sns_topic.oncall.arn]

  tags = var.tags
}

# --- EMR on EKS job failures -----------------------------------------------------------
# EMR on EKS emits a job-run state change event per run; failed runs of this virtual
# cluster are recorded in a log group (audit trail) and counted by the alarm below.

resource "aws_cloudwatch_event_rule" "emr_job_failed" {
  name        = "${var.name_prefix}-emr-job-failed"
  description = "EMR on EKS job runs of the payments virtual cluster that ended FAILED"

  event_pattern = jsonencode({
    source        = ["aws.emr-containers"]
    "detail-type" = ["EMR Job Run State Change"]
    detail = {
      state            = ["FAILED"]
      virtualClusterId = [var.emr_virtual_cluster_id]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "emr_job_failures" {
  name              = "/aws/events/${var.name_prefix}/emr-job-failures"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "events_to_logs" {
  statement {
    sid       = "EventBridgeWritesJobFailures"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.emr_job_failures.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.emr_job_failed.arn]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "events_to_logs" {
  policy_name     = "${var.name_prefix}-emr-job-failures"
  policy_document = data.aws_iam_policy_document.events_to_logs.json
}

resource "aws_cloudwatch_event_target" "emr_job_failed_log" {
  rule      = aws_cloudwatch_event_rule.emr_job_failed.name
  target_id = "job-failure-log"
  arn       = aws_cloudwatch_log_group.emr_job_failures.arn
}

resource "aws_cloudwatch_metric_alarm" "emr_job_failures" {
  alarm_name          = "${var.name_prefix}-emr-job-failures"
  alarm_description   = "An EMR on EKS job run failed; details in ${aws_cloudwatch_log_group.emr_job_failures.name}."
  namespace           = "AWS/Events"
  metric_name         = "TriggeredRules"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.emr_job_failed.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.oncall.arn]
  ok_actions          = [aws_sns_topic.oncall.arn]

  tags = var.tags
}

# --- dashboard ------------------------------------------------------------------------

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name_prefix}-payments"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title       = "Stream index freshness (s)"
          region      = local.region
          stat        = "Maximum"
          period      = 60
          metrics     = [concat([var.metrics_namespace, "FreshnessSeconds"], flatten([for name, value in var.metric_dimensions : [name, value]]))]
          annotations = { horizontal = [{ label = "page", value = var.freshness_threshold_seconds }] }
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title       = "Consumer lag (records)"
          region      = local.region
          stat        = "Maximum"
          period      = 60
          metrics     = [concat([var.metrics_namespace, "ConsumerLag"], flatten([for name, value in var.metric_dimensions : [name, value]]))]
          annotations = { horizontal = [{ label = "page", value = var.consumer_lag_threshold }] }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title       = "Quarantine rate"
          region      = local.region
          stat        = "Average"
          period      = 300
          metrics     = [concat([var.metrics_namespace, "QuarantineRate"], flatten([for name, value in var.metric_dimensions : [name, value]]))]
          annotations = { horizontal = [{ label = "page", value = var.quarantine_rate_threshold }] }
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Failed EMR job runs"
          region  = local.region
          stat    = "Sum"
          period  = 300
          metrics = [["AWS/Events", "TriggeredRules", "RuleName", aws_cloudwatch_event_rule.emr_job_failed.name]]
        }
      },
      {
        type = "alarm", x = 0, y = 12, width = 24, height = 4
        properties = {
          title = "On-call alarms"
          alarms = [
            aws_cloudwatch_metric_alarm.stream_freshness.arn,
            aws_cloudwatch_metric_alarm.consumer_lag.arn,
            aws_cloudwatch_metric_alarm.quarantine_rate.arn,
            aws_cloudwatch_metric_alarm.emr_job_failures.arn,
          ]
        }
      },
    ]
  })
}
