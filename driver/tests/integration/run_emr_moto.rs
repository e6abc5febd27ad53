//! `emr-driver run --target emr` through the real SDK against a moto server: the vendor files
//! are ingested to S3, the artifacts deployed, a cluster created with the bootstrap action,
//! the first wave of steps submitted with the run id in their names, and when the run's
//! deadline passes (moto never moves a step past RUNNING) the run gives up. moto answers
//! `CancelSteps` with HTTP 500 (not implemented), so the cancel fails after its retries: the
//! run must still terminate the cluster it created, release the lock, leave its manifest in
//! the staging bucket and exit with the AWS code (7), saying what to do. (The cancel path with
//! a working `CancelSteps` is covered at the HTTP level in runner_emr_http.rs and by the fakes.)

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use emr_driver::aws::{emr_client, s3_client, sdk_config, tag_map, AwsSettings};
use support::moto::MotoServer;

const RAW: &str = "movie-analytics-dev-raw";
const STAGING: &str = "movie-analytics-dev-staging";

fn driver(moto: &MotoServer, repo: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emr-driver"));
    cmd.current_dir(repo)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env_remove("DATABASE_URL")
        .env_remove("WAREHOUSE_URL");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_emr_creates_its_cluster_submits_its_steps_and_cleans_up_at_its_deadline() {
    let moto = MotoServer::start();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = sdk_config(&AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint.clone()),
    })
    .await;
    let s3 = s3_client(&sdk);
    for bucket in [RAW, STAGING] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }

    let ingest = driver(&moto, &repo)
        .args(["ingest", "--target", "emr", "--date", "2021-10-31"])
        .args(["sample/movie_review.csv", "sample/log_reviews.csv", "sample/user_purchase.csv"])
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));

    let run = driver(&moto, &repo)
        .args(["--output", "json", "run", "--target", "emr", "--date", "2021-10-31", "--timeout", "3s"])
        .args(["--set", "emr.poll_interval_seconds=1", "--set", "emr.subnet_id=subnet-0123456789abcdef0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    // Only JSON on stdout; the last line is the manifest.
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let manifest = &events.last().unwrap()["manifest"];
    assert_eq!(manifest["state"], "failed", "stderr:\n{stderr}");
    assert_eq!(run.status.code(), Some(7), "stderr:\n{stderr}");
    assert!(stderr.contains("could not cancel the run's steps") && stderr.contains("CancelSteps"), "{stderr}");
    assert!(stderr.contains("terminating cluster"), "{stderr}");
    let run_id = manifest["run_id"].as_str().unwrap().to_string();

    // The cluster: created by this run (tags, bootstrap action), terminated at the end.
    let emr = emr_client(&sdk);
    let cluster_id = manifest["cluster"]["id"].as_str().unwrap();
    assert_eq!(manifest["cluster"]["created_by_run"], true);
    let cluster = emr.describe_cluster().cluster_id(cluster_id).send().await.unwrap().cluster.unwrap();
    let tags = tag_map(cluster.tags());
    assert_eq!(tags.get("run-id"), Some(&run_id));
    assert_eq!(tags.get("project").map(String::as_str), Some("movie-analytics"));
    assert_eq!(tags.get("for-use-with-amazon-emr-managed-policies").map(String::as_str), Some("true"));
    assert_eq!(cluster.ec2_instance_attributes().and_then(|a| a.ec2_subnet_id()), Some("subnet-0123456789abcdef0"));
    // The run waited for the cluster to be ready before it went on.
    assert!(stderr.contains(&format!("cluster {cluster_id} is WAITING")), "{stderr}");
    let state = cluster.status().unwrap().state().unwrap().as_str().to_string();
    assert!(state.starts_with("TERMINAT"), "cluster left {state}");
    let bootstrap = emr.list_bootstrap_actions().cluster_id(cluster_id).send().await.unwrap();
    let path = bootstrap.bootstrap_actions()[0].script_path().unwrap().to_string();
    assert!(path.starts_with(&format!("s3://{RAW}/artifacts/")) && path.ends_with("/packages.sh"), "{path}");

    // The first wave was submitted, named with the run id; nothing after it.
    let steps = emr.list_steps().cluster_id(cluster_id).send().await.unwrap();
    let mut names: Vec<String> = steps.steps().iter().filter_map(|s| s.name().map(str::to_string)).collect();
    names.sort();
    assert_eq!(names, vec![format!("{run_id} classify_reviews"), format!("{run_id} parse_logs")]);

    // The bootstrap script is where the cluster looks for it; the staging bucket has the
    // manifest and the user_purchase export; the lock is gone.
    let key = path.trim_start_matches(&format!("s3://{RAW}/"));
    s3.head_object().bucket(RAW).key(key).send().await.unwrap();
    s3.head_object().bucket(STAGING).key(format!("_runs/{run_id}.json")).send().await.unwrap();
    for name in ["part-00000.csv.gz", "_SUCCESS"] {
        let export = format!("user_purchase/dt=2021-10-31/run={run_id}/{name}");
        s3.head_object().bucket(STAGING).key(export).send().await.unwrap();
    }
    assert!(
        s3.head_object().bucket(STAGING).key("_locks/dt=2021-10-31.json").send().await.is_err(),
        "the lock was left behind"
    );
}
