//! Thin AWS plumbing: the SDK configuration over the standard chain, the EMR and S3 clients,
//! and one classifier of SDK errors that every AWS adapter reuses.
//!
//! Endpoint overrides: `aws_config`'s loader already resolves `AWS_ENDPOINT_URL` (and
//! `AWS_ENDPOINT_URL_<SERVICE>`, and `endpoint_url` in the profile) into the `SdkConfig`
//! (aws-config `default_provider/endpoint_url.rs`); the config key `aws.endpoint_url`, when
//! set, wins over those, as an explicit `endpoint_url` on the loader does.

use std::collections::HashMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::{non_empty, Config};
use crate::error::{ExitCode, ExitStatus};

/// What the AWS layer reads from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

impl AwsSettings {
    pub fn from_config(config: &Config) -> Self {
        AwsSettings {
            region: non_empty(&config.aws.region).map(str::to_string),
            profile: non_empty(&config.aws.profile).map(str::to_string),
            endpoint_url: config.endpoint_url().map(str::to_string),
        }
    }
}

/// The SDK configuration over the standard chain (env, profiles, SSO, instance roles), with
/// the region, profile and endpoint from the config when they are set.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// True when requests go to an overridden endpoint (moto, LocalStack, a VPC endpoint...).
pub fn endpoint_overridden(sdk: &SdkConfig) -> bool {
    sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}

pub fn emr_client(sdk: &SdkConfig) -> aws_sdk_emr::Client {
    aws_sdk_emr::Client::new(sdk)
}

/// The S3 client configuration: path-style addressing when the endpoint is overridden, since
/// moto and LocalStack do not serve `<bucket>.<host>` names.
pub fn s3_config_builder(sdk: &SdkConfig) -> aws_sdk_s3::config::Builder {
    let builder = aws_sdk_s3::config::Builder::from(sdk);
    if endpoint_overridden(sdk) {
        builder.force_path_style(true)
    } else {
        builder
    }
}

pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config_builder(sdk).build())
}

/// An SDK error, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The service's error code (`ThrottlingException`, `AccessDenied`...), when it sent one.
    pub code: Option<String>,
    /// HTTP status of the response, when there was one.
    pub status: Option<u16>,
    /// The error and its causes on one line.
    pub message: String,
    /// Worth retrying: throttling, 5xx, timeouts, connection failures.
    pub transient: bool,
    /// How to fix it, when the error says (starts with "; " so it appends to a message).
    pub hint: String,
}

/// Error codes AWS services use for throttling and transient server trouble.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "MissingAuthenticationToken",
    "InvalidSignatureException",
    "IncompleteSignature",
];

const PERMISSION_CODES: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled"];

const CREDENTIALS_HINT: &str =
    "; check the AWS credentials: AWS_PROFILE / AWS_ACCESS_KEY_ID, run `aws sso login` if the session expired, and that the identity is the one you expect (`aws sts get-caller-identity`)";
pub const PERMISSION_HINT: &str =
    "; the credentials work but lack a permission: check the driver role's IAM policy (terraform/modules/eks, `aws_iam_role_policy.driver`; for a person, their own role) for this action and resource";
const ENDPOINT_HINT: &str =
    "; could not reach the AWS endpoint: check the network, aws.region, and aws.endpoint_url / AWS_ENDPOINT_URL if you use LocalStack or moto";
const BUCKET_HINT: &str =
    "; check buckets.raw / buckets.staging and that terraform created the bucket in this account and region";

/// True for the codes AWS services use when they throttle a caller.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
    )
}

/// Classifies an error code and HTTP status (pure: the part of [`classify`] that tests pin).
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> (bool, &'static str) {
    if let Some(code) = code {
        if TRANSIENT_CODES.contains(&code) {
            return (true, "");
        }
        if CREDENTIAL_CODES.contains(&code) {
            return (false, CREDENTIALS_HINT);
        }
        if PERMISSION_CODES.contains(&code) {
            return (false, PERMISSION_HINT);
        }
        if code == "NoSuchBucket" {
            return (false, BUCKET_HINT);
        }
    }
    match status {
        Some(429) => (true, ""),
        Some(s) if s >= 500 => (true, ""),
        Some(403) => (false, PERMISSION_HINT),
        _ => (false, ""),
    }
}

/// Classifies any SDK error into transient or permanent, with a hint for the usual causes.
pub fn classify<E>(error: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(error).to_string();
    let lower = message.to_ascii_lowercase();
    // Client-side identity failures: no provider found anything (NoIdentityResolver), the
    // chain failed to load credentials, or an SSO token expired.
    let credentials_missing = lower.contains("credential")
        || lower.contains("identity")
        || lower.contains("sso session")
        || lower.contains("sso token")
        || lower.contains("token has expired");
    match error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().map(str::to_string);
            let status = Some(context.raw().status().as_u16());
            let (transient, hint) = classify_code(code.as_deref(), status);
            AwsFailure { code, status, message, transient, hint: hint.to_string() }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            AwsFailure { code: None, status: None, message, transient: true, hint: String::new() }
        }
        SdkError::DispatchFailure(failure) => {
            if credentials_missing {
                AwsFailure { code: None, status: None, message, transient: false, hint: CREDENTIALS_HINT.to_string() }
            } else {
                // Connection refused or reset, DNS: transient, but say where we tried to go.
                let transient = failure.is_io() || failure.is_timeout();
                AwsFailure { code: None, status: None, message, transient, hint: ENDPOINT_HINT.to_string() }
            }
        }
        _ => {
            let hint = if credentials_missing { CREDENTIALS_HINT } else { "" };
            AwsFailure { code: None, status: None, message, transient: false, hint: hint.to_string() }
        }
    }
}

/// A failed AWS call (EMR and others), classified.
#[derive(Debug, Clone, thiserror::Error)]
#[error("AWS {service} {operation} failed: {}{}", .failure.message, .failure.hint)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub failure: AwsFailure,
}

impl AwsError {
    pub fn new<E>(service: &'static str, operation: &'static str, error: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError { service, operation, failure: classify(error) }
    }

    pub fn is_transient(&self) -> bool {
        self.failure.transient
    }
}

impl ExitStatus for AwsError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Aws
    }
}

/// The EMR tags of a cluster as a map.
pub fn tag_map(tags: &[aws_sdk_emr::types::Tag]) -> HashMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_hint_names_the_policy_terraform_really_has() {
        // The hint sends people to a file and a resource: both must exist (it once named a
        // module that never did).
        let eks = concat!(env!("CARGO_MANIFEST_DIR"), "/../terraform/modules/eks/main.tf");
        let main_tf = std::fs::read_to_string(eks).expect("terraform/modules/eks/main.tf");
        assert!(PERMISSION_HINT.contains("terraform/modules/eks, `aws_iam_role_policy.driver`"));
        assert!(main_tf.contains(r#"resource "aws_iam_role_policy" "driver""#));
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        assert_eq!(classify_code(Some("ThrottlingException"), Some(400)), (true, ""));
        assert_eq!(classify_code(Some("SlowDown"), Some(503)), (true, ""));
        assert!(classify_code(None, Some(500)).0);
        assert!(classify_code(None, Some(429)).0);
    }

    #[test]
    fn credential_and_permission_errors_are_permanent_with_a_hint() {
        let (transient, hint) = classify_code(Some("ExpiredToken"), Some(400));
        assert!(!transient && hint.contains("aws sso login"));
        let (transient, hint) = classify_code(Some("AccessDenied"), Some(403));
        assert!(!transient && hint.contains("IAM policy"));
        let (transient, hint) = classify_code(Some("ValidationException"), Some(400));
        assert!(!transient && hint.is_empty());
    }
}
