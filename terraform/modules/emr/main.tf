# EMR for the pipeline: the security configuration, the service role and the nodes' instance
# role (both scoped to the two lake buckets), and an optional long-running shared cluster.
# The driver creates its own per-run clusters from the same three names when no shared cluster
# is configured.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  account_id   = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.name
  account_root = "arn:${local.partition}:iam::${local.account_id}:root"
  clusters_arn = "arn:${local.partition}:elasticmapreduce:${local.region}:${local.account_id}:cluster/*"

  # s3://bucket/key -> arn:aws:s3:::bucket/key
  certificate_object_arn = "arn:${local.partition}:s3:::${trimprefix(var.in_transit_certificate_s3_uri, "s3://")}"

  # s3://<bucket>/<prefix> of the EMR logs: the nodes may write there and nowhere else in raw.
  log_bucket = regex("^s3://([^/]+)/(.*)$", var.log_uri)[0]
  log_prefix = regex("^s3://([^/]+)/(.*)$", var.log_uri)[1]
  raw_bucket = regex("^arn:[^:]+:s3:::(.+)$", var.raw_bucket_arn)[0]
}

# --- local disk encryption key ------------------------------------------------------------

resource "aws_kms_key" "local_disk" {
  description             = "${var.name}: EMR local disk and EBS encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # The account administers the key; the EMR service role and the instance role use it through
  # their IAM policies below.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = local.account_root }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })

  tags = var.tags
}

# --- security configuration ---------------------------------------------------------------

resource "aws_emr_security_configuration" "this" {
  name = var.security_configuration_name

  lifecycle {
    precondition {
      condition     = local.log_bucket == local.raw_bucket
      error_message = "log_uri must be in the raw bucket (s3://<raw bucket>/emr-logs/): the instance role may only write logs there."
    }
  }

  configuration = jsonencode({
    EncryptionConfiguration = {
      EnableAtRestEncryption    = true
      EnableInTransitEncryption = true
      AtRestEncryptionConfiguration = {
        S3EncryptionConfiguration = {
          EncryptionMode = "SSE-KMS"
          AwsKmsKey      = var.lake_kms_key_arn
        }
        LocalDiskEncryptionConfiguration = {
          EncryptionKeyProviderType = "AwsKms"
          AwsKmsKey                 = aws_kms_key.local_disk.arn
          EnableEbsEncryption       = true
        }
      }
      InTransitEncryptionConfiguration = {
        TLSCertificateConfiguration = {
          CertificateProviderType = "PEM"
          S3Object                = var.in_transit_certificate_s3_uri
        }
      }
    }
    # IMDSv2 only, one hop: containers on the nodes cannot reach the instance credentials.
    InstanceMetadataServiceConfiguration = {
      MinimumInstanceMetadataServiceVersion = 2
      HttpPutResponseHopLimit               = 1
    }
  })
}

# --- service role -------------------------------------------------------------------------

resource "aws_iam_role" "service" {
  name = var.service_role_name

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "elasticmapreduce.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = local.clusters_arn }
      }
    }]
  })

  tags = var.tags
}

# AmazonEMRServicePolicy_v2 is AWS's least-privilege EMR service policy: it only touches EC2
# resources tagged for-use-with-amazon-emr-managed-policies=true (the network module tags the
# VPC and the private subnets; EMR tags what it creates).
resource "aws_iam_role_policy_attachment" "service_v2" {
  role       = aws_iam_role.service.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
}

resource "aws_iam_role_policy" "service" {
  name = "pass-instance-role-and-encrypt-ebs"
  role = aws_iam_role.service.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PassTheInstanceRoleToTheNodes"
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = aws_iam_role.instance.arn
        Condition = {
          StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" }
        }
      },
      {
        Sid      = "EncryptTheNodesEbsVolumes"
        Effect   = "Allow"
        Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource = aws_kms_key.local_disk.arn
      },
      {
        Sid      = "LetEc2UseTheKeyForTheVolumes"
        Effect   = "Allow"
        Action   = "kms:CreateGrant"
        Resource = aws_kms_key.local_disk.arn
        Condition = {
          Bool = { "kms:GrantIsForAWSResource" = "true" }
        }
      },
    ]
  })
}

# --- instance role (the nodes) ------------------------------------------------------------

resource "aws_iam_role" "instance" {
  name = var.instance_profile_name

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

resource "aws_iam_instance_profile" "instance" {
  name = var.instance_profile_name
  role = aws_iam_role.instance.name
  tags = var.tags
}

resource "aws_iam_role_policy" "instance" {
  name = "lake-access"
  role = aws_iam_role.instance.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ListTheLakeBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = [var.raw_bucket_arn, var.staging_bucket_arn]
      },
      {
        # The jobs read vendor files and job code from raw; they never write there.
        Sid      = "ReadRaw"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.raw_bucket_arn}/*"
      },
      {
        Sid      = "WriteEmrLogs"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "${var.raw_bucket_arn}/${local.log_prefix}*"
      },
      {
        # Spark overwrites whole dt= partitions, so it deletes as well as writes.
        Sid      = "ReadWriteStaging"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        Resource = "${var.staging_bucket_arn}/*"
      },
      {
        Sid      = "ReadTheInTransitCertificates"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = local.certificate_object_arn
      },
      {
        Sid      = "UseTheLakeKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = var.lake_kms_key_arn
      },
      {
        Sid      = "UseTheLocalDiskKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = aws_kms_key.local_disk.arn
      },
      {
        # The node daemons read their own cluster's description (instance groups, bootstrap
        # actions, steps); read-only, and only on clusters of this account and region.
        Sid      = "DescribeOwnCluster"
        Effect   = "Allow"
        Action   = ["elasticmapreduce:DescribeCluster", "elasticmapreduce:ListInstanceGroups", "elasticmapreduce:ListBootstrapActions", "elasticmapreduce:ListSteps", "elasticmapreduce:DescribeStep"]
        Resource = local.clusters_arn
      },
    ]
  })
}

# --- EMR-managed security groups ---------------------------------------------------------

# EMR fills in the rules of its managed security groups itself (master <-> core, and the
# service access port 9443 in private subnets), so these groups start empty. They exist
# whether or not the shared cluster does: the clusters the driver creates use them too
# (emr.master_security_group, emr.core_security_group, emr.service_access_security_group), so
# that no default group is made outside Terraform.
resource "aws_security_group" "primary" {
  name                   = "${var.name}-emr-primary"
  description            = "EMR managed security group of the primary node"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(var.tags, { "for-use-with-amazon-emr-managed-policies" = "true" })
}

resource "aws_security_group" "core" {
  name                   = "${var.name}-emr-core"
  description            = "EMR managed security group of the core and task nodes"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(var.tags, { "for-use-with-amazon-emr-managed-policies" = "true" })
}

resource "aws_security_group" "service_access" {
  name                   = "${var.name}-emr-service-access"
  description            = "EMR managed security group for service access in private subnets"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(var.tags, { "for-use-with-amazon-emr-managed-policies" = "true" })
}

# --- the optional long-running shared cluster --------------------------------------------

resource "aws_emr_cluster" "shared" {
  count = var.create_cluster ? 1 : 0

  name                              = "${var.name}-shared"
  release_label                     = var.release_label
  applications                      = ["Hadoop", "Spark"]
  service_role                      = aws_iam_role.service.arn
  security_configuration            = aws_emr_security_configuration.this.name
  log_uri                           = var.log_uri
  log_encryption_kms_key_id         = var.lake_kms_key_arn
  keep_job_flow_alive_when_no_steps = true
  termination_protection            = false
  step_concurrency_level            = var.step_concurrency_level

  ec2_attributes {
    subnet_id                         = var.subnet_ids[0]
    instance_profile                  = aws_iam_instance_profile.instance.arn
    emr_managed_master_security_group = aws_security_group.primary.id
    emr_managed_slave_security_group  = aws_security_group.core.id
    service_access_security_group     = aws_security_group.service_access.id
  }

  master_instance_group {
    instance_type = var.master_instance_type
    ebs_config {
      size                 = var.ebs_volume_size_gb
      type                 = "gp3"
      volumes_per_instance = 1
    }
  }

  core_instance_group {
    instance_type  = var.core_instance_type
    instance_count = var.core_instance_count
    ebs_config {
      size                 = var.ebs_volume_size_gb
      type                 = "gp3"
      volumes_per_instance = 1
    }
  }

  bootstrap_action {
    name = "python-packages"
    path = var.bootstrap_script_uri
  }

  auto_termination_policy {
    idle_timeout = var.idle_timeout_minutes * 60
  }

  tags = merge(var.tags, { "for-use-with-amazon-emr-managed-policies" = "true" })

  lifecycle {
    precondition {
      condition     = var.bootstrap_script_uri != ""
      error_message = "create_cluster = true needs bootstrap_script_uri: run `emr-driver deploy` and pass the packages.sh URI it prints."
    }
    precondition {
      condition     = var.managed_scaling_min_units <= var.managed_scaling_max_units
      error_message = "managed_scaling_min_units must not exceed managed_scaling_max_units."
    }
  }

  depends_on = [aws_iam_role_policy.service, aws_iam_role_policy.instance]
}

resource "aws_emr_managed_scaling_policy" "shared" {
  count = var.create_cluster ? 1 : 0

  cluster_id = aws_emr_cluster.shared[0].id
  compute_limits {
    unit_type              = "Instances"
    minimum_capacity_units = var.managed_scaling_min_units
    maximum_capacity_units = var.managed_scaling_max_units
  }
}
