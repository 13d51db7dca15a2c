output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "VPC IPv4 CIDR."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnet ids per workload tier (msk, eks, mwaa), ordered by availability zone."
  value = {
    for tier, cidrs in var.private_subnet_cidrs : tier => [
      for index in range(length(cidrs)) : aws_subnet.private["${tier}-${index}"].id
    ]
  }
}

output "private_subnet_cidrs" {
  description = "Private subnet CIDRs per workload tier, for security group rules."
  value       = var.private_subnet_cidrs
}

output "endpoint_security_group_id" {
  description = "Security group of the interface VPC endpoints."
  value       = aws_security_group.endpoints.id
}

output "interface_endpoint_ids" {
  description = "Interface VPC endpoint id per service name (com.amazonaws.<region>.<service>)."
  value       = { for key, endpoint in aws_vpc_endpoint.interface : endpoint.service_name => endpoint.id }
}

output "s3_endpoint_id" {
  description = "S3 gateway endpoint id."
  value       = aws_vpc_endpoint.s3.id
}
