variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster that runs the nightly driver CronJob."

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must start with a letter and contain only letters, digits, '-' and '_' (at most 100 characters)."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of the control plane and the node group."
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.35."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets (at least two availability zones) for the control plane ENIs and the nodes."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  type        = bool
  description = "Expose the Kubernetes API publicly as well as inside the VPC. Off by default: reach it through a VPN, a bastion or from inside the VPC."
  default     = false
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the managed node group. The driver is I/O bound and small: one small node is enough."
  default     = ["t3.medium"]

  validation {
    condition     = length(var.node_instance_types) >= 1
    error_message = "Give at least one instance type."
  }
}

variable "node_min_size" {
  type        = number
  description = "Fewest nodes in the node group."
  default     = 1

  validation {
    condition     = var.node_min_size >= 0
    error_message = "node_min_size must not be negative."
  }
}

variable "node_max_size" {
  type        = number
  description = "Most nodes in the node group."
  default     = 2

  validation {
    condition     = var.node_max_size >= 1
    error_message = "node_max_size must be at least 1."
  }
}

variable "node_desired_size" {
  type        = number
  description = "Nodes the node group starts with."
  default     = 1

  validation {
    condition     = var.node_desired_size >= 0
    error_message = "node_desired_size must not be negative."
  }
}

variable "node_disk_size_gb" {
  type        = number
  description = "Size of each node's encrypted root volume, in GiB."
  default     = 30

  validation {
    condition     = var.node_disk_size_gb >= 20
    error_message = "node_disk_size_gb must be at least 20."
  }
}

variable "log_retention_days" {
  type        = number
  description = "How long the control plane logs are kept in CloudWatch Logs, in days."
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "oidc_thumbprints" {
  type        = list(string)
  description = "SHA-1 thumbprints of the root CA of the cluster's OIDC issuer. IAM validates EKS issuers against its own trusted CAs, so this value is not used for trust; the default is the root CA of the EKS issuers."
  default     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]

  validation {
    condition     = alltrue([for t in var.oidc_thumbprints : can(regex("^[0-9a-f]{40}$", t))])
    error_message = "Every thumbprint is 40 lowercase hex digits."
  }
}

variable "driver_role_name" {
  type        = string
  description = "Name of the IAM role the driver's Kubernetes service account assumes (IRSA)."

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.driver_role_name))
    error_message = "driver_role_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "driver_namespace" {
  type        = string
  description = "Kubernetes namespace of the driver's service account (deploy/k8s)."
  default     = "movie-analytics"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.driver_namespace))
    error_message = "driver_namespace must be a valid Kubernetes namespace name."
  }
}

variable "driver_service_account" {
  type        = string
  description = "Name of the driver's Kubernetes service account (deploy/k8s)."
  default     = "emr-driver"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.driver_service_account))
    error_message = "driver_service_account must be a valid Kubernetes name."
  }
}

variable "driver_bucket_arns" {
  type        = list(string)
  description = "ARNs of the buckets the driver reads and writes (raw and staging)."

  validation {
    condition     = length(var.driver_bucket_arns) >= 1 && alltrue([for arn in var.driver_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", arn))])
    error_message = "driver_bucket_arns must be S3 bucket ARNs such as arn:aws:s3:::my-bucket."
  }
}

variable "driver_kms_key_arns" {
  type        = list(string)
  description = "ARNs of the KMS keys of those buckets."

  validation {
    condition     = alltrue([for arn in var.driver_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:", arn))])
    error_message = "driver_kms_key_arns must be KMS key ARNs."
  }
}

variable "emr_role_arns" {
  type        = list(string)
  description = "ARNs of the EMR service role and instance role, which the driver passes to RunJobFlow when it creates a cluster."

  validation {
    condition     = alltrue([for arn in var.emr_role_arns : can(regex("^arn:aws[a-z-]*:iam::", arn))])
    error_message = "emr_role_arns must be IAM role ARNs."
  }
}

variable "emr_cluster_tag_key" {
  type        = string
  description = "Tag key that scopes the driver's EMR permissions: it may only create clusters carrying this tag and only act on clusters that carry it."
  default     = "project"
}

variable "emr_cluster_tag_value" {
  type        = string
  description = "Value of that tag (the project name, as the driver tags its clusters)."

  validation {
    condition     = length(var.emr_cluster_tag_value) > 0
    error_message = "emr_cluster_tag_value must not be empty."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}

variable "create_autoscaling_service_linked_role" {
  type        = bool
  description = "Create the EC2 Auto Scaling service-linked role (AWSServiceRoleForAutoScaling) that the node volumes' KMS key policy names; set false in an account that already has it (`aws iam get-role --role-name AWSServiceRoleForAutoScaling`)."
  default     = true
}

variable "ecr_repository_name" {
  type        = string
  description = "ECR repository of the driver image (deploy/k8s/kustomization.yaml images.newName)."
  default     = "movie-analytics/emr-driver"

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.ecr_repository_name))
    error_message = "ecr_repository_name must be a valid ECR repository name such as movie-analytics/emr-driver."
  }
}

variable "ecr_keep_images" {
  type        = number
  description = "How many images the ECR repository keeps (older ones expire)."
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 1
    error_message = "ecr_keep_images must be at least 1."
  }
}

variable "driver_secret_arns" {
  type        = list(string)
  description = "Secrets Manager secrets the driver reads at run time for its database credentials (the RDS- and Redshift-managed admin secrets): secretsmanager:GetSecretValue on exactly these."
  default     = []

  validation {
    condition     = alltrue([for arn in var.driver_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:", arn))])
    error_message = "driver_secret_arns entries must be Secrets Manager secret ARNs."
  }
}

variable "driver_rds_db_user_arns" {
  type        = list(string)
  description = "RDS database users the driver logs in as with IAM authentication (arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>): rds-db:connect on exactly these. Empty: no IAM login to RDS."
  default     = []

  validation {
    condition     = alltrue([for arn in var.driver_rds_db_user_arns : can(regex("^arn:aws[a-z-]*:rds-db:[a-z0-9-]+:[0-9]{12}:dbuser:[A-Za-z0-9-]+/[A-Za-z_][A-Za-z0-9_$]*$", arn))])
    error_message = "driver_rds_db_user_arns entries must be rds-db dbuser ARNs naming one user (no wildcard)."
  }
}

variable "driver_redshift_dbname_arns" {
  type        = list(string)
  description = "Redshift databases the driver logs in to with GetClusterCredentialsWithIAM (arn:aws:redshift:<region>:<account>:dbname:<cluster>/<database>): redshift:GetClusterCredentialsWithIAM on exactly these. Empty: no IAM login to Redshift."
  default     = []

  validation {
    condition     = alltrue([for arn in var.driver_redshift_dbname_arns : can(regex("^arn:aws[a-z-]*:redshift:[a-z0-9-]+:[0-9]{12}:dbname:[a-z][a-z0-9-]*/[a-z_][a-z0-9_$]*$", arn))])
    error_message = "driver_redshift_dbname_arns entries must be Redshift dbname ARNs naming one cluster and database (no wildcard)."
  }
}

variable "driver_redshift_serverless_workgroup_arns" {
  type        = list(string)
  description = "Redshift Serverless workgroups the driver logs in to with GetCredentials (arn:aws:redshift-serverless:<region>:<account>:workgroup/<workgroup id>): redshift-serverless:GetCredentials on exactly these. Empty: no IAM login to a workgroup."
  default     = []

  validation {
    condition     = alltrue([for arn in var.driver_redshift_serverless_workgroup_arns : can(regex("^arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:[0-9]{12}:workgroup/[0-9a-f-]{36}$", arn))])
    error_message = "driver_redshift_serverless_workgroup_arns entries must be Redshift Serverless workgroup ARNs (workgroup/<workgroup id>, no wildcard)."
  }
}

variable "driver_secret_kms_key_arns" {
  type        = list(string)
  description = "KMS keys of those secrets: kms:Decrypt through Secrets Manager only."
  default     = []
}
