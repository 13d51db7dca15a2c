data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  cluster_name = "${var.name_prefix}-msk"
  # MSK IAM resource ARNs: topic/<cluster>/<uuid>/<topic>, group/<cluster>/<uuid>/<group>.
  arn_base = "arn:${data.aws_partition.current.partition}:kafka:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}"
}

resource "aws_security_group" "msk" {
  name        = "${var.name_prefix}-msk"
  description = "MSK brokers: IAM-authenticated TLS clients from the private subnets"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name_prefix}-msk" })
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = toset(var.client_cidr_blocks)

  security_group_id = aws_security_group.msk.id
  description       = "Kafka over TLS with IAM auth from ${each.key}"
  ip_protocol       = "tcp"
  from_port         = 9098
  to_port           = 9098
  cidr_ipv4         = each.key
}

# MWAA reaches the brokers by security group: that ingress rule (from the MWAA group, 9098)
# is declared in the airflow module, which already depends on this one.

resource "aws_msk_configuration" "this" {
  name           = "${var.name_prefix}-msk"
  kafka_versions = [var.kafka_version]
  description    = "Durable defaults: no auto-created topics, RF 3, min ISR 2, no unclean elections; broker time stamps"

  # LogAppendTime: a record's timestamp is the broker's append time, not the producer's clock.
  # The stream job judges lateness and keeps its watermark by it (produced_at), so a producer
  # with a skewed clock can neither make records look late nor move the watermark ahead.
  server_properties = <<-EOT
    auto.create.topics.enable=false
    log.message.timestamp.type=LogAppendTime
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=6
    unclean.leader.election.enable=false
    log.retention.hours=168
    allow.everyone.if.no.acl.found=false
  EOT
}

resource "aws_cloudwatch_log_group" "broker" {
  name              = "/payments/${var.name_prefix}/msk-brokers"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = local.cluster_name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.msk.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size_gb
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false

    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.broker.name
      }
    }
  }

  tags = var.tags
}
