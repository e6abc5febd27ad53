# The dev environment: every module wired together. Resource names come from the locals below,
# built from var.project and var.env, and they are the names config/pipeline.toml uses by
# default (tests/test_terraform_config_drift.py keeps the two in step).

locals {
  name_prefix = "${var.project}-${var.env}"

  # S3
  raw_bucket_name        = "${local.name_prefix}-raw"
  staging_bucket_name    = "${local.name_prefix}-staging"
  access_log_bucket_name = "${local.name_prefix}-access-logs"

  # EMR
  emr_service_role_name           = "${local.name_prefix}-emr-service"
  emr_instance_profile_name       = "${local.name_prefix}-emr-instance"
  emr_security_configuration_name = local.name_prefix
  emr_log_uri                     = "s3://${local.raw_bucket_name}/emr-logs/"
  emr_release_label               = var.emr_release_label

  # EMR Serverless: the job logs go beside the EMR logs (serverless.log_uri).
  emr_serverless_log_uri = "s3://${local.raw_bucket_name}/emr-logs/serverless/"

  # EKS and the nightly trigger
  eks_cluster_name = local.name_prefix
  driver_role_name = "${local.name_prefix}-emr-driver"

  # Warehouse and sources
  redshift_cluster_identifier = local.name_prefix
  redshift_copy_role_name     = "${local.name_prefix}-redshift-copy"
  glue_database_name          = replace("${local.name_prefix}_staging", "-", "_")
  rds_identifier              = "${local.name_prefix}-purchases"

  # How the driver logs in to the databases (var.database_auth): the IRSA policy grants
  # exactly what the choice needs, nothing for the path not taken.
  source_iam    = var.database_auth.source == "iam"
  warehouse_iam = var.database_auth.warehouse == "iam"
  # The warehouse is a Redshift Serverless workgroup made outside this configuration: the
  # IAM path grants GetCredentials on it instead of the cluster's database.
  warehouse_workgroup = var.redshift_serverless_workgroup_arn != ""

  tags = {
    project     = var.project
    environment = var.env
    managed-by  = "terraform"
  }
}

module "network" {
  source = "../../modules/network"

  name                 = local.name_prefix
  vpc_cidr             = var.vpc_cidr
  availability_zones   = var.availability_zones
  private_subnet_cidrs = var.private_subnet_cidrs
  public_subnet_cidrs  = var.public_subnet_cidrs
  enable_nat_gateway   = var.enable_nat_gateway
}

module "s3" {
  source = "../../modules/s3"

  raw_bucket_name        = local.raw_bucket_name
  staging_bucket_name    = local.staging_bucket_name
  access_log_bucket_name = local.access_log_bucket_name
}

module "emr" {
  source = "../../modules/emr"

  name                          = local.name_prefix
  service_role_name             = local.emr_service_role_name
  instance_profile_name         = local.emr_instance_profile_name
  security_configuration_name   = local.emr_security_configuration_name
  raw_bucket_arn                = module.s3.raw_bucket_arn
  staging_bucket_arn            = module.s3.staging_bucket_arn
  lake_kms_key_arn              = module.s3.kms_key_arn
  log_uri                       = local.emr_log_uri
  in_transit_certificate_s3_uri = var.emr_in_transit_certificate_s3_uri
  vpc_id                        = module.network.vpc_id
  subnet_ids                    = module.network.private_subnet_ids
  create_cluster                = var.emr_create_cluster
  release_label                 = local.emr_release_label
  bootstrap_script_uri          = var.emr_bootstrap_script_uri
  idle_timeout_minutes          = var.emr_idle_timeout_minutes
}

module "emr_serverless" {
  source = "../../modules/emr_serverless"

  name               = local.name_prefix
  release_label      = local.emr_release_label
  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  maximum_cpu        = var.emr_serverless_maximum_cpu
  maximum_memory     = var.emr_serverless_maximum_memory
  auto_stop_minutes  = var.emr_serverless_auto_stop_minutes
  raw_bucket_arn     = module.s3.raw_bucket_arn
  staging_bucket_arn = module.s3.staging_bucket_arn
  lake_kms_key_arn   = module.s3.kms_key_arn
  log_uri            = local.emr_serverless_log_uri
  # The role's name from its ARN, so the policy waits for the role module eks makes.
  driver_role_name  = replace(module.eks.driver_role_arn, "/^.*:role\\//", "")
  project_tag_value = var.project
  tags              = local.tags
}

module "eks" {
  source = "../../modules/eks"

  cluster_name           = local.eks_cluster_name
  kubernetes_version     = var.kubernetes_version
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.eks_endpoint_public_access
  driver_role_name       = local.driver_role_name
  driver_namespace       = var.driver_namespace
  driver_service_account = var.driver_service_account
  driver_bucket_arns     = [module.s3.raw_bucket_arn, module.s3.staging_bucket_arn]
  driver_kms_key_arns    = [module.s3.kms_key_arn]
  emr_role_arns          = [module.emr.service_role_arn, module.emr.instance_role_arn]
  emr_cluster_tag_key    = "project"
  emr_cluster_tag_value  = var.project

  create_autoscaling_service_linked_role = var.eks_create_autoscaling_service_linked_role
  driver_secret_arns = concat(
    local.source_iam ? [] : [module.rds.master_user_secret_arn],
    local.warehouse_iam ? [] : [module.redshift.master_password_secret_arn],
  )
  driver_secret_kms_key_arns = concat(
    local.source_iam ? [] : [module.rds.kms_key_arn],
    local.warehouse_iam ? [] : [module.redshift.kms_key_arn],
  )
  driver_rds_db_user_arns     = local.source_iam ? ["${module.rds.iam_db_user_arn_prefix}/${var.rds_iam_db_user}"] : []
  driver_redshift_dbname_arns = local.warehouse_iam && !local.warehouse_workgroup ? [module.redshift.iam_dbname_arn] : []

  driver_redshift_serverless_workgroup_arns = local.warehouse_iam && local.warehouse_workgroup ? [var.redshift_serverless_workgroup_arn] : []
}

module "redshift" {
  source = "../../modules/redshift"

  cluster_identifier  = local.redshift_cluster_identifier
  node_type           = var.redshift_node_type
  number_of_nodes     = var.redshift_number_of_nodes
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  allowed_cidr_blocks = [module.network.vpc_cidr]
  staging_bucket_arn  = module.s3.staging_bucket_arn
  lake_kms_key_arn    = module.s3.kms_key_arn
  copy_role_name      = local.redshift_copy_role_name
  glue_database_name  = local.glue_database_name
}

module "rds" {
  source = "../../modules/rds"

  identifier          = local.rds_identifier
  instance_class      = var.rds_instance_class
  multi_az            = var.rds_multi_az
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  allowed_cidr_blocks = [module.network.vpc_cidr]
}
