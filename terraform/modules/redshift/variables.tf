variable "cluster_identifier" {
  type        = string
  description = "Identifier of the Redshift cluster, e.g. \"movie-analytics-dev\"."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.cluster_identifier)) && !can(regex("--|-$", var.cluster_identifier))
    error_message = "cluster_identifier must be 1-63 lowercase letters, digits or hyphens, start with a letter, and not end with or contain two consecutive hyphens."
  }
}

variable "database_name" {
  type        = string
  description = "Name of the warehouse database created in the cluster."
  default     = "movie_analytics"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_$]{0,63}$", var.database_name)) && var.database_name != "dev"
    error_message = "database_name must be a lowercase Redshift identifier other than the default \"dev\"."
  }
}

variable "master_username" {
  type        = string
  description = "Admin user of the cluster. Its password is generated and kept in Secrets Manager by Redshift (manage_master_password); it never appears in Terraform state."
  default     = "warehouse_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,127}$", var.master_username)) && var.master_username != "awsuser"
    error_message = "master_username must be a lowercase identifier other than the default \"awsuser\"."
  }
}

variable "node_type" {
  type        = string
  description = "Node type of the cluster."
  default     = "ra3.large"

  validation {
    condition     = can(regex("^(ra3|dc2)\\.", var.node_type))
    error_message = "node_type must be an ra3 or dc2 node type, e.g. ra3.large."
  }
}

variable "number_of_nodes" {
  type        = number
  description = "Nodes in the cluster (1 makes a single-node cluster)."
  default     = 1

  validation {
    condition     = var.number_of_nodes >= 1 && var.number_of_nodes <= 128
    error_message = "number_of_nodes must be between 1 and 128."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the cluster subnet group."

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "Give at least one private subnet."
  }
}

variable "allowed_cidr_blocks" {
  type        = list(string)
  description = "CIDR blocks allowed to connect to the cluster on port 5439 (the VPC, where the driver runs)."

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must be IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "staging_bucket_arn" {
  type        = string
  description = "ARN of the staging bucket: COPY reads warehouse_load/ from it and Spectrum reads the staging tables."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.staging_bucket_arn))
    error_message = "staging_bucket_arn must be an S3 bucket ARN such as arn:aws:s3:::my-bucket."
  }
}

variable "lake_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key of the staging bucket (COPY and Spectrum decrypt with it)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.lake_kms_key_arn))
    error_message = "lake_kms_key_arn must be a KMS key ARN."
  }
}

variable "copy_role_name" {
  type        = string
  description = "Name of the IAM role the cluster assumes for COPY and Redshift Spectrum (its ARN is the driver's warehouse.redshift_copy_role_arn)."

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.copy_role_name))
    error_message = "copy_role_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "glue_database_name" {
  type        = string
  description = "Name of the Glue Data Catalog database behind the Spectrum external schema over the staging layer."

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database_name))
    error_message = "glue_database_name must contain only lowercase letters, digits and underscores."
  }
}

variable "automated_snapshot_retention_days" {
  type        = number
  description = "Days automated snapshots are kept."
  default     = 7

  validation {
    condition     = var.automated_snapshot_retention_days >= 1 && var.automated_snapshot_retention_days <= 35
    error_message = "automated_snapshot_retention_days must be between 1 and 35."
  }
}

variable "log_retention_days" {
  type        = number
  description = "How long the audit logs are kept in CloudWatch Logs, in days."
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
