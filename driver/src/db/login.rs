//! How the driver logs in to a database: the password in the URL, a Secrets Manager secret, or
//! IAM database authentication (`source.auth`, `warehouse.auth`: docs/deploy-aws.md).
//!
//! A [`DbLogin`] is a URL without credentials plus where its credentials come from; the
//! credentials are made at every connection, never once at start: an RDS auth token lives 15
//! minutes and Redshift's temporary password as long as asked (15 minutes here), and a run's
//! warehouse load comes hours after its start. Every path puts the user and password into the
//! URL with [`crate::secrets::with_credentials`], and every message shows the URL through
//! [`crate::db::redact_url`]: a token or password never reaches a log line or an error.
//!
//! - **password**: the URL as given (its password, if any, is masked in messages).
//! - **secret**: `GetSecretValue` of the RDS- or Redshift-managed secret (user and password).
//! - **iam**, PostgreSQL (RDS): the user of the URL and, as password, an RDS auth token: a
//!   SigV4-presigned `rds-db:connect` request for that user, host and port, signed locally
//!   with `aws-sigv4` and the credentials of the driver's one AWS configuration (IRSA in EKS).
//! - **iam**, Redshift (provisioned): `GetClusterCredentialsWithIAM` for the cluster and
//!   database of the URL; Redshift maps the caller's IAM identity to the database user
//!   (`IAMR:<role name>` for a role) and returns it with a temporary password.
//! - **iam**, Redshift Serverless: `GetCredentials` for the workgroup (the first label of the
//!   workgroup endpoint `<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com`)
//!   and the database of the URL, asked in the endpoint's region; the same mapping of the IAM
//!   identity to `IAMR:<role name>` and a temporary password.
//!
//! IAM logins require `sslmode=verify-full`: the token or temporary password is a password,
//! and RDS refuses IAM logins without TLS anyway.

use crate::secrets::percent_encode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;

use crate::aws::AwsError;
use crate::clock::Clock;
use crate::config::{Config, DbAuth};
use crate::db::{redact_url, split_tls_settings, DbError, TlsMode};
use crate::error::{ExitCode, ExitStatus};
use crate::secrets::{fetch_credentials, with_credentials, DbCredentials, SecretError};

/// How long an RDS auth token is valid: RDS accepts at most 15 minutes.
pub const RDS_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// How long Redshift's temporary password is valid (its minimum, 900 s): it is used at once.
pub const REDSHIFT_CREDENTIALS_SECONDS: i32 = 900;

/// The signing name of RDS IAM authentication.
const RDS_SIGNING_NAME: &str = "rds-db";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{setting} = \"iam\" cannot use the database URL `{url}`: {problem}")]
    BadIamUrl { setting: &'static str, url: String, problem: String },
    #[error("IAM database authentication needs the AWS region of the database: set aws.region (or AWS_REGION)")]
    NoRegion,
    #[error(
        "IAM database authentication found no AWS credentials ({reason}); in EKS check the service account's \
         IRSA role annotation, elsewhere AWS_PROFILE / AWS_ACCESS_KEY_ID (`aws sts get-caller-identity`)"
    )]
    NoCredentials { reason: String },
    #[error("could not sign the RDS auth token: {reason} (please report this bug)")]
    Signing { reason: String },
    #[error(
        "Redshift GetClusterCredentialsWithIAM for cluster {cluster} returned no {field}; check that the \
         cluster and database exist and that the IAM identity may call it"
    )]
    IncompleteCredentials { cluster: String, field: &'static str },
    #[error(
        "Redshift Serverless GetCredentials for workgroup {workgroup} returned no {field}; check that the \
         workgroup and database exist and that the IAM identity may call it"
    )]
    IncompleteServerlessCredentials { workgroup: String, field: &'static str },
    #[error(
        "{source}. The driver's IAM role needs redshift-serverless:GetCredentials on the workgroup {workgroup} \
         (arn:aws:redshift-serverless:{region}:{account}:workgroup/<workgroup id>: `aws redshift-serverless \
         get-workgroup --workgroup-name {workgroup} --query workgroup.workgroupArn`); with Terraform set \
         redshift_serverless_workgroup_arn and database_auth.warehouse = \"iam\""
    )]
    ServerlessDenied { workgroup: String, account: String, region: String, source: Box<AwsError> },
}

impl ExitStatus for LoginError {
    fn exit_code(&self) -> ExitCode {
        match self {
            LoginError::Secret(e) => e.exit_code(),
            LoginError::Aws(e) => e.exit_code(),
            LoginError::NoCredentials { .. }
            | LoginError::IncompleteCredentials { .. }
            | LoginError::IncompleteServerlessCredentials { .. }
            | LoginError::ServerlessDenied { .. } => ExitCode::Aws,
            LoginError::Signing { .. } => ExitCode::Internal,
            LoginError::BadIamUrl { .. } | LoginError::NoRegion => ExitCode::BadInput,
        }
    }
}

/// Where a login's user and password come from, asked again at every connection.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// What it is, for logs and messages (never a secret): `Secrets Manager secret arn:...`.
    fn describe(&self) -> String;
    /// The user and password to log in with now.
    async fn credentials(&self) -> Result<DbCredentials, LoginError>;
}

/// A database URL and where its credentials come from.
#[derive(Clone)]
pub struct DbLogin {
    url: String,
    source: Option<Arc<dyn CredentialSource>>,
}

impl std::fmt::Debug for DbLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbLogin").field("url", &self.shown()).field("credentials", &self.method()).finish()
    }
}

impl PartialEq for DbLogin {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.method() == other.method()
    }
}

impl Eq for DbLogin {}

impl DbLogin {
    /// The URL as it is, with whatever password it carries.
    pub fn with_url(url: impl Into<String>) -> DbLogin {
        DbLogin { url: url.into(), source: None }
    }

    /// The URL (without a password) with credentials from `source` at every connection.
    pub fn with_source(url: impl Into<String>, source: Arc<dyn CredentialSource>) -> DbLogin {
        DbLogin { url: url.into(), source: Some(source) }
    }

    /// The URL, safe to print (password masked).
    pub fn shown(&self) -> String {
        redact_url(&self.url)
    }

    /// Where the credentials come from, for people: `the URL`, or the source's description.
    pub fn method(&self) -> String {
        match &self.source {
            None => "the URL".to_string(),
            Some(source) => source.describe(),
        }
    }

    /// The URL with the credentials to log in with now (never to be logged: [`Self::shown`]).
    pub async fn current_url(&self) -> Result<String, LoginError> {
        match &self.source {
            None => Ok(self.url.clone()),
            Some(source) => Ok(with_credentials(&self.url, &source.credentials().await?)?),
        }
    }

    /// Gets credentials once, so that a missing permission or secret fails a run at its start
    /// rather than hours later at the warehouse load; logs where they came from.
    pub async fn check(&self) -> Result<(), LoginError> {
        if let Some(source) = &self.source {
            let credentials = source.credentials().await?;
            tracing::info!(url = %self.shown(), user = %credentials.username, "database credentials from {}", source.describe());
        }
        Ok(())
    }

    /// Connects with fresh credentials.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, DbError> {
        let url = self.current_url().await.map_err(|e| DbError::Login(Box::new(e)))?;
        crate::db::connect(&url).await
    }
}

/// Which database of the configuration a login is for: the source (`[source]`, PostgreSQL)
/// or the warehouse (`[warehouse]`, PostgreSQL or Redshift by `warehouse.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    Source,
    Warehouse,
}

impl DbRole {
    fn auth_setting(self) -> &'static str {
        match self {
            DbRole::Source => "source.auth",
            DbRole::Warehouse => "warehouse.auth",
        }
    }
}

/// The login to `url` as the configuration says (`source.auth` / `warehouse.auth`), with the
/// AWS clients made from `sdk` (the backend's one AWS configuration) or, when the caller has
/// none (a local target), from the configuration's `[aws]` over the standard chain. Loads
/// nothing from AWS for the password path; the URL of an IAM login is checked here.
pub async fn login_for(
    role: DbRole,
    url: &str,
    config: &Config,
    sdk: Option<&SdkConfig>,
    clock: Arc<dyn Clock>,
) -> Result<DbLogin, LoginError> {
    let auth = match role {
        DbRole::Source => config.source_auth(),
        DbRole::Warehouse => config.warehouse_auth(),
    };
    if auth == DbAuth::Password {
        return Ok(DbLogin::with_url(url));
    }
    let loaded;
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => {
            loaded = crate::aws::sdk_config(&crate::aws::AwsSettings::from_config(config)).await;
            &loaded
        }
    };
    let redshift = role == DbRole::Warehouse && config.warehouse.kind == crate::config::WarehouseKind::Redshift;
    let source: Arc<dyn CredentialSource> = match auth {
        DbAuth::Password => unreachable!("returned above"),
        DbAuth::Secret(arn) => {
            Arc::new(SecretSource { client: aws_sdk_secretsmanager::Client::new(sdk), arn: arn.to_string() })
        }
        DbAuth::Iam if redshift => match redshift_iam_target(role.auth_setting(), url)? {
            RedshiftIamTarget::Cluster(target) => {
                Arc::new(RedshiftIam { client: aws_sdk_redshift::Client::new(sdk), target })
            }
            RedshiftIamTarget::Workgroup(target) => {
                // The workgroup lives in the region its endpoint names, whatever aws.region says.
                let conf = aws_sdk_redshiftserverless::config::Builder::from(sdk)
                    .region(aws_config::Region::new(target.region.clone()))
                    .build();
                Arc::new(RedshiftServerlessIam { client: aws_sdk_redshiftserverless::Client::from_conf(conf), target })
            }
        },
        DbAuth::Iam => {
            let target = rds_target(role.auth_setting(), url)?;
            let region = sdk.region().ok_or(LoginError::NoRegion)?.to_string();
            let provider = sdk
                .credentials_provider()
                .ok_or_else(|| LoginError::NoCredentials { reason: "no credentials provider configured".into() })?;
            Arc::new(RdsIamToken { provider, region, target, clock })
        }
    };
    Ok(DbLogin::with_source(url, source))
}

/// The host, port, user and database an IAM login needs from a URL (either form), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamTarget {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub dbname: Option<String>,
}

fn iam_target(setting: &'static str, url: &str, default_port: u16) -> Result<IamTarget, LoginError> {
    let bad = |problem: &str| LoginError::BadIamUrl { setting, url: redact_url(url), problem: problem.to_string() };
    let (rest, tls) = split_tls_settings(url).map_err(|e| bad(&e.to_string()))?;
    if tls.mode != TlsMode::VerifyFull {
        return Err(bad(
            "the token is a password and must only go to a verified server: add sslmode=verify-full (and, for RDS, \
             sslrootcert=<the RDS CA bundle>)",
        ));
    }
    let config: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| bad(&e.to_string()))?;
    if config.get_password().is_some() {
        return Err(bad("it has a password; leave it out, the driver makes one at every connection"));
    }
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
        [] => return Err(bad("it has no host")),
        _ => return Err(bad("it must name exactly one TCP host (the database's endpoint)")),
    };
    let port = match config.get_ports() {
        [] => default_port,
        [port] => *port,
        _ => return Err(bad("it must name at most one port")),
    };
    Ok(IamTarget {
        host,
        port,
        user: config.get_user().map(str::to_string),
        dbname: config.get_dbname().map(str::to_string),
    })
}

/// An RDS IAM login: the user comes from the URL (the PostgreSQL role granted `rds_iam`).
pub fn rds_target(setting: &'static str, url: &str) -> Result<IamTarget, LoginError> {
    let target = iam_target(setting, url, 5432)?;
    if target.user.is_none() {
        return Err(LoginError::BadIamUrl {
            setting,
            url: redact_url(url),
            problem:
                "it names no user: write postgres://<user>@<host>:5432/<db>?sslmode=verify-full with the database \
                      user that was granted rds_iam"
                    .into(),
        });
    }
    Ok(target)
}

/// Redshift's cluster and database from a URL whose host is the cluster endpoint
/// (`<cluster>.<id>.<region>.redshift.amazonaws.com`, Terraform output `redshift_endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedshiftTarget {
    pub cluster_identifier: String,
    pub dbname: String,
}

/// A Redshift Serverless workgroup and database from a URL whose host is the workgroup
/// endpoint (`<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerlessTarget {
    pub workgroup_name: String,
    pub account: String,
    pub region: String,
    pub dbname: String,
}

/// What an IAM login to Redshift asks credentials for: a cluster or a Serverless workgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedshiftIamTarget {
    Cluster(RedshiftTarget),
    Workgroup(ServerlessTarget),
}

/// The cluster or workgroup of a Redshift URL, by the form of its host.
pub fn redshift_iam_target(setting: &'static str, url: &str) -> Result<RedshiftIamTarget, LoginError> {
    let target = iam_target(setting, url, 5439)?;
    if target.host.to_ascii_lowercase().contains(".redshift-serverless.") {
        Ok(RedshiftIamTarget::Workgroup(serverless_target(setting, url)?))
    } else {
        Ok(RedshiftIamTarget::Cluster(redshift_target(setting, url)?))
    }
}

/// The checks both Redshift forms share: a database and no user in the URL.
fn redshift_dbname(setting: &'static str, url: &str, target: &IamTarget, output: &str) -> Result<String, LoginError> {
    let bad = |problem: String| LoginError::BadIamUrl { setting, url: redact_url(url), problem };
    let dbname =
        target.dbname.clone().ok_or_else(|| bad(format!("it names no database: add /<database> ({output})")))?;
    if target.user.is_some() {
        return Err(bad(
            "it names a user; leave it out: Redshift maps the IAM identity to the database user (IAMR:<role>)".into(),
        ));
    }
    Ok(dbname)
}

pub fn serverless_target(setting: &'static str, url: &str) -> Result<ServerlessTarget, LoginError> {
    let target = iam_target(setting, url, 5439)?;
    let bad = |problem: &str| LoginError::BadIamUrl { setting, url: redact_url(url), problem: problem.to_string() };
    let host = target.host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let suffix_ok = matches!(labels.get(3..), Some(["redshift-serverless", "amazonaws", "com"]))
        || matches!(labels.get(3..), Some(["redshift-serverless", "amazonaws", "com", "cn"]));
    let workgroup_ok = labels.first().is_some_and(|w| {
        (3..=64).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let account_ok = labels.get(1).is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    let region_ok = labels.get(2).is_some_and(|r| !r.is_empty());
    if !(suffix_ok && workgroup_ok && account_ok && region_ok) {
        return Err(bad(
            "its host must be the workgroup endpoint <workgroup>.<account>.<region>.redshift-serverless.amazonaws.com \
             (`aws redshift-serverless get-workgroup --workgroup-name <name> --query workgroup.endpoint.address`): the \
             workgroup name is read from it (VPC endpoints and custom domain names are not supported)",
        ));
    }
    let dbname = redshift_dbname(setting, url, &target, "the workgroup's database, e.g. dev")?;
    Ok(ServerlessTarget {
        workgroup_name: labels[0].to_string(),
        account: labels[1].to_string(),
        region: labels[2].to_string(),
        dbname,
    })
}

pub fn redshift_target(setting: &'static str, url: &str) -> Result<RedshiftTarget, LoginError> {
    let target = iam_target(setting, url, 5439)?;
    let bad = |problem: &str| LoginError::BadIamUrl { setting, url: redact_url(url), problem: problem.to_string() };
    let host = target.host.to_ascii_lowercase();
    let provisioned = host.ends_with(".redshift.amazonaws.com") || host.ends_with(".redshift.amazonaws.com.cn");
    let cluster = host.split('.').next().unwrap_or_default();
    if !provisioned || cluster.is_empty() {
        return Err(bad(
            "its host must be the cluster endpoint <cluster>.<id>.<region>.redshift.amazonaws.com (Terraform output \
             redshift_endpoint): the cluster identifier is read from it",
        ));
    }
    let dbname = redshift_dbname(setting, url, &target, "Terraform output redshift_database")?;
    Ok(RedshiftTarget { cluster_identifier: cluster.to_string(), dbname })
}

/// The RDS auth token of `user` at `host:port`: the `rds-db:connect` request
/// `https://host:port/?Action=connect&DBUser=user`, presigned with SigV4 (query parameters,
/// [`RDS_TOKEN_LIFETIME`]) for `region` at `time`, without its scheme. Pure: the same inputs
/// give the same token as botocore's `generate_db_auth_token` (tests check both).
pub fn rds_auth_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, LoginError> {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningParams, SigningSettings,
    };
    fn signing(e: impl std::fmt::Display) -> LoginError {
        LoginError::Signing { reason: e.to_string() }
    }
    let request_uri = format!("https://{host}:{port}/?Action=connect&DBUser={}", percent_encode(user));
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(RDS_TOKEN_LIFETIME);
    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.clone().into();
    let params: SigningParams = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(RDS_SIGNING_NAME)
        .time(time)
        .settings(settings)
        .build()
        .map_err(signing)?
        .into();
    // The request has no body, and RDS (as botocore) signs that empty payload's sha256 rather
    // than UNSIGNED-PAYLOAD: the canonical request's last line is e3b0c442...b855.
    let request =
        SignableRequest::new("GET", request_uri, std::iter::empty(), SignableBody::empty()).map_err(signing)?;
    let (instructions, _signature) = sign(request, &params).map_err(signing)?.into_parts();
    let mut query: Vec<(String, String)> =
        vec![("Action".into(), "connect".into()), ("DBUser".into(), user.to_string())];
    query.extend(instructions.params().iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // botocore's order (the session token after the signed headers, the signature last), so
    // the token is botocore's byte for byte; the signature itself does not depend on it.
    const ORDER: &[&str] = &[
        "Action",
        "DBUser",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ];
    query.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let encoded: Vec<String> =
        query.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    Ok(format!("{host}:{port}/?{}", encoded.join("&")))
}

/// The secret's user and password, read again at every connection (RDS and Redshift rotate it).
struct SecretSource {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

#[async_trait]
impl CredentialSource for SecretSource {
    fn describe(&self) -> String {
        format!("Secrets Manager secret {}", self.arn)
    }

    async fn credentials(&self) -> Result<DbCredentials, LoginError> {
        Ok(fetch_credentials(&self.client, &self.arn).await?)
    }
}

/// A fresh RDS auth token at every connection, signed with the current AWS credentials.
struct RdsIamToken {
    provider: aws_credential_types::provider::SharedCredentialsProvider,
    region: String,
    target: IamTarget,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl CredentialSource for RdsIamToken {
    fn describe(&self) -> String {
        format!("an RDS IAM auth token ({} in {})", self.target.user.as_deref().unwrap_or_default(), self.region)
    }

    async fn credentials(&self) -> Result<DbCredentials, LoginError> {
        let credentials = self.provider.provide_credentials().await.map_err(|e| LoginError::NoCredentials {
            reason: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
        })?;
        let user = self.target.user.clone().expect("rds_target requires a user");
        let time = SystemTime::from(self.clock.now());
        let token = rds_auth_token(&self.target.host, self.target.port, &user, &self.region, &credentials, time)?;
        Ok(DbCredentials { username: user, password: token })
    }
}

/// Redshift's temporary credentials for the caller's IAM identity, asked at every connection.
struct RedshiftIam {
    client: aws_sdk_redshift::Client,
    target: RedshiftTarget,
}

#[async_trait]
impl CredentialSource for RedshiftIam {
    fn describe(&self) -> String {
        format!(
            "Redshift GetClusterCredentialsWithIAM (cluster {}, database {})",
            self.target.cluster_identifier, self.target.dbname
        )
    }

    async fn credentials(&self) -> Result<DbCredentials, LoginError> {
        redshift_iam_credentials(&self.client, &self.target).await
    }
}

/// `GetClusterCredentialsWithIAM` for `target`: the database user Redshift maps the caller to
/// and its temporary password.
pub async fn redshift_iam_credentials(
    client: &aws_sdk_redshift::Client,
    target: &RedshiftTarget,
) -> Result<DbCredentials, LoginError> {
    let out = client
        .get_cluster_credentials_with_iam()
        .cluster_identifier(&target.cluster_identifier)
        .db_name(&target.dbname)
        .duration_seconds(REDSHIFT_CREDENTIALS_SECONDS)
        .send()
        .await
        .map_err(|e| AwsError::new("Redshift", "GetClusterCredentialsWithIAM", &e))?;
    let missing = |field| LoginError::IncompleteCredentials { cluster: target.cluster_identifier.clone(), field };
    let username = out.db_user().filter(|u| !u.is_empty()).ok_or_else(|| missing("DbUser"))?.to_string();
    let password = out.db_password().filter(|p| !p.is_empty()).ok_or_else(|| missing("DbPassword"))?.to_string();
    Ok(DbCredentials { username, password })
}

/// Redshift Serverless temporary credentials for the caller's IAM identity, at every connection.
struct RedshiftServerlessIam {
    client: aws_sdk_redshiftserverless::Client,
    target: ServerlessTarget,
}

#[async_trait]
impl CredentialSource for RedshiftServerlessIam {
    fn describe(&self) -> String {
        format!(
            "Redshift Serverless GetCredentials (workgroup {}, database {}, {})",
            self.target.workgroup_name, self.target.dbname, self.target.region
        )
    }

    async fn credentials(&self) -> Result<DbCredentials, LoginError> {
        redshift_serverless_credentials(&self.client, &self.target).await
    }
}

/// `GetCredentials` for the workgroup and database of `target`: the database user Redshift
/// Serverless maps the caller to and its temporary password. A refusal for lack of permission
/// names the permission and the workgroup.
pub async fn redshift_serverless_credentials(
    client: &aws_sdk_redshiftserverless::Client,
    target: &ServerlessTarget,
) -> Result<DbCredentials, LoginError> {
    let out = client
        .get_credentials()
        .workgroup_name(&target.workgroup_name)
        .db_name(&target.dbname)
        .duration_seconds(REDSHIFT_CREDENTIALS_SECONDS)
        .send()
        .await
        .map_err(|e| {
            let source = AwsError::new("Redshift Serverless", "GetCredentials", &e);
            if source.failure.hint == crate::aws::PERMISSION_HINT {
                LoginError::ServerlessDenied {
                    workgroup: target.workgroup_name.clone(),
                    account: target.account.clone(),
                    region: target.region.clone(),
                    source: Box::new(source),
                }
            } else {
                LoginError::Aws(source)
            }
        })?;
    let missing =
        |field| LoginError::IncompleteServerlessCredentials { workgroup: target.workgroup_name.clone(), field };
    let username = out.db_user().filter(|u| !u.is_empty()).ok_or_else(|| missing("dbUser"))?.to_string();
    let password = out.db_password().filter(|p| !p.is_empty()).ok_or_else(|| missing("dbPassword"))?.to_string();
    Ok(DbCredentials { username, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "db.example.us-east-1.rds.amazonaws.com";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// 2026-12-01T02:30:00Z.
    fn frozen() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_092_200)
    }

    #[test]
    fn the_rds_token_is_botocores_for_the_same_credentials_and_time() {
        // Expected tokens made by botocore 1.44.8 (`generate_db_auth_token`) with the same
        // credentials and time frozen (botocore.auth.get_current_datetime patched):
        //   .venv/bin/python driver/tests/fixtures/rds_token_botocore.py \
        //     db.example.us-east-1.rds.amazonaws.com 5432 movies_iam us-east-1 2026-12-01T02:30:00 [SESSION/TOKEN+x==]
        // (driver/tests/integration/db_login.rs runs that script on more cases.)
        let plain = Credentials::new("AKIDEXAMPLE", SECRET_KEY, None, None, "test");
        let token = rds_auth_token(HOST, 5432, "movies_iam", "us-east-1", &plain, frozen()).unwrap();
        assert_eq!(
            token,
            "db.example.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=movies_iam&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20261201%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20261201T023000Z\
             &X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=5a2ca9fdfe5b42630dbcafce9623ccb8e9caa058babc9445f01efee3c3f47fc5"
        );
        let session = Credentials::new("AKIDEXAMPLE", SECRET_KEY, Some("SESSION/TOKEN+x==".into()), None, "test");
        let token = rds_auth_token(HOST, 5432, "movies_iam", "us-east-1", &session, frozen()).unwrap();
        assert!(token.contains("&X-Amz-Security-Token=SESSION%2FTOKEN%2Bx%3D%3D&"), "{token}");
        assert!(
            token.ends_with("&X-Amz-Signature=d62ebbbd27a839c8c9052e688ee4c98597d45eb5976daaf6656619b08d3c9ae2"),
            "{token}"
        );
        // Another second, another token: the time is part of the signature.
        let later = rds_auth_token(HOST, 5432, "movies_iam", "us-east-1", &plain, frozen() + Duration::from_secs(1));
        assert_ne!(later.unwrap(), rds_auth_token(HOST, 5432, "movies_iam", "us-east-1", &plain, frozen()).unwrap());
    }

    #[test]
    fn an_iam_url_must_verify_the_server_and_carry_no_password() {
        let ok =
            rds_target("source.auth", &format!("postgres://movies_iam@{HOST}/movie_analytics?sslmode=verify-full"))
                .unwrap();
        assert_eq!((ok.host.as_str(), ok.port, ok.user.as_deref()), (HOST, 5432, Some("movies_iam")));
        let kv =
            rds_target("source.auth", &format!("host={HOST} port=5433 user=u dbname=d sslmode=verify-full")).unwrap();
        assert_eq!((kv.port, kv.user.as_deref()), (5433, Some("u")));
        for (url, problem) in [
            (format!("postgres://u@{HOST}/d?sslmode=require"), "sslmode=verify-full"),
            (format!("postgres://u@{HOST}/d"), "sslmode=verify-full"),
            (format!("postgres://u:hunter2@{HOST}/d?sslmode=verify-full"), "has a password"),
            (format!("postgres://{HOST}/d?sslmode=verify-full"), "names no user"),
        ] {
            let err = rds_target("source.auth", &url).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(problem) && text.contains("source.auth"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert_eq!(err.exit_code(), ExitCode::BadInput);
        }
    }

    #[test]
    fn the_redshift_cluster_and_database_come_from_the_endpoint_url() {
        let url = "postgres://movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com:5439/movie_analytics?sslmode=verify-full";
        assert_eq!(
            redshift_target("warehouse.auth", url).unwrap(),
            RedshiftTarget { cluster_identifier: "movie-analytics-dev".into(), dbname: "movie_analytics".into() }
        );
        for (url, problem) in [
            ("postgres://wh.example.com:5439/dev?sslmode=verify-full", "cluster endpoint"),
            (
                "postgres://wg.123456789012.us-east-1.redshift-serverless.amazonaws.com:5439/dev?sslmode=verify-full",
                "cluster endpoint",
            ),
            ("postgres://c.x.us-east-1.redshift.amazonaws.com:5439/dev?sslmode=require", "verify-full"),
            ("postgres://admin@c.x.us-east-1.redshift.amazonaws.com:5439/dev?sslmode=verify-full", "names a user"),
        ] {
            let err = redshift_target("warehouse.auth", url).unwrap_err();
            assert!(err.to_string().contains(problem), "{url}: {err}");
        }
    }

    #[test]
    fn the_serverless_workgroup_and_database_come_from_the_workgroup_endpoint() {
        let url = "postgres://movie-analytics.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dev?sslmode=verify-full";
        let expected = ServerlessTarget {
            workgroup_name: "movie-analytics".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            dbname: "dev".into(),
        };
        assert_eq!(redshift_iam_target("warehouse.auth", url).unwrap(), RedshiftIamTarget::Workgroup(expected));
        let cluster = "postgres://c.x.us-east-1.redshift.amazonaws.com:5439/dev?sslmode=verify-full";
        assert!(matches!(redshift_iam_target("warehouse.auth", cluster).unwrap(), RedshiftIamTarget::Cluster(_)));
        let china =
            "postgres://wg1.123456789012.cn-north-1.redshift-serverless.amazonaws.com.cn/dev?sslmode=verify-full";
        assert_eq!(serverless_target("warehouse.auth", china).unwrap().region, "cn-north-1");
        for (url, problem) in [
            (
                "postgres://wg.123456789012.us-east-1.redshift-serverless.amazonaws.com:5439/dev?sslmode=verify-full",
                "workgroup endpoint",
            ),
            (
                "postgres://wg1.1234.us-east-1.redshift-serverless.amazonaws.com:5439/dev?sslmode=verify-full",
                "workgroup endpoint",
            ),
            (
                "postgres://wg1.123456789012.redshift-serverless.amazonaws.com:5439/dev?sslmode=verify-full",
                "workgroup endpoint",
            ),
            (
                "postgres://wg1.123456789012.us-east-1.redshift-serverless.amazonaws.com:5439?sslmode=verify-full",
                "names no database",
            ),
            (
                "postgres://admin@wg1.123456789012.us-east-1.redshift-serverless.amazonaws.com/dev?sslmode=verify-full",
                "names a user",
            ),
            (
                "postgres://wg1.123456789012.us-east-1.redshift-serverless.amazonaws.com/dev?sslmode=require",
                "verify-full",
            ),
        ] {
            let err = redshift_iam_target("warehouse.auth", url).unwrap_err();
            assert!(err.to_string().contains(problem), "{url}: {err}");
            assert_eq!(err.exit_code(), ExitCode::BadInput);
        }
    }

    #[test]
    fn a_login_never_shows_its_password() {
        let login = DbLogin::with_url("postgres://u:hunter2@h/d");
        let text = format!("{login:?} {}", login.shown());
        assert!(!text.contains("hunter2") && text.contains("u:***@h"), "{text}");
    }
}
