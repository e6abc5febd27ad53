# Everything the driver's configuration needs. scripts/config-from-terraform.py turns
# `terraform output -json` into EMR_DRIVER_<SECTION>_<KEY> lines; its table says which output
# feeds which config key.

output "aws_region" {
  description = "Region of every resource (aws.region)."
  value       = var.region
}

output "raw_bucket" {
  description = "Raw bucket (buckets.raw)."
  value       = module.s3.raw_bucket_name
}

output "staging_bucket" {
  description = "Staging bucket (buckets.staging)."
  value       = module.s3.staging_bucket_name
}

output "lake_kms_key_arn" {
  description = "KMS key of both lake buckets."
  value       = module.s3.kms_key_arn
}

output "emr_log_uri" {
  description = "Where EMR writes its logs (emr.log_uri)."
  value       = module.emr.log_uri
}

output "emr_service_role" {
  description = "EMR service role name (emr.service_role)."
  value       = module.emr.service_role_name
}

output "emr_instance_profile" {
  description = "Instance profile of the EMR nodes (emr.instance_profile)."
  value       = module.emr.instance_profile_name
}

output "emr_security_configuration" {
  description = "EMR security configuration (emr.security_configuration)."
  value       = module.emr.security_configuration_name
}

output "emr_release_label" {
  description = "EMR release (emr.release_label)."
  value       = module.emr.release_label
}

output "emr_cluster_id" {
  description = "The shared cluster's id, or \"\" when the driver creates one per run (emr.cluster_id)."
  value       = module.emr.cluster_id
}

output "emr_subnet_id" {
  description = "Private subnet of the clusters the driver creates (emr.subnet_id)."
  value       = module.network.private_subnet_ids[0]
}

output "emr_master_security_group" {
  description = "EMR-managed security group of the primary node (emr.master_security_group)."
  value       = module.emr.master_security_group_id
}

output "emr_core_security_group" {
  description = "EMR-managed security group of the core nodes (emr.core_security_group)."
  value       = module.emr.core_security_group_id
}

output "emr_service_access_security_group" {
  description = "EMR-managed service access security group (emr.service_access_security_group)."
  value       = module.emr.service_access_security_group_id
}

output "project" {
  description = "Project name (pipeline.name): the project tag the driver's IAM policy requires on the clusters it creates."
  value       = var.project
}

output "redshift_copy_role_arn" {
  description = "Role of Redshift COPY and Spectrum (warehouse.redshift_copy_role_arn)."
  value       = module.redshift.copy_role_arn
}

output "redshift_endpoint" {
  description = "host:port of the Redshift cluster (for the warehouse connection string)."
  value       = module.redshift.endpoint
}

output "redshift_database" {
  description = "Warehouse database in Redshift."
  value       = module.redshift.database_name
}

output "redshift_admin_secret_arn" {
  description = "Secrets Manager secret with the Redshift admin credentials (for people; the driver's is warehouse_password_secret_arn)."
  value       = module.redshift.master_password_secret_arn
}

output "redshift_glue_database" {
  description = "Glue database of the Spectrum external schema."
  value       = module.redshift.glue_database_name
}

output "rds_address" {
  description = "Private DNS name of the PostgreSQL database with user_purchase."
  value       = module.rds.address
}

output "rds_port" {
  description = "Port of the PostgreSQL database."
  value       = module.rds.port
}

output "rds_database" {
  description = "Database that holds user_purchase."
  value       = module.rds.database_name
}

output "rds_admin_secret_arn" {
  description = "Secrets Manager secret with the PostgreSQL admin credentials (rotated by RDS)."
  value       = module.rds.master_user_secret_arn
}

output "eks_cluster_name" {
  description = "EKS cluster of the nightly CronJob (aws eks update-kubeconfig --name <this>)."
  value       = module.eks.cluster_name
}

output "driver_role_arn" {
  description = "IRSA role of the driver: the eks.amazonaws.com/role-arn annotation in deploy/k8s/serviceaccount.yaml."
  value       = module.eks.driver_role_arn
}

output "driver_namespace" {
  description = "Namespace of the nightly CronJob."
  value       = module.eks.driver_namespace
}

output "driver_service_account" {
  description = "Service account of the nightly CronJob."
  value       = module.eks.driver_service_account
}

output "emr_serverless_application_id" {
  description = "The EMR Serverless application (serverless.application_id)."
  value       = module.emr_serverless.application_id
}

output "emr_serverless_runtime_role_arn" {
  description = "The EMR Serverless job runtime role (serverless.execution_role_arn)."
  value       = module.emr_serverless.runtime_role_arn
}

output "emr_serverless_security_group_id" {
  description = "Security group of the EMR Serverless workers (serverless.security_group_ids)."
  value       = module.emr_serverless.security_group_id
}

output "emr_serverless_log_uri" {
  description = "Where EMR Serverless job runs write their logs (serverless.log_uri)."
  value       = module.emr_serverless.log_uri
}

output "ecr_repository_url" {
  description = "ECR repository of the driver image (deploy/k8s/kustomization.yaml images.newName)."
  value       = module.eks.ecr_repository_url
}

# How the driver logs in (var.database_auth): scripts/config-from-terraform.py feeds these to
# source.auth / warehouse.auth, the secrets' ARNs (empty on the IAM path) and DATABASE_URL's user.

output "source_auth" {
  description = "How the driver logs in to PostgreSQL, \"secret\" or \"iam\" (source.auth)."
  value       = var.database_auth.source
}

output "warehouse_auth" {
  description = "How the driver logs in to Redshift, \"secret\" or \"iam\" (warehouse.auth)."
  value       = var.database_auth.warehouse
}

output "source_password_secret_arn" {
  description = "The secret the driver reads the PostgreSQL credentials from (source.password_secret_arn); empty on the IAM path."
  value       = local.source_iam ? "" : module.rds.master_user_secret_arn
}

output "warehouse_password_secret_arn" {
  description = "The secret the driver reads the Redshift credentials from (warehouse.password_secret_arn); empty on the IAM path."
  value       = local.warehouse_iam ? "" : module.redshift.master_password_secret_arn
}

output "source_db_user" {
  description = "The PostgreSQL user of DATABASE_URL on the IAM path (rds_iam_db_user); empty otherwise (the secret names the user)."
  value       = local.source_iam ? var.rds_iam_db_user : ""
}
