variable "identifier" {
  type        = string
  description = "Identifier of the RDS instance, e.g. \"movie-analytics-dev\"."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.identifier)) && !can(regex("--|-$", var.identifier))
    error_message = "identifier must be 1-63 lowercase letters, digits or hyphens, start with a letter, and not end with or contain two consecutive hyphens."
  }
}

variable "database_name" {
  type        = string
  description = "Name of the database that holds the user_purchase table."
  default     = "movie_analytics"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier."
  }
}

variable "master_username" {
  type        = string
  description = "Admin user. Its password is generated and rotated by RDS in Secrets Manager (manage_master_user_password); it never appears in Terraform state."
  default     = "purchases_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be a lowercase identifier and not a well-known default (postgres, admin, rdsadmin)."
  }
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL major version; RDS applies minor upgrades in the maintenance window."
  default     = "16"

  validation {
    condition     = can(regex("^1[4-9]$", var.engine_version))
    error_message = "engine_version must be a PostgreSQL major version from 14 on, e.g. \"16\"."
  }
}

variable "instance_class" {
  type        = string
  description = "Instance class of the database."
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS instance class such as db.t4g.medium."
  }
}

variable "allocated_storage_gb" {
  type        = number
  description = "Initial storage, in GiB (storage autoscaling grows it up to max_allocated_storage_gb)."
  default     = 20

  validation {
    condition     = var.allocated_storage_gb >= 20
    error_message = "allocated_storage_gb must be at least 20."
  }
}

variable "max_allocated_storage_gb" {
  type        = number
  description = "Storage autoscaling ceiling, in GiB."
  default     = 100

  validation {
    condition     = var.max_allocated_storage_gb >= 20
    error_message = "max_allocated_storage_gb must be at least 20."
  }
}

variable "multi_az" {
  type        = bool
  description = "Run a standby in a second availability zone. On by default (the secure, available default); a throwaway dev environment may turn it off to halve the cost."
  default     = true
}

variable "backup_retention_days" {
  type        = number
  description = "Days automated backups are kept."
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the database."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the DB subnet group (two availability zones at least)."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An RDS subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_cidr_blocks" {
  type        = list(string)
  description = "CIDR blocks allowed to connect on port 5432 (the VPC, where the driver runs)."

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must be IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "log_retention_days" {
  type        = number
  description = "How long the PostgreSQL logs are kept in CloudWatch Logs, in days."
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
