//! Database credentials that rotate: the password (and user) of a connection taken from AWS
//! Secrets Manager at run time, in the format RDS and Redshift use for the secrets they
//! manage (`manage_master_user_password` / `manage_master_password` in terraform/):
//!
//! ```json
//! {"username": "movies_admin", "password": "...", "engine": "postgres", "host": "...", "port": 5432, "dbname": "..."}
//! ```
//!
//! Only `username` and `password` are read; host, port and database stay those of the
//! configured URL. The secret's value is never logged, printed or put in an error: errors
//! name the secret's ARN and what is wrong with its shape, never its content.

use serde::Deserialize;

use crate::aws::AwsError;
use crate::error::{ExitCode, ExitStatus};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "the secret {arn} {problem}; it must be a JSON object with \"username\" and \"password\" (the format of the \
         secrets RDS and Redshift manage): check the ARN (Terraform outputs rds_admin_secret_arn / \
         redshift_admin_secret_arn)"
    )]
    BadSecret { arn: String, problem: String },
    #[error("the database URL `{url}` cannot take credentials ({reason}); write it as postgres://host:port/dbname?sslmode=verify-full")]
    BadUrl { url: String, reason: String },
}

impl ExitStatus for SecretError {
    fn exit_code(&self) -> ExitCode {
        match self {
            SecretError::Aws(e) => e.exit_code(),
            SecretError::BadSecret { .. } | SecretError::BadUrl { .. } => ExitCode::BadInput,
        }
    }
}

/// The two fields the driver uses. `Debug` is written by hand so that the password never
/// appears in a log line or a panic message.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DbCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCredentials").field("username", &self.username).field("password", &"***").finish()
    }
}

/// Parses the secret string of an RDS- or Redshift-managed secret.
pub fn parse_secret(arn: &str, secret: &str) -> Result<DbCredentials, SecretError> {
    let bad = |problem: &str| SecretError::BadSecret { arn: arn.to_string(), problem: problem.to_string() };
    let value: serde_json::Value = serde_json::from_str(secret).map_err(|_| bad("is not JSON"))?;
    let object = value.as_object().ok_or_else(|| bad("is not a JSON object"))?;
    let field = |name: &str| match object.get(name) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(bad(&format!("has a \"{name}\" that is not a non-empty string"))),
        None => Err(bad(&format!("has no \"{name}\""))),
    };
    Ok(DbCredentials { username: field("username")?, password: field("password")? })
}

/// `url` with the user and password of `credentials`: a URL
/// (`postgres://host:5439/dev?sslmode=verify-full`) gets them in its authority, key=value
/// settings get `user=` and `password=` pairs. A user already in the URL is replaced: the
/// secret's user is the one its password belongs to.
pub fn with_credentials(url: &str, credentials: &DbCredentials) -> Result<String, SecretError> {
    let bad = |reason: &str| SecretError::BadUrl { url: crate::db::redact_url(url), reason: reason.to_string() };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.password().is_some() {
            return Err(bad("it already has a password; leave it out when the password comes from a secret"));
        }
        // Percent-encoded here: `set_password` leaves `%` as it is, and the client decodes the
        // URL's user info, so a password holding `%2F` (an RDS auth token does) would arrive as `/`.
        parsed.set_username(&percent_encode(&credentials.username)).map_err(|()| bad("it has no host"))?;
        parsed.set_password(Some(&percent_encode(&credentials.password))).map_err(|()| bad("it has no host"))?;
        return Ok(parsed.to_string());
    }
    if url.split_whitespace().any(|t| t.starts_with("password=")) {
        return Err(bad("it already has a password; leave it out when the password comes from a secret"));
    }
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let kept: Vec<&str> = url.split_whitespace().filter(|t| !t.starts_with("user=")).collect();
    Ok(format!("{} user={} password={}", kept.join(" "), quote(&credentials.username), quote(&credentials.password)))
}

/// Every byte but the unreserved characters (A-Z a-z 0-9 - . _ ~) as `%XX`: what a URL's user
/// info needs for the client to decode the value back exactly; also SigV4's URI encoding (the
/// RDS auth token's query, db/login.rs).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads the secret `arn` with `GetSecretValue`.
pub async fn fetch_credentials(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<DbCredentials, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| AwsError::new("Secrets Manager", "GetSecretValue", &e))?;
    let secret = out.secret_string().ok_or_else(|| SecretError::BadSecret {
        arn: arn.to_string(),
        problem: "has no SecretString (a binary secret)".into(),
    })?;
    parse_secret(arn, secret)
}

/// `url` with the credentials of the secret `arn` when one is configured, else `url` as it is.
pub async fn resolve_url(
    client: &aws_sdk_secretsmanager::Client,
    url: &str,
    arn: Option<&str>,
) -> Result<String, SecretError> {
    match arn {
        None => Ok(url.to_string()),
        Some(arn) => {
            let credentials = fetch_credentials(client, arn).await?;
            tracing::info!(secret = arn, user = %credentials.username, "database credentials from Secrets Manager");
            with_credentials(url, &credentials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-1-AbCdEf";

    fn creds() -> DbCredentials {
        DbCredentials { username: "movies_admin".into(), password: "p@ss:w/rd'x".into() }
    }

    #[test]
    fn reads_the_managed_secret_format() {
        let secret =
            r#"{"username":"movies_admin","password":"p@ss:w/rd'x","engine":"postgres","host":"h","port":5432}"#;
        assert_eq!(parse_secret(ARN, secret).unwrap(), creds());
    }

    #[test]
    fn a_bad_secret_names_the_arn_and_never_the_content() {
        for (secret, problem) in [
            ("hunter2-not-json", "is not JSON"),
            (r#"["hunter2-in-a-list"]"#, "is not a JSON object"),
            (r#"{"username":"u"}"#, "has no \"password\""),
            (r#"{"username":"u","password":""}"#, "not a non-empty string"),
        ] {
            let err = parse_secret(ARN, secret).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains(ARN) && text.contains(problem), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert_eq!(err.exit_code(), ExitCode::BadInput);
        }
        assert!(!format!("{:?}", creds()).contains("p@ss"));
    }

    #[test]
    fn a_password_with_percent_escapes_reaches_the_client_unchanged() {
        // An RDS auth token holds `%2F` and `%3D`; decoded once by the client it must still be
        // the token.
        let token = "host:5432/?Action=connect&X-Amz-Credential=AKID%2F20261201&X-Amz-Security-Token=a%2B%3D";
        let creds = DbCredentials { username: "emr_driver".into(), password: token.into() };
        let url = with_credentials("postgres://db.example:5432/movies?sslmode=verify-full", &creds).unwrap();
        let (rest, _) = crate::db::split_tls_settings(&url).unwrap();
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(token.as_bytes()));
    }

    #[test]
    fn credentials_go_into_both_url_forms() {
        let url = with_credentials("postgres://wh.example:5439/dev?sslmode=verify-full", &creds()).unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.username(), "movies_admin");
        let password = percent_decode(parsed.password().unwrap());
        assert_eq!(password, "p@ss:w/rd'x");
        assert_eq!(parsed.host_str(), Some("wh.example"));
        assert_eq!(parsed.query(), Some("sslmode=verify-full"));
        // tokio-postgres reads the same user and password back (after the driver takes the
        // TLS settings out, as it does before connecting).
        let (rest, _) = crate::db::split_tls_settings(&url).unwrap();
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_user(), Some("movies_admin"));
        assert_eq!(config.get_password(), Some("p@ss:w/rd'x".as_bytes()));

        let kv = with_credentials("host=wh.example port=5439 dbname=dev user=old", &creds()).unwrap();
        let config: tokio_postgres::Config = kv.parse().unwrap();
        assert_eq!(config.get_user(), Some("movies_admin"));
        assert_eq!(config.get_password(), Some("p@ss:w/rd'x".as_bytes()));

        let err = with_credentials("postgres://u:old@h/dev", &creds()).unwrap_err();
        assert!(err.to_string().contains("already has a password") && !err.to_string().contains("old@"), "{err}");
    }

    fn percent_decode(text: &str) -> String {
        url::form_urlencoded::parse(format!("x={text}").as_bytes()).next().unwrap().1.into_owned()
    }
}
