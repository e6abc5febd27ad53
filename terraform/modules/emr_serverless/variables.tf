variable "name" {
  description = "Name of the EMR Serverless application and prefix of its roles (project-env)."
  type        = string
}

variable "release_label" {
  description = "EMR release of the application, the same as the EMR clusters' (emr.release_label), e.g. emr-7.12.0."
  type        = string

  validation {
    condition     = can(regex("^emr-7\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must be an EMR 7 release such as emr-7.12.0 (the jobs need Spark 3.5)."
  }
}

variable "subnet_ids" {
  description = "Private subnets the job runs' workers use (network configuration)."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the subnets, for the workers' security group."
  type        = string
}

variable "maximum_cpu" {
  description = "Maximum vCPU the application may use at once, e.g. \"64 vCPU\"."
  type        = string
  default     = "64 vCPU"
}

variable "maximum_memory" {
  description = "Maximum memory the application may use at once, e.g. \"256 GB\"."
  type        = string
  default     = "256 GB"
}

variable "auto_stop_minutes" {
  description = "The application stops itself after this many idle minutes (no job runs)."
  type        = number
  default     = 15

  validation {
    condition     = var.auto_stop_minutes >= 1 && var.auto_stop_minutes <= 10080
    error_message = "auto_stop_minutes must be 1 to 10080."
  }
}

variable "raw_bucket_arn" {
  description = "ARN of the raw bucket: the job runs read vendor files and job code from it."
  type        = string
}

variable "staging_bucket_arn" {
  description = "ARN of the staging bucket: the job runs read and write its dt= partitions."
  type        = string
}

variable "lake_kms_key_arn" {
  description = "KMS key of both lake buckets."
  type        = string
}

variable "log_uri" {
  description = "S3 monitoring location of the job runs (serverless.log_uri), under the raw bucket, e.g. s3://<raw>/emr-logs/serverless/."
  type        = string

  validation {
    condition     = can(regex("^s3://[^/]+/.+/$", var.log_uri))
    error_message = "log_uri must be s3://<bucket>/<prefix>/ (ending with a slash)."
  }
}

variable "driver_role_name" {
  description = "Name of the driver's IRSA role (module eks): it gets the EMR Serverless permissions of a run."
  type        = string
}

variable "project_tag_value" {
  description = "Value of the project tag the driver puts on job runs and on an application it creates; the driver's permissions are scoped to it."
  type        = string
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
