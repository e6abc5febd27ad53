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
