output "cluster_name" {
  description = "Name of the EKS cluster (for `aws eks update-kubeconfig --name`)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Private endpoint of the Kubernetes API."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 certificate authority data of the cluster."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "driver_role_arn" {
  description = "ARN of the driver's IRSA role: the eks.amazonaws.com/role-arn annotation of deploy/k8s/serviceaccount.yaml."
  value       = aws_iam_role.driver.arn
}

output "driver_namespace" {
  description = "Namespace of the driver's service account."
  value       = var.driver_namespace
}

output "driver_service_account" {
  description = "Name of the driver's service account."
  value       = var.driver_service_account
}

output "ecr_repository_url" {
  description = "URL of the driver image repository (docker push <this>:<tag>; kustomization.yaml images.newName)."
  value       = aws_ecr_repository.driver.repository_url
}
