variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC the brokers run in."
  type        = string
}

variable "subnet_ids" {
  description = "Three private subnets, one per availability zone; one broker in each."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "MSK runs 3 brokers: pass exactly three private subnets in distinct zones."
  }
}

variable "client_cidr_blocks" {
  description = "Private subnet CIDRs allowed to reach the brokers on the IAM/TLS port 9098 (the EKS subnets: Spark pods). MWAA is admitted by security group, in the airflow module."
  type        = list(string)
}

variable "kafka_version" {
  description = "MSK Apache Kafka version of the cluster: the 3.9 line, as the project's local broker and Spark's Kafka connector (Kafka 3.9.1). On MSK, 3.9.x runs ZooKeeper metadata mode and 3.9.x.kraft runs KRaft; the mode is fixed when the cluster is created."
  type        = string
  default     = "3.9.x.kraft"
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_volume_size_gb" {
  description = "EBS storage per broker in GiB."
  type        = number
  default     = 500
}

variable "kms_key_arn" {
  description = "Customer-managed key encrypting broker storage at rest."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the broker log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the broker log group (PCI DSS 10.5.1: at least one year)."
  type        = number
  default     = 365
}

variable "topics" {
  description = "Kafka topics of the platform and their settings. Auto-creation is off: create them with kafka-topics.sh (IAM auth) from these values, see docs/infrastructure.md."
  type = map(object({
    partitions     = number
    retention_ms   = number
    cleanup_policy = string
    purpose        = string
  }))
  default = {
    "payments.transactions" = {
      partitions     = 12
      retention_ms   = 604800000
      cleanup_policy = "delete"
      purpose        = "Payment events in (producers: payment gateway)"
    }
    "payments.fraud-signals" = {
      partitions     = 12
      retention_ms   = 604800000
      cleanup_policy = "delete"
      purpose        = "ML fraud model outputs in"
    }
    "payments.fraud-alerts" = {
      partitions     = 6
      retention_ms   = 1209600000
      cleanup_policy = "delete"
      purpose        = "Fraud alerts out (streaming app)"
    }
    "payments.dead-letter" = {
      partitions     = 3
      retention_ms   = 2419200000
      cleanup_policy = "delete"
      purpose        = "Unparseable or invalid stream records with reason codes"
    }
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
