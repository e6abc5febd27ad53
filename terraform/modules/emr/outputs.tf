output "service_role_name" {
  description = "Name of the EMR service role (the driver's emr.service_role)."
  value       = aws_iam_role.service.name
}

output "service_role_arn" {
  description = "ARN of the EMR service role (the driver's service account passes it to RunJobFlow)."
  value       = aws_iam_role.service.arn
}

output "instance_profile_name" {
  description = "Name of the nodes' instance profile (the driver's emr.instance_profile)."
  value       = aws_iam_instance_profile.instance.name
}

output "instance_role_arn" {
  description = "ARN of the nodes' instance role (the driver's service account passes it to RunJobFlow)."
  value       = aws_iam_role.instance.arn
}

output "security_configuration_name" {
  description = "Name of the EMR security configuration (the driver's emr.security_configuration)."
  value       = aws_emr_security_configuration.this.name
}

output "log_uri" {
  description = "S3 URI of the EMR logs (the driver's emr.log_uri)."
  value       = var.log_uri
}

output "release_label" {
  description = "EMR release of the shared cluster (the driver's emr.release_label)."
  value       = var.release_label
}

output "cluster_id" {
  description = "ID of the long-running shared cluster, or \"\" when create_cluster is false (the driver's emr.cluster_id)."
  value       = var.create_cluster ? aws_emr_cluster.shared[0].id : ""
}

output "local_disk_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the nodes' local disks and EBS volumes."
  value       = aws_kms_key.local_disk.arn
}

output "master_security_group_id" {
  description = "EMR-managed security group of the primary node (the driver's emr.master_security_group)."
  value       = aws_security_group.primary.id
}

output "core_security_group_id" {
  description = "EMR-managed security group of the core and task nodes (the driver's emr.core_security_group)."
  value       = aws_security_group.core.id
}

output "service_access_security_group_id" {
  description = "EMR-managed security group for service access in private subnets (the driver's emr.service_access_security_group)."
  value       = aws_security_group.service_access.id
}
