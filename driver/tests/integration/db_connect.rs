//! Connections to the real PostgreSQL on 127.0.0.1:5432: plain, TLS (`sslmode=require`), and a
//! verified TLS connection refused for an untrusted (self-signed) server certificate.

use crate::db_common;

use emr_driver::db::{connect, DbError};
use emr_driver::error::{ExitCode, ExitStatus};

async fn uses_tls(client: &tokio_postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

async fn server_has_tls() -> bool {
    let client = connect(&format!("{}/postgres", db_common::server_url())).await.unwrap();
    let setting: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    setting == "on"
}

#[tokio::test]
async fn sslmode_decides_whether_the_connection_is_encrypted() {
    let base = format!("{}/postgres", db_common::server_url());
    let plain = connect(&base).await.unwrap();
    assert!(!uses_tls(&plain).await);
    if !server_has_tls().await {
        eprintln!("the test server has ssl = off: only the plain connection was checked");
        return;
    }
    let encrypted = connect(&format!("{base}?sslmode=require")).await.unwrap();
    assert!(uses_tls(&encrypted).await);
}

#[tokio::test]
async fn verify_full_refuses_an_untrusted_certificate_without_showing_the_password() {
    if !server_has_tls().await {
        eprintln!("the test server has ssl = off: nothing to verify");
        return;
    }
    // The local server's certificate is self-signed (Debian's snakeoil), so verification fails.
    let url = "postgres://postgres:hunter2@127.0.0.1:5432/postgres?sslmode=verify-full";
    let err = connect(url).await.unwrap_err();
    assert!(matches!(err, DbError::Connect { .. }), "{err}");
    assert_eq!(err.exit_code(), ExitCode::Database);
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn verify_full_accepts_the_server_when_given_its_certificate() {
    let server_cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if !server_has_tls().await || !std::path::Path::new(server_cert).exists() {
        eprintln!("no TLS on the test server or no {server_cert}: nothing to verify");
        return;
    }
    // The certificate names `localhost`: verify-full checks the name too.
    let url = format!("postgres://postgres@localhost:5432/postgres?sslmode=verify-full&sslrootcert={server_cert}");
    let client = connect(&url).await.unwrap();
    assert!(uses_tls(&client).await);
    let wrong_name =
        format!("postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert={server_cert}");
    assert!(connect(&wrong_name).await.is_err(), "the name 127.0.0.1 is not in the certificate");
    let chain_only = format!("postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-ca&sslrootcert={server_cert}");
    assert!(uses_tls(&connect(&chain_only).await.unwrap()).await);
}
