variable "database_name" {
  description = "Glue database of the index tables (include/profiles/aws.yaml catalog.database)."
  type        = string
  default     = "payments"
}

variable "tables" {
  description = <<-EOT
    Index tables by name, exactly as include/sql/tables.json lists them (generated from
    spark_apps/schemas.py, the single source of truth): Hive/Athena column types and the
    catalog partition keys. Each becomes a Parquet Glue table at
    s3://<processed bucket>/indexes/<table>/.
  EOT
  type = map(object({
    description = string
    columns = list(object({
      name = string
      type = string
    }))
    partition_keys = list(object({
      name = string
      type = string
    }))
  }))
}

variable "processed_bucket_name" {
  description = "Bucket holding the index tables under indexes/<table>/."
  type        = string
}

variable "athena_results_bucket_name" {
  description = "Bucket receiving Athena query results."
  type        = string
}

variable "data_kms_key_arn" {
  description = "KMS key encrypting the Glue Data Catalog and Athena results."
  type        = string
}

variable "manage_catalog_encryption" {
  description = "Set the account-wide Glue Data Catalog encryption settings (one AWS account per environment owns them)."
  type        = bool
  default     = true
}

variable "athena_workgroup_name" {
  description = "Athena workgroup of BI, ML and finance queries (include/profiles/aws.yaml catalog.athena_workgroup)."
  type        = string
  default     = "payments"
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels queries scanning more than this many bytes."
  type        = number
  default     = 1099511627776
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
