//! The database commands end to end through the binary, against the real PostgreSQL.

use crate::db_common;

use assert_cmd::Command;
use db_common::TestDb;

const HEADER: &str = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n";

fn driver() -> Command {
    let mut cmd = Command::cargo_bin("emr-driver").unwrap();
    // The repository root, where the default config/pipeline.toml is.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd.env_remove("DATABASE_URL").env("EMR_DRIVER_LOG", "warn");
    cmd
}

#[tokio::test]
async fn load_export_and_report_through_the_command_line() {
    let db = TestDb::create("cli").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("user_purchase.csv");
    std::fs::write(
        &file,
        format!("{HEADER}1,A,a,2,1/2/2011 3:04,1.5,10,France\r\n2,B,b,x,1/2/2011 3:05,2,,France\r\n"),
    )
    .unwrap();

    // A bad row fails the load: exit code 6, the line and the fix on stderr.
    let out =
        driver().args(["load-user-purchase", file.to_str().unwrap()]).env("DATABASE_URL", &db.url).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: Quantity `x`") && stderr.contains("--skip-bad-rows"), "{stderr}");

    let out = driver()
        .args([
            "--output",
            "json",
            "load-user-purchase",
            file.to_str().unwrap(),
            "--skip-bad-rows",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(report["rows_loaded"], 1);
    assert_eq!(report["bad_rows"][0]["line"], 3);

    let lake = dir.path().join("lake");
    let to = "s3://staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz";
    let out = driver()
        .args([
            "--output",
            "json",
            "export-user-purchase",
            "--date",
            "2021-10-31",
            "--to",
            to,
            "--lake-dir",
            lake.to_str().unwrap(),
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 1);
    assert!(lake.join("staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz").is_file());

    // No warehouse yet: a clear error, exit code 6.
    let out = driver().args(["report", "--database-url", &db.url]).output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("load-warehouse"));
}

#[test]
fn a_wrong_password_is_never_printed() {
    let out =
        driver().args(["report", "--database-url", "postgres://postgres:hunter2@127.0.0.1:1/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("hunter2") && all.contains("postgres:***@127.0.0.1:1"), "{all}");
}

#[test]
fn load_warehouse_prints_the_redshift_script_without_connecting() {
    let out = driver()
        .args([
            "load-warehouse",
            "--date",
            "2021-10-31",
            "--load-root",
            "s3://staging/warehouse_load/dt=2021-10-31",
            "--redshift-iam-role",
            "arn:aws:iam::123456789012:role/redshift-load",
            "--database-url",
            "postgres://nobody:secret@127.0.0.1:1/x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.starts_with("BEGIN;\n") && script.ends_with("COMMIT;\n"));
    assert!(
        script.contains("IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-load' FORMAT AS CSV IGNOREHEADER 1 GZIP")
    );
    let bad = driver()
        .args(["load-warehouse", "--date", "2021-10-31", "--load-root", "s3://s/w", "--redshift-iam-role", "role/x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(6));
}

// --- credentials from Secrets Manager and IAM, in every command that connects ---------------
//
// The test server trusts every local login (user postgres, any password), so these tests give
// the URL no user: the command connects only if the secret's user got into the URL, and a
// secret naming a role that does not exist makes the server refuse that very role.

const SECRET_PASSWORD: &str = "Zq8#rot@ted:1/x";

/// A moto server holding an RDS-style secret for `username`; returns the server and the ARN.
async fn secret_for(username: &str) -> (crate::support::moto::MotoServer, String) {
    let moto = crate::support::moto::MotoServer::start();
    let sdk = emr_driver::aws::sdk_config(&emr_driver::aws::AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint.clone()),
    })
    .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let value =
        serde_json::json!({"username": username, "password": SECRET_PASSWORD, "engine": "postgres", "port": 5432});
    let out = client.create_secret().name("rds!db-test").secret_string(value.to_string()).send().await.unwrap();
    (moto, out.arn().unwrap().to_string())
}

/// The URL of the test database without a user (`postgres://host:port/db`).
fn without_user(db: &TestDb) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username("").unwrap();
    url.to_string()
}

/// `driver()` with the secret configured for `section` and AWS pointed at moto; info logs on.
fn with_secret(moto: &crate::support::moto::MotoServer, section: &str, arn: &str) -> Command {
    let mut cmd = driver();
    cmd.env(format!("EMR_DRIVER_{}_PASSWORD_SECRET_ARN", section.to_ascii_uppercase()), arn)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("EMR_DRIVER_LOG", "warn,emr_driver=info");
    cmd
}

fn outputs(out: &std::process::Output) -> String {
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(SECRET_PASSWORD) && !all.contains("rot@ted"), "the secret's password leaked: {all}");
    all
}

/// The log line of the login: which secret, which user, the URL without a password.
fn assert_logged_in_through_the_secret(all: &str, arn: &str) {
    assert!(all.contains(&format!("database credentials from Secrets Manager secret {arn}")), "{all}");
    assert!(all.contains("user=postgres"), "{all}");
}

fn purchases(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("user_purchase.csv");
    std::fs::write(&file, format!("{HEADER}1,A,a,2,1/2/2011 3:04,1.5,10,France\r\n")).unwrap();
    file
}

#[tokio::test]
async fn load_user_purchase_logs_in_with_the_source_secret() {
    let db = TestDb::create("cli_secret_load").await;
    let (moto, arn) = secret_for("postgres").await;
    let dir = tempfile::tempdir().unwrap();
    let file = purchases(dir.path());
    let out = with_secret(&moto, "source", &arn)
        .args(["load-user-purchase", file.to_str().unwrap(), "--database-url", &without_user(&db)])
        .output()
        .unwrap();
    let all = outputs(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("1 rows loaded into user_purchase"), "{all}");
    assert_logged_in_through_the_secret(&all, &arn);

    // The secret's user is the one that logs in: a role the server does not know is refused.
    let (moto, arn) = secret_for("no_such_role_x9").await;
    let out = with_secret(&moto, "source", &arn)
        .args(["load-user-purchase", file.to_str().unwrap(), "--database-url", &without_user(&db)])
        .output()
        .unwrap();
    let all = outputs(&out);
    assert_eq!(out.status.code(), Some(9), "{all}");
    assert!(all.contains("no_such_role_x9"), "{all}");
}

#[tokio::test]
async fn export_user_purchase_logs_in_with_the_source_secret() {
    let db = TestDb::create("cli_secret_export").await;
    let dir = tempfile::tempdir().unwrap();
    let load = driver()
        .args(["load-user-purchase", purchases(dir.path()).to_str().unwrap(), "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let (moto, arn) = secret_for("postgres").await;
    let lake = dir.path().join("lake");
    let to = "s3://staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz";
    let out = with_secret(&moto, "source", &arn)
        .args(["export-user-purchase", "--date", "2021-10-31", "--to", to, "--lake-dir", lake.to_str().unwrap()])
        .env("DATABASE_URL", without_user(&db))
        .output()
        .unwrap();
    let all = outputs(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("1 rows exported"), "{all}");
    assert_logged_in_through_the_secret(&all, &arn);
}

#[tokio::test]
async fn load_warehouse_logs_in_with_the_warehouse_secret() {
    let db = TestDb::create("cli_secret_loadwh").await;
    let (moto, arn) = secret_for("postgres").await;
    let lake = tempfile::tempdir().unwrap();
    let out = with_secret(&moto, "warehouse", &arn)
        .args([
            "load-warehouse",
            "--date",
            "2021-10-31",
            "--load-root",
            "s3://staging/warehouse_load/dt=2021-10-31",
            "--lake-dir",
            lake.path().to_str().unwrap(),
            "--database-url",
            &without_user(&db),
        ])
        .output()
        .unwrap();
    let all = outputs(&out);
    // Logged in, then found no load files: the load's own refusal, not a connection error.
    assert_eq!(out.status.code(), Some(6), "{all}");
    assert!(all.contains("no part files"), "{all}");
    assert_logged_in_through_the_secret(&all, &arn);
    // The source's secret is not the warehouse's: with only it, the URL has no user.
    let out = with_secret(&moto, "source", &arn)
        .args(["load-warehouse", "--date", "2021-10-31", "--load-root", "s3://staging/warehouse_load/dt=2021-10-31"])
        .args(["--lake-dir", lake.path().to_str().unwrap(), "--database-url", &without_user(&db)])
        .output()
        .unwrap();
    assert!(!outputs(&out).contains("Secrets Manager secret"), "{}", outputs(&out));
}

#[tokio::test]
async fn report_and_check_log_in_with_the_warehouse_secret() {
    let db = TestDb::create("cli_secret_report").await;
    let (moto, arn) = secret_for("postgres").await;
    let lake = tempfile::tempdir().unwrap();
    // No warehouse tables yet: report connects, then says to load one (exit 6).
    let out = with_secret(&moto, "warehouse", &arn)
        .args(["report", "--database-url", &without_user(&db), "--lake-dir", lake.path().to_str().unwrap()])
        .output()
        .unwrap();
    let all = outputs(&out);
    assert_eq!(out.status.code(), Some(6), "{all}");
    assert!(all.contains("load-warehouse"), "{all}");
    assert_logged_in_through_the_secret(&all, &arn);
    // check connects and finds no warehouse tables (exit 6, what to load).
    let out = with_secret(&moto, "warehouse", &arn)
        .args(["check", "--database-url", &without_user(&db), "--lake-dir", lake.path().to_str().unwrap()])
        .output()
        .unwrap();
    let all = outputs(&out);
    assert_eq!(out.status.code(), Some(6), "{all}");
    assert!(all.contains("has no warehouse tables"), "{all}");
    assert_logged_in_through_the_secret(&all, &arn);
}

#[test]
fn iam_in_a_command_needs_a_verified_url_and_calls_nothing_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = purchases(dir.path());
    for args in [
        vec!["load-user-purchase", file.to_str().unwrap(), "--set", "source.auth=iam"],
        vec!["report", "--set", "warehouse.auth=iam"],
    ] {
        let out = driver()
            .args(&args)
            .args(["--database-url", "postgres://emr_driver@db.example.com:5432/d?sslmode=require"])
            .output()
            .unwrap();
        let all = outputs(&out);
        assert_eq!(out.status.code(), Some(6), "{all}");
        assert!(all.contains("sslmode=verify-full"), "{all}");
    }
}

#[tokio::test]
async fn load_user_purchase_logs_in_with_an_rds_iam_token_over_verified_tls() {
    let server_cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let db = TestDb::create("cli_iam_load").await;
    let admin = db.client().await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if ssl != "on" || !std::path::Path::new(server_cert).exists() {
        eprintln!("no TLS on the test server or no {server_cert}: the IAM path needs verify-full");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = purchases(dir.path());
    // The certificate names `localhost`; the token is signed locally (no AWS call), and the
    // trusting test server takes it as the password RDS would check.
    let url = format!("postgres://postgres@localhost:5432/{}?sslmode=verify-full&sslrootcert={server_cert}", db.name);
    let out = driver()
        .args(["load-user-purchase", file.to_str().unwrap(), "--database-url", &url, "--set", "source.auth=iam"])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        .env("AWS_SESSION_TOKEN", "session-token-never-shown")
        .env("AWS_REGION", "us-east-1")
        .env("EMR_DRIVER_LOG", "warn,emr_driver=debug")
        .output()
        .unwrap();
    let all = outputs(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("database credentials from an RDS IAM auth token (postgres in us-east-1)"), "{all}");
    // Debug logs show the connection URL, never the token in it.
    assert!(!all.contains("X-Amz-Signature") && !all.contains("session-token-never-shown"), "{all}");
    let rows: i64 = admin.query_one("SELECT COUNT(*) FROM user_purchase", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

#[test]
fn report_prints_the_questions_over_spectrum_without_connecting() {
    // A URL that would fail to connect: --print-sql never uses it.
    let out = driver()
        .args(["report", "--over", "spectrum", "--print-sql", "--schema", "warehouse"])
        .args(["--database-url", "postgres://postgres:hunter2@127.0.0.1:1/x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = String::from_utf8(out.stdout).unwrap();
    let expected = emr_driver::db::report::spectrum_questions("staging", "warehouse").unwrap();
    assert_eq!(sql, emr_driver::db::report::questions_script(&expected));
    assert!(sql.contains("FROM staging.fact_movie_analytics f") && sql.contains("JOIN warehouse.dim_os o"), "{sql}");
    assert!(!sql.contains("hunter2"));

    // JSON: name, question and SQL of each; the schema from the command line.
    let out = driver()
        .args(["--output", "json", "report", "--over", "spectrum", "--spectrum-schema", "lake", "--print-sql"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let questions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(questions.as_array().unwrap().len(), 5);
    assert_eq!(questions[0]["name"], "q1_reviews_in_ca_ny_tx");
    assert!(questions[4]["sql"].as_str().unwrap().contains("FROM lake.fact_movie_analytics f"));
    assert!(questions[4]["sql"].as_str().unwrap().contains("JOIN public.dim_location l"));

    // The warehouse's questions, as they run there.
    let out = driver().args(["report", "--print-sql", "--schema", "warehouse"]).output().unwrap();
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.starts_with("SET search_path TO warehouse;\n") && sql.contains("FROM fact_movie_analytics f"), "{sql}");

    // Spectrum needs the Redshift warehouse, not the embedded one.
    let lake = tempfile::tempdir().unwrap();
    let out =
        driver().args(["report", "--over", "spectrum", "--lake-dir", lake.path().to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database-url"));
}
