environment        = "dev"
region             = "eu-west-1"
vpc_cidr_block     = "10.20.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
private_subnet_cidrs = {
  msk  = ["10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"]
  eks  = ["10.20.16.0/20", "10.20.32.0/20", "10.20.48.0/20"]
  mwaa = ["10.20.4.0/24", "10.20.5.0/24", "10.20.6.0/24"]
}
public_subnet_cidrs   = ["10.20.8.0/26", "10.20.8.64/26", "10.20.8.128/26"]
single_nat_gateway    = true
force_destroy_buckets = true

msk_broker_instance_type  = "kafka.t3.small"
msk_broker_volume_size_gb = 50

eks_node_instance_types = ["m7i.xlarge"]
eks_node_scaling = {
  min_size     = 1
  max_size     = 4
  desired_size = 1
}
spark_image_tag = "0.1.0"
# base36 of payments-dev-emr-ingest / payments-dev-emr-transform (EMR on EKS service account
# suffixes; tests/infra recomputes them).
emr_job_role_name_base36 = {
  ingest    = "3n4i9g6m1cbrscfs8toxnd6uj7lc7izpiv78"
  transform = "10drtxhzzt7t7gprieuq4oqplf4b3rmg7eetblvn1"
}

mwaa_environment_class = "mw1.small"
mwaa_workers = {
  min = 1
  max = 2
}

# dev pages nobody by default; add subscriptions here (prod sets them in account.auto.tfvars).
oncall_subscriptions = []
