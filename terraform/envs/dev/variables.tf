variable "project" {
  type        = string
  description = "Project name: the first part of every resource name."
  default     = "movie-analytics"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "project must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "env" {
  type        = string
  description = "Environment name: the second part of every resource name."
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.env))
    error_message = "env must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "AWS region of every resource (the driver's aws.region)."
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones of the private subnets (two at least)."
  default     = ["us-east-1a", "us-east-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC."
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "private_subnet_cidrs" {
  type        = list(string)
  description = "One private subnet CIDR per availability zone."
  default     = ["10.40.0.0/19", "10.40.32.0/19"]

  validation {
    condition     = alltrue([for cidr in var.private_subnet_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every private_subnet_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "public_subnet_cidrs" {
  type        = list(string)
  description = "One public subnet CIDR per availability zone (NAT gateway only)."
  default     = ["10.40.192.0/24", "10.40.193.0/24"]

  validation {
    condition     = alltrue([for cidr in var.public_subnet_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every public_subnet_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "enable_nat_gateway" {
  type        = bool
  description = "Outbound internet for the private subnets (the EMR bootstrap action installs packages from PyPI)."
  default     = true
}

variable "emr_release_label" {
  type        = string
  description = "EMR release (the driver's emr.release_label): emr-7.12.0 ships Spark 3.5.6, the version the local pyspark is pinned to."
  default     = "emr-7.12.0"

  validation {
    condition     = can(regex("^emr-[0-9]+\\.[0-9]+\\.[0-9]+$", var.emr_release_label))
    error_message = "emr_release_label must look like emr-7.12.0."
  }
}

variable "emr_in_transit_certificate_s3_uri" {
  type        = string
  description = "S3 URI of the zip of PEM files for EMR in-transit encryption (see modules/emr/README.md for how to make it)."

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]+/.+\\.zip$", var.emr_in_transit_certificate_s3_uri))
    error_message = "emr_in_transit_certificate_s3_uri must be an s3:// URI of a .zip file."
  }
}

variable "emr_create_cluster" {
  type        = bool
  description = "Create a long-running shared EMR cluster (its id becomes the driver's emr.cluster_id); when false the driver creates one cluster per run."
  default     = false
}

variable "emr_bootstrap_script_uri" {
  type        = string
  description = "s3:// URI of packages.sh as printed by `emr-driver deploy`; required when emr_create_cluster is true."
  default     = ""

  validation {
    condition     = var.emr_bootstrap_script_uri == "" || can(regex("^s3://[a-z0-9.-]+/.+\\.sh$", var.emr_bootstrap_script_uri))
    error_message = "emr_bootstrap_script_uri must be empty or an s3:// URI of a .sh file."
  }
}

variable "emr_idle_timeout_minutes" {
  type        = number
  description = "The shared cluster terminates itself after this much idle time."
  default     = 120

  validation {
    condition     = var.emr_idle_timeout_minutes >= 1 && var.emr_idle_timeout_minutes <= 10080
    error_message = "emr_idle_timeout_minutes must be between 1 and 10080."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of the EKS cluster. 1.35 is in EKS standard support until 2027-03 (1.34 leaves it on 2026-12-02): check https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html before an upgrade."
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.35."
  }
}

variable "eks_create_autoscaling_service_linked_role" {
  type        = bool
  description = "Create the EC2 Auto Scaling service-linked role (false where `aws iam get-role --role-name AWSServiceRoleForAutoScaling` already finds it)."
  default     = true
}

variable "eks_endpoint_public_access" {
  type        = bool
  description = "Expose the EKS API publicly as well as privately (off: reach it from inside the VPC)."
  default     = false
}

variable "driver_namespace" {
  type        = string
  description = "Kubernetes namespace of the nightly CronJob (deploy/k8s/kustomization.yaml)."
  default     = "movie-analytics"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.driver_namespace))
    error_message = "driver_namespace must be a valid Kubernetes namespace name."
  }
}

variable "driver_service_account" {
  type        = string
  description = "Service account of the nightly CronJob (deploy/k8s/serviceaccount.yaml)."
  default     = "emr-driver"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.driver_service_account))
    error_message = "driver_service_account must be a valid Kubernetes name."
  }
}

variable "redshift_node_type" {
  type        = string
  description = "Node type of the Redshift cluster."
  default     = "ra3.large"

  validation {
    condition     = can(regex("^(ra3|dc2)\\.", var.redshift_node_type))
    error_message = "redshift_node_type must be an ra3 or dc2 node type."
  }
}

variable "redshift_number_of_nodes" {
  type        = number
  description = "Nodes of the Redshift cluster."
  default     = 1

  validation {
    condition     = var.redshift_number_of_nodes >= 1
    error_message = "redshift_number_of_nodes must be at least 1."
  }
}

variable "rds_instance_class" {
  type        = string
  description = "Instance class of the PostgreSQL database."
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.rds_instance_class, "db.")
    error_message = "rds_instance_class must be an RDS instance class such as db.t4g.medium."
  }
}

variable "rds_multi_az" {
  type        = bool
  description = "Standby of the PostgreSQL database in a second availability zone."
  default     = true
}

variable "emr_serverless_maximum_cpu" {
  type        = string
  description = "Maximum vCPU of the EMR Serverless application at once, e.g. \"64 vCPU\"."
  default     = "64 vCPU"
}

variable "emr_serverless_maximum_memory" {
  type        = string
  description = "Maximum memory of the EMR Serverless application at once, e.g. \"256 GB\"."
  default     = "256 GB"
}

variable "emr_serverless_auto_stop_minutes" {
  type        = number
  description = "The EMR Serverless application stops itself after this many idle minutes."
  default     = 15

  validation {
    condition     = var.emr_serverless_auto_stop_minutes >= 1 && var.emr_serverless_auto_stop_minutes <= 10080
    error_message = "emr_serverless_auto_stop_minutes must be between 1 and 10080."
  }
}

variable "database_auth" {
  type = object({
    source    = string
    warehouse = string
  })
  description = "How the nightly driver logs in to each database: \"secret\" (the user and password of the RDS- or Redshift-managed admin secret, read at run time) or \"iam\" (RDS: an IAM auth token for rds_iam_db_user; Redshift: GetClusterCredentialsWithIAM as IAMR:<driver role>). The driver's IRSA policy grants exactly what the choice needs, and the driver's configuration (outputs source_auth, warehouse_auth) follows it."
  default = {
    source    = "secret"
    warehouse = "secret"
  }

  validation {
    condition     = contains(["secret", "iam"], var.database_auth.source) && contains(["secret", "iam"], var.database_auth.warehouse)
    error_message = "database_auth.source and database_auth.warehouse must each be \"secret\" or \"iam\"."
  }
}

variable "redshift_serverless_workgroup_arn" {
  type        = string
  description = "The ARN of a Redshift Serverless workgroup to use as the warehouse instead of the provisioned cluster (made outside this configuration; `aws redshift-serverless get-workgroup --workgroup-name <name> --query workgroup.workgroupArn`). With database_auth.warehouse = \"iam\" the driver's IRSA policy grants redshift-serverless:GetCredentials on it and nothing on the cluster's database. Empty (default): the provisioned cluster."
  default     = ""

  validation {
    condition     = var.redshift_serverless_workgroup_arn == "" || can(regex("^arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:[0-9]{12}:workgroup/[0-9a-f-]{36}$", var.redshift_serverless_workgroup_arn))
    error_message = "redshift_serverless_workgroup_arn must be empty or a Redshift Serverless workgroup ARN (workgroup/<workgroup id>)."
  }
}

variable "rds_iam_db_user" {
  type        = string
  description = "With database_auth.source = \"iam\": the PostgreSQL user the driver logs in as (create it and GRANT rds_iam TO it, docs/deploy-aws.md)."
  default     = "emr_driver"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.rds_iam_db_user))
    error_message = "rds_iam_db_user must be a lowercase PostgreSQL identifier."
  }
}
