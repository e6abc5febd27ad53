//! S3 implementation of [`super::ObjectStore`] (thin adapter over `aws-sdk-s3`).
