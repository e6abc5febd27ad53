variable "name" {
  type        = string
  description = "Prefix of every resource name, e.g. \"movie-analytics-dev\"."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name must be 3-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC."
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block such as 10.40.0.0/16."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones to spread the subnets over (at least two: EKS, RDS and Redshift subnet groups need two)."

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "private_subnet_cidrs" {
  type        = list(string)
  description = "One private subnet CIDR per availability zone, in the same order. EMR, EKS nodes, Redshift and RDS live here."

  validation {
    condition     = alltrue([for cidr in var.private_subnet_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every private_subnet_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "public_subnet_cidrs" {
  type        = list(string)
  description = "One public subnet CIDR per availability zone, used only for the NAT gateway when enable_nat_gateway is true. Nothing else is placed in them."

  validation {
    condition     = alltrue([for cidr in var.public_subnet_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every public_subnet_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "enable_nat_gateway" {
  type        = bool
  description = "Create one NAT gateway for outbound internet from the private subnets. The EMR bootstrap action installs Python packages from PyPI, so EMR needs it unless a package mirror is reachable inside the VPC."
  default     = true
}

variable "interface_endpoint_services" {
  type        = list(string)
  description = "AWS services reached through interface VPC endpoints in the private subnets (short names such as \"elasticmapreduce\", \"sts\", \"ecr.api\"), so their traffic never leaves the VPC. \"glue\": Redshift Spectrum reads the Glue Data Catalog, and Redshift uses enhanced VPC routing."
  default     = ["elasticmapreduce", "sts", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "glue"]

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9.-]+$", s))])
    error_message = "interface_endpoint_services entries are short service names such as \"sts\" or \"ecr.api\"."
  }
}

variable "flow_log_retention_days" {
  type        = number
  description = "How long the VPC flow logs are kept in CloudWatch Logs, in days."
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
