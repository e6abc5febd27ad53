output "cluster_identifier" {
  description = "Identifier of the Redshift cluster."
  value       = aws_redshift_cluster.this.cluster_identifier
}

output "endpoint" {
  description = "host:port of the cluster (private)."
  value       = aws_redshift_cluster.this.endpoint
}

output "database_name" {
  description = "Name of the warehouse database."
  value       = aws_redshift_cluster.this.database_name
}

output "master_password_secret_arn" {
  description = "ARN of the Secrets Manager secret that Redshift keeps the admin password in."
  value       = aws_redshift_cluster.this.master_password_secret_arn
}

output "copy_role_arn" {
  description = "ARN of the COPY / Spectrum role (the driver's warehouse.redshift_copy_role_arn)."
  value       = aws_iam_role.copy.arn
}

output "glue_database_name" {
  description = "Glue database of the Spectrum external schema (CREATE EXTERNAL SCHEMA ... FROM DATA CATALOG DATABASE '<this>')."
  value       = aws_glue_catalog_database.staging.name
}

output "iam_dbname_arn" {
  description = "ARN of the warehouse database for redshift:GetClusterCredentialsWithIAM (IAM login: Redshift maps the caller's role to the database user IAMR:<role name>)."
  value       = "arn:${local.partition}:redshift:${local.region}:${local.account_id}:dbname:${aws_redshift_cluster.this.cluster_identifier}/${aws_redshift_cluster.this.database_name}"
}

output "kms_key_arn" {
  description = "ARN of the KMS key of the cluster and of its admin secret (the driver decrypts the secret through Secrets Manager)."
  value       = aws_kms_key.redshift.arn
}
