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

variable "hourly_projected_tables" {
  description = "Tables written continuously as .../dt=YYYY-MM-DD/hour=HH/ (the stream index): Athena finds their partitions by partition projection, since no one registers them. Each must be in tables with partition keys exactly dt, hour."
  type        = list(string)
  default     = ["stream_index"]

  validation {
    condition = alltrue([
      for name in var.hourly_projected_tables :
      contains(keys(var.tables), name) && try([for key in var.tables[name].partition_keys : key.name] == ["dt", "hour"], false)
    ])
    error_message = "Every hourly_projected_tables entry must be a table of var.tables partitioned by exactly (dt, hour)."
  }
}

variable "partition_projection_start_date" {
  description = "First dt (yyyy-MM-dd) partition projection enumerates for the projected tables; the range ends at NOW. Queries should still filter on dt."
  type        = string
  default     = "2026-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.partition_projection_start_date))
    error_message = "partition_projection_start_date must be yyyy-MM-dd."
  }
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
