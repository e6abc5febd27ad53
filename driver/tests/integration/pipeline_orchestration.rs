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
use emr_driver::plan::{LakeUris, Plan};
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
                    // Each write differs (as Spark's part file names do): a rerun is a new write.
                    let body = format!("{} written as {id}", config.name);
                    crate::support::write_job_outputs(&self.store, &config.hadoop_jar_step.args, &body).await;
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
    // Metrics and outputs of the attached steps, as the old jobs would have written them (in
    // the run's own folders: the run id is bound to the inputs).
    let uris = LakeUris::new(&world.config, DATE, &manifest.run_id);
    for (job, source) in [("classify_reviews", "movie_review"), ("parse_logs", "log_reviews")] {
        for output in emr_driver::publish::step_outputs(&uris, job).unwrap() {
            if !output.name.starts_with("_metrics/") {
                world
                    .store
                    .put_bytes(&output.uri.join("part-00000.bin"), Bytes::from_static(b"old job"))
                    .await
                    .unwrap();
            }
            world.store.put_bytes(&output.uri.join("_SUCCESS"), Bytes::new()).await.unwrap();
        }
        let uri = ObjectUri::parse(&format!("{}/part-00000.txt", uris.metrics[job])).unwrap();
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
    let state = |key: &str| manifest.steps.iter().find(|s| s.key == key).unwrap().state;
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

/// The date's pointer (`_published/dt=D.json`).
async fn published(world: &World) -> emr_driver::publish::Published {
    let pointer = emr_driver::publish::pointer_uri(&world.config.buckets.staging, DATE);
    emr_driver::publish::read_pointer(&world.store, &pointer).await.unwrap().expect("the date is published")
}

/// A `--raw-dir` night whose log ids start at `first` (5 records each: what the fake jobs report).
fn night(first: usize) -> tempfile::TempDir {
    let logs: String = std::iter::once("id_review,log\n".to_string())
        .chain((first..first + 5).map(|i| format!("{i},<reviewlog/>\n")))
        .collect();
    raw_dir(&[("movie_review.csv", &reviews(5)), ("log_reviews.csv", &logs), PURCHASES])
}

impl World {
    async fn run_night(&self, night: &tempfile::TempDir) -> (Arc<FakeRunner>, RunManifest) {
        let runner = FakeRunner::new(self.store.clone(), &[]);
        let mut pipeline = self.pipeline(runner.clone(), watch::channel(None).1);
        pipeline.options.raw_dir = Some(night.path().to_path_buf());
        let (manifest, result) = pipeline.run().await;
        result.unwrap();
        (runner, manifest)
    }
}

fn step<'a>(manifest: &'a RunManifest, key: &str) -> &'a emr_driver::manifest::StepRecord {
    manifest.steps.iter().find(|s| s.key == key).unwrap()
}

#[tokio::test]
async fn a_rerun_never_publishes_another_runs_outputs() {
    let world = World::new().await;
    let (night_a, night_b) = (night(0), night(100));
    let (_, a) = world.run_night(&night_a).await;
    let published_a = published(&world).await;
    assert_eq!(published_a.run_id, a.run_id);
    let pointer = emr_driver::publish::pointer_uri(&world.config.buckets.staging, DATE);
    assert_eq!(a.published, Some(pointer.to_string()));
    assert_eq!(published_a.manifest, a.manifest_uri);
    // Every output is the run's own folder, recorded with a write id in the manifest too.
    for (name, output) in &published_a.outputs {
        assert!(output.uri.contains(&format!("/dt={DATE}/run={}", a.run_id)), "{name}: {}", output.uri);
    }
    let fact = &published_a.outputs["fact_movie_analytics"];
    assert_eq!(step(&a, "build_fact").outputs.as_ref().unwrap()["fact_movie_analytics"], *fact);

    // Another run of the date (other inputs: another run id) publishes its own folders...
    let (_, b) = world.run_night(&night_b).await;
    assert_ne!(b.run_id, a.run_id);
    let published_b = published(&world).await;
    assert_eq!(published_b.run_id, b.run_id);
    assert!(published_b.outputs.values().all(|o| o.uri.contains(&b.run_id)));

    // ...and A again: its manifest says every step COMPLETED, but not with what the store
    // holds now, so nothing of B's is taken for A's: every step runs again and A is published.
    let (again_runner, again) = world.run_night(&night_a).await;
    assert_eq!(again.run_id, a.run_id);
    assert_eq!(again_runner.submitted(), 4, "the rerun skipped steps whose outputs are gone");
    assert!(again.steps.iter().filter(|s| s.kind != "driver").all(|s| !s.reused));
    let published_again = published(&world).await;
    assert_eq!(published_again.run_id, a.run_id);
    assert!(published_again.outputs.values().all(|o| o.uri.contains(&a.run_id) && !o.uri.contains(&b.run_id)));
    // B's folders are gone (the pointer no longer names them); what the pointer names is whole.
    let b_fact = ObjectUri::parse(&published_b.outputs["fact_movie_analytics"].uri).unwrap();
    assert!(world.store.list(&b_fact.join("")).await.unwrap().is_empty(), "B's superseded folder is still there");
    emr_driver::publish::published_run(&world.store, &pointer, &a.run_id).await.unwrap();

    // A backfill of the date does not count B's success as A's: after B is published again,
    // A's earlier success does not skip the date.
    world.run_night(&night_b).await;
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(night_a.path().to_path_buf());
    assert!(pipeline.succeeded_before().await.unwrap().is_none(), "a date published by another run was skipped");
    // With A published and intact, it is skipped.
    world.run_night(&night_a).await;
    let mut pipeline = world.pipeline(FakeRunner::new(world.store.clone(), &[]), watch::channel(None).1);
    pipeline.options.raw_dir = Some(night_a.path().to_path_buf());
    assert_eq!(pipeline.succeeded_before().await.unwrap().unwrap().run_id, a.run_id);
}

#[tokio::test]
async fn a_step_whose_recorded_outputs_changed_is_run_again_not_skipped() {
    let world = World::new().await;
    let (first, result) = world.run(FakeRunner::new(world.store.clone(), &[])).await;
    result.unwrap();

    // review_logs rewritten after the manifest recorded it (another process, a half-done
    // overwrite): parse_logs runs again, and so do the steps built from it; classify_reviews
    // (untouched) is reused.
    let logs = ObjectUri::parse(&step(&first, "parse_logs").outputs.as_ref().unwrap()["review_logs"].uri).unwrap();
    world.store.put_bytes(&logs.join("part-00000-fake.bin"), Bytes::from_static(b"someone else's rows")).await.unwrap();
    let runner = FakeRunner::new(world.store.clone(), &[]);
    let (second, result) = world.run(runner.clone()).await;
    result.unwrap();
    assert_eq!(runner.submitted(), 3, "parse_logs, build_dimensions and build_fact run again");
    assert!(step(&second, "classify_reviews").reused);
    for key in ["parse_logs", "build_dimensions", "build_fact"] {
        assert!(!step(&second, key).reused, "{key} was skipped");
    }
    assert_ne!(
        step(&second, "parse_logs").outputs.as_ref().unwrap()["review_logs"].write_id,
        step(&first, "parse_logs").outputs.as_ref().unwrap()["review_logs"].write_id
    );
    assert_eq!(
        published(&world).await.outputs["review_logs"],
        step(&second, "parse_logs").outputs.as_ref().unwrap()["review_logs"]
    );

    // A removed output (the fact's load files): build_fact runs again, alone.
    let load = ObjectUri::parse(&published(&world).await.outputs["warehouse_load/fact_movie_analytics"].uri).unwrap();
    for meta in world.store.list(&load.join("")).await.unwrap() {
        world.store.delete(&meta.uri).await.unwrap();
    }
    let runner = FakeRunner::new(world.store.clone(), &[]);
    let (third, result) = world.run(runner.clone()).await;
    result.unwrap();
    assert_eq!(runner.submitted(), 1);
    assert!(!step(&third, "build_fact").reused);
    assert!(world.store.head(&load.join("_SUCCESS")).await.unwrap().is_some());

    // The user_purchase export removed: staged again, and build_fact (which reads it) runs again.
    let export = ObjectUri::parse(&published(&world).await.outputs["user_purchase"].uri).unwrap();
    for meta in world.store.list(&export.join("")).await.unwrap() {
        world.store.delete(&meta.uri).await.unwrap();
    }
    let runner = FakeRunner::new(world.store.clone(), &[]);
    let (fourth, result) = world.run(runner.clone()).await;
    result.unwrap();
    assert!(!step(&fourth, "user_purchase").reused);
    assert_eq!(runner.submitted(), 1, "only build_fact reads the export");
}

#[tokio::test]
async fn a_half_written_output_is_never_recorded_or_published() {
    let world = World::new().await;
    // Learn the run id from an attempt whose first wave failed.
    let failing =
        FakeRunner::new(world.store.clone(), &[("classify_reviews", Script::Fail), ("parse_logs", Script::Fail)]);
    let (manifest, result) = world.run(failing).await;
    assert_eq!(result.unwrap_err().exit_code(), ExitCode::StepFailed);
    assert!(
        world
            .store
            .head(&emr_driver::publish::pointer_uri(&world.config.buckets.staging, DATE))
            .await
            .unwrap()
            .is_none(),
        "a failed run published"
    );

    // The cluster says both steps of an earlier driver COMPLETED, but parse_logs' review_logs
    // has no _SUCCESS (its write never finished): that step is submitted again, the other
    // reused.
    let uris = LakeUris::new(&world.config, DATE, &manifest.run_id);
    for (job, source) in [("classify_reviews", "movie_review"), ("parse_logs", "log_reviews")] {
        for output in emr_driver::publish::step_outputs(&uris, job).unwrap() {
            if !output.name.starts_with("_metrics/") {
                world
                    .store
                    .put_bytes(&output.uri.join("part-00000.bin"), Bytes::from_static(b"old job"))
                    .await
                    .unwrap();
            }
            if output.name != "review_logs" {
                world.store.put_bytes(&output.uri.join("_SUCCESS"), Bytes::new()).await.unwrap();
            }
        }
        let uri = ObjectUri::parse(&format!("{}/part-00000.txt", uris.metrics[job])).unwrap();
        let doc = serde_json::json!({"job": job, "sources": {source: {"rows_in": 5, "rows_out": 5, "rows_rejected": 0, "rejected_by_reason": {}}}});
        world.store.put_bytes(&uri, Bytes::from(doc.to_string())).await.unwrap();
    }
    let completed = |key: &str, id: &str| StepStatus {
        id: id.into(),
        name: format!("{} {key}", manifest.run_id),
        state: StepState::Completed,
        failure: None,
        started_at: None,
        ended_at: None,
    };
    let cluster = FakeRunner::new(world.store.clone(), &[])
        .with_existing(vec![completed("classify_reviews", "s-OLD1"), completed("parse_logs", "s-OLD2")]);
    let (again, result) = world.run(cluster.clone()).await;
    result.unwrap();
    assert_eq!(again.run_id, manifest.run_id);
    assert_eq!(cluster.submitted(), 3, "parse_logs again, then the later waves");
    assert_eq!(step(&again, "classify_reviews").step_id.as_deref(), Some("s-OLD1"));
    assert_ne!(step(&again, "parse_logs").step_id.as_deref(), Some("s-OLD2"));
    let published = published(&world).await;
    let logs = ObjectUri::parse(&published.outputs["review_logs"].uri).unwrap();
    assert!(world.store.head(&logs.join("_SUCCESS")).await.unwrap().is_some());

    // A second run of the date in the middle of its writes (its own run folder, no _SUCCESS
    // yet) changes nothing of what the pointer names.
    let other = LakeUris::new(&world.config, DATE, "2021-10-31-0000000000ff");
    let half = ObjectUri::parse(&other.fact_movie_analytics).unwrap().join("part-00000.bin");
    world.store.put_bytes(&half, Bytes::from_static(b"half")).await.unwrap();
    let pointer = emr_driver::publish::pointer_uri(&world.config.buckets.staging, DATE);
    let still = emr_driver::publish::published_run(&world.store, &pointer, &again.run_id).await.unwrap();
    assert_eq!(still, published);
}
