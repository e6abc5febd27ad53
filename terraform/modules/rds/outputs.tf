output "identifier" {
  description = "Identifier of the RDS instance."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Private DNS name of the database."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the database that holds user_purchase."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Admin user name (its password is in the secret below)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret with the admin credentials, kept and rotated by RDS."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "iam_db_user_arn_prefix" {
  description = "ARN prefix of the database users for IAM authentication (rds-db:connect): append /<database user>. The user must exist and be granted rds_iam."
  value       = "arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${aws_db_instance.this.resource_id}"
}

output "kms_key_arn" {
  description = "ARN of the KMS key of the database and of its admin secret (the driver decrypts the secret through Secrets Manager)."
  value       = aws_kms_key.rds.arn
}
