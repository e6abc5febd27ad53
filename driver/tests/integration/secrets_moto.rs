//! Database credentials from AWS Secrets Manager, through the real SDK against a moto server:
//! a secret in the format RDS and Redshift use for the secrets they manage becomes the user
//! and password of the connection URL, read at run time; the password never reaches an error
//! or a log line, and a rotated secret is read again on the next run.

use crate::support;

use emr_driver::aws::{sdk_config, AwsSettings};
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::secrets::{fetch_credentials, resolve_url, SecretError};
use support::moto::MotoServer;

const PASSWORD: &str = "Zq8#rot@ted:1/x";

async fn client(moto: &MotoServer) -> aws_sdk_secretsmanager::Client {
    let sdk = sdk_config(&AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint.clone()),
    })
    .await;
    aws_sdk_secretsmanager::Client::new(&sdk)
}

async fn managed_secret(client: &aws_sdk_secretsmanager::Client, name: &str, password: &str) -> String {
    let value = serde_json::json!({
        "username": "movies_admin",
        "password": password,
        "engine": "redshift",
        "host": "movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com",
        "port": 5439,
        "dbname": "movie_analytics",
    });
    let out = client.create_secret().name(name).secret_string(value.to_string()).send().await.unwrap();
    out.arn().unwrap().to_string()
}

#[tokio::test]
async fn the_url_gets_the_secrets_user_and_current_password() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let arn = managed_secret(&client, "redshift!movie-analytics-dev-admin", PASSWORD).await;

    let url = "postgres://movie-analytics-dev.example:5439/movie_analytics?sslmode=verify-full";
    let resolved = resolve_url(&client, url, Some(&arn)).await.unwrap();
    let (rest, tls) = emr_driver::db::split_tls_settings(&resolved).unwrap();
    assert_eq!(tls.mode, emr_driver::db::TlsMode::VerifyFull);
    let config: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(config.get_user(), Some("movies_admin"));
    assert_eq!(config.get_password(), Some(PASSWORD.as_bytes()));
    assert_eq!(config.get_dbname(), Some("movie_analytics"));
    // What the driver shows of it (logs, errors) has no password.
    let shown = emr_driver::db::redact_url(&resolved);
    assert!(!shown.contains("rot") && shown.contains("movies_admin"), "{shown}");

    // Rotation: the next run reads the new password.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::json!({"username": "movies_admin", "password": "after-rotation"}).to_string())
        .send()
        .await
        .unwrap();
    let rotated = fetch_credentials(&client, &arn).await.unwrap();
    assert_eq!(rotated.password, "after-rotation");
    assert!(!format!("{rotated:?}").contains("after-rotation"));

    // No secret configured: the URL is used as it is, nothing is called.
    assert_eq!(resolve_url(&client, url, None).await.unwrap(), url);
}

#[tokio::test]
async fn a_missing_or_malformed_secret_is_a_clear_error_without_the_secret() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-missing-AbCdEf";
    let err = resolve_url(&client, "postgres://h/db", Some(missing)).await.unwrap_err();
    assert!(matches!(err, SecretError::Aws(_)), "{err}");
    assert_eq!(err.exit_code(), ExitCode::Aws);
    assert!(err.to_string().contains("GetSecretValue"), "{err}");

    let plain = client.create_secret().name("plain").secret_string(PASSWORD).send().await.unwrap();
    let arn = plain.arn().unwrap();
    let err = resolve_url(&client, "postgres://h/db", Some(arn)).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains(arn) && text.contains("is not JSON"), "{text}");
    assert!(!text.contains(PASSWORD), "the secret leaked: {text}");
    assert_eq!(err.exit_code(), ExitCode::BadInput);
}
