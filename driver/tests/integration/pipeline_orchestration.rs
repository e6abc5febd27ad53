//! The `run` orchestration against a stateful fake step runner (no Spark, no AWS, no real
//! sleeps): a rerun of the same date submits nothing new, a rerun attaches to running steps
//! instead of submitting twice, a held lock refuses a second run, a failed step stops the run
//! with its cause, and a signal cancels the running steps.

use emr_driver::inputs::BoundInputs;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::ArtifactSet;
use emr_driver::diagnose::DiagnoseOptions;
use emr_driver::error::ExitCode;
use emr_driver::lock::{LockRequest, RunLock};
use emr_driver::manifest::{RunManifest, RunState};
use emr_driver::pipeline::{Databases, Pipeline, Progress, ProvidedRunner, RunOptions, RunnerProvider};
use emr_driver::plan::Plan;
use emr_driver::poll::{PollOptions, Quiet};
use emr_driver::runner::{CancelOutcome, RunnerError, StepRunner, Termination};
use emr_driver::step::{FailureDetails, StepConfig, StepState, StepStatus};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};
use tokio::sync::watch;

const DATE: &str = "2021-10-31";

/// What the fake does with a step it is given.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// Completes at once (writing the job's metrics file, as the real job does).
    Complete,
    /// Fails at once, with a Python traceback in its stderr log.
    Fail,
    /// Stays RUNNING until cancelled.
    Hang,
}

struct FakeRunner {
    store: LocalStore,
    steps: Mutex<Vec<StepStatus>>,
    submitted: AtomicUsize,
    cancelled: Mutex<Vec<String>>,
    script: HashMap<&'static str, Script>,
    /// Listing calls so far.
    lists: AtomicUsize,
    /// Steps that were on the cluster before the run complete at this listing (0: never).
    finish_existing_on_list: AtomicUsize,
}

impl FakeRunner {
    fn new(store: LocalStore, script: &[(&'static str, Script)]) -> Arc<Self> {
        Arc::new(FakeRunner {
            store,
            steps: Mutex::new(Vec::new()),
            submitted: AtomicUsize::new(0),
            cancelled: Mutex::new(Vec::new()),
            script: script.iter().copied().collect(),
            lists: AtomicUsize::new(0),
            finish_existing_on_list: AtomicUsize::new(0),
        })
    }

    /// Steps the cluster already has (from an earlier driver) before this run starts.
    fn with_existing(self: Arc<Self>, existing: Vec<StepStatus>) -> Arc<Self> {
        self.steps.lock().unwrap().extend(existing);
        self
    }

    fn submitted(&self) -> usize {
        self.submitted.load(Ordering::SeqCst)
    }

    async fn write_metrics(&self, config: &StepConfig) {
        let args = &config.hadoop_jar_step.args;
        let job = job_of(config);
        let metrics = args.iter().position(|a| a == "--metrics").map(|i| args[i + 1].clone()).unwrap();
        let source = match job {
            "classify_reviews" => Some("movie_review"),
            "parse_logs" => Some("log_reviews"),
            _ => None,
        };
        let mut doc = serde_json::json!({"job": job, "run_date": DATE, "sources": {}});
        if let Some(source) = source {
            doc["sources"][source] = serde_json::json!({"rows_in": 5, "rows_out": 4, "rows_rejected": 1,
                "rejected_by_reason": {"bad_id": 1}});
        }
        let uri = ObjectUri::parse(&format!("{metrics}/part-00000.txt")).unwrap();
        self.store.put_bytes(&uri, Bytes::from(format!("{doc}\n"))).await.unwrap();
    }
}

fn job_of(config: &StepConfig) -> &str {
    config.name.rsplit(' ').next().unwrap()
}

#[async_trait]
impl StepRunner for FakeRunner {
    fn describe(&self) -> String {
        "fake cluster".into()
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        let mut ids = Vec::new();
        for config in steps {
            let n = self.submitted.fetch_add(1, Ordering::SeqCst);
            let id = format!("s-FAKE{n}");
            let script = self.script.get(job_of(config)).copied().unwrap_or(Script::Complete);
            let (state, failure) = match script {
                Script::Complete => {
                    self.write_metrics(config).await;
                    (StepState::Completed, None)
                }
                Script::Fail => {
                    let log = ObjectUri::parse(&format!("s3://logs/steps/{id}/stderr")).unwrap();
                    let text = "Traceback (most recent call last):\n  File \"run_job.py\", line 9, in <module>\nValueError: the fake job broke\n";
                    self.store.put_bytes(&log, Bytes::from(text)).await.unwrap();
                    (
                        StepState::Failed,
                        Some(FailureDetails { reason: Some("Unknown Error.".into()), ..Default::default() }),
                    )
                }
                Script::Hang => (StepState::Running, None),
            };
            self.steps.lock().unwrap().push(StepStatus {
                id: id.clone(),
                name: config.name.clone(),
                state,
                failure,
                started_at: None,
                ended_at: None,
            });
            ids.push(id);
        }
        Ok(ids)
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        let calls = self.lists.fetch_add(1, Ordering::SeqCst) + 1;
        let mut steps = self.steps.lock().unwrap();
        if calls == self.finish_existing_on_list.load(Ordering::SeqCst) {
            for step in steps.iter_mut().filter(|s| s.id.starts_with("s-OLD")) {
                step.state = StepState::Completed;
            }
        }
        Ok(steps.iter().filter(|s| ids.is_empty() || ids.contains(&s.id)).cloned().collect())
    }

    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        let mut steps = self.steps.lock().unwrap();
        let mut out = Vec::new();
        for step in steps.iter_mut().filter(|s| ids.contains(&s.id) && !s.state.is_terminal()) {
            step.state = StepState::Cancelled;
            self.cancelled.lock().unwrap().push(step.id.clone());
            out.push(CancelOutcome { step_id: step.id.clone(), accepted: true, reason: None });
        }
        Ok(out)
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        Some(ObjectUri::parse(&format!("s3://logs/steps/{step_id}/")).unwrap())
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        None
    }

    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        Ok(Termination::NotApplicable)
    }
}

struct FakeProvider(Arc<FakeRunner>);

#[async_trait]
impl RunnerProvider for FakeProvider {
    async fn provide(&self, _plan: &Plan) -> emr_driver::error::Result<ProvidedRunner> {
        Ok(ProvidedRunner { runner: self.0.clone(), kind: "emr", cluster: None })
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
    _dir: tempfile::TempDir,
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
        let lake = dir.path().join("lake").display().to_string();
        let overrides = Overrides::default().set("local.lake_dir", lake);
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
        World { _dir: dir, store, config, artifacts, clock: Arc::new(FakeClock::new()) }
    }

    fn plan(&self) -> Plan {
        Plan::resolve(
            &self.config,
            &Overrides::default(),
            DATE,
            &self.artifacts,
            &BoundInputs::not_yet("not looked for"),
        )
        .unwrap()
    }

    fn pipeline(&self, runner: Arc<FakeRunner>, shutdown: watch::Receiver<Option<String>>) -> Pipeline {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Pipeline {
            plan: self.plan(),
            store: Arc::new(self.store.clone()),
            provider: Box::new(FakeProvider(runner)),
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
                poll: PollOptions { interval: Duration::from_secs(1), jitter_seed: Some(7), ..PollOptions::default() },
                diagnose: DiagnoseOptions {
                    wait_for_logs: Duration::from_secs(5),
                    jitter_seed: Some(7),
                    ..Default::default()
                },
                settle: Duration::from_secs(10),
                lock_heartbeat: None,
                raw_dir: None,
                turns: None,
            },
            shutdown,
        }
    }

    async fn run(&self, runner: Arc<FakeRunner>) -> (RunManifest, emr_driver::error::Result<()>) {
        let (_tx, rx) = watch::channel(None);
        self.pipeline(runner, rx).run().await
    }
}

#[tokio::test]
async fn a_rerun_of_the_same_date_submits_nothing_new() {
    let world = World::new().await;
    let first = FakeRunner::new(world.store.clone(), &[]);
    let (manifest, result) = world.run(first.clone()).await;
    result.unwrap();
    assert_eq!(first.submitted(), 4);
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(manifest.sources["movie_review"].rows_in, 5);

    // A new driver process (a new runner that knows nothing) for the same date and inputs.
    let second = FakeRunner::new(world.store.clone(), &[]);
    let (again, result) = world.run(second.clone()).await;
    result.unwrap();
    assert_eq!(second.submitted(), 0, "the rerun submitted steps again");
    assert_eq!(again.run_id, manifest.run_id);
    assert!(again.steps.iter().filter(|s| s.kind != "driver").all(|s| s.reused && s.state == "COMPLETED"));
    // The reused steps still report their figures.
    assert_eq!(again.sources, manifest.sources);

    // --force runs everything again.
    let third = FakeRunner::new(world.store.clone(), &[]);
    let mut pipeline = world.pipeline(third.clone(), watch::channel(None).1);
    pipeline.options.force = true;
    pipeline.run().await.1.unwrap();
    assert_eq!(third.submitted(), 4);
}

#[tokio::test]
async fn new_input_content_is_a_new_run() {
    let world = World::new().await;
    let first = FakeRunner::new(world.store.clone(), &[]);
    let (manifest, result) = world.run(first).await;
    result.unwrap();
    let logs =
        ObjectUri::parse(&format!("s3://{}/incoming/dt={DATE}/log_reviews.csv", world.config.buckets.raw)).unwrap();
    world.store.put_bytes(&logs, Bytes::from_static(b"id_review,log\n1,<reviewlog/>\n2,<reviewlog/>\n")).await.unwrap();
    let second = FakeRunner::new(world.store.clone(), &[]);
    let (again, result) = world.run(second.clone()).await;
    result.unwrap();
    assert_ne!(again.run_id, manifest.run_id);
    assert_eq!(second.submitted(), 4);
}

#[tokio::test]
async fn a_rerun_attaches_to_running_steps_instead_of_submitting_twice() {
    let world = World::new().await;
    // A first attempt whose driver died: its manifest says nothing completed, but the cluster
    // still runs its first two steps. Learn the run id from a failed attempt.
    let failing =
        FakeRunner::new(world.store.clone(), &[("classify_reviews", Script::Fail), ("parse_logs", Script::Fail)]);
    let (manifest, result) = world.run(failing).await;
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::StepFailed);
    let running = |key: &str, id: &str| StepStatus {
        id: id.into(),
        name: format!("{} {key}", manifest.run_id),
        state: StepState::Running,
        failure: None,
        started_at: None,
        ended_at: None,
    };
    let cluster = FakeRunner::new(world.store.clone(), &[])
        .with_existing(vec![running("classify_reviews", "s-OLD1"), running("parse_logs", "s-OLD2")]);
    // The old steps finish while the new driver polls them (on its third listing).
    cluster.finish_existing_on_list.store(3, Ordering::SeqCst);
    // Metrics of the attached steps, as the old jobs would have written them.
    let plan = world.plan();
    for (job, source) in [("classify_reviews", "movie_review"), ("parse_logs", "log_reviews")] {
        let uri = ObjectUri::parse(&format!("{}/part-00000.txt", plan.uris.metrics[job])).unwrap();
        let doc = serde_json::json!({"job": job, "sources": {source: {"rows_in": 2, "rows_out": 2, "rows_rejected": 0, "rejected_by_reason": {}}}});
        world.store.put_bytes(&uri, Bytes::from(doc.to_string())).await.unwrap();
    }
    let (again, result) = world.run(cluster.clone()).await;
    result.unwrap();
    assert!(cluster.lists.load(Ordering::SeqCst) >= 3, "the driver never polled the attached steps");
    assert_eq!(again.run_id, manifest.run_id);
    // Only the two later steps were submitted; the first wave was attached to.
    assert_eq!(cluster.submitted(), 2);
    let ids: Vec<_> = again.steps.iter().filter_map(|s| s.step_id.clone()).collect();
    assert!(ids.contains(&"s-OLD1".to_string()) && ids.contains(&"s-OLD2".to_string()), "{ids:?}");
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_run_of_the_date() {
    let world = World::new().await;
    let plan = world.plan();
    let lock_uri = ObjectUri::parse(&plan.uris.lock).unwrap();
    let request = LockRequest {
        owner: "nightly".into(),
        run_id: "other-run".into(),
        ttl: Duration::from_secs(3600),
        break_stale: false,
    };
    let _held = RunLock::acquire(&world.store, &lock_uri, &request, world.clock.as_ref()).await.unwrap();

    let runner = FakeRunner::new(world.store.clone(), &[]);
    let (_, result) = world.run(runner.clone()).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    assert!(err.to_string().contains("other-run"), "{err}");
    assert_eq!(runner.submitted(), 0);
    // The holder's lock is untouched.
    assert!(world.store.get_bytes(&lock_uri).await.unwrap().windows(9).any(|w| w == b"other-run"));
}

#[tokio::test]
async fn a_failed_step_stops_the_run_with_its_cause_and_releases_the_lock() {
    let world = World::new().await;
    let runner = FakeRunner::new(world.store.clone(), &[("parse_logs", Script::Fail)]);
    let (manifest, result) = world.run(runner.clone()).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::StepFailed);
    assert!(err.to_string().contains("parse_logs"), "{err}");
    let parse = manifest.steps.iter().find(|s| s.key == "parse_logs").unwrap();
    assert!(parse.failure.as_deref().unwrap().contains("ValueError: the fake job broke"), "{:?}", parse.failure);
    // The later waves never started, and the warehouse load did not run.
    assert_eq!(runner.submitted(), 2);
    assert_eq!(manifest.state, RunState::Failed);
    let lock = ObjectUri::parse(&world.plan().uris.lock).unwrap();
    assert!(world.store.head(&lock).await.unwrap().is_none(), "the lock was not released");
    // The manifest is in the staging bucket.
    let saved: RunManifest = serde_json::from_slice(
        &world.store.get_bytes(&ObjectUri::parse(&manifest.manifest_uri).unwrap()).await.unwrap(),
    )
    .unwrap();
    assert_eq!(saved.state, RunState::Failed);
}

#[tokio::test]
async fn user_purchase_is_staged_beside_the_first_wave_and_its_failure_cancels_the_wave() {
    let world = World::new().await;
    // A purchase row with a quantity that is not a number: staging fails (no skip flag).
    let purchases =
        ObjectUri::parse(&format!("s3://{}/incoming/dt={DATE}/user_purchase.csv", world.config.buckets.raw)).unwrap();
    world
        .store
        .put_bytes(
            &purchases,
            Bytes::from_static(b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n536365,85123A,X,six,12/1/2010 8:26,2.55,1,United Kingdom\r\n"),
        )
        .await
        .unwrap();
    // The first wave's steps never end on their own: only the staging failure can end the run.
    let runner =
        FakeRunner::new(world.store.clone(), &[("classify_reviews", Script::Hang), ("parse_logs", Script::Hang)]);
    let (manifest, result) = world.run(runner.clone()).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput, "the run fails with the staging's error: {err}");
    assert!(err.chain().join(": ").contains("user_purchase"), "{err}");
    // The first wave had been submitted beside the staging (before, it waited for it), and
    // the staging's failure cancelled it.
    assert_eq!(runner.submitted(), 2);
    let mut cancelled = runner.cancelled.lock().unwrap().clone();
    cancelled.sort();
    assert_eq!(cancelled, vec!["s-FAKE0".to_string(), "s-FAKE1".to_string()]);
    let state = |key: &str| manifest.steps.iter().find(|s| s.key == key).unwrap().state.clone();
    assert_eq!(state("user_purchase"), "FAILED");
    assert_eq!(state("classify_reviews"), "CANCELLED");
    assert_eq!(state("parse_logs"), "CANCELLED");
    assert_eq!(state("build_dimensions"), "PENDING");
    assert_eq!(manifest.state, RunState::Failed);
    let staged = manifest.steps.iter().find(|s| s.key == "user_purchase").unwrap();
    assert!(staged.failure.as_deref().is_some_and(|f| f.contains("bad")), "{:?}", staged.failure);
    // The manifest keeps its order: the driver's steps and the waves, as before.
    let keys: Vec<&str> = manifest.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "deploy",
            "user_purchase",
            "classify_reviews",
            "parse_logs",
            "build_dimensions",
            "build_fact",
            "load_warehouse"
        ]
    );
}

#[tokio::test]
async fn a_signal_cancels_the_running_steps() {
    let world = World::new().await;
    let runner =
        FakeRunner::new(world.store.clone(), &[("classify_reviews", Script::Hang), ("parse_logs", Script::Hang)]);
    let (tx, rx) = watch::channel(None);
    let pipeline = world.pipeline(runner.clone(), rx);
    let handle = tokio::spawn(pipeline.run());
    // Wait until the steps are submitted, then "press Ctrl-C".
    while runner.submitted() < 2 {
        tokio::task::yield_now().await;
    }
    tx.send(Some("SIGINT".into())).unwrap();
    let (manifest, result) = handle.await.unwrap();
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::Cancelled);
    assert_eq!(manifest.state, RunState::Cancelled);
    let mut cancelled = runner.cancelled.lock().unwrap().clone();
    cancelled.sort();
    assert_eq!(cancelled, vec!["s-FAKE0".to_string(), "s-FAKE1".to_string()]);
}

#[tokio::test]
async fn build_dimensions_waits_for_another_date_holding_the_dimension_registry() {
    let world = World::new().await;
    let registry =
        ObjectUri::parse(&format!("s3://{}/_locks/dimension-registry.json", world.config.buckets.staging)).unwrap();
    let other = LockRequest {
        owner: "backfill".into(),
        run_id: "2021-10-30-other".into(),
        ttl: Duration::from_secs(3600),
        break_stale: false,
    };
    let held = RunLock::acquire(&world.store, &registry, &other, world.clock.as_ref()).await.unwrap();

    let runner = FakeRunner::new(world.store.clone(), &[]);
    let (tx, rx) = watch::channel(None);
    let handle = tokio::spawn(world.pipeline(runner.clone(), rx).run());
    // The first wave runs; build_dimensions must not be submitted while the other date holds
    // the registry.
    while runner.submitted() < 2 {
        tokio::task::yield_now().await;
    }
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(runner.submitted(), 2, "build_dimensions ran while another date held the registry");
    held.release(&world.store).await.unwrap();
    let (manifest, result) = handle.await.unwrap();
    drop(tx);
    result.unwrap();
    assert_eq!(runner.submitted(), 4);
    assert_eq!(manifest.state, RunState::Succeeded);
    assert!(world.store.head(&registry).await.unwrap().is_none(), "the registry lock was not released");
}

/// A `--raw-dir` folder with these files.
fn raw_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

const MOVIES: (&str, &str) = ("movie_review.csv", "cid,review_str,id_review\n7,fine,7\n");
const LOGS: (&str, &str) = ("log_reviews.csv", "id_review,log\n7,<reviewlog/>\n");

#[tokio::test]
async fn a_run_refused_by_the_lock_ingests_nothing() {
    let world = World::new().await;
    let incoming = format!("s3://{}/incoming/dt={DATE}/movie_review.csv", world.config.buckets.raw);
    let incoming = ObjectUri::parse(&incoming).unwrap();
    let before = world.store.get_bytes(&incoming).await.unwrap();
    let lock_uri = ObjectUri::parse(&world.plan().uris.lock).unwrap();
    let request = LockRequest {
        owner: "nightly".into(),
        run_id: "first-run".into(),
        ttl: Duration::from_secs(3600),
        break_stale: false,
    };
    let _held = RunLock::acquire(&world.store, &lock_uri, &request, world.clock.as_ref()).await.unwrap();

    let folder = raw_dir(&[MOVIES, LOGS]);
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (_, result) = pipeline.run().await;
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::LockHeld);
    // The first run's inputs are untouched.
    assert_eq!(world.store.get_bytes(&incoming).await.unwrap(), before);
}

#[tokio::test]
async fn with_a_raw_dir_a_missing_file_is_exit_6_and_never_taken_from_an_earlier_ingest() {
    let world = World::new().await;
    let folder = raw_dir(&[MOVIES]);
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (_, result) = pipeline.run().await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    let message = err.to_string();
    assert!(message.contains(&folder.path().join("log_reviews.csv").display().to_string()), "{message}");
    let lock = ObjectUri::parse(&world.plan().uris.lock).unwrap();
    assert!(world.store.head(&lock).await.unwrap().is_none(), "the lock was not released");
}

#[tokio::test]
async fn with_a_raw_dir_a_stale_user_purchase_of_an_earlier_ingest_is_not_used() {
    let world = World::new().await;
    let stale =
        ObjectUri::parse(&format!("s3://{}/incoming/dt={DATE}/user_purchase.csv", world.config.buckets.raw)).unwrap();
    assert!(world.store.head(&stale).await.unwrap().is_some());
    // The folder has no user_purchase and no database is given: the run must not fall back on
    // the earlier ingest's file.
    let folder = raw_dir(&[MOVIES, LOGS]);
    let runner = FakeRunner::new(world.store.clone(), &[]);
    let mut pipeline = world.pipeline(runner.clone(), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (_, result) = pipeline.run().await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(err.to_string().contains("no source for user_purchase"), "{err}");
    assert!(world.store.head(&stale).await.unwrap().is_none(), "the stale user_purchase.csv is still there");
    assert_eq!(runner.submitted(), 0);
}

#[tokio::test]
async fn with_a_raw_dir_both_variants_of_one_input_are_an_error() {
    let world = World::new().await;
    let folder = raw_dir(&[MOVIES, LOGS, ("log_reviews.csv.gz", "x")]);
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (_, result) = pipeline.run().await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(err.to_string().contains("log_reviews"), "{err}");
}

const PURCHASES: (&str, &str) = (
    "user_purchase.csv",
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n536365,85123A,X,6,12/1/2010 8:26,2.55,1,United Kingdom\r\n",
);

/// `n` movie reviews, each with a quoted newline: 2n lines, n records.
fn reviews(n: usize) -> String {
    let mut text = "cid,review_str,id_review\n".to_string();
    for i in 0..n {
        text.push_str(&format!("{i},\"good\nmovie\",{i}\n"));
    }
    text
}

#[tokio::test]
async fn rows_in_is_checked_against_the_records_counted_at_ingest() {
    // The fake jobs report rows_in 5 for both inputs.
    let logs: String =
        std::iter::once("id_review,log\n".to_string()).chain((0..5).map(|i| format!("{i},<reviewlog/>\n"))).collect();
    let world = World::new().await;
    let matching = reviews(5);
    let folder = raw_dir(&[("movie_review.csv", &matching), ("log_reviews.csv", &logs), PURCHASES]);
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (manifest, result) = pipeline.run().await;
    result.unwrap();
    assert_eq!(manifest.sources["movie_review"].rows_in, 5);

    // 4 records in 8 lines: the job's rows_in 5 disagrees with the driver's count.
    let world = World::new().await;
    let short = reviews(4);
    let folder = raw_dir(&[("movie_review.csv", &short), ("log_reviews.csv", &logs), PURCHASES]);
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(folder.path().to_path_buf());
    let (manifest, result) = pipeline.run().await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Internal);
    let message = err.to_string();
    assert!(message.contains("has 4 CSV records") && message.contains("rows_in 5"), "{message}");
    assert_eq!(manifest.state, RunState::Failed);
    let load = manifest.steps.iter().find(|s| s.key == "load_warehouse").unwrap();
    assert_eq!(load.state, "PENDING", "the warehouse load ran after a miscount");
}
