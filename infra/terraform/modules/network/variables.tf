variable "name_prefix" {
  description = "Prefix of every resource name, for example payments-prod."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to spread subnets over (3: MSK runs one broker per zone)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Exactly three availability zones are required (one MSK broker per zone)."
  }
}

variable "private_subnet_cidrs" {
  description = "Private subnet CIDRs per workload tier, one per availability zone. MWAA uses the first two of its tier."
  type = object({
    msk  = list(string)
    eks  = list(string)
    mwaa = list(string)
  })
}

variable "public_subnet_cidrs" {
  description = "Public subnet CIDRs (NAT gateways only; nothing else is placed there), one per availability zone."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, dev) instead of one per zone (prod)."
  type        = bool
  default     = false
}

variable "interface_endpoint_services" {
  description = "AWS services reached through interface VPC endpoints (private DNS) instead of the NAT gateway."
  type        = list(string)
  default     = ["glue", "sts", "logs", "monitoring", "ecr.api", "ecr.dkr", "kms", "secretsmanager", "athena", "sns", "emr-containers"]
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the VPC flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group (PCI DSS 10.5.1: at least one year)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
