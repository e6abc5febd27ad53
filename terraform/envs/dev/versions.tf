terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # State stays local by default. For a team, keep it in S3 with locking: see README.md.
}

provider "aws" {
  region = var.region

  # Every resource carries these tags. The driver's IRSA role only acts on EMR clusters tagged
  # project = <var.project>, so the shared cluster gets it from here and the driver must set it
  # on the clusters it creates.
  default_tags {
    tags = local.tags
  }
}
