output "oncall_topic_arn" {
  description = "On-call SNS topic (PAYMENTS_ONCALL_TOPIC_ARN)."
  value       = aws_sns_topic.oncall.arn
}

output "alarm_names" {
  description = "Alarm name per signal."
  value = {
    stream_freshness    = aws_cloudwatch_metric_alarm.stream_freshness.alarm_name
    consumer_lag        = aws_cloudwatch_metric_alarm.consumer_lag.alarm_name
    quarantine_rate     = aws_cloudwatch_metric_alarm.quarantine_rate.alarm_name
    stream_conservation = aws_cloudwatch_metric_alarm.stream_conservation.alarm_name
    emr_job_failures    = aws_cloudwatch_metric_alarm.emr_job_failures.alarm_name
  }
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
