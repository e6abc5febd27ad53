//! `emr-driver status`, `wait` and `logs` as a user runs them: the real binary against a moto
//! server (EMR and S3), and `logs local` against a lake folder.

use crate::support;

use std::io::Write;
use std::path::PathBuf;

use assert_cmd::Command;
use aws_sdk_emr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_emr::types::{ActionOnFailure, HadoopJarStepConfig, JobFlowInstancesConfig, StepConfig};
use support::moto::MotoServer;

fn gz(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(raw).unwrap();
    e.finish().unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs").join(name)).unwrap()
}

async fn cluster_with_steps(moto: &MotoServer, n: usize) -> (String, Vec<String>) {
    let conf = aws_sdk_emr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let emr = aws_sdk_emr::Client::from_conf(conf);
    let cluster = emr
        .run_job_flow()
        .name("cli-test")
        .release_label("emr-7.12.0")
        .log_uri("s3://raw/emr-logs/")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_count(1)
                .master_instance_type("m6g.xlarge")
                .keep_job_flow_alive_when_no_steps(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = cluster.job_flow_id().unwrap().to_string();
    let request = (0..n).fold(emr.add_job_flow_steps().job_flow_id(&id), |r, i| {
        r.steps(
            StepConfig::builder()
                .name(format!("2021-10-31-abc step{i}"))
                .action_on_failure(ActionOnFailure::Continue)
                .hadoop_jar_step(HadoopJarStepConfig::builder().jar("command-runner.jar").args("true").build())
                .build(),
        )
    });
    let steps = request.send().await.unwrap().step_ids().to_vec();
    (id, steps)
}

fn driver(moto: &MotoServer) -> Command {
    let mut cmd = Command::cargo_bin("emr-driver").unwrap();
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("EMR_DRIVER_CLUSTER_ID");
    cmd
}

#[tokio::test]
async fn status_wait_and_logs_against_moto() {
    let moto = MotoServer::start();
    let (cluster, steps) = cluster_with_steps(&moto, 5).await;

    // status --output json: exactly one JSON document on stdout, the five steps in order asked.
    let out =
        driver(&moto).args(["--output", "json", "status", "--cluster-id", &cluster]).args(&steps).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, steps.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(listed[0]["state"], "RUNNING");
    assert_eq!(listed[1]["state"], "PENDING");

    // status as text: a table.
    let out = driver(&moto).args(["status", "--cluster-id", &cluster]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("STEP"), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");

    // An unknown step id: said on stderr, exit code 6.
    let out = driver(&moto).args(["status", "--cluster-id", &cluster, "s-NOPE"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s-NOPE"));

    // wait with a deadline of zero: one poll, then "timed out" (moto never finishes steps),
    // exit code 5, and nothing but JSON events on stdout.
    let out = driver(&moto)
        .args(["--output", "json", "wait", "--cluster-id", &cluster, "--timeout", "0s"])
        .args(&steps)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 5, "one first-sighting event per step: {stdout}");
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["event"], "step_state");
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("gave up waiting") && stderr.contains("--timeout"), "{stderr}");

    // logs: the step's stderr and the driver container's stderr in moto's S3.
    let s3_conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_conf);
    s3.create_bucket().bucket("raw").send().await.unwrap();
    let step = &steps[0];
    let put = |key: String, body: Vec<u8>| {
        let s3 = s3.clone();
        async move { s3.put_object().bucket("raw").key(key).body(body.into()).send().await.unwrap() }
    };
    put(format!("emr-logs/{cluster}/steps/{step}/stderr.gz"), gz(&fixture("step_stderr_cluster_mode_failed.txt")))
        .await;
    put(
        format!(
            "emr-logs/{cluster}/containers/application_1635638400000_0004/container_1635638400000_0004_01_000001/stderr.gz"
        ),
        gz(&fixture("container_stderr_python_traceback_py4j.txt")),
    )
    .await;
    let out = driver(&moto).args(["logs", &cluster, step, "--log-wait", "0s"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("probable cause (Python exception)"), "{text}");
    assert!(text.contains("ValueError: time data"), "{text}");
    assert!(text.contains(&format!("s3://raw/emr-logs/{cluster}/steps/{step}/stderr.gz")), "{text}");
}

#[test]
fn logs_of_a_local_step_from_the_lake() {
    let lake = tempfile::tempdir().unwrap();
    let dir = lake.path().join("raw/emr-logs/local/s-LABC");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stderr.gz"), gz(&fixture("container_stderr_oom_killed.txt"))).unwrap();
    let out = Command::cargo_bin("emr-driver")
        .unwrap()
        .args([
            "--output",
            "json",
            "logs",
            "local",
            "s-LABC",
            "--log-uri",
            "s3://raw/emr-logs/local/",
            "--log-wait",
            "0s",
        ])
        .arg("--lake")
        .arg(lake.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let diagnosis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diagnosis["cause"]["kind"], "out_of_memory");
    assert_eq!(diagnosis["logs"][0], "s3://raw/emr-logs/local/s-LABC/stderr.gz");

    let out = Command::cargo_bin("emr-driver").unwrap().args(["logs", "local", "s-LABC"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-uri"));
}
