output "raw_bucket_name" {
  description = "Name of the raw bucket (the driver's buckets.raw)."
  value       = aws_s3_bucket.raw.bucket
}

output "raw_bucket_arn" {
  description = "ARN of the raw bucket."
  value       = aws_s3_bucket.raw.arn
}

output "staging_bucket_name" {
  description = "Name of the staging bucket (the driver's buckets.staging)."
  value       = aws_s3_bucket.staging.bucket
}

output "staging_bucket_arn" {
  description = "ARN of the staging bucket."
  value       = aws_s3_bucket.staging.arn
}

output "access_log_bucket_name" {
  description = "Name of the bucket holding the S3 server access logs."
  value       = aws_s3_bucket.access_logs.bucket
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts both lake buckets; every role that reads or writes the lake needs kms:Decrypt and kms:GenerateDataKey on it."
  value       = aws_kms_key.lake.arn
}
