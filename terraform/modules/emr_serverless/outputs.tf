output "application_id" {
  description = "The EMR Serverless application (serverless.application_id)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "ARN of the application."
  value       = aws_emrserverless_application.this.arn
}

output "runtime_role_arn" {
  description = "The job runtime role (serverless.execution_role_arn)."
  value       = aws_iam_role.runtime.arn
}

output "security_group_id" {
  description = "Security group of the job runs' workers (serverless.security_group_ids)."
  value       = aws_security_group.workers.id
}

output "log_uri" {
  description = "S3 monitoring location of the job runs (serverless.log_uri)."
  value       = var.log_uri
}
