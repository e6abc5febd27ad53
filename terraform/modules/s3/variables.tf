variable "raw_bucket_name" {
  type        = string
  description = "Name of the raw bucket: vendor drops (incoming/), deployed job code (artifacts/) and EMR logs (emr-logs/)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.raw_bucket_name))
    error_message = "raw_bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "staging_bucket_name" {
  type        = string
  description = "Name of the staging bucket: the Parquet staging layer, warehouse load files, metrics, run manifests and locks."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.staging_bucket_name))
    error_message = "staging_bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "access_log_bucket_name" {
  type        = string
  description = "Name of the bucket that receives the S3 server access logs of the raw and staging buckets."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_log_bucket_name))
    error_message = "access_log_bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "artifact_expiration_days" {
  type        = number
  description = "Objects under artifacts/ in the raw bucket (content-addressed job code) are deleted this many days after upload; `emr-driver deploy` uploads any missing artifact again before a run uses it."
  default     = 180

  validation {
    condition     = var.artifact_expiration_days >= 30
    error_message = "artifact_expiration_days must be at least 30, so a month of reruns keeps its exact code."
  }
}

variable "emr_log_expiration_days" {
  type        = number
  description = "EMR logs under emr-logs/ in the raw bucket are deleted after this many days."
  default     = 90

  validation {
    condition     = var.emr_log_expiration_days >= 7
    error_message = "emr_log_expiration_days must be at least 7, so a failed nightly run can still be diagnosed."
  }
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Overwritten or deleted object versions are kept this many days in both buckets (the window to undo a bad rerun)."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  type        = number
  description = "S3 server access logs are deleted after this many days."
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 90
    error_message = "access_log_expiration_days must be at least 90."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
