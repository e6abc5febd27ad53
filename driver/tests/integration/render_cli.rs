//! `emr-driver render` end to end through the binary: the plan JSON on stdout, clear errors
//! and the bad-input exit code for bad configuration.

use std::path::Path;

use assert_cmd::Command;

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

#[test]
fn render_prints_the_exact_requests() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let out = driver(dir.path())
        .args(["--output", "json", "render", "--date", "2021-10-31", "--target", "emr"])
        .args(["--set", "buckets.raw=my-raw", "--set", "emr.subnet_id=subnet-x"])
        .env("EMR_DRIVER_BUCKETS_STAGING", "my-staging")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens: render must not call it
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(plan["target"], "emr");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 4);
    let run_id = plan["run_id"].as_str().unwrap();
    assert_eq!(plan["steps"][0]["config"]["Name"], format!("{run_id} classify_reviews"));
    assert!(plan["artifacts"]["run_job_py"]["uri"].as_str().unwrap().starts_with("s3://my-raw/artifacts/"));
    assert_eq!(plan["uris"]["review_logs"], format!("s3://my-staging/review_logs/dt=2021-10-31/run={run_id}"));
    let request = &plan["cluster_request"];
    assert_eq!(request["Instances"]["Ec2SubnetId"], "subnet-x");
    let tags: std::collections::HashMap<&str, &str> = request["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["Key"].as_str().unwrap(), t["Value"].as_str().unwrap()))
        .collect();
    assert_eq!(tags["run-id"], run_id);
    assert_eq!(tags["config-hash"], plan["config_hash"].as_str().unwrap());
    assert_eq!(tags["project"], "movie-analytics");
    assert_eq!(tags["for-use-with-amazon-emr-managed-policies"], "true");

    let reuse = driver(dir.path())
        .args(["render", "--date", "2021-10-31", "--target", "emr", "--cluster-id", "j-ABC123"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&reuse).unwrap();
    assert_eq!(plan["cluster_id"], "j-ABC123");
    assert!(plan["cluster_request"].is_null());
}

#[test]
fn bad_configuration_exits_with_bad_input_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let assert = driver(dir.path())
        .args(["render", "--date", "2021-10-31", "--set", "emr.log_uri=logs/"])
        .env("EMR_DRIVER_EMR_RELEASE_LABEL", "emr-5.36.0")
        .assert()
        .code(6);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("emr.log_uri") && stderr.contains("s3://"), "{stderr}");
    assert!(stderr.contains("emr.release_label") && stderr.contains("EMR_DRIVER_EMR_RELEASE_LABEL"), "{stderr}");

    let assert = driver(dir.path()).args(["render", "--date", "31/10/2021"]).assert().code(6);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("YYYY-MM-DD"));
}

#[test]
fn missing_artifacts_say_where_to_run_from() {
    let dir = tempfile::tempdir().unwrap();
    let assert = driver(dir.path()).args(["render", "--date", "2021-10-31"]).assert().code(6);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("pyspark_jobs") && stderr.contains("--project-root"), "{stderr}");
}

#[test]
fn render_masks_spark_settings_whose_names_look_secret() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let out = driver(dir.path())
        .args(["render", "--date", "2021-10-31", "--target", "emr", "--set", "emr.subnet_id=subnet-0abc"])
        .args(["--set", "spark.spark.hadoop.fs.s3a.secret.key=wJalrXUtnFEMI"])
        .args(["--set", "spark.spark.datasource.password=hunter2"])
        .args(["--set", "spark.spark.sql.shuffle.partitions=7"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("hunter2"), "{text}");
    assert!(text.contains("spark.hadoop.fs.s3a.secret.key=***"), "{text}");
    // Settings that are no secret are shown as they are.
    assert!(text.contains("spark.sql.shuffle.partitions=7"), "{text}");
}

#[test]
fn creating_a_cluster_without_a_subnet_is_refused_naming_the_key_and_the_output() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let assert = driver(dir.path())
        .args(["render", "--date", "2021-10-31", "--target", "emr"])
        .env_remove("EMR_DRIVER_EMR_SUBNET_ID")
        .assert()
        .code(6);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("emr.subnet_id") && stderr.contains("emr_subnet_id"), "{stderr}");
}

#[test]
fn redshift_without_its_url_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let role = "warehouse.redshift_copy_role_arn=arn:aws:iam::111122223333:role/copy";
    for command in [&["run", "--dry-run"][..], &["render"][..]] {
        let assert = driver(dir.path())
            .args(command)
            .args(["--date", "2021-10-31", "--set", "warehouse.kind=redshift", "--set", role])
            // The source database is there; Redshift must not fall back to it.
            .env("DATABASE_URL", "postgres://app@rds.example:5432/movies")
            .env_remove("WAREHOUSE_URL")
            .env_remove("EMR_DRIVER_WAREHOUSE_URL")
            .assert()
            .code(6);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(stderr.contains("warehouse URL") && stderr.contains("WAREHOUSE_URL"), "{command:?}: {stderr}");
    }
    // With WAREHOUSE_URL the dry run prints the plan, the URL's password masked.
    let out = driver(dir.path())
        .args(["run", "--dry-run", "--date", "2021-10-31", "--set", "warehouse.kind=redshift", "--set", role])
        .env("WAREHOUSE_URL", "postgres://loader:s3cret@wh.example:5439/dev")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(text.contains("wh.example:5439/dev") && !text.contains("s3cret"), "{text}");
}
