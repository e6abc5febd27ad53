# EMR Serverless for the pipeline: one Spark application on the EMR release of the clusters
# (auto-start, auto-stop, a maximum capacity, the private subnets), the job runtime role (read
# raw, write staging and the job logs, nothing else), and what the driver's IRSA role needs to
# run a night on it (start, read, list and cancel job runs of this application; pass the
# runtime role and no other).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  # s3://<raw>/<prefix>/ of the job logs: the job runs may write there and nowhere else in raw.
  log_bucket = regex("^s3://([^/]+)/(.*)$", var.log_uri)[0]
  log_prefix = regex("^s3://([^/]+)/(.*)$", var.log_uri)[1]

  tags = merge(var.tags, { project = var.project_tag_value })
}

# --- the application ------------------------------------------------------------------------

# The workers reach S3 (gateway endpoint or NAT) and the AWS APIs over HTTPS; nothing reaches
# them.
resource "aws_security_group" "workers" {
  #checkov:skip=CKV2_AWS_5:It is attached to the workers by aws_emrserverless_application.this (network_configuration), a resource type this graph check does not know.
  name                   = "${var.name}-emr-serverless"
  description            = "EMR Serverless job run workers: HTTPS out only"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true

  egress {
    description = "HTTPS to S3 and the AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = local.tags
}

resource "aws_emrserverless_application" "this" {
  name          = var.name
  release_label = var.release_label
  type          = "spark"

  # Started by the first job run, stopped after auto_stop_minutes idle: no cost between nights.
  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.auto_stop_minutes
  }

  maximum_capacity {
    cpu    = var.maximum_cpu
    memory = var.maximum_memory
  }

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.workers.id]
  }

  tags = local.tags
}

# --- the job runtime role -------------------------------------------------------------------

resource "aws_iam_role" "runtime" {
  name = "${var.name}-emr-serverless-runtime"

  # Only EMR Serverless, only for job runs of this account's application.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "emr-serverless.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:emr-serverless:${local.region}:${local.account_id}:/applications/*" }
      }
    }]
  })

  tags = local.tags
}

resource "aws_iam_role_policy" "runtime" {
  name = "lake-access"
  role = aws_iam_role.runtime.id

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
        # The jobs read vendor files and job code from raw; they never write there...
        Sid      = "ReadRaw"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.raw_bucket_arn}/*"
      },
      {
        # ... but for their logs (S3 monitoring), under the log prefix only.
        Sid      = "WriteJobLogs"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "arn:${local.partition}:s3:::${local.log_bucket}/${local.log_prefix}*"
      },
      {
        # Spark overwrites whole dt= partitions, so it deletes as well as writes.
        Sid      = "ReadWriteStaging"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        Resource = "${var.staging_bucket_arn}/*"
      },
      {
        Sid      = "UseTheLakeKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = var.lake_kms_key_arn
      },
    ]
  })
}

# --- what the driver may do -----------------------------------------------------------------

# Attached to the driver's IRSA role (module eks) from here, so the EKS module needs to know
# nothing about EMR Serverless. The application comes from Terraform (serverless.application_id),
# so the driver needs no CreateApplication; job runs must carry the project tag.
resource "aws_iam_role_policy" "driver" {
  name = "emr-serverless-job-runs"
  role = var.driver_role_name

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Start (and stop a stopped) application, read it: this application only.
        Sid      = "UseTheApplication"
        Effect   = "Allow"
        Action   = ["emr-serverless:GetApplication", "emr-serverless:StartApplication", "emr-serverless:ListJobRuns"]
        Resource = aws_emrserverless_application.this.arn
      },
      {
        # A job run must be tagged with the project when it is started (tag on create needs
        # TagResource too, under the same condition).
        Sid      = "StartTaggedJobRuns"
        Effect   = "Allow"
        Action   = ["emr-serverless:StartJobRun", "emr-serverless:TagResource"]
        Resource = [aws_emrserverless_application.this.arn, "${aws_emrserverless_application.this.arn}/jobruns/*"]
        Condition = {
          StringEquals = { "aws:RequestTag/project" = var.project_tag_value }
        }
      },
      {
        # Read and cancel the job runs of the project (the tag the driver put on them).
        Sid      = "ReadAndCancelProjectJobRuns"
        Effect   = "Allow"
        Action   = ["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"]
        Resource = "${aws_emrserverless_application.this.arn}/jobruns/*"
        Condition = {
          StringEquals = { "aws:ResourceTag/project" = var.project_tag_value }
        }
      },
      {
        Sid      = "PassTheRuntimeRole"
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = aws_iam_role.runtime.arn
        Condition = {
          StringEquals = { "iam:PassedToService" = "emr-serverless.amazonaws.com" }
        }
      },
    ]
  })
}
