data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  glue_arn_base = "arn:${data.aws_partition.current.partition}:glue:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}"

  # Athena partition projection of a table the streaming app writes as
  # .../<table>/dt=YYYY-MM-DD/hour=HH/ (spark_apps/streaming/writer.py): nobody registers
  # its partitions, Athena computes them from these settings (the location template is added
  # per table below). Glue partitions of such a table are ignored by Athena.
  hourly_partition_projection = {
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = "${var.partition_projection_start_date},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "projection.hour.type"        = "integer"
    "projection.hour.range"       = "0,23"
    "projection.hour.digits"      = "2"
  }
  # Table parameters that switch projection on, per projected table.
  projection_parameters = {
    for name in var.hourly_projected_tables : name => merge(local.hourly_partition_projection, {
      "storage.location.template" = "s3://${var.processed_bucket_name}/indexes/${name}/dt=$${dt}/hour=$${hour}/"
    })
  }
}

resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.manage_catalog_encryption ? 1 : 0

  data_catalog_encryption_settings {
    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = var.data_kms_key_arn
    }

    connection_password_encryption {
      return_connection_password_encrypted = true
      aws_kms_key_id                       = var.data_kms_key_arn
    }
  }
}

resource "aws_glue_catalog_database" "this" {
  name         = var.database_name
  description  = "Payment reconciliation indexes; a partition becomes visible only after its data contract passed"
  location_uri = "s3://${var.processed_bucket_name}/indexes/"

  tags = var.tags
}

# Partitions are not declared here: Airflow registers each dt partition after the Soda
# gate, pointing it at the versioned .../dt=D/version=V/ location. The tables of
# hourly_projected_tables (the stream index) are the exception: partition projection.
resource "aws_glue_catalog_table" "this" {
  for_each = var.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      EXTERNAL              = "TRUE"
      classification        = "parquet"
      "parquet.compression" = "SNAPPY"
    },
    lookup(local.projection_parameters, each.key, {}),
  )

  storage_descriptor {
    location      = "s3://${var.processed_bucket_name}/indexes/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }

  dynamic "partition_keys" {
    for_each = each.value.partition_keys
    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.athena_workgroup_name
  description   = "Payments indexes: enforced settings, KMS-encrypted results"
  state         = "ENABLED"
  force_destroy = false

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query
    requester_pays_enabled             = false

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${var.athena_results_bucket_name}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.data_kms_key_arn
      }

      acl_configuration {
        s3_acl_option = "BUCKET_OWNER_FULL_CONTROL"
      }
    }
  }

  tags = var.tags
}
