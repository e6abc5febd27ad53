//! PostgreSQL / Redshift: `load-user-purchase`, the `user_purchase` export, the warehouse
//! load and the analysts' report. See docs/database.md.
//!
//! Everything that moves data streams it: files are parsed as they are read and fed to
//! `COPY ... FROM STDIN` in chunks; exports read `COPY ... TO STDOUT` straight into the
//! object store. Nothing holds a whole file in memory.

pub mod csv_out;
pub mod embedded;
pub mod export;
pub mod login;
pub mod redshift;
pub mod report;
pub mod target;
pub mod user_purchase;
pub mod warehouse;

use std::path::PathBuf;

use crate::error::{ExitCode, ExitStatus};
use crate::store::StoreError;

/// Where a connection URL comes from when no flag gives one.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database URL `{url}` is not valid ({reason}); write it as postgres://user:password@host:5432/dbname?sslmode=require or as key=value pairs")]
    BadUrl { url: String, reason: String },
    #[error("could not connect to {url}: {reason}; is PostgreSQL running on that host and port? (locally: `pg_ctlcluster 15 main start` or `sudo service postgresql start`), and are the user, password and database right?")]
    Connect {
        url: String,
        reason: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("could not set up TLS for {url}: {reason}; check sslmode and sslrootcert (a PEM file of the server's CA, e.g. the RDS / Redshift CA bundle)")]
    Tls { url: String, reason: String },
    #[error("the database refused to {action}: {reason}")]
    Query {
        action: String,
        reason: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{source_name}: column `{column}` is missing from the header (found: {found}); the file must have the UCI header InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country")]
    MissingColumn { source_name: String, column: String, found: String },
    #[error("{source_name}: the file is empty (no header line); check that the right file was given")]
    EmptyFile { source_name: String },
    #[error("{source_name}: {count} row(s) could not be loaded, nothing was changed; first: {first}; pass --skip-bad-rows to load the good rows and report the bad ones")]
    BadRows { source_name: String, count: u64, first: String },
    #[error("{source_name} has no loadable row ({bad_rows} bad); an empty or all-bad file never replaces the table: check the file")]
    NoRows { source_name: String, bad_rows: u64 },
    #[error("internal error: {problem}; nothing was changed (please report this bug)")]
    Invariant { problem: String },
    #[error("could not read {source_name}: {source}")]
    Read {
        source_name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{name}` is not a plain SQL identifier; use lower-case letters, digits and underscores, starting with a letter")]
    BadIdentifier { name: String },
    #[error("no part files under {folder}; did the job that writes `{table}` run for this date? nothing was loaded")]
    NoPartFiles { folder: String, table: String },
    #[error("{folder} has part files but no _SUCCESS marker: the job writing `{table}` crashed or is still running, so its output is incomplete; nothing was loaded (rerun the date)")]
    IncompleteWrite { folder: String, table: String },
    #[error("{file}: {problem}; the warehouse was not changed")]
    BadLoadFile { file: String, problem: String },
    #[error("{table}: {problem}; dimension ids never change, so this load was refused and nothing was changed (rebuild the dimension from the warehouse's ids)")]
    DimIdConflict { table: String, problem: String },
    #[error("{problem}; the warehouse was not changed")]
    BadFact { problem: String },
    #[error("`{arn}` is not an IAM role ARN; write it as arn:aws:iam::<12-digit account>:role/<name>")]
    BadRoleArn { arn: String },
    #[error("schema `{schema}` has no warehouse tables; load a run first with `emr-driver load-warehouse`, or pass the right --schema")]
    NoWarehouse { schema: String },
    #[error("the five questions over Spectrum need the Redshift warehouse (its external schema and dimension tables): pass --database-url (or DATABASE_URL) with the warehouse's URL, or drop --over spectrum to read the embedded warehouse")]
    SpectrumNeedsRedshift,
    #[error("the embedded warehouse {path} could not {action}: {reason}")]
    Sqlite { path: PathBuf, action: String, reason: String },
    #[error("no embedded warehouse at {path}: a local run without --database-url makes it (./scripts/run-local.sh), or point this command at PostgreSQL with --database-url")]
    NoEmbeddedWarehouse { path: PathBuf },
    /// The credentials of a login could not be had (secret, IAM token, Redshift credentials).
    #[error(transparent)]
    Login(Box<login::LoginError>),
    #[error("could not read the TLS root certificate {path}: {source}")]
    RootCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExitStatus for DbError {
    fn exit_code(&self) -> ExitCode {
        match self {
            DbError::Connect { .. } | DbError::Query { .. } | DbError::Tls { .. } | DbError::Sqlite { .. } => {
                ExitCode::Database
            }
            DbError::Store(e) => e.exit_code(),
            DbError::Login(e) => e.exit_code(),
            DbError::Write { .. } | DbError::Invariant { .. } => ExitCode::Internal,
            DbError::BadUrl { .. }
            | DbError::MissingColumn { .. }
            | DbError::EmptyFile { .. }
            | DbError::BadRows { .. }
            | DbError::Read { .. }
            | DbError::BadIdentifier { .. }
            | DbError::NoPartFiles { .. }
            | DbError::IncompleteWrite { .. }
            | DbError::BadLoadFile { .. }
            | DbError::DimIdConflict { .. }
            | DbError::BadFact { .. }
            | DbError::BadRoleArn { .. }
            | DbError::NoWarehouse { .. }
            | DbError::SpectrumNeedsRedshift
            | DbError::NoEmbeddedWarehouse { .. }
            | DbError::NoRows { .. }
            | DbError::RootCert { .. } => ExitCode::BadInput,
        }
    }
}

/// Wraps a server error with what we were doing.
pub(crate) fn query_err(action: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DbError {
    let action = action.into();
    move |source| DbError::Query { action, reason: describe(&source), source }
}

fn connect_err(url: &str) -> impl FnOnce(tokio_postgres::Error) -> DbError + '_ {
    move |source| DbError::Connect { url: url.to_string(), reason: describe(&source), source }
}

/// What the server said (message, detail, hint, where), or the client-side cause: the
/// `Display` of `tokio_postgres::Error` alone is often just "db error".
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        for (label, part) in [("detail", db.detail()), ("hint", db.hint()), ("at", db.where_())] {
            if let Some(part) = part {
                text.push_str(&format!(" ({label}: {part})"));
            }
        }
        return text;
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Checks that `name` is safe to splice into SQL as an identifier (schemas, tables).
pub fn check_identifier(name: &str) -> Result<&str, DbError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(name)
    } else {
        Err(DbError::BadIdentifier { name: name.to_string() })
    }
}

/// The URL with its password replaced by `***`, for logs and errors. Works for
/// `postgres://user:pw@host/db` URLs and for `key=value` conninfo strings.
pub fn redact_url(url: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return match url::Url::parse(url) {
            Ok(mut parsed) => {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("***"));
                }
                let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
                if pairs.iter().any(|(k, _)| k == "password") {
                    let mut query = parsed.query_pairs_mut();
                    query.clear();
                    for (k, v) in &pairs {
                        query.append_pair(k, if k == "password" { "***" } else { v });
                    }
                }
                parsed.to_string()
            }
            // Unparseable: keep only what cannot hold the password.
            Err(_) => match url.rsplit_once('@') {
                Some((_, host)) => format!("postgres://***@{host}"),
                None => "postgres://(unparseable URL)".to_string(),
            },
        };
    }
    let pattern = regex::Regex::new(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)").expect("valid regex");
    pattern.replace_all(url, "${1}***").into_owned()
}

/// What TLS the connection asks for, with libpq's meaning of each `sslmode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// Encrypt; verify nothing unless a root certificate is given (libpq's `require`).
    Require,
    /// Encrypt and verify the certificate chain, not the host name.
    VerifyCa,
    /// Encrypt and verify the chain and the host name.
    VerifyFull,
}

/// Splits `sslmode` and `sslrootcert` off the connection string (tokio-postgres knows only
/// disable / prefer / require and no root certificate), returning the rest for
/// tokio-postgres to parse.
pub fn split_tls_settings(url: &str) -> Result<(String, TlsSettings), DbError> {
    let bad = |reason: String| DbError::BadUrl { url: redact_url(url), reason };
    let mut mode = None;
    let mut root_cert = None;
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mut kept = Vec::new();
        for (key, value) in parsed.query_pairs().into_owned() {
            match key.as_str() {
                "sslmode" => mode = Some(value),
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                _ => kept.push((key, value)),
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        parsed.to_string()
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", value)) => mode = Some(value.trim_matches('\'').to_string()),
                Some(("sslrootcert", value)) => root_cert = Some(PathBuf::from(value.trim_matches('\''))),
                _ => kept.push(token),
            }
        }
        kept.join(" ")
    };
    let mode = match mode.as_deref() {
        None | Some("disable") | Some("allow") | Some("prefer") => TlsMode::Disable,
        Some("require") => TlsMode::Require,
        Some("verify-ca") => TlsMode::VerifyCa,
        Some("verify-full") => TlsMode::VerifyFull,
        Some(other) => {
            return Err(bad(format!("unknown sslmode `{other}` (use disable, require, verify-ca or verify-full)")))
        }
    };
    Ok((rest, TlsSettings { mode, root_cert }))
}

/// Connects to PostgreSQL or Redshift. TLS (native-tls) when `sslmode` is `require`,
/// `verify-ca` or `verify-full`; plain TCP otherwise. The connection task runs in the
/// background; errors and logs show the URL with its password redacted.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let shown = redact_url(url);
    let (rest, tls) = split_tls_settings(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::BadUrl { url: shown.clone(), reason: e.to_string() })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(15));
    }
    tracing::debug!(url = %shown, tls = ?tls.mode, "connecting to the database");
    let client = if tls.mode == TlsMode::Disable {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(connect_err(&shown))?;
        spawn_connection(connection, shown);
        client
    } else {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
        let connector = tls_connector(&tls, &shown)?;
        let (client, connection) = config.connect(connector).await.map_err(connect_err(&shown))?;
        spawn_connection(connection, shown);
        client
    };
    Ok(client)
}

fn spawn_connection<F>(connection: F, shown: String)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(url = %shown, "database connection ended: {e}");
        }
    });
}

/// Every certificate of a PEM file: a bundle such as the AWS RDS global bundle holds one CA
/// per region, and the server's may be any of them.
fn root_certificates(path: &std::path::Path, pem: &[u8], shown: &str) -> Result<Vec<native_tls::Certificate>, DbError> {
    let certs = native_tls::Certificate::stack_from_pem(pem)
        .map_err(|e| DbError::Tls { url: shown.to_string(), reason: format!("{}: {e}", path.display()) })?;
    if certs.is_empty() {
        return Err(DbError::Tls {
            url: shown.to_string(),
            reason: format!("{}: no PEM certificate in the file", path.display()),
        });
    }
    Ok(certs)
}

fn tls_connector(tls: &TlsSettings, shown: &str) -> Result<postgres_native_tls::MakeTlsConnector, DbError> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = &tls.root_cert {
        let pem = std::fs::read(path).map_err(|source| DbError::RootCert { path: path.clone(), source })?;
        for cert in root_certificates(path, &pem, shown)? {
            builder.add_root_certificate(cert);
        }
    }
    match tls.mode {
        // libpq: `require` with a root certificate behaves like verify-ca.
        TlsMode::Require if tls.root_cert.is_none() => {
            builder.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
        }
        TlsMode::Require | TlsMode::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        TlsMode::VerifyFull | TlsMode::Disable => {}
    }
    let connector = builder.build().map_err(|e| DbError::Tls { url: shown.to_string(), reason: e.to_string() })?;
    Ok(postgres_native_tls::MakeTlsConnector::new(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_gives_every_certificate() {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/two-test-cas.pem"));
        let pem = std::fs::read(path).unwrap();
        assert_eq!(root_certificates(path, &pem, "db").unwrap().len(), 2);
        let tls = TlsSettings { mode: TlsMode::VerifyFull, root_cert: Some(path.to_path_buf()) };
        assert!(tls_connector(&tls, "db").is_ok());
        let Err(err) = root_certificates(path, b"not a certificate", "db") else {
            panic!("a non-PEM file was accepted")
        };
        assert!(matches!(err, DbError::Tls { .. }) && err.to_string().contains("two-test-cas.pem"), "{err}");
    }

    #[test]
    fn redacts_passwords_in_urls_and_conninfo() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.example.com:5432/movies?sslmode=require"),
            "postgres://app:***@db.example.com:5432/movies?sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@localhost/db"), "postgres://app@localhost/db");
        let redacted = redact_url("postgresql://h/db?user=u&password=hunter2");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("password=***"), "{redacted}");
        assert_eq!(redact_url("host=h user=u password=hunter2 dbname=d"), "host=h user=u password=*** dbname=d");
        assert_eq!(redact_url("host=h password='a b\\'c' dbname=d"), "host=h password=*** dbname=d");
    }

    #[test]
    fn splits_tls_settings_off_the_url() {
        let (rest, tls) =
            split_tls_settings("postgres://u:p@h:5439/dev?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x")
                .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5439/dev?application_name=x");
        assert_eq!(tls, TlsSettings { mode: TlsMode::VerifyFull, root_cert: Some(PathBuf::from("/ca.pem")) });
        let (rest, tls) = split_tls_settings("host=h sslmode=require user=u").unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(tls.mode, TlsMode::Require);
        assert_eq!(split_tls_settings("postgres://h/d").unwrap().1.mode, TlsMode::Disable);
    }

    #[test]
    fn rejects_an_unknown_sslmode_without_showing_the_password() {
        let err = split_tls_settings("postgres://u:hunter2@h/d?sslmode=maybe").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown sslmode `maybe`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn connection_errors_hide_the_password_and_say_how_to_fix() {
        // Port 1 on loopback: nothing listens there.
        let err = connect("postgres://u:hunter2@127.0.0.1:1/d").await.unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("is PostgreSQL running"), "{text}");
        assert_eq!(err.exit_code(), ExitCode::Database);
    }

    #[test]
    fn identifiers_are_checked_before_they_reach_sql() {
        assert!(check_identifier("warehouse_1").is_ok());
        for bad in ["", "1abc", "Public", "a;drop table x", "a b", "a\"b"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }
}
