# EKS for the nightly trigger: a private cluster with encrypted secrets and control plane logs,
# one small managed node group, and the IRSA role of the driver's service account, scoped to
# EMR step actions and to the lake buckets.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition     = data.aws_partition.current.partition
  account_id    = data.aws_caller_identity.current.account_id
  region        = data.aws_region.current.name
  account_root  = "arn:${local.partition}:iam::${local.account_id}:root"
  log_group     = "/aws/eks/${var.cluster_name}/cluster"
  clusters_arn  = "arn:${local.partition}:elasticmapreduce:${local.region}:${local.account_id}:cluster/*"
  oidc_issuer   = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
  driver_sa_sub = "system:serviceaccount:${var.driver_namespace}:${var.driver_service_account}"

  # The EC2 Auto Scaling service-linked role launches the managed nodes. A fresh account does
  # not have it until Auto Scaling is first used, and a KMS key policy naming a principal that
  # does not exist is refused: it is created here (or, where it exists, named).
  autoscaling_role_arn = (var.create_autoscaling_service_linked_role
    ? aws_iam_service_linked_role.autoscaling[0].arn
  : "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
}

resource "aws_iam_service_linked_role" "autoscaling" {
  count = var.create_autoscaling_service_linked_role ? 1 : 0

  aws_service_name = "autoscaling.amazonaws.com"
  description      = "EC2 Auto Scaling (the EKS managed nodes of ${var.cluster_name})"
}

# --- encryption and logs ------------------------------------------------------------------

resource "aws_kms_key" "eks" {
  description             = "${var.cluster_name}: Kubernetes secrets, control plane logs and node volumes"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheControlPlaneLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group}"
          }
        }
      },
      {
        # Managed node groups launch through the EC2 Auto Scaling service-linked role, which
        # needs the key for the encrypted root volumes.
        Sid       = "AutoScalingUsesTheKeyForNodeVolumes"
        Effect    = "Allow"
        Principal = { AWS = local.autoscaling_role_arn }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
        Resource  = "*"
      },
    ]
  })

  tags = var.tags
}

# Created before the cluster so that EKS does not create it unencrypted and kept forever.
resource "aws_cloudwatch_log_group" "control_plane" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.eks.arn
  tags              = var.tags
}

# --- control plane ------------------------------------------------------------------------

resource "aws_iam_role" "cluster" {
  name = "${var.cluster_name}-eks-cluster"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.eks.arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.control_plane]
}

# --- nodes --------------------------------------------------------------------------------

resource "aws_iam_role" "node" {
  name = "${var.cluster_name}-eks-node"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  name_prefix = "${var.cluster_name}-node-"
  description = "Nodes of ${var.cluster_name}: IMDSv2 only, encrypted root volume"

  # Hop limit 1: pods cannot reach the node's instance credentials; the driver gets its own
  # credentials through IRSA.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = aws_kms_key.eks.arn
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-node" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "default" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${var.cluster_name}-default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.node_instance_types

  scaling_config {
    min_size     = var.node_min_size
    max_size     = var.node_max_size
    desired_size = var.node_desired_size
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  update_config {
    max_unavailable = 1
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.node_min_size <= var.node_desired_size && var.node_desired_size <= var.node_max_size
      error_message = "Node group sizes must satisfy node_min_size <= node_desired_size <= node_max_size."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# --- IRSA: the driver's service account ---------------------------------------------------

resource "aws_iam_openid_connect_provider" "this" {
  url             = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.oidc_thumbprints
  tags            = var.tags
}

resource "aws_iam_role" "driver" {
  name = var.driver_role_name

  # Only this one service account of this one cluster can assume the role.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = local.driver_sa_sub
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "driver" {
  name = "emr-steps-and-lake"
  role = aws_iam_role.driver.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ListTheLakeBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = var.driver_bucket_arns
      },
      {
        # ingest, deploy, export, manifests and locks write; diagnosis reads the EMR logs.
        Sid      = "ReadWriteTheLakeObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = [for arn in var.driver_bucket_arns : "${arn}/*"]
      },
      {
        Sid      = "UseTheLakeKeys"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = var.driver_kms_key_arns
      },
      {
        # A cluster the driver creates must carry the project tag, so every later action
        # below (scoped to that tag) works on it and on nothing else. RunJobFlow has no
        # resource-level permission (the cluster does not exist yet): the tag condition is
        # what scopes it.
        Sid      = "CreateTaggedClusters"
        Effect   = "Allow"
        Action   = "elasticmapreduce:RunJobFlow"
        Resource = "*"
        Condition = {
          StringEquals = { "elasticmapreduce:RequestTag/${var.emr_cluster_tag_key}" = var.emr_cluster_tag_value }
        }
      },
      {
        # AddTags only on clusters that already carry the tag, so the driver cannot claim a
        # foreign cluster by tagging it.
        Sid    = "RunStepsOnProjectClusters"
        Effect = "Allow"
        Action = [
          "elasticmapreduce:AddTags",
          "elasticmapreduce:AddJobFlowSteps",
          "elasticmapreduce:ListSteps",
          "elasticmapreduce:DescribeStep",
          "elasticmapreduce:CancelSteps",
          "elasticmapreduce:DescribeCluster",
          # After a bootstrap failure: which action failed, for the error message.
          "elasticmapreduce:ListBootstrapActions",
          "elasticmapreduce:TerminateJobFlows",
        ]
        Resource = local.clusters_arn
        Condition = {
          StringEquals = { "elasticmapreduce:ResourceTag/${var.emr_cluster_tag_key}" = var.emr_cluster_tag_value }
        }
      },
      {
        # ListClusters has no resource-level permissions; it reveals only cluster summaries.
        Sid      = "FindReusableClusters"
        Effect   = "Allow"
        Action   = "elasticmapreduce:ListClusters"
        Resource = "*"
      },
      {
        Sid      = "PassTheEmrRoles"
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = var.emr_role_arns
        Condition = {
          StringEquals = { "iam:PassedToService" = ["elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"] }
        }
      },
      ], length(var.driver_secret_arns) == 0 ? [] : [
      {
        # The database passwords, read at run time (RDS and Redshift rotate them).
        Sid      = "ReadTheDatabaseSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = var.driver_secret_arns
      },
      {
        Sid      = "DecryptTheDatabaseSecrets"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = var.driver_secret_kms_key_arns
        Condition = {
          StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
        }
      },
      ], length(var.driver_rds_db_user_arns) == 0 ? [] : [
      {
        # IAM database authentication to RDS: the driver signs an auth token for these users.
        Sid      = "ConnectToRdsWithIam"
        Effect   = "Allow"
        Action   = "rds-db:connect"
        Resource = var.driver_rds_db_user_arns
      },
      ], length(var.driver_redshift_dbname_arns) == 0 ? [] : [
      {
        # IAM login to Redshift: temporary credentials of the database user Redshift maps this
        # role to (IAMR:<role name>), for these databases only.
        Sid      = "RedshiftCredentialsWithIam"
        Effect   = "Allow"
        Action   = "redshift:GetClusterCredentialsWithIAM"
        Resource = var.driver_redshift_dbname_arns
      },
      ], length(var.driver_redshift_serverless_workgroup_arns) == 0 ? [] : [
      {
        # IAM login to a Redshift Serverless workgroup: GetCredentials for these workgroups
        # only (the same IAMR:<role name> user and a temporary password).
        Sid      = "RedshiftServerlessCredentialsWithIam"
        Effect   = "Allow"
        Action   = "redshift-serverless:GetCredentials"
        Resource = var.driver_redshift_serverless_workgroup_arns
      },
    ])
  })
}

# --- the driver's image ---------------------------------------------------------------------

# The CronJob's image (deploy/k8s/kustomization.yaml `images`): tags are immutable, so a
# release tag always names the same image; every push is scanned; layers are encrypted with
# this module's key.
resource "aws_ecr_repository" "driver" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.eks.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "driver" {
  repository = aws_ecr_repository.driver.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.ecr_keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_images
      }
      action = { type = "expire" }
    }]
  })
}
