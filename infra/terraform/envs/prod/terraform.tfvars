environment        = "prod"
region             = "eu-west-1"
vpc_cidr_block     = "10.10.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
private_subnet_cidrs = {
  msk  = ["10.10.0.0/24", "10.10.1.0/24", "10.10.2.0/24"]
  eks  = ["10.10.16.0/20", "10.10.32.0/20", "10.10.48.0/20"]
  mwaa = ["10.10.4.0/24", "10.10.5.0/24", "10.10.6.0/24"]
}
public_subnet_cidrs   = ["10.10.8.0/26", "10.10.8.64/26", "10.10.8.128/26"]
single_nat_gateway    = false
force_destroy_buckets = false

msk_broker_instance_type  = "kafka.m7g.large"
msk_broker_volume_size_gb = 500

eks_node_instance_types = ["m7i.2xlarge"]
eks_node_scaling = {
  min_size     = 2
  max_size     = 12
  desired_size = 3
}
spark_image_tag = "0.1.0"
# base36 of payments-prod-emr-ingest / payments-prod-emr-transform (EMR on EKS service account
# suffixes; tests/infra recomputes them).
emr_job_role_name_base36 = {
  ingest    = "pwg1v730pjnplkjuvkah93rm4w9ftbxer7zp0"
  transform = "76pxwu7zynrjp2w7poxcr1f9aan1yv3xokqllmd4kt"
}

mwaa_environment_class = "mw1.medium"
mwaa_workers = {
  min = 2
  max = 10
}
