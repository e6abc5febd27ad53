//! `emr-driver deploy` through the binary: dry run, the local lake, and S3 on moto.

use crate::support;

use std::path::Path;

use assert_cmd::Command;
use support::moto::MotoServer;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/pipeline.toml");

fn project(root: &Path) {
    for (rel, text) in [
        ("pyspark_jobs/__init__.py", ""),
        ("pyspark_jobs/run_job.py", "import sys\n"),
        ("bootstrap/packages.sh", "#!/bin/bash\n"),
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn driver(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("emr-driver").unwrap();
    cmd.current_dir(root).arg("--config").arg(CONFIG);
    cmd
}

fn json_of(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn dry_run_lists_the_uris_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let out = driver(dir.path())
        .args(["--output", "json", "deploy", "--dry-run"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    assert_eq!(doc["dry_run"], true);
    let uris: Vec<&str> = doc["artifacts"].as_array().unwrap().iter().map(|a| a["uri"].as_str().unwrap()).collect();
    assert_eq!(uris.len(), 3);
    assert!(uris.iter().all(|u| u.starts_with("s3://movie-analytics-dev-raw/artifacts/")), "{uris:?}");
    assert!(!dir.path().join(".lake").exists());
}

#[test]
fn deploying_to_the_local_lake_twice_uploads_once() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let run = || {
        let out = driver(dir.path())
            .args(["--output", "json", "deploy", "--target", "local"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        json_of(&out)
    };
    let first = run();
    assert_eq!(first["uploaded"].as_array().unwrap().len(), 3);
    let second = run();
    assert_eq!(second["uploaded"].as_array().unwrap().len(), 0);
    assert_eq!(second["skipped"].as_array().unwrap().len(), 3);
    let zip = second["uris"]["pyspark_jobs.zip"].as_str().unwrap();
    let key = zip.strip_prefix("s3://").unwrap();
    assert!(dir.path().join(".lake").join(key).is_file());
}

#[tokio::test]
async fn deploying_to_s3_through_the_endpoint_override() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let sdk = emr_driver::aws::sdk_config(&emr_driver::aws::AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint.clone()),
    })
    .await;
    emr_driver::aws::s3_client(&sdk).create_bucket().bucket("cli-raw").send().await.unwrap();

    let run = |endpoint_via_env: bool| {
        let mut cmd = driver(dir.path());
        cmd.args(["--output", "json", "deploy", "--target", "emr", "--set", "buckets.raw=cli-raw"]);
        if endpoint_via_env {
            cmd.env("AWS_ENDPOINT_URL", &moto.endpoint);
        } else {
            cmd.args(["--set", &format!("aws.endpoint_url={}", moto.endpoint)]);
        }
        json_of(&cmd.assert().success().get_output().stdout.clone())
    };
    let first = run(false);
    assert_eq!(first["uploaded"].as_array().unwrap().len(), 3);
    // The SDK's own AWS_ENDPOINT_URL works as well as the config key.
    let second = run(true);
    assert_eq!(second["uploaded"].as_array().unwrap().len(), 0, "{second}");
    assert_eq!(second["skipped"].as_array().unwrap().len(), 3);
}
