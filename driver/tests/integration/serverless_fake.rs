//! EMR Serverless orchestration: `run` with the real `ServerlessRunner` and the real SDK,
//! against a stateful in-process fake of the EMR Serverless HTTP API (the job run life cycle:
//! SUBMITTED → RUNNING → SUCCESS / FAILED, CANCELLING → CANCELLED, client token idempotency),
//! with the injected clock: completion with resource usage, a failure diagnosed from literal
//! driver log lines, cancel on a signal, the deadline, and a rerun that skips completed job
//! runs and attaches to running ones. moto cannot do these (its job runs are SUCCESS at once
//! and it ignores the client token); serverless_moto.rs covers the calls against moto.

use emr_driver::inputs::BoundInputs;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_emrserverless::config::retry::RetryConfig;
use aws_sdk_emrserverless::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use chrono::TimeZone;
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::ArtifactSet;
use emr_driver::diagnose::DiagnoseOptions;
use emr_driver::error::ExitCode;
use emr_driver::manifest::{ClusterRef, RunManifest, RunState};
use emr_driver::pipeline::{Databases, Pipeline, Progress, ProvidedRunner, RunOptions, RunnerProvider};
use emr_driver::plan::Plan;
use emr_driver::poll::{PollOptions, Quiet};
use emr_driver::runner::serverless::{ensure_application, ServerlessRunner};
use emr_driver::runner::StepRunner;
use emr_driver::serverless::{create_application_request, JobRunContext};
use emr_driver::step::StepConfig;
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};
use tokio::sync::watch;

const DATE: &str = "2021-10-31";
const APP: &str = "00fakeapp";
const ROLE: &str = "arn:aws:iam::123456789012:role/movie-analytics-dev-emr-serverless-runtime";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Script {
    Complete,
    Fail,
    Hang,
}

#[derive(Clone, Debug)]
struct Job {
    id: String,
    name: String,
    token: String,
    state: &'static str,
    details: String,
    created: i64,
    args: Vec<String>,
    log_uri: String,
}

/// The fake service's state, shared with the test.
struct Api {
    lake: PathBuf,
    app_state: &'static str,
    jobs: Vec<Job>,
    scripts: HashMap<&'static str, Script>,
    /// `METHOD path?query` of every request.
    requests: Vec<String>,
    next: usize,
    now: i64,
}

type Shared = Arc<Mutex<Api>>;

fn key_of(name: &str) -> &str {
    name.rsplit(' ').next().unwrap()
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

impl Api {
    fn new(lake: PathBuf, scripts: &[(&'static str, Script)]) -> Shared {
        Arc::new(Mutex::new(Api {
            lake,
            app_state: "STARTED",
            jobs: Vec::new(),
            scripts: scripts.iter().copied().collect(),
            requests: Vec::new(),
            next: 0,
            now: 1_635_638_400,
        }))
    }

    fn write(&self, uri: &str, bytes: &[u8]) {
        let uri = ObjectUri::parse(uri).unwrap();
        let path = self.lake.join(&uri.bucket).join(&uri.key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// What the real job writes when it succeeds: its metrics file.
    fn write_metrics(&self, job: &Job) {
        let metrics = job.args.iter().position(|a| a == "--metrics").map(|i| job.args[i + 1].clone()).unwrap();
        let source = match key_of(&job.name) {
            "classify_reviews" => Some("movie_review"),
            "parse_logs" => Some("log_reviews"),
            _ => None,
        };
        let mut doc = serde_json::json!({"job": key_of(&job.name), "run_date": DATE, "sources": {}});
        if let Some(source) = source {
            doc["sources"][source] = serde_json::json!({"rows_in": 5, "rows_out": 4, "rows_rejected": 1, "rejected_by_reason": {"bad_id": 1}});
        }
        self.write(&format!("{metrics}/part-00000.txt"), format!("{doc}\n").as_bytes());
        // The job's output folders, complete, so the run can record and publish them.
        for (folder, data) in crate::support::job_output_folders(&job.args) {
            if data {
                self.write(&format!("{folder}/part-00000-fake.bin"), job.name.as_bytes());
            }
            self.write(&format!("{folder}/_SUCCESS"), b"");
        }
    }

    /// One poll moves every job one step along its life cycle.
    fn advance(&mut self) {
        let mut done = Vec::new();
        for i in 0..self.jobs.len() {
            let script = self.scripts.get(key_of(&self.jobs[i].name)).copied().unwrap_or(Script::Complete);
            let job = &mut self.jobs[i];
            let before = job.state;
            job.state = match (job.state, script) {
                ("SUBMITTED", _) => "RUNNING",
                ("RUNNING", Script::Complete) => "SUCCESS",
                ("RUNNING", Script::Fail) => "FAILED",
                ("CANCELLING", _) => "CANCELLED",
                (state, _) => state,
            };
            if job.state == "FAILED" && job.details.is_empty() {
                job.details = "Job failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: ValueError: the fake job broke...".into();
            }
            // What a job writes, it writes once, when it ends (not again on every poll).
            if job.state != before {
                done.push(i);
            }
        }
        for i in done {
            let job = self.jobs[i].clone();
            let prefix = format!("{}applications/{APP}/jobs/{}/SPARK_DRIVER/", job.log_uri, job.id);
            match job.state {
                "SUCCESS" => self.write_metrics(&job),
                "FAILED" => self.write(
                    &format!("{prefix}stderr.gz"),
                    &gz("26/11/28 06:40:11 INFO SparkContext: Running Spark version 3.5.6-amzn-0\n\
                         Traceback (most recent call last):\n  File \"/tmp/run_job.py\", line 9, in <module>\n\
                         ValueError: the fake job broke\n\
                         26/11/28 06:40:12 INFO ShutdownHookManager: Shutdown hook called\n"),
                ),
                _ => {}
            }
        }
    }

    fn summary(&self, job: &Job) -> serde_json::Value {
        serde_json::json!({
            "applicationId": APP, "id": job.id, "name": job.name,
            "arn": format!("arn:aws:emr-serverless:us-east-1:123456789012:/applications/{APP}/jobruns/{}", job.id),
            "createdBy": "arn:aws:iam::123456789012:role/driver", "createdAt": job.created, "updatedAt": self.now,
            "executionRole": ROLE, "state": job.state, "stateDetails": job.details, "releaseLabel": "emr-7.12.0",
        })
    }

    fn handle(&mut self, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, serde_json::Value) {
        self.requests.push(if query.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{query}")
        });
        self.now += 1;
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["applications", _]) => (
                200,
                serde_json::json!({"application": {"applicationId": APP, "name": "movie-analytics",
                    "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00fakeapp",
                    "releaseLabel": "emr-7.12.0", "type": "SPARK", "state": self.app_state,
                    "createdAt": 1, "updatedAt": 2}}),
            ),
            ("POST", ["applications", _, "start"]) => {
                self.app_state = "STARTING";
                (200, serde_json::json!({}))
            }
            ("POST", ["applications", _, "jobruns"]) => {
                let request: serde_json::Value = serde_json::from_slice(body).unwrap();
                let token = request["clientToken"].as_str().unwrap().to_string();
                // The same client token is the same job run (the API's idempotency).
                if let Some(job) = self.jobs.iter().find(|j| j.token == token) {
                    return (200, serde_json::json!({"applicationId": APP, "jobRunId": job.id, "arn": "arn"}));
                }
                self.next += 1;
                let submit = &request["jobDriver"]["sparkSubmit"];
                let job = Job {
                    id: format!("00job{}", self.next),
                    name: request["name"].as_str().unwrap().to_string(),
                    token,
                    state: "SUBMITTED",
                    details: String::new(),
                    created: self.now,
                    args: submit["entryPointArguments"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect(),
                    log_uri: request["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]
                        ["logUri"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                };
                let id = job.id.clone();
                self.jobs.push(job);
                (200, serde_json::json!({"applicationId": APP, "jobRunId": id, "arn": "arn"}))
            }
            ("GET", ["applications", _, "jobruns"]) => {
                self.advance();
                // Newest first, as the service lists them.
                let runs: Vec<serde_json::Value> = self.jobs.iter().rev().map(|j| self.summary(j)).collect();
                (200, serde_json::json!({"jobRuns": runs}))
            }
            ("GET", ["applications", _, "jobruns", id]) => {
                let job = self.jobs.iter().find(|j| j.id == *id).unwrap();
                let mut run = self.summary(job);
                run["jobRunId"] = run["id"].take();
                run["totalResourceUtilization"] =
                    serde_json::json!({"vCPUHour": 0.5, "memoryGBHour": 2.0, "storageGBHour": 0.25});
                (200, serde_json::json!({"jobRun": run}))
            }
            ("DELETE", ["applications", _, "jobruns", id]) => {
                let job = self.jobs.iter_mut().find(|j| j.id == *id).unwrap();
                if matches!(job.state, "SUCCESS" | "FAILED" | "CANCELLED") {
                    return (400, serde_json::json!({"message": format!("job run {id} is {}", job.state)}));
                }
                job.state = "CANCELLING";
                (200, serde_json::json!({"applicationId": APP, "jobRunId": id}))
            }
            other => panic!("the fake does not serve {other:?}"),
        }
    }
}

fn client(api: &Shared) -> aws_sdk_emrserverless::Client {
    let api = Arc::clone(api);
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |request: http::Request<SdkBody>| {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        let (status, doc) = api.lock().unwrap().handle(&method, &path, &query, &body);
        let mut response = http::Response::builder().status(status).header("content-type", "application/json");
        if status == 400 {
            response = response.header("x-amzn-errortype", "ValidationException");
        }
        response.body(SdkBody::from(doc.to_string())).unwrap()
    });
    let conf = aws_sdk_emrserverless::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_emrserverless::Client::from_conf(conf)
}

struct Provider {
    runner: Arc<dyn StepRunner>,
}

#[async_trait::async_trait]
impl RunnerProvider for Provider {
    async fn provide(&self, _plan: &Plan) -> emr_driver::error::Result<ProvidedRunner> {
        Ok(ProvidedRunner {
            runner: Arc::clone(&self.runner),
            kind: "emr-serverless",
            cluster: Some(ClusterRef { id: APP.into(), created_by_run: false, kind: Some("application".into()) }),
        })
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Progress for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

struct World {
    dir: tempfile::TempDir,
    store: LocalStore,
    config: Config,
    artifacts: ArtifactSet,
    clock: Arc<FakeClock>,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(repo.join("config/pipeline.toml")).unwrap();
        let overrides = Overrides::default()
            .set("local.lake_dir", dir.path().join("lake").display().to_string())
            .set("pipeline.target", "emr-serverless")
            .set("serverless.application_id", APP)
            .set("serverless.execution_role_arn", ROLE);
        let config = Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &overrides).unwrap();
        let artifacts = ArtifactSet::build(&repo).unwrap();
        let incoming = format!("s3://{}/incoming/dt={DATE}", config.buckets.raw);
        for (name, body) in [
            ("movie_review.csv", "cid,review_str,id_review\n1,good,1\n"),
            ("log_reviews.csv", "id_review,log\n1,<reviewlog/>\n"),
            (
                "user_purchase.csv",
                "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n536365,85123A,X,6,12/1/2010 8:26,2.55,1,United Kingdom\r\n",
            ),
        ] {
            let uri = ObjectUri::parse(&format!("{incoming}/{name}")).unwrap();
            store.put_bytes(&uri, Bytes::from(body)).await.unwrap();
        }
        let start = chrono::Utc.with_ymd_and_hms(2021, 11, 1, 2, 0, 0).unwrap();
        World { dir, store, config, artifacts, clock: Arc::new(FakeClock::at(start)) }
    }

    fn api(&self, scripts: &[(&'static str, Script)]) -> Shared {
        Api::new(self.dir.path().join("lake"), scripts)
    }

    fn runner(&self, api: &Shared, plan: &Plan) -> ServerlessRunner {
        let context = JobRunContext::new(&self.config, &plan.run_id, &plan.config_hash);
        let since = self.clock.now() - chrono::Duration::hours(24);
        ServerlessRunner::new(client(api), APP, context, since)
    }

    fn pipeline(&self, api: &Shared, shutdown: watch::Receiver<Option<String>>, deadline: Duration) -> Pipeline {
        let plan = Plan::resolve(
            &self.config,
            &Overrides::default(),
            DATE,
            &self.artifacts,
            &BoundInputs::not_yet("not looked for"),
        )
        .unwrap();
        // The runner learns the run id the pipeline binds from the inputs through the step
        // names it is given; its context's run id only tags the job runs.
        let runner: Arc<dyn StepRunner> = Arc::new(self.runner(api, &plan));
        let clock: Arc<dyn Clock> = self.clock.clone();
        Pipeline {
            plan,
            store: Arc::new(self.store.clone()),
            provider: Box::new(Provider { runner }),
            clock,
            observer: Arc::new(Quiet),
            progress: Arc::new(Lines::default()),
            options: RunOptions {
                databases: Databases::default(),
                owner: "test".into(),
                break_stale_lock: false,
                force: false,
                skip_bad_purchase_rows: false,
                keep_cluster: false,
                poll: PollOptions {
                    interval: Duration::from_secs(15),
                    deadline: Some(deadline),
                    jitter_seed: Some(7),
                    ..PollOptions::default()
                },
                diagnose: DiagnoseOptions {
                    wait_for_logs: Duration::from_secs(30),
                    jitter_seed: Some(7),
                    ..Default::default()
                },
                settle: Duration::from_secs(60),
                lock_heartbeat: None,
                raw_dir: None,
                turns: None,
            },
            shutdown,
        }
    }

    async fn run(&self, api: &Shared) -> (RunManifest, emr_driver::error::Result<()>) {
        let (_tx, rx) = watch::channel(None);
        self.pipeline(api, rx, Duration::from_secs(3600)).run().await
    }
}

fn requests(api: &Shared) -> Vec<String> {
    std::mem::take(&mut api.lock().unwrap().requests)
}

#[tokio::test]
async fn a_run_completes_on_serverless_with_one_list_per_poll_and_records_the_usage() {
    let world = World::new().await;
    let api = world.api(&[]);
    let (manifest, result) = world.run(&api).await;
    result.unwrap();
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(manifest.target, "emr-serverless");
    let app = manifest.cluster.as_ref().unwrap();
    assert_eq!((app.id.as_str(), app.kind.as_deref()), (APP, Some("application")));

    let jobs = api.lock().unwrap().jobs.clone();
    assert_eq!(jobs.len(), 4, "one job run per step");
    for job in &jobs {
        assert!(job.name.starts_with(&manifest.run_id), "{}", job.name);
        assert_eq!(job.token, format!("{}-{}-1", manifest.run_id, key_of(&job.name)));
        assert_eq!(job.args[0], key_of(&job.name), "entryPointArguments start with the job, as on EMR");
    }
    // Every Spark step: its job run id, its usage; the run: the sum.
    for step in manifest.steps.iter().filter(|s| s.kind == "emr-serverless") {
        assert!(step.step_id.as_deref().unwrap().starts_with("00job"), "{step:?}");
        assert_eq!(step.usage.as_ref().unwrap().vcpu_hours, Some(0.5));
    }
    let total = manifest.usage.as_ref().unwrap();
    assert_eq!((total.vcpu_hours, total.memory_gb_hours, total.storage_gb_hours), (Some(2.0), Some(8.0), Some(1.0)));
    assert!(
        manifest.summary().contains("used: 2.000 vCPU-h, 8.000 GB-h memory, 1.000 GB-h storage"),
        "{}",
        manifest.summary()
    );
    assert!(manifest.summary().contains(&format!("application {APP}")), "{}", manifest.summary());

    // Polling: each wait poll is ONE ListJobRuns filtered by creation time, whatever the
    // number of job runs; GetJobRun only once per job at the end (usage).
    let sent = requests(&api);
    let polls: Vec<&String> =
        sent.iter().filter(|r| r.contains("/jobruns?") && r.contains("createdAtAfter=")).collect();
    assert!(!polls.is_empty(), "{sent:#?}");
    assert!(polls.iter().all(|r| r.contains("createdAtAfter=2021-10-31T02%3A00%3A00Z")), "{polls:#?}");
    assert_eq!(sent.iter().filter(|r| r.starts_with("GET") && r.contains("/jobruns/")).count(), 4, "{sent:#?}");
    assert_eq!(sent.iter().filter(|r| r.starts_with("POST")).count(), 4);
}

#[tokio::test]
async fn a_failed_job_run_is_diagnosed_from_its_driver_log() {
    let world = World::new().await;
    let api = world.api(&[("parse_logs", Script::Fail)]);
    let (manifest, result) = world.run(&api).await;
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), ExitCode::StepFailed);
    let step = manifest.steps.iter().find(|s| s.key == "parse_logs").unwrap();
    assert_eq!(step.state, "FAILED");
    let failure = step.failure.as_deref().unwrap();
    assert!(failure.contains("ValueError: the fake job broke"), "{failure}");
    assert!(failure.contains("/SPARK_DRIVER/stderr.gz"), "the log URI is given: {failure}");
    assert!(step
        .logs
        .as_deref()
        .unwrap()
        .ends_with(&format!("applications/{APP}/jobs/{}/SPARK_DRIVER/", step.step_id.as_deref().unwrap())));
    // classify_reviews (same wave) completed; nothing after the wave was submitted.
    assert_eq!(api.lock().unwrap().jobs.len(), 2);
}

#[tokio::test]
async fn a_signal_cancels_this_runs_job_runs_and_waits_for_them_to_settle() {
    let world = World::new().await;
    let api = world.api(&[("classify_reviews", Script::Hang), ("parse_logs", Script::Hang)]);
    let (tx, rx) = watch::channel(None);
    let pipeline = world.pipeline(&api, rx, Duration::from_secs(3600));
    let api2 = Arc::clone(&api);
    let run = tokio::spawn(pipeline.run());
    // Once both job runs are RUNNING, SIGTERM arrives.
    loop {
        if api2.lock().unwrap().jobs.iter().filter(|j| j.state == "RUNNING").count() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    tx.send(Some("SIGTERM".into())).unwrap();
    let (manifest, result) = run.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::Cancelled);
    assert_eq!(manifest.state, RunState::Cancelled);
    let sent = requests(&api);
    assert_eq!(sent.iter().filter(|r| r.starts_with("DELETE")).count(), 2, "{sent:#?}");
    assert!(api.lock().unwrap().jobs.iter().all(|j| j.state == "CANCELLED"), "settled");
    for key in ["classify_reviews", "parse_logs"] {
        assert_eq!(manifest.steps.iter().find(|s| s.key == key).unwrap().state, "CANCELLED");
    }
}

#[tokio::test]
async fn the_deadline_cancels_the_job_runs_and_exits_timed_out() {
    let world = World::new().await;
    let api = world.api(&[("parse_logs", Script::Hang)]);
    let (_tx, rx) = watch::channel(None);
    let (manifest, result) = world.pipeline(&api, rx, Duration::from_secs(600)).run().await;
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::TimedOut);
    assert_eq!(manifest.state, RunState::TimedOut);
    let jobs = api.lock().unwrap().jobs.clone();
    let parse = jobs.iter().find(|j| key_of(&j.name) == "parse_logs").unwrap();
    assert_eq!(parse.state, "CANCELLED");
    assert!(world.clock.slept() >= Duration::from_secs(600), "the deadline is on the injected clock");
}

#[tokio::test]
async fn a_rerun_skips_completed_job_runs_attaches_to_running_ones_and_retries_failed_ones() {
    let world = World::new().await;
    // A first attempt: classify_reviews succeeds, parse_logs fails.
    let api = world.api(&[("parse_logs", Script::Fail)]);
    let (first, result) = world.run(&api).await;
    assert!(result.is_err());
    // The manifest of the first attempt is gone (say the driver died before writing it):
    // only the application's job runs tell what happened.
    world.store.delete(&ObjectUri::parse(&first.manifest_uri).unwrap()).await.unwrap();
    {
        let mut state = api.lock().unwrap();
        state.scripts.clear();
        // parse_logs was retried by someone and is starting now (RUNNING at the next listing).
        let failed = state.jobs.iter().find(|j| key_of(&j.name) == "parse_logs").unwrap().clone();
        state.jobs.push(Job { id: "00jobrunning".into(), state: "SUBMITTED", token: "other".into(), ..failed });
    }
    requests(&api);
    let (again, result) = world.run(&api).await;
    result.unwrap();
    assert_eq!(again.run_id, first.run_id);
    let step = |key: &str| again.steps.iter().find(|s| s.key == key).unwrap().clone();
    assert!(step("classify_reviews").reused, "the completed job run was skipped");
    assert_eq!(step("parse_logs").step_id.as_deref(), Some("00jobrunning"), "attached to the running job run");
    let sent = requests(&api);
    let started: Vec<String> = api.lock().unwrap().jobs.iter().skip(3).map(|j| key_of(&j.name).to_string()).collect();
    assert_eq!(started, vec!["build_dimensions", "build_fact"], "{sent:#?}");
}

#[tokio::test]
async fn a_retried_submit_starts_one_job_run_and_a_rerun_after_a_failure_a_new_attempt() {
    let world = World::new().await;
    let api = world.api(&[("parse_logs", Script::Fail)]);
    let plan = Plan::resolve(
        &world.config,
        &Overrides::default(),
        DATE,
        &world.artifacts,
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap();
    let runner = world.runner(&api, &plan);
    let step: StepConfig = plan.step("parse_logs").unwrap().config.clone();
    let first = runner.submit(std::slice::from_ref(&step)).await.unwrap();
    // The same submit again (a retry after a lost answer): the same job run.
    let again = runner.submit(std::slice::from_ref(&step)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(api.lock().unwrap().jobs.len(), 1);
    // It fails; a later submit of the same step is attempt 2, a new job run.
    runner.list_steps(&first).await.unwrap();
    runner.list_steps(&first).await.unwrap();
    assert_eq!(api.lock().unwrap().jobs[0].state, "FAILED");
    let retry = runner.submit(std::slice::from_ref(&step)).await.unwrap();
    assert_ne!(retry, first);
    assert!(api.lock().unwrap().jobs[1].token.ends_with("-2"));
}

#[tokio::test]
async fn a_stopped_application_is_started_and_waited_for() {
    let world = World::new().await;
    let api = world.api(&[]);
    api.lock().unwrap().app_state = "STOPPED";
    let request = create_application_request(&world.config, "r", "0123456789abcdef");
    let api2 = Arc::clone(&api);
    // The application reaches STARTED a while after StartApplication.
    let flip = tokio::spawn(async move {
        loop {
            {
                let mut state = api2.lock().unwrap();
                if state.app_state == "STARTING" && state.requests.iter().filter(|r| r.starts_with("GET")).count() >= 3
                {
                    state.app_state = "STARTED";
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
    });
    let ready = ensure_application(
        &client(&api),
        Some(APP),
        &request,
        world.clock.as_ref(),
        Duration::from_secs(10),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    flip.await.unwrap();
    assert_eq!(ready.id, APP);
    assert!(!ready.created_by_run, "a configured application is not the run's");
    let sent = requests(&api);
    assert_eq!(sent.iter().filter(|r| r.ends_with("/start")).count(), 1, "{sent:#?}");
    assert!(world.clock.slept() >= Duration::from_secs(10));
}
