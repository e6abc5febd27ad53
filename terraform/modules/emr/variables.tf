variable "name" {
  type        = string
  description = "Prefix of the names of the module's resources that have no name of their own (keys, security groups, the cluster), e.g. \"movie-analytics-dev\"."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name must be 3-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "service_role_name" {
  type        = string
  description = "Name of the EMR service role (the driver's emr.service_role)."

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.service_role_name))
    error_message = "service_role_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "instance_profile_name" {
  type        = string
  description = "Name of the EC2 instance role and of its instance profile for the cluster nodes (the driver's emr.instance_profile)."

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.instance_profile_name))
    error_message = "instance_profile_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "security_configuration_name" {
  type        = string
  description = "Name of the EMR security configuration (the driver's emr.security_configuration)."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,256}$", var.security_configuration_name))
    error_message = "security_configuration_name may contain letters, digits, '.', '_' and '-'."
  }
}

variable "raw_bucket_arn" {
  type        = string
  description = "ARN of the raw bucket: the nodes read incoming files, job code and the bootstrap script from it and write EMR logs under emr-logs/."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.raw_bucket_arn))
    error_message = "raw_bucket_arn must be an S3 bucket ARN such as arn:aws:s3:::my-bucket."
  }
}

variable "staging_bucket_arn" {
  type        = string
  description = "ARN of the staging bucket: the jobs read and write it."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.staging_bucket_arn))
    error_message = "staging_bucket_arn must be an S3 bucket ARN such as arn:aws:s3:::my-bucket."
  }
}

variable "lake_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key of the lake buckets; EMRFS writes with SSE-KMS under it and the nodes decrypt with it."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.lake_kms_key_arn))
    error_message = "lake_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_uri" {
  type        = string
  description = "S3 URI where EMR writes cluster and step logs (the driver's emr.log_uri); must be in the raw bucket under emr-logs/."

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]+/emr-logs/$", var.log_uri))
    error_message = "log_uri must look like s3://<raw bucket>/emr-logs/ (with the trailing slash)."
  }
}

variable "in_transit_certificate_s3_uri" {
  type        = string
  description = "S3 URI of the zip of PEM files (privateKey.pem, certificateChain.pem, trustedCertificates.pem) that EMR uses for in-transit encryption. Create it once (see the module README) and upload it, e.g. to s3://<raw bucket>/emr-certs/certs.zip."

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]+/.+\\.zip$", var.in_transit_certificate_s3_uri))
    error_message = "in_transit_certificate_s3_uri must be an s3:// URI of a .zip file."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster (for its security groups)."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets the cluster may use; the long-running cluster uses the first one."

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "Give at least one private subnet."
  }
}

variable "create_cluster" {
  type        = bool
  description = "Create a long-running shared cluster. When false (the default) the driver creates a cluster per run (with an idle auto-termination) from the same roles and security configuration."
  default     = false
}

variable "release_label" {
  type        = string
  description = "EMR release of the long-running cluster; keep it equal to the driver's emr.release_label."
  default     = "emr-7.12.0"

  validation {
    condition     = can(regex("^emr-[0-9]+\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must look like emr-7.12.0."
  }
}

variable "bootstrap_script_uri" {
  type        = string
  description = "S3 URI of bootstrap/packages.sh as deployed by `emr-driver deploy` (s3://<raw>/artifacts/<sha256>/packages.sh). Required when create_cluster is true."
  default     = ""

  validation {
    condition     = var.bootstrap_script_uri == "" || can(regex("^s3://[a-z0-9.-]+/.+\\.sh$", var.bootstrap_script_uri))
    error_message = "bootstrap_script_uri must be empty or an s3:// URI of a .sh file."
  }
}

variable "master_instance_type" {
  type        = string
  description = "Instance type of the primary node of the long-running cluster."
  default     = "m6g.xlarge"
}

variable "core_instance_type" {
  type        = string
  description = "Instance type of the core nodes of the long-running cluster."
  default     = "m6g.xlarge"
}

variable "core_instance_count" {
  type        = number
  description = "Core nodes the long-running cluster starts with (managed scaling moves between the minimum and maximum below)."
  default     = 2

  validation {
    condition     = var.core_instance_count >= 1
    error_message = "core_instance_count must be at least 1."
  }
}

variable "ebs_volume_size_gb" {
  type        = number
  description = "Size of the (encrypted) EBS volume of every node, in GiB."
  default     = 64

  validation {
    condition     = var.ebs_volume_size_gb >= 32
    error_message = "ebs_volume_size_gb must be at least 32."
  }
}

variable "idle_timeout_minutes" {
  type        = number
  description = "The long-running cluster terminates itself after this much idle time."
  default     = 120

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080
    error_message = "idle_timeout_minutes must be between 1 and 10080 (7 days), the range EMR accepts."
  }
}

variable "managed_scaling_min_units" {
  type        = number
  description = "Managed scaling: the fewest instances the cluster shrinks to."
  default     = 2

  validation {
    condition     = var.managed_scaling_min_units >= 1
    error_message = "managed_scaling_min_units must be at least 1."
  }
}

variable "managed_scaling_max_units" {
  type        = number
  description = "Managed scaling: the most instances the cluster grows to."
  default     = 6

  validation {
    condition     = var.managed_scaling_max_units >= 1
    error_message = "managed_scaling_max_units must be at least 1."
  }
}

variable "step_concurrency_level" {
  type        = number
  description = "Steps the long-running cluster runs at once (the driver's emr.step_concurrency)."
  default     = 2

  validation {
    condition     = var.step_concurrency_level >= 1 && var.step_concurrency_level <= 256
    error_message = "step_concurrency_level must be between 1 and 256."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
