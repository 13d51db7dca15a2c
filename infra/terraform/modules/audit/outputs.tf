output "trail_arn" {
  description = "ARN of the multi-region trail."
  value       = aws_cloudtrail.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group receiving the trail's events."
  value       = aws_cloudwatch_log_group.trail.name
}
