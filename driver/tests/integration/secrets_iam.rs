//! IAM database authentication: the RDS auth token the driver signs (aws-sigv4, the SDK
//! configuration's credentials, the injected clock) is botocore's `generate_db_auth_token` for
//! the same credentials and frozen time, byte for byte, and it becomes the password of the
//! connection; Redshift's `GetClusterCredentialsWithIAM` goes out as the query-protocol request
//! the service documents and its answer becomes the user and password (moto has only
//! `GetClusterCredentials`, so the HTTP exchange is replayed with StaticReplayClient); Redshift
//! Serverless' `GetCredentials` goes out as the JSON request the service documents (workgroup
//! and database of the URL, in the endpoint's region), replayed the same way. No token or
//! password reaches a message.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use emr_driver::clock::FakeClock;
use emr_driver::config::{Config, Overrides};
use emr_driver::db::login::{
    login_for, rds_auth_token, redshift_iam_credentials, redshift_serverless_credentials, DbRole, RedshiftTarget,
    ServerlessTarget,
};
use emr_driver::error::{ExitCode, ExitStatus};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const RDS_HOST: &str = "movie-analytics-dev-purchases.cx1y2z3.us-east-1.rds.amazonaws.com";
const REDSHIFT_HOST: &str = "movie-analytics-dev.cx1y2z3.us-east-1.redshift.amazonaws.com";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// botocore's token for the same inputs (driver/tests/fixtures/rds_token_botocore.py).
fn botocore_token(host: &str, port: u16, user: &str, region: &str, at: &str, session: Option<&str>) -> String {
    let python = std::env::var("PYTHON").map(PathBuf::from).unwrap_or_else(|_| repo().join(".venv/bin/python"));
    let script = repo().join("driver/tests/fixtures/rds_token_botocore.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).args([host, &port.to_string(), user, region, at]);
    if let Some(token) = session {
        cmd.arg(token);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("could not run {} ({e}); run scripts/setup.sh", python.display()));
    assert!(out.status.success(), "botocore failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{text}Z")).unwrap().with_timezone(&Utc)
}

fn credentials(session: Option<&str>) -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY, session.map(str::to_string), None, "test")
}

fn sdk(session: Option<&str>) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials(session)))
        .build()
}

fn config(sets: &[&str]) -> Config {
    let text = std::fs::read_to_string(repo().join("config/pipeline.toml")).unwrap();
    let overrides = Overrides::parse_sets(sets).unwrap();
    Config::from_toml_str(&text, "pipeline.toml", &Default::default(), &overrides).unwrap()
}

#[test]
fn the_rds_token_is_botocores_for_every_case() {
    // (host, port, user, region, time, session token)
    type Case<'a> = (&'a str, u16, &'a str, &'a str, &'a str, Option<&'a str>);
    let cases: [Case; 4] = [
        (RDS_HOST, 5432, "emr_driver", "us-east-1", "2026-12-01T02:30:00", None),
        // IRSA credentials are temporary: the session token is signed and sent.
        (RDS_HOST, 5432, "emr_driver", "us-east-1", "2026-12-01T02:30:00", Some("IQoJb3JpZ2luX2VjE/+x==")),
        // A user name that needs escaping, another port, region and day.
        ("db.internal.example", 6543, "user@corp+1 x", "eu-west-1", "2027-01-31T23:59:59", None),
        (RDS_HOST, 5432, "émile", "ap-southeast-2", "2026-02-28T00:00:01", Some("tok%en")),
    ];
    for (host, port, user, region, when, session) in cases {
        let time = SystemTime::from(at(when));
        let ours = rds_auth_token(host, port, user, region, &credentials(session), time).unwrap();
        assert_eq!(ours, botocore_token(host, port, user, region, when, session), "{user}@{host}:{port}");
    }
}

#[tokio::test]
async fn an_iam_source_login_puts_a_fresh_token_in_the_url() {
    let clock = FakeClock::at(at("2026-12-01T02:30:00"));
    let session = "IQoJb3JpZ2luX2VjE/+x==";
    let url = format!("postgres://emr_driver@{RDS_HOST}:5432/movie_analytics?sslmode=verify-full&sslrootcert=/ca.pem");
    let config = config(&["source.auth=iam"]);
    let login =
        login_for(DbRole::Source, &url, &config, Some(&sdk(Some(session))), Arc::new(clock.clone())).await.unwrap();

    let resolved = login.current_url().await.unwrap();
    let (rest, tls) = emr_driver::db::split_tls_settings(&resolved).unwrap();
    assert_eq!(tls.mode, emr_driver::db::TlsMode::VerifyFull);
    let parsed: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(parsed.get_user(), Some("emr_driver"));
    let password = String::from_utf8(parsed.get_password().unwrap().to_vec()).unwrap();
    // The region is the SDK configuration's, the time the injected clock's.
    let expected = botocore_token(RDS_HOST, 5432, "emr_driver", "eu-west-1", "2026-12-01T02:30:00", Some(session));
    assert_eq!(password, expected);

    // Every connection signs again: 10 minutes later, another token.
    clock.advance(Duration::from_secs(600));
    let later = login.current_url().await.unwrap();
    let (rest, _) = emr_driver::db::split_tls_settings(&later).unwrap();
    let parsed: tokio_postgres::Config = rest.parse().unwrap();
    let later_token = String::from_utf8(parsed.get_password().unwrap().to_vec()).unwrap();
    assert_ne!(later_token, password);
    assert!(later_token.contains("&X-Amz-Date=20261201T024000Z&"), "the token is not the clock's");

    // Nothing shown carries the token.
    let shown = format!("{} {login:?} {}", login.shown(), login.method());
    assert!(!shown.contains("X-Amz-Signature") && !shown.contains(session), "{shown}");
    assert!(shown.contains("RDS IAM auth token") && shown.contains("emr_driver"), "{shown}");
}

#[tokio::test]
async fn an_iam_login_refuses_an_unverified_url_before_any_call() {
    let config = config(&["source.auth=iam"]);
    let clock = Arc::new(FakeClock::new());
    let err = login_for(
        DbRole::Source,
        &format!("postgres://u@{RDS_HOST}/d?sslmode=require"),
        &config,
        Some(&sdk(None)),
        clock,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("sslmode=verify-full"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::BadInput);
}

fn redshift_client(replay: &StaticReplayClient) -> aws_sdk_redshift::Client {
    let conf = aws_sdk_redshift::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials(None))
        .http_client(replay.clone())
        .retry_config(aws_sdk_redshift::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_redshift::Client::from_conf(conf)
}

fn redshift_answer(status: u16, body: &str) -> ReplayEvent {
    ReplayEvent::new(
        http::Request::builder().uri("https://redshift.us-east-1.amazonaws.com/").body(SdkBody::empty()).unwrap(),
        http::Response::builder().status(status).header("content-type", "text/xml").body(SdkBody::from(body)).unwrap(),
    )
}

const TEMPORARY_PASSWORD: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/temporary";

#[tokio::test]
async fn redshift_iam_credentials_are_asked_for_the_cluster_and_database_of_the_url() {
    let body = format!(
        r#"<GetClusterCredentialsWithIAMResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/">
  <GetClusterCredentialsWithIAMResult>
    <DbUser>IAMR:movie-analytics-dev-emr-driver</DbUser>
    <DbPassword>{TEMPORARY_PASSWORD}</DbPassword>
    <Expiration>2026-12-01T02:45:00Z</Expiration>
    <NextRefreshTime>2026-12-01T02:40:00Z</NextRefreshTime>
  </GetClusterCredentialsWithIAMResult>
  <ResponseMetadata><RequestId>3f8c0a3e-0000-4000-8000-000000000001</RequestId></ResponseMetadata>
</GetClusterCredentialsWithIAMResponse>"#
    );
    let replay = StaticReplayClient::new(vec![redshift_answer(200, &body)]);
    let client = redshift_client(&replay);
    let url = format!("postgres://{REDSHIFT_HOST}:5439/movie_analytics?sslmode=verify-full");
    let target = emr_driver::db::login::redshift_target("warehouse.auth", &url).unwrap();
    assert_eq!(
        target,
        RedshiftTarget { cluster_identifier: "movie-analytics-dev".into(), dbname: "movie_analytics".into() }
    );
    let credentials = redshift_iam_credentials(&client, &target).await.unwrap();
    assert_eq!(credentials.username, "IAMR:movie-analytics-dev-emr-driver");
    assert_eq!(credentials.password, TEMPORARY_PASSWORD);
    assert!(!format!("{credentials:?}").contains(TEMPORARY_PASSWORD));

    // The request on the wire: the query protocol's form, signed for the redshift service.
    let requests: Vec<_> = replay.actual_requests().collect();
    assert_eq!(requests.len(), 1);
    let form = std::str::from_utf8(requests[0].body().bytes().unwrap()).unwrap().to_string();
    let pairs: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let expected: std::collections::BTreeMap<String, String> = [
        ("Action", "GetClusterCredentialsWithIAM"),
        ("Version", "2012-12-01"),
        ("ClusterIdentifier", "movie-analytics-dev"),
        ("DbName", "movie_analytics"),
        ("DurationSeconds", "900"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(pairs, expected);
    let authorization = requests[0].headers().get("authorization").unwrap();
    assert!(authorization.contains("/us-east-1/redshift/aws4_request"), "{authorization}");

    // The same through the URL: the user Redshift mapped and its password go in.
    let with = emr_driver::secrets::with_credentials(&url, &credentials).unwrap();
    let (rest, _) = emr_driver::db::split_tls_settings(&with).unwrap();
    let parsed: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(parsed.get_user(), Some("IAMR:movie-analytics-dev-emr-driver"));
    assert_eq!(parsed.get_password(), Some(TEMPORARY_PASSWORD.as_bytes()));
}

#[tokio::test]
async fn a_refused_redshift_call_names_the_operation_and_the_policy() {
    let body = r#"<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized to perform: redshift:GetClusterCredentialsWithIAM</Message></Error>
  <RequestId>3f8c0a3e-0000-4000-8000-000000000002</RequestId>
</ErrorResponse>"#;
    let replay = StaticReplayClient::new(vec![redshift_answer(403, body)]);
    let target = RedshiftTarget { cluster_identifier: "movie-analytics-dev".into(), dbname: "movie_analytics".into() };
    let err = redshift_iam_credentials(&redshift_client(&replay), &target).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("GetClusterCredentialsWithIAM") && text.contains("IAM policy"), "{text}");
    assert_eq!(err.exit_code(), ExitCode::Aws);
}

#[tokio::test]
async fn a_redshift_warehouse_with_iam_logs_in_through_get_cluster_credentials_with_iam() {
    let config = config(&[
        "warehouse.kind=redshift",
        "warehouse.redshift_copy_role_arn=arn:aws:iam::123456789012:role/copy",
        "warehouse.auth=iam",
    ]);
    let url = format!("postgres://{REDSHIFT_HOST}:5439/movie_analytics?sslmode=verify-full");
    let login =
        login_for(DbRole::Warehouse, &url, &config, Some(&sdk(None)), Arc::new(FakeClock::new())).await.unwrap();
    assert!(login
        .method()
        .contains("GetClusterCredentialsWithIAM (cluster movie-analytics-dev, database movie_analytics)"));
    // A PostgreSQL warehouse with IAM is an RDS database: a token, not Redshift.
    let postgres = config_with_postgres_iam();
    let rds_url = format!("postgres://wh_user@{RDS_HOST}/wh?sslmode=verify-full");
    let login =
        login_for(DbRole::Warehouse, &rds_url, &postgres, Some(&sdk(None)), Arc::new(FakeClock::new())).await.unwrap();
    assert!(login.method().contains("RDS IAM auth token (wh_user"), "{}", login.method());
}

fn config_with_postgres_iam() -> Config {
    config(&["warehouse.auth=iam"])
}

const WORKGROUP_HOST: &str = "movie-analytics.123456789012.us-west-2.redshift-serverless.amazonaws.com";

fn serverless_target() -> ServerlessTarget {
    ServerlessTarget {
        workgroup_name: "movie-analytics".into(),
        account: "123456789012".into(),
        region: "us-west-2".into(),
        dbname: "dev".into(),
    }
}

fn serverless_client(replay: &StaticReplayClient) -> aws_sdk_redshiftserverless::Client {
    let conf = aws_sdk_redshiftserverless::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(credentials(None))
        .http_client(replay.clone())
        .retry_config(aws_sdk_redshiftserverless::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_redshiftserverless::Client::from_conf(conf)
}

fn serverless_answer(status: u16, body: &str) -> ReplayEvent {
    ReplayEvent::new(
        http::Request::builder()
            .uri("https://redshift-serverless.us-west-2.amazonaws.com/")
            .body(SdkBody::empty())
            .unwrap(),
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(SdkBody::from(body))
            .unwrap(),
    )
}

fn credentials_body() -> String {
    serde_json::json!({
        "dbUser": "IAMR:movie-analytics-dev-emr-driver",
        "dbPassword": TEMPORARY_PASSWORD,
        "expiration": 1_796_093_100,
        "nextRefreshTime": 1_796_092_800,
    })
    .to_string()
}

/// The JSON body and the headers of the one GetCredentials request the replay client saw.
fn get_credentials_request(replay: &StaticReplayClient) -> (serde_json::Value, String, String) {
    let requests: Vec<_> = replay.actual_requests().collect();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(requests[0].body().bytes().unwrap()).unwrap();
    let target = requests[0].headers().get("x-amz-target").unwrap_or_default().to_string();
    let authorization = requests[0].headers().get("authorization").unwrap().to_string();
    (body, target, authorization)
}

#[tokio::test]
async fn serverless_credentials_are_asked_for_the_workgroup_and_database_of_the_url() {
    let url = format!("postgres://{WORKGROUP_HOST}:5439/dev?sslmode=verify-full");
    assert_eq!(emr_driver::db::login::serverless_target("warehouse.auth", &url).unwrap(), serverless_target());
    let replay = StaticReplayClient::new(vec![serverless_answer(200, &credentials_body())]);
    let credentials = redshift_serverless_credentials(&serverless_client(&replay), &serverless_target()).await.unwrap();
    assert_eq!(credentials.username, "IAMR:movie-analytics-dev-emr-driver");
    assert_eq!(credentials.password, TEMPORARY_PASSWORD);
    assert!(!format!("{credentials:?}").contains(TEMPORARY_PASSWORD));

    // The request on the wire: awsJson1_1, the operation in X-Amz-Target, signed for the
    // redshift-serverless service; the body is exactly the workgroup, database and duration.
    let (body, target, authorization) = get_credentials_request(&replay);
    assert_eq!(body, serde_json::json!({"workgroupName": "movie-analytics", "dbName": "dev", "durationSeconds": 900}));
    assert_eq!(target, "RedshiftServerless.GetCredentials");
    assert!(authorization.contains("/us-west-2/redshift-serverless/aws4_request"), "{authorization}");

    let with = emr_driver::secrets::with_credentials(&url, &credentials).unwrap();
    let (rest, _) = emr_driver::db::split_tls_settings(&with).unwrap();
    let parsed: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(parsed.get_user(), Some("IAMR:movie-analytics-dev-emr-driver"));
    assert_eq!(parsed.get_password(), Some(TEMPORARY_PASSWORD.as_bytes()));
}

#[tokio::test]
async fn a_serverless_warehouse_with_iam_logs_in_through_get_credentials_in_the_endpoints_region() {
    let config = config(&[
        "warehouse.kind=redshift",
        "warehouse.redshift_copy_role_arn=arn:aws:iam::123456789012:role/copy",
        "warehouse.auth=iam",
    ]);
    let url = format!("postgres://{WORKGROUP_HOST}/dev?sslmode=verify-full");
    let replay = StaticReplayClient::new(vec![serverless_answer(200, &credentials_body())]);
    // The SDK configuration says eu-west-1; the workgroup endpoint says us-west-2.
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials(None)))
        .http_client(replay.clone())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let login = login_for(DbRole::Warehouse, &url, &config, Some(&sdk), Arc::new(FakeClock::new())).await.unwrap();
    assert_eq!(
        login.method(),
        "Redshift Serverless GetCredentials (workgroup movie-analytics, database dev, us-west-2)"
    );
    let resolved = login.current_url().await.unwrap();
    let (rest, _) = emr_driver::db::split_tls_settings(&resolved).unwrap();
    let parsed: tokio_postgres::Config = rest.parse().unwrap();
    assert_eq!(parsed.get_user(), Some("IAMR:movie-analytics-dev-emr-driver"));
    assert_eq!(parsed.get_password(), Some(TEMPORARY_PASSWORD.as_bytes()));
    let (body, _, authorization) = get_credentials_request(&replay);
    assert_eq!(body["workgroupName"], "movie-analytics");
    assert!(authorization.contains("/us-west-2/redshift-serverless/aws4_request"), "{authorization}");
    let request_uri = replay.actual_requests().next().unwrap().uri().to_string();
    assert!(request_uri.starts_with("https://redshift-serverless.us-west-2.amazonaws.com"), "{request_uri}");

    // Nothing shown carries the password.
    let shown = format!("{} {login:?} {}", login.shown(), login.method());
    assert!(!shown.contains(TEMPORARY_PASSWORD), "{shown}");
}

#[tokio::test]
async fn a_refused_serverless_call_names_the_missing_permission_and_the_workgroup() {
    let body = serde_json::json!({
        "__type": "AccessDeniedException",
        "message": "User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized to perform: redshift-serverless:GetCredentials on resource: arn:aws:redshift-serverless:us-west-2:123456789012:workgroup/0b5d0d4e-0000-4000-8000-000000000001",
    })
    .to_string();
    let replay = StaticReplayClient::new(vec![serverless_answer(400, &body)]);
    let err = redshift_serverless_credentials(&serverless_client(&replay), &serverless_target()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("redshift-serverless:GetCredentials on the workgroup movie-analytics"), "{text}");
    assert!(text.contains("arn:aws:redshift-serverless:us-west-2:123456789012:workgroup/<workgroup id>"), "{text}");
    assert!(text.contains("redshift_serverless_workgroup_arn"), "{text}");
    assert_eq!(err.exit_code(), ExitCode::Aws);

    // Another failure (the workgroup does not exist) is not blamed on the policy.
    let body = serde_json::json!({"__type": "ResourceNotFoundException", "message": "Workgroup not found"}).to_string();
    let replay = StaticReplayClient::new(vec![serverless_answer(400, &body)]);
    let err = redshift_serverless_credentials(&serverless_client(&replay), &serverless_target()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("GetCredentials") && !text.contains("needs redshift-serverless"), "{text}");
    assert!(!text.contains(TEMPORARY_PASSWORD));

    // An answer without a password is an error that names the field, not an empty login.
    let body = serde_json::json!({"dbUser": "IAMR:x"}).to_string();
    let replay = StaticReplayClient::new(vec![serverless_answer(200, &body)]);
    let err = redshift_serverless_credentials(&serverless_client(&replay), &serverless_target()).await.unwrap_err();
    assert!(err.to_string().contains("returned no dbPassword"), "{err}");
}
