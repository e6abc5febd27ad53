# The Redshift warehouse: a private, encrypted cluster with enhanced VPC routing and audit
# logging, the IAM role its COPY and Spectrum use, and the Glue database of the external schema
# over the staging layer.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  account_id   = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.name
  account_root = "arn:${local.partition}:iam::${local.account_id}:root"
  log_exports  = ["connectionlog", "useractivitylog", "userlog"]
  log_group    = "/aws/redshift/cluster/${var.cluster_identifier}"
  glue_arns = [
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${var.glue_database_name}",
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${var.glue_database_name}/*",
  ]
}

resource "aws_kms_key" "redshift" {
  description             = "${var.cluster_identifier}: Redshift storage, admin secret and audit logs"
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
        Sid       = "CloudWatchLogsEncryptsTheAuditLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group}/*"
          }
        }
      },
    ]
  })

  tags = var.tags
}

# Created up front so that the audit logs are encrypted and expire.
resource "aws_cloudwatch_log_group" "audit" {
  for_each = toset(local.log_exports)

  name              = "${local.log_group}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.redshift.arn
  tags              = var.tags
}

resource "aws_redshift_subnet_group" "this" {
  name       = var.cluster_identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_redshift_parameter_group" "this" {
  name   = var.cluster_identifier
  family = "redshift-1.0"

  parameter {
    name  = "require_ssl"
    value = "true"
  }

  parameter {
    name  = "enable_user_activity_logging"
    value = "true"
  }

  tags = var.tags
}

resource "aws_security_group" "redshift" {
  name        = "${var.cluster_identifier}-redshift"
  description = "Redshift: SQL clients inside the VPC only"
  vpc_id      = var.vpc_id

  ingress {
    description = "Redshift SQL from the allowed private ranges"
    from_port   = 5439
    to_port     = 5439
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidr_blocks
  }

  tags = var.tags
}

# --- COPY and Spectrum ----------------------------------------------------------------------

resource "aws_iam_role" "copy" {
  name = var.copy_role_name

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "redshift.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "copy" {
  name = "read-staging-and-spectrum-catalog"
  role = aws_iam_role.copy.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ListStaging"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = var.staging_bucket_arn
      },
      {
        # COPY and Spectrum only read: the warehouse never writes to the lake.
        Sid      = "ReadStaging"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.staging_bucket_arn}/*"
      },
      {
        Sid      = "DecryptStaging"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:DescribeKey"]
        Resource = var.lake_kms_key_arn
      },
      {
        # The external schema's tables and partitions live in this one Glue database.
        Sid    = "SpectrumCatalog"
        Effect = "Allow"
        Action = [
          "glue:GetDatabase",
          "glue:GetTable",
          "glue:GetTables",
          "glue:GetPartition",
          "glue:GetPartitions",
          "glue:BatchGetPartition",
          "glue:CreateTable",
          "glue:UpdateTable",
          "glue:DeleteTable",
          "glue:CreatePartition",
          "glue:BatchCreatePartition",
          "glue:UpdatePartition",
          "glue:DeletePartition",
          "glue:BatchDeletePartition",
        ]
        Resource = local.glue_arns
      },
    ]
  })
}

resource "aws_glue_catalog_database" "staging" {
  name        = var.glue_database_name
  description = "Redshift Spectrum external schema over the staging layer (Parquet, partitioned by dt)"
}

# --- the cluster ----------------------------------------------------------------------------

resource "aws_redshift_cluster" "this" {
  cluster_identifier = var.cluster_identifier
  database_name      = var.database_name
  master_username    = var.master_username
  node_type          = var.node_type
  cluster_type       = var.number_of_nodes > 1 ? "multi-node" : "single-node"
  number_of_nodes    = var.number_of_nodes

  manage_master_password            = true
  master_password_secret_kms_key_id = aws_kms_key.redshift.arn

  encrypted                 = true
  kms_key_id                = aws_kms_key.redshift.arn
  publicly_accessible       = false
  enhanced_vpc_routing      = true
  cluster_subnet_group_name = aws_redshift_subnet_group.this.name
  vpc_security_group_ids    = [aws_security_group.redshift.id]

  cluster_parameter_group_name        = aws_redshift_parameter_group.this.name
  iam_roles                           = [aws_iam_role.copy.arn]
  default_iam_role_arn                = aws_iam_role.copy.arn
  allow_version_upgrade               = true
  automated_snapshot_retention_period = var.automated_snapshot_retention_days
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.cluster_identifier}-final"

  logging {
    enable               = true
    log_destination_type = "cloudwatch"
    log_exports          = local.log_exports
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.audit]
}
