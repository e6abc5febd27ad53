//! The EMR Serverless adapter at the HTTP level against a real moto server: create (and find
//! again) and start an application, StartJobRun, ListJobRuns (with its createdAtAfter filter),
//! GetJobRun, CancelJobRun; and `run --target emr-serverless` end to end through the binary.
//!
//! What moto does not do, said where it matters: its job runs are SUCCESS as soon as they are
//! started (so nothing runs, and the job metrics a real job writes are put in place by the
//! test), it ignores `clientToken` (two StartJobRun with one token make two job runs: the
//! idempotency is tested against the fake in serverless_fake.rs), it reports no
//! `totalResourceUtilization`, and it truncates `createdAt` to midnight.

use crate::support;
use emr_driver::inputs::BoundInputs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use emr_driver::aws::{s3_client, sdk_config, AwsSettings};
use emr_driver::clock::FakeClock;
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::ArtifactSet;
use emr_driver::plan::Plan;
use emr_driver::runner::serverless::{ensure_application, ServerlessRunner};
use emr_driver::runner::StepRunner;
use emr_driver::serverless::{create_application_request, JobRunContext};
use emr_driver::step::StepState;
use support::moto::MotoServer;

const RAW: &str = "movie-analytics-dev-raw";
const STAGING: &str = "movie-analytics-dev-staging";
// moto checks that the role is in its account (123456789012).
const ROLE: &str = "arn:aws:iam::123456789012:role/movie-analytics-dev-emr-serverless-runtime";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(extra: &[(&str, &str)]) -> Config {
    let text = std::fs::read_to_string(repo().join("config/pipeline.toml")).unwrap();
    let overrides = extra.iter().fold(
        Overrides::default().set("pipeline.target", "emr-serverless").set("serverless.execution_role_arn", ROLE),
        |o, (k, v)| o.set(k, *v),
    );
    Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &overrides).unwrap()
}

async fn client(moto: &MotoServer) -> aws_sdk_emrserverless::Client {
    let sdk = sdk_config(&AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(moto.endpoint.clone()),
    })
    .await;
    aws_sdk_emrserverless::Client::new(&sdk)
}

#[tokio::test(flavor = "multi_thread")]
async fn application_and_job_runs_against_moto() {
    let moto = MotoServer::start();
    let emr = client(&moto).await;
    let config = config(&[("serverless.subnet_ids", "subnet-0a"), ("serverless.security_group_ids", "sg-0b")]);
    let clock = FakeClock::new();
    let request = create_application_request(&config, "r1", "0123456789abcdef");

    // No application yet: the driver creates it (with its network, capacity, auto-stop, tags).
    let ready = ensure_application(&emr, None, &request, &clock, Duration::from_secs(5), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(ready.created_by_run);
    let app = emr.get_application().application_id(&ready.id).send().await.unwrap().application.unwrap();
    assert_eq!(app.name(), Some("movie-analytics"));
    assert_eq!(app.release_label(), "emr-7.12.0");
    assert_eq!(app.state().as_str(), "STARTED");
    assert_eq!(app.network_configuration().unwrap().subnet_ids(), ["subnet-0a".to_string()]);
    assert_eq!(app.auto_stop_configuration().unwrap().idle_timeout_minutes(), Some(15));
    assert_eq!(app.tags().unwrap().get("managed-by").map(String::as_str), Some("emr-driver"));

    // A later run finds it by name instead of creating another; a stopped one is started.
    emr.stop_application().application_id(&ready.id).send().await.unwrap();
    let again = ensure_application(&emr, None, &request, &clock, Duration::from_secs(5), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.id, ready.id);
    assert!(!again.created_by_run);
    let state = emr.get_application().application_id(&ready.id).send().await.unwrap().application.unwrap();
    assert_eq!(state.state().as_str(), "STARTED");
    assert_eq!(emr.list_applications().send().await.unwrap().applications().len(), 1);

    // Job runs: one StartJobRun per step, listed with one ListJobRuns, read, cancelled.
    let artifacts = ArtifactSet::build(&repo()).unwrap();
    let plan = Plan::resolve(
        &config,
        &Overrides::default(),
        "2021-10-31",
        &artifacts,
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap();
    let context = JobRunContext::new(&config, &plan.run_id, &plan.config_hash);
    // moto stamps createdAt at midnight of today: look back a day, as the driver does.
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let runner = ServerlessRunner::new(emr.clone(), &ready.id, context, since);
    let steps: Vec<_> = plan.steps.iter().take(2).map(|s| s.config.clone()).collect();
    let ids = runner.submit(&steps).await.unwrap();
    assert_eq!(ids.len(), 2);
    let listed = runner.list_steps(&ids).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.state == StepState::Completed), "moto's job runs succeed at once: {listed:?}");
    assert_eq!(listed.iter().find(|s| s.id == ids[0]).unwrap().name, steps[0].name);
    // A filter in the future hides them: createdAtAfter reaches moto.
    let later = ServerlessRunner::new(
        emr.clone(),
        &ready.id,
        JobRunContext::new(&config, &plan.run_id, &plan.config_hash),
        chrono::Utc::now() + chrono::Duration::days(2),
    );
    assert!(later.list_steps(&ids).await.unwrap().is_empty());
    // The rerun listing (newest page) finds them by name.
    let names: Vec<String> = runner.list_steps(&[]).await.unwrap().into_iter().map(|s| s.name).collect();
    assert!(names.contains(&steps[1].name), "{names:?}");

    // GetJobRun: the request as sent (entry point, arguments, role, tags, log location).
    let job = emr.get_job_run().application_id(&ready.id).job_run_id(&ids[1]).send().await.unwrap().job_run.unwrap();
    let submit = job.job_driver().unwrap().as_spark_submit().unwrap();
    assert_eq!(submit.entry_point(), plan.artifacts.run_job_py.uri);
    assert_eq!(submit.entry_point_arguments().first().map(String::as_str), Some("parse_logs"));
    let parameters = submit.spark_submit_parameters().unwrap();
    assert!(parameters.contains(&format!("--py-files {}", plan.artifacts.pyspark_jobs_zip.uri)), "{parameters}");
    assert_eq!(job.execution_role(), ROLE);
    assert_eq!(job.tags().unwrap().get("run-id"), Some(&plan.run_id));
    assert_eq!(runner.usage(&ids).await.unwrap().len(), 0, "moto reports no totalResourceUtilization");

    // CancelJobRun: accepted, and the job run is CANCELLED.
    let outcome = runner.cancel(&ids[..1]).await.unwrap();
    assert!(outcome[0].accepted, "{outcome:?}");
    let listed = runner.list_steps(&ids[..1]).await.unwrap();
    assert_eq!(listed[0].state, StepState::Cancelled);

    // moto ignores the client token: the same request twice makes two job runs (the real
    // service returns the first; serverless_fake.rs tests the driver against that).
    let token_twice = runner.submit(&steps[..1]).await.unwrap();
    let token_again = runner.submit(&steps[..1]).await.unwrap();
    assert_ne!(token_twice, token_again, "moto now honours clientToken: move the idempotency test here");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_emr_serverless_end_to_end_against_moto() {
    let moto = MotoServer::start();
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
    let driver = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_emr-driver"));
        cmd.current_dir(repo())
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("EMR_DRIVER_SERVERLESS_EXECUTION_ROLE_ARN", ROLE)
            .env_remove("DATABASE_URL")
            .env_remove("WAREHOUSE_URL");
        cmd
    };
    let ingest = driver()
        .args(["ingest", "--target", "emr-serverless", "--date", "2021-10-31"])
        .args(["sample/movie_review.csv", "sample/log_reviews.csv", "sample/user_purchase.csv"])
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));

    // moto runs nothing: put what each job would write (its metrics, balanced, and its output
    // folders, complete) in the run's own folders. Those are named by the run id, which covers
    // the inputs' digests and is bound only when a run starts: learn it from a run pointed at
    // an application that does not exist (the application id is not part of the run id),
    // which fails before it creates or submits anything.
    let probe = driver()
        .args(["--output", "json", "run", "--target", "emr-serverless", "--date", "2021-10-31"])
        .args(["--set", "serverless.application_id=00fnoapplication"])
        .output()
        .unwrap();
    assert_ne!(probe.status.code(), Some(0), "{}", String::from_utf8_lossy(&probe.stderr));
    let probe_events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&probe.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let bound_run_id = probe_events.last().unwrap()["manifest"]["run_id"].as_str().unwrap().to_string();
    let uris = emr_driver::plan::LakeUris::new(&config(&[]), "2021-10-31", &bound_run_id);
    // The sample's record counts, so the balance holds against an independent count too.
    let jobs = [
        ("classify_reviews", Some(("movie_review", 1011))),
        ("parse_logs", Some(("log_reviews", 1003))),
        ("build_dimensions", None),
        ("build_fact", None),
    ];
    for (job, source) in jobs {
        let folder = uris.metrics[job].trim_start_matches(&format!("s3://{STAGING}/")).to_string();
        let mut doc = serde_json::json!({"job": job, "run_date": "2021-10-31", "sources": {}});
        if let Some((source, rows)) = source {
            doc["sources"][source] =
                serde_json::json!({"rows_in": rows, "rows_out": rows, "rows_rejected": 0, "rejected_by_reason": {}});
        }
        s3.put_object()
            .bucket(STAGING)
            .key(format!("{folder}/part-00000.txt"))
            .body(format!("{doc}\n").into_bytes().into())
            .send()
            .await
            .unwrap();
        for output in emr_driver::publish::step_outputs(&uris, job).unwrap() {
            // (The metrics folder holds its metrics line only, beside the marker.)
            let data = !output.name.starts_with("_metrics/");
            for (name, body) in [("part-00000.bin", &b"moto"[..]), ("_SUCCESS", &b""[..])] {
                if name != "_SUCCESS" && !data {
                    continue;
                }
                let key = output.uri.join(name).key;
                s3.put_object().bucket(STAGING).key(key).body(body.to_vec().into()).send().await.unwrap();
            }
        }
    }

    let run = driver()
        .args(["--output", "json", "run", "--target", "emr-serverless", "--date", "2021-10-31"])
        .args(["--set", "emr.poll_interval_seconds=1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let manifest = &events.last().unwrap()["manifest"];
    assert_eq!(run.status.code(), Some(0), "stderr:\n{stderr}\nmanifest: {manifest:#}");
    assert_eq!(manifest["state"], "succeeded");
    assert_eq!(manifest["target"], "emr-serverless");
    assert_eq!(manifest["cluster"]["kind"], "application");
    assert_eq!(manifest["cluster"]["created_by_run"], true);
    let run_id = manifest["run_id"].as_str().unwrap().to_string();
    assert_eq!(run_id, bound_run_id);

    // Four job runs on the application the run created, named and tagged with the run id.
    let emr = client(&moto).await;
    let app = manifest["cluster"]["id"].as_str().unwrap();
    let jobs = emr.list_job_runs().application_id(app).send().await.unwrap();
    let mut names: Vec<String> = jobs.job_runs().iter().filter_map(|j| j.name().map(str::to_string)).collect();
    names.sort();
    let want: Vec<String> = ["build_dimensions", "build_fact", "classify_reviews", "parse_logs"]
        .iter()
        .map(|k| format!("{run_id} {k}"))
        .collect();
    assert_eq!(names, want);
    for step in manifest["steps"].as_array().unwrap().iter().filter(|s| s["kind"] == "emr-serverless") {
        let id = step["step_id"].as_str().unwrap();
        assert!(jobs.job_runs().iter().any(|j| j.id() == id), "{step}");
        assert_eq!(step["state"], "COMPLETED");
    }
    // `status` and `wait` read job runs as they read steps.
    let ids: Vec<String> = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "emr-serverless")
        .map(|s| s["step_id"].as_str().unwrap().to_string())
        .collect();
    let status = driver().args(["--output", "json", "status", "--application-id", app]).args(&ids).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let states: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["COMPLETED"; 4]);
    let wait = driver().args(["wait", "--application-id", app, "--timeout", "30s"]).args(&ids).output().unwrap();
    assert_eq!(wait.status.code(), Some(0), "{}", String::from_utf8_lossy(&wait.stderr));

    // A rerun of the same date skips every job run.
    let rerun = driver()
        .args(["--output", "json", "run", "--target", "emr-serverless", "--date", "2021-10-31"])
        .output()
        .unwrap();
    assert_eq!(rerun.status.code(), Some(0), "{}", String::from_utf8_lossy(&rerun.stderr));
    let jobs_after = emr.list_job_runs().application_id(app).send().await.unwrap();
    assert_eq!(jobs_after.job_runs().len(), 4, "the rerun started job runs again");
}
