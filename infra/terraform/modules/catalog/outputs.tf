output "database_name" {
  description = "Glue database name."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Glue table names."
  value       = sort(keys(aws_glue_catalog_table.this))
}

output "glue_resource_arns" {
  description = "Catalog, database and per-table ARNs, for IAM policies scoped to exactly these resources."
  value = concat(
    ["${local.glue_arn_base}:catalog", "${local.glue_arn_base}:database/${aws_glue_catalog_database.this.name}"],
    [for name, _ in aws_glue_catalog_table.this : "${local.glue_arn_base}:table/${aws_glue_catalog_database.this.name}/${name}"],
  )
}

output "athena_workgroup_name" {
  description = "Athena workgroup name."
  value       = aws_athena_workgroup.this.name
}

output "athena_workgroup_arn" {
  description = "Athena workgroup ARN."
  value       = aws_athena_workgroup.this.arn
}
