//! The local step runner: runs the rendered `spark-submit` command lines with a local Spark,
//! following EMR's step life cycle (PENDING → RUNNING → COMPLETED / FAILED / CANCELLED) and
//! `ActionOnFailure`, so the same poller and diagnosis drive it.
//!
//! * Each step is a child process in its own process group, at most `concurrency` at a time,
//!   started in submission order.
//! * `s3://bucket/key` (and `s3a://`, also inside `--conf k=v` values and comma lists) becomes
//!   `<lake>/bucket/key`; `--deploy-mode cluster` is dropped; `--master` and `--driver-memory`
//!   come from the configuration. Other commands (`bash -c ...`) run as they are.
//! * stdout / stderr go to `<log prefix>/<step id>/stdout` and `stderr` while the step runs,
//!   and are gzipped to `stdout.gz` / `stderr.gz` when it ends (as EMR does under
//!   `<LogUri>/<cluster>/steps/<step>/`), so [`crate::diagnose`] reads them through the store.
//! * Cancelling a running step sends SIGTERM to its process group, then SIGKILL after a grace
//!   period; the group's processes are reaped, so nothing of the step is left afterwards.
//!
//! * With `spark_application = Shared` (the default, `local.spark_application = "shared"`), the
//!   `spark-submit ... run_job.py <job> ...` steps do not start a JVM each: they run in ONE
//!   long-lived Spark application ([`super::shared_app`], `pyspark_jobs/step_server.py`),
//!   started by [`LocalRunner::warm_up`] when the run starts (or by the first such step), each
//!   under its own job group, session and log files, with the same life cycle, exit codes and
//!   logs as a process. Cancelling such a step cancels its job group; one that does not end
//!   within the grace period is ended with the whole application. A step that crashes the
//!   application fails (with every step running beside it) and the next step gets a new one.
//!   Steps whose options need a JVM of their own (`--jars`...), or that name other
//!   `--py-files` than the application loaded, and other commands run as processes.
//!
//! The table of steps lives in memory: `list_steps` reads it, no I/O.

use std::io::Write;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::shared_app::{shared_step, Launch, SharedStep, SparkApp, StepEnd};
use super::{CancelOutcome, RunnerError, StepRunner, Termination};
use crate::clock::Clock;
use crate::step::{ActionOnFailure, FailureDetails, StepConfig, StepState, StepStatus};
use crate::store::local::LocalStore;
use crate::store::{ObjectStore, ObjectUri};

/// How to run steps locally.
#[derive(Debug, Clone)]
pub struct LocalRunnerOptions {
    /// The local folder standing in for the buckets.
    pub lake: LocalStore,
    /// The local `spark-submit` (the pinned pyspark's).
    pub spark_submit: PathBuf,
    /// `--master`, e.g. `local[2]`.
    pub master: String,
    /// `--driver-memory`, e.g. `4g` (in local mode the driver does all the work).
    pub driver_memory: String,
    /// At most this many steps run at once (EMR's step concurrency).
    pub concurrency: usize,
    /// Where step logs go: `<log_prefix>/<step id>/stderr.gz`.
    pub log_prefix: ObjectUri,
    /// Time between SIGTERM and SIGKILL when a running step is cancelled (in the shared
    /// application: between cancelling its job group and killing the application).
    pub kill_grace: Duration,
    /// One shared Spark application for the `run_job.py` steps, or a spark-submit per step.
    pub spark_application: SparkApplication,
    /// `pyspark_jobs/step_server.py`: what the shared application runs.
    pub step_server: PathBuf,
    /// The class-data archive every local spark-submit's JVM uses when the file is there
    /// (`local.class_data_archive`); None: never.
    pub class_data_archive: Option<PathBuf>,
    /// Which JIT the Spark JVMs the runner starts use (`local.jit`).
    pub jit: JitPolicy,
    /// `spark.sql.shuffle.partitions` of every Spark step (`local.shuffle_partitions`), instead
    /// of the value rendered for the cluster; None: the step's own.
    pub shuffle_partitions: Option<u32>,
}

/// `local.jit`: the JIT compilers of the Spark JVMs the local runner starts.
///
/// A local run of the sample or of a night of 100,000 reviews is over before HotSpot's
/// optimizing compiler (C2) pays for itself: on 2 cores it compiled 2,500 methods in 20 s of
/// CPU during a 24 s run, and C1 alone (`-XX:TieredStopAtLevel=1`) made that run an eighth
/// faster. From a few hundred thousand reviews on, C2's faster code wins (BENCHMARKS.md,
/// section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JitMode {
    /// `Quick` for a run of at most [`JitPolicy::quick_max_records`] vendor records, else
    /// `Full`; `Full` when the size is not known (a step submitted on its own).
    #[default]
    Auto,
    /// C1 only: compiles fast, runs a little slower.
    Quick,
    /// The JVM's default tiered compilation (C1, then C2 for the hottest code).
    Full,
}

impl JitMode {
    pub const NAMES: &'static [&'static str] = &["auto", "quick", "full"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(JitMode::Auto),
            "quick" => Some(JitMode::Quick),
            "full" => Some(JitMode::Full),
            _ => None,
        }
    }

    /// The JVM options of the mode (`Auto` has none: it is resolved first).
    pub fn jvm_options(self) -> &'static [&'static str] {
        match self {
            JitMode::Quick => &["-XX:TieredStopAtLevel=1"],
            JitMode::Auto | JitMode::Full => &[],
        }
    }
}

/// `local.jit` and `local.jit_quick_max_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitPolicy {
    pub mode: JitMode,
    /// `Auto`: the largest run (movie_review + log_reviews records) that gets `Quick`.
    pub quick_max_records: u64,
}

impl Default for JitPolicy {
    fn default() -> Self {
        JitPolicy { mode: JitMode::Auto, quick_max_records: crate::config::DEFAULT_JIT_QUICK_MAX_RECORDS as u64 }
    }
}

impl JitPolicy {
    /// `Quick` or `Full` for an application that will read about `records` vendor records
    /// (None: not known) (pure).
    pub fn resolve(&self, records: Option<u64>) -> JitMode {
        match (self.mode, records) {
            (JitMode::Auto, Some(n)) if n <= self.quick_max_records => JitMode::Quick,
            (JitMode::Auto, _) => JitMode::Full,
            (mode, _) => mode,
        }
    }
}

/// `local.spark_application`: how the local runner gives the `run_job.py` steps their Spark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparkApplication {
    /// One long-lived application per run (per runner), started early, shared by the steps.
    #[default]
    Shared,
    /// One `spark-submit` process per step.
    PerStep,
}

impl SparkApplication {
    pub const NAMES: &'static [&'static str] = &["shared", "per-step"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "shared" => Some(SparkApplication::Shared),
            "per-step" => Some(SparkApplication::PerStep),
            _ => None,
        }
    }
}

/// Steps on a local Spark.
pub struct LocalRunner {
    inner: Arc<Inner>,
}

struct Inner {
    options: LocalRunnerOptions,
    /// The lake root made absolute once, so Spark (whatever its working directory) finds it.
    lake_root: PathBuf,
    clock: Arc<dyn Clock>,
    table: Mutex<Vec<Entry>>,
    /// The shared application the next `run_job.py` step goes to (when alive).
    app: Mutex<Option<Arc<SparkApp>>>,
    /// The JIT of the JVMs started from now on: resolved by `warm_up` from the run's size,
    /// else the policy's own mode (`Auto` unresolved counts as `Full`).
    jit: Mutex<JitMode>,
    /// Applications being stopped by `terminate_if_created`, until they have ended.
    stopping: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    config: StepConfig,
    state: StepState,
    failure: Option<FailureDetails>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The process group (= the child's pid) while the step runs as its own process.
    pgid: Option<i32>,
    /// The shared application the step runs in.
    app: Option<Arc<SparkApp>>,
    cancel_requested: bool,
}

impl Entry {
    fn status(&self) -> StepStatus {
        StepStatus {
            id: self.id.clone(),
            name: self.config.name.clone(),
            state: self.state,
            failure: self.failure.clone(),
            started_at: self.started_at,
            ended_at: self.ended_at,
        }
    }
}

impl LocalRunner {
    /// A runner with an empty step table. On Linux the driver becomes a "child subreaper", so
    /// processes a step leaves behind are re-parented to it and can be reaped when the step
    /// ends or is cancelled (otherwise they would linger as zombies of PID 1).
    pub fn new(options: LocalRunnerOptions, clock: Arc<dyn Clock>) -> Self {
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let lake_root = std::path::absolute(options.lake.root()).unwrap_or_else(|_| options.lake.root().to_path_buf());
        LocalRunner {
            inner: Arc::new(Inner {
                jit: Mutex::new(options.jit.resolve(None)),
                options,
                lake_root,
                clock,
                table: Mutex::new(Vec::new()),
                app: Mutex::new(None),
                stopping: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The process group of a step running as its own process (tests check it is gone after
    /// a cancel).
    pub fn process_group(&self, step_id: &str) -> Option<i32> {
        self.inner.lock().iter().find(|e| e.id == step_id).and_then(|e| e.pgid)
    }

    /// The shared application a step runs in, while it runs there.
    pub fn application_of(&self, step_id: &str) -> Option<Arc<SparkApp>> {
        self.inner.lock().iter().find(|e| e.id == step_id).and_then(|e| e.app.clone())
    }

    /// The shared application the next step would go to, if one is alive.
    pub fn shared_application(&self) -> Option<Arc<SparkApp>> {
        self.inner.app_lock().clone().filter(|app| app.is_alive())
    }

    /// Starts the shared application now (in shared mode), so its JVM start-up overlaps the
    /// driver's own work (input checks, user_purchase); the first step finds it warm. A
    /// failure is only a warning: the first step then tries again and fails with the reason.
    /// `records`: about how many vendor records the runner's steps will read (None: not
    /// known), which decides the JIT of every JVM the runner starts from now on
    /// ([`JitPolicy::resolve`]).
    pub fn warm_up(&self, records: Option<u64>) {
        let jit = self.inner.options.jit.resolve(records);
        *self.inner.jit_lock() = jit;
        if self.inner.options.spark_application != SparkApplication::Shared {
            return;
        }
        if let Err(e) = application(&self.inner) {
            tracing::warn!("could not start the shared Spark application early: {e}");
        }
    }

    /// The JIT the next JVM the runner starts gets.
    pub fn jit(&self) -> JitMode {
        *self.inner.jit_lock()
    }
}

impl Drop for LocalRunner {
    /// A dropped runner leaves no step process and no application behind.
    fn drop(&mut self) {
        for entry in self.inner.lock().iter() {
            if let Some(pgid) = entry.pgid {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            if let Some(app) = &entry.app {
                app.kill();
            }
        }
        if let Some(app) = self.inner.app_lock().take() {
            app.kill();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than losing the run, so a poisoned lock is used as it is.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn app_lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<SparkApp>>> {
        self.app.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping_lock(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.stopping.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn jit_lock(&self) -> std::sync::MutexGuard<'_, JitMode> {
        self.jit.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step_log_prefix(&self, step_id: &str) -> ObjectUri {
        self.options.log_prefix.join(step_id).join("")
    }

    /// What a step process, or the shared application, gets as its environment: only what
    /// Spark and the jobs need, never the driver's database URLs or AWS keys.
    fn spark_process_env(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env = step_env(std::env::vars_os());
        for (key, value) in
            spark_env(&self.options.spark_submit, std::env::var_os("PATH"), |k| std::env::var_os(k).is_some())
        {
            env.retain(|(k, _)| k.as_os_str() != key.as_str());
            env.push((key.into(), value));
        }
        let current = env.iter().position(|(k, _)| k == "SPARK_SUBMIT_OPTS").map(|i| env.remove(i).1);
        let archive = self.options.class_data_archive.as_deref().filter(|a| a.is_file());
        let opts = submit_opts(current, archive, *self.jit_lock());
        if !opts.is_empty() {
            env.push(("SPARK_SUBMIT_OPTS".into(), opts));
        }
        env
    }
}

/// `SPARK_SUBMIT_OPTS` (the JVM options spark-class gives the driver's JVM, beside any
/// `spark.driver.extraJavaOptions`) with the JIT's options and, when there is one, the
/// class-data archive (pure).
pub fn submit_opts(current: Option<std::ffi::OsString>, archive: Option<&Path>, jit: JitMode) -> std::ffi::OsString {
    let mut opts = current.unwrap_or_default();
    for option in jit.jvm_options() {
        if !opts.is_empty() {
            opts.push(" ");
        }
        opts.push(option);
    }
    match archive {
        Some(archive) => submit_opts_with_archive(Some(opts), archive),
        None => opts,
    }
}

/// `SPARK_SUBMIT_OPTS` with the JVM option that maps `archive` (pure), quoted as Spark's
/// launcher splits the variable (double quotes, backslash escapes), so any path works. The JVM
/// checks the archive against its own build and the classpath and, when they differ (pyspark or
/// the JDK changed since it was made, or `SPARK_CONF_DIR` puts another folder first on the
/// classpath), prints a warning on the application's stdout and loads the classes as usual: a
/// stale archive costs speed, never a run.
pub fn submit_opts_with_archive(current: Option<std::ffi::OsString>, archive: &Path) -> std::ffi::OsString {
    let archive = std::path::absolute(archive).unwrap_or_else(|_| archive.to_path_buf());
    let quoted: String = archive
        .to_string_lossy()
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, '"' | '\\').then_some('\\');
            escape.into_iter().chain(std::iter::once(c))
        })
        .collect();
    let mut opts = current.unwrap_or_default();
    if !opts.is_empty() {
        opts.push(" ");
    }
    opts.push(format!("\"-XX:SharedArchiveFile={quoted}\""));
    opts
}

/// The live shared application, or a new one (the old one ended: a crash, a stop).
fn application(inner: &Arc<Inner>) -> Result<Arc<SparkApp>, RunnerError> {
    let mut current = inner.app_lock();
    if let Some(app) = current.as_ref().filter(|app| app.is_alive()) {
        return Ok(Arc::clone(app));
    }
    let id = new_app_id();
    let log_prefix = inner.step_log_prefix(&id);
    let log_dir = inner.options.lake.path_of(&log_prefix);
    let launch = Launch {
        spark_submit: inner.options.spark_submit.clone(),
        master: inner.options.master.clone(),
        driver_memory: inner.options.driver_memory.clone(),
        step_server: std::path::absolute(&inner.options.step_server)
            .unwrap_or_else(|_| inner.options.step_server.clone()),
        log_dir,
        env: inner.spark_process_env(),
        drain: inner.options.kill_grace.max(Duration::from_secs(2)),
    };
    let jit = match *inner.jit_lock() {
        JitMode::Quick => "quick JIT: C1 only",
        _ => "full JIT",
    };
    tracing::info!("starting the shared Spark application {id} ({jit}; logs in {log_prefix})");
    let app = SparkApp::start(id, &launch, Arc::clone(&inner.clock), |log_dir| {
        // The application's own logs, gzipped beside the steps' (EMR layout), best effort.
        for name in ["stdout", "stderr"] {
            let raw = log_dir.join(name);
            if let Ok(bytes) = std::fs::read(&raw) {
                if let Ok(gz) = gzip(&bytes) {
                    if std::fs::write(log_dir.join(format!("{name}.gz")), gz).is_ok() {
                        let _ = std::fs::remove_file(&raw);
                    }
                }
            }
        }
    })?;
    *current = Some(Arc::clone(&app));
    Ok(app)
}

/// A new shared application id (`a-L` + 12), the name of its log folder beside the steps'.
fn new_app_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("a-L{}", &uuid[..12])
}

/// A new step id, EMR-shaped (`s-` + 13 upper-case characters) and unique across runs, so logs
/// of different runs never share a folder.
fn new_step_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("s-L{}", &uuid[..12])
}

#[async_trait]
impl StepRunner for LocalRunner {
    fn describe(&self) -> String {
        "local Spark".to_string()
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        if let Some(step) = steps.iter().find(|s| s.hadoop_jar_step.args.is_empty()) {
            return Err(RunnerError::EmptyCommand { name: step.name.clone() });
        }
        let ids: Vec<String> = {
            let mut table = self.inner.lock();
            steps
                .iter()
                .map(|config| {
                    let id = new_step_id();
                    table.push(Entry {
                        id: id.clone(),
                        config: config.clone(),
                        state: StepState::Pending,
                        failure: None,
                        started_at: None,
                        ended_at: None,
                        pgid: None,
                        app: None,
                        cancel_requested: false,
                    });
                    id
                })
                .collect()
        };
        schedule(&self.inner);
        Ok(ids)
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        let table = self.inner.lock();
        // Newest first, as EMR lists them.
        Ok(table.iter().rev().filter(|e| ids.is_empty() || ids.contains(&e.id)).map(Entry::status).collect())
    }

    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        let outcomes = ids.iter().map(|id| cancel_one(&self.inner, id)).collect();
        schedule(&self.inner);
        Ok(outcomes)
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        Some(self.inner.step_log_prefix(step_id))
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        // Local Spark runs the driver in the step's own process: no container logs.
        None
    }

    /// Stops the shared application (the run is over); a later step would start a new one.
    /// Returns at once (the run publishes and loads its warehouse meanwhile);
    /// [`StepRunner::wait_terminated`] waits for the end. Not a cluster: still
    /// [`Termination::NotApplicable`].
    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        let current = self.inner.app_lock().take();
        if let Some(app) = current {
            app.stop();
            let grace = self.inner.options.kill_grace.max(Duration::from_secs(2)) * 3;
            let clock = Arc::clone(&self.inner.clock);
            let stopping = tokio::spawn(async move {
                tokio::select! {
                    _ = app.ended() => return,
                    _ = clock.sleep(grace) => {}
                }
                tracing::warn!("the shared Spark application {} did not stop within {grace:?}: killing it", app.id);
                app.kill();
                // Killed: only the reaping and the logs are left (bounded all the same).
                tokio::select! {
                    _ = app.ended() => {}
                    _ = clock.sleep(grace) => {}
                }
            });
            self.inner.stopping_lock().push(stopping);
        }
        Ok(Termination::NotApplicable)
    }

    /// Until every application [`StepRunner::terminate_if_created`] stopped has ended: without
    /// this wait the command could return while the JVM still shuts down, and the group
    /// sentinel would then kill it half-way (its logs left unzipped, its CPU time on nobody's
    /// account).
    async fn wait_terminated(&self) {
        let stopping = std::mem::take(&mut *self.inner.stopping_lock());
        for handle in stopping {
            let _ = handle.await;
        }
    }
}

/// Cancels one step: a pending one at once, a running one by SIGTERM to its group (SIGKILL
/// after the grace period); the step becomes CANCELLED when its process has exited.
fn cancel_one(inner: &Arc<Inner>, id: &str) -> CancelOutcome {
    let mut table = inner.lock();
    let Some(entry) = table.iter_mut().find(|e| e.id == id) else {
        return CancelOutcome { step_id: id.to_string(), accepted: false, reason: Some("no such step".into()) };
    };
    match entry.state {
        StepState::Pending => {
            entry.state = StepState::Cancelled;
            entry.ended_at = Some(inner.clock.now());
        }
        StepState::Running | StepState::CancelPending => {
            request_kill(inner, entry);
        }
        done => {
            return CancelOutcome {
                step_id: id.to_string(),
                accepted: false,
                reason: Some(format!("the step is already {done}")),
            }
        }
    }
    CancelOutcome { step_id: id.to_string(), accepted: true, reason: None }
}

/// SIGTERM to the running step's group now, SIGKILL after the grace period if still running.
fn request_kill(inner: &Arc<Inner>, entry: &mut Entry) {
    if entry.cancel_requested {
        return;
    }
    entry.cancel_requested = true;
    entry.state = StepState::CancelPending;
    if let Some(app) = entry.app.clone() {
        // In the shared application: its job group and its Python code are stopped; a step
        // still running after the grace period is ended with the whole application.
        app.cancel(&entry.id);
        let inner = Arc::clone(inner);
        let id = entry.id.clone();
        tokio::spawn(async move {
            inner.clock.sleep(inner.options.kill_grace).await;
            if app.runs(&id) {
                tracing::warn!(
                    "step {id} did not end within the grace period: killing the shared Spark application {}",
                    app.id
                );
                app.kill();
            }
        });
        return;
    }
    // No pgid yet: the process is being started; `run_step` sees `cancel_requested` and kills
    // it as soon as it exists.
    let Some(pgid) = entry.pgid else { return };
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    let inner = Arc::clone(inner);
    let id = entry.id.clone();
    tokio::spawn(async move {
        inner.clock.sleep(inner.options.kill_grace).await;
        let still_running = inner.lock().iter().any(|e| e.id == id && e.pgid == Some(pgid));
        if still_running {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    });
}

/// Starts pending steps while fewer than `concurrency` run.
fn schedule(inner: &Arc<Inner>) {
    let to_start: Vec<(String, StepConfig)> = {
        let mut table = inner.lock();
        let states: Vec<StepState> = table.iter().map(|e| e.state).collect();
        let picked = steps_to_start(&states, inner.options.concurrency);
        let now = inner.clock.now();
        picked
            .into_iter()
            .map(|i| {
                let entry = &mut table[i];
                entry.state = StepState::Running;
                entry.started_at = Some(now);
                (entry.id.clone(), entry.config.clone())
            })
            .collect()
    };
    for (id, config) in to_start {
        tokio::spawn(run_step(Arc::clone(inner), id, config));
    }
}

/// Which pending steps (indices) to start: the oldest ones, up to the free slots. Pure.
pub fn steps_to_start(states: &[StepState], concurrency: usize) -> Vec<usize> {
    let busy = states.iter().filter(|s| matches!(s, StepState::Running | StepState::CancelPending)).count();
    let free = concurrency.max(1).saturating_sub(busy);
    states.iter().enumerate().filter(|(_, s)| **s == StepState::Pending).map(|(i, _)| i).take(free).collect()
}

/// How a step's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    Exited(i32),
    Signalled(i32),
    /// The process could not be started at all.
    NotStarted,
    /// The shared application the step ran in ended under it.
    ApplicationEnded,
}

/// The state a step ends in. Pure: a cancelled step is CANCELLED whatever its exit (it was
/// killed on purpose), otherwise exit 0 is COMPLETED and anything else FAILED.
pub fn final_state(end: ProcessEnd, cancel_requested: bool) -> StepState {
    match (end, cancel_requested) {
        (_, true) => StepState::Cancelled,
        (ProcessEnd::Exited(0), false) => StepState::Completed,
        _ => StepState::Failed,
    }
}

/// What a failed step does to the others, following EMR's `ActionOnFailure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    /// CONTINUE: the next steps run.
    Nothing,
    /// CANCEL_AND_WAIT: the pending steps are cancelled; running ones finish.
    CancelPending,
    /// TERMINATE_CLUSTER / TERMINATE_JOB_FLOW: the cluster goes away, so every pending and
    /// running step is cancelled.
    CancelAll,
}

pub fn failure_effect(action: ActionOnFailure) -> FailureEffect {
    match action {
        ActionOnFailure::Continue => FailureEffect::Nothing,
        ActionOnFailure::CancelAndWait => FailureEffect::CancelPending,
        ActionOnFailure::TerminateCluster | ActionOnFailure::TerminateJobFlow => FailureEffect::CancelAll,
    }
}

/// The local command line of an EMR step (pure). `spark-submit` steps are rewritten for the
/// local Spark; anything else runs as it is.
pub fn rewrite_command(
    args: &[String],
    lake_root: &Path,
    spark_submit: &Path,
    master: &str,
    driver_memory: &str,
) -> Vec<String> {
    let Some(program) = args.first() else {
        return Vec::new();
    };
    if program != "spark-submit" && !program.ends_with("/spark-submit") {
        return args.to_vec();
    }
    let mut out = vec![
        spark_submit.display().to_string(),
        "--master".to_string(),
        master.to_string(),
        "--driver-memory".to_string(),
        driver_memory.to_string(),
    ];
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            // Local Spark has no cluster deploy mode; master and memory come from the config.
            "--deploy-mode" | "--master" | "--driver-memory" => {
                rest.next();
            }
            a if a.starts_with("--deploy-mode=") || a.starts_with("--master=") || a.starts_with("--driver-memory=") => {
            }
            _ => out.push(map_uris(arg, lake_root)),
        }
    }
    out
}

/// The Spark property `local.shuffle_partitions` sets.
pub const SHUFFLE_PARTITIONS: &str = "spark.sql.shuffle.partitions";

/// A spark-submit command line whose `--conf key=...` (also `--conf=key=...`, `-c key=...`)
/// gives `key` the value `value` instead (pure). A step that does not set `key` is unchanged;
/// other commands too.
pub fn with_conf(args: &[String], key: &str, value: &str) -> Vec<String> {
    let is_spark_submit = args.first().is_some_and(|p| p == "spark-submit" || p.ends_with("/spark-submit"));
    if !is_spark_submit {
        return args.to_vec();
    }
    let prefix = format!("{key}=");
    let mut out = Vec::with_capacity(args.len());
    let mut after_conf_flag = false;
    for arg in args {
        let replaced = if after_conf_flag && arg.starts_with(&prefix) {
            format!("{prefix}{value}")
        } else if arg.strip_prefix("--conf=").is_some_and(|c| c.starts_with(&prefix)) {
            format!("--conf={prefix}{value}")
        } else {
            arg.clone()
        };
        after_conf_flag = arg == "--conf" || arg == "-c";
        out.push(replaced);
    }
    out
}

/// Maps every object URI in one argument to its lake path: the whole argument, each element
/// of a comma list, or the value of `key=value`.
pub fn map_uris(arg: &str, lake_root: &Path) -> String {
    fn map_list(list: &str, lake_root: &Path) -> Option<String> {
        // A list counts only when it starts with a URI, so `k=s3://a,s3://b` is not read
        // as the list `k=s3://a` , `s3://b`.
        let parts: Vec<&str> = list.split(',').collect();
        if ObjectUri::parse(parts[0]).is_err() {
            return None;
        }
        let mapped: Vec<String> = parts
            .iter()
            .map(|p| match ObjectUri::parse(p) {
                Ok(uri) => lake_path(lake_root, &uri, p.ends_with('/')),
                Err(_) => p.to_string(),
            })
            .collect();
        Some(mapped.join(","))
    }
    if let Some(mapped) = map_list(arg, lake_root) {
        return mapped;
    }
    if let Some((key, value)) = arg.split_once('=') {
        if let Some(mapped) = map_list(value, lake_root) {
            return format!("{key}={mapped}");
        }
    }
    arg.to_string()
}

fn lake_path(lake_root: &Path, uri: &ObjectUri, trailing_slash: bool) -> String {
    // A URI that would leave the lake is passed on unmapped: the step then fails on it instead
    // of touching files outside the lake.
    let Ok(path) = LocalStore::new(lake_root).checked_path(uri) else { return uri.to_string() };
    let path = path.display().to_string();
    if trailing_slash {
        format!("{path}/")
    } else {
        path
    }
}

/// Runs one step to its end, then records its state, applies `ActionOnFailure` and starts the
/// next steps.
async fn run_step(inner: Arc<Inner>, id: String, config: StepConfig) {
    let options = &inner.options;
    let args = match options.shuffle_partitions {
        Some(n) => with_conf(&config.hadoop_jar_step.args, SHUFFLE_PARTITIONS, &n.to_string()),
        None => config.hadoop_jar_step.args.clone(),
    };
    if options.spark_application == SparkApplication::Shared {
        if let Some(step) = shared_step(&args, &inner.lake_root) {
            if let Some(end) = run_in_application(&inner, &id, &step).await {
                let log_prefix = inner.step_log_prefix(&id);
                let log_dir = options.lake.path_of(&log_prefix);
                let stderr_uri = compress_logs(&inner, &log_prefix, &log_dir).await;
                finish_step(&inner, &id, end, stderr_uri);
                schedule(&inner);
                return;
            }
        }
    }
    let argv = rewrite_command(&args, &inner.lake_root, &options.spark_submit, &options.master, &options.driver_memory);
    let log_prefix = inner.step_log_prefix(&id);
    let log_dir = options.lake.path_of(&log_prefix);
    let end = match spawn_and_wait(&inner, &id, &argv, &log_dir).await {
        Ok(end) => end,
        Err(error) => {
            let _ = std::fs::create_dir_all(&log_dir);
            let _ = std::fs::write(log_dir.join("stderr"), format!("{error}\n"));
            ProcessEnd::NotStarted
        }
    };
    let stderr_uri = compress_logs(&inner, &log_prefix, &log_dir).await;
    finish_step(&inner, &id, end, stderr_uri);
    schedule(&inner);
}

/// Runs a `run_job.py` step in the shared application (started if none is alive); `None` when
/// the application has other `--py-files` loaded (the step then runs as its own process).
async fn run_in_application(inner: &Arc<Inner>, id: &str, step: &SharedStep) -> Option<ProcessEnd> {
    let log_prefix = inner.step_log_prefix(id);
    let log_dir = inner.options.lake.path_of(&log_prefix);
    let not_started = |error: &dyn std::fmt::Display| {
        let _ = std::fs::create_dir_all(&log_dir);
        let _ = std::fs::write(log_dir.join("stderr"), format!("{error}\n"));
        Some(ProcessEnd::NotStarted)
    };
    let app = match application(inner) {
        Ok(app) => app,
        Err(error) => return not_started(&error),
    };
    if !app.accepts(&step.py_files) {
        tracing::info!(
            "step {id}: other --py-files than the shared application {} loaded: its own spark-submit",
            app.id
        );
        return None;
    }
    let created = std::fs::create_dir_all(&log_dir)
        .and_then(|()| std::fs::File::create(log_dir.join("stdout")))
        .and_then(|_| std::fs::File::create(log_dir.join("stderr")));
    if let Err(source) = created {
        return not_started(&RunnerError::LocalIo {
            op: format!("create the step logs in {}", log_dir.display()),
            source,
        });
    }
    let absolute = |name: &str| std::path::absolute(log_dir.join(name)).unwrap_or_else(|_| log_dir.join(name));
    let request = serde_json::json!({
        "op": "run",
        "step_id": id,
        "argv": step.argv,
        "py_files": step.py_files,
        "conf": step.conf.iter().cloned().collect::<std::collections::BTreeMap<String, String>>(),
        "stdout": absolute("stdout"),
        "stderr": absolute("stderr"),
    });
    // Under the table's lock: a cancel sees `entry.app` only once the request is queued, so the
    // server knows the step when the cancel arrives.
    let running = {
        let mut table = inner.lock();
        let running = app.submit(id, request);
        if let Some(entry) = table.iter_mut().find(|e| e.id == id) {
            entry.app = Some(Arc::clone(&app));
            if entry.cancel_requested {
                // Cancelled while starting: cancel it in the application at once.
                entry.cancel_requested = false;
                request_kill(inner, entry);
            }
        }
        running
    };
    let end = running.await;
    {
        let mut table = inner.lock();
        if let Some(entry) = table.iter_mut().find(|e| e.id == id) {
            entry.app = None;
        }
    }
    Some(match end {
        StepEnd::Exited(code) => ProcessEnd::Exited(code),
        StepEnd::ApplicationEnded(why) => {
            // For the diagnosis: why the step ended, with the application's last log lines
            // (an OutOfMemoryError, a JVM crash).
            if let Ok(mut file) = std::fs::OpenOptions::new().append(true).create(true).open(log_dir.join("stderr")) {
                let _ = writeln!(file, "{why}");
            }
            ProcessEnd::ApplicationEnded
        }
    })
}

/// Spawns the step in its own process group with its output in `log_dir`, waits for it, and
/// reaps whatever the step left in its group.
async fn spawn_and_wait(
    inner: &Arc<Inner>,
    id: &str,
    argv: &[String],
    log_dir: &Path,
) -> Result<ProcessEnd, RunnerError> {
    let io = |op: &str| {
        let op = format!("{op} in {}", log_dir.display());
        move |source| RunnerError::LocalIo { op, source }
    };
    std::fs::create_dir_all(log_dir).map_err(io("create the log folder"))?;
    let stdout = std::fs::File::create(log_dir.join("stdout")).map_err(io("create stdout"))?;
    let stderr = std::fs::File::create(log_dir.join("stderr")).map_err(io("create stderr"))?;
    let mut command = tokio::process::Command::new(&argv[0]);
    // Only what Spark and the jobs need: never the driver's database URLs or AWS keys.
    if Path::new(&argv[0]) == inner.options.spark_submit.as_path() {
        command.env_clear().envs(inner.spark_process_env());
    } else {
        command.env_clear().envs(step_env(std::env::vars_os()));
    }
    command
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own group, so a cancel reaches spark-submit, its JVM and Python workers at once.
        .process_group(0);
    die_with_the_driver(&mut command);
    let mut child = command.spawn().map_err(|source| RunnerError::Spawn {
        step_id: id.to_string(),
        program: argv[0].clone(),
        source,
    })?;
    let pgid = child.id().map(|pid| pid as i32);
    // Held until the step ends: its closing (also when the driver is SIGKILLed) makes the
    // sentinel kill the step's whole group.
    let _sentinel = pgid.and_then(|pgid| group_sentinel(pgid, id));
    {
        let mut table = inner.lock();
        if let Some(entry) = table.iter_mut().find(|e| e.id == id) {
            entry.pgid = pgid;
            if entry.cancel_requested {
                // Cancelled while starting: kill at once.
                entry.cancel_requested = false;
                request_kill(inner, entry);
            }
        }
    }
    let status = child.wait().await.map_err(io("wait for the step"))?;
    if let Some(pgid) = pgid {
        reap_group(pgid).await;
    }
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ProcessEnd::Exited(code),
        (None, Some(signal)) => ProcessEnd::Signalled(signal),
        (None, None) => ProcessEnd::Exited(-1),
    })
}

/// Makes the step's process die with the driver, even when the driver is SIGKILLed (an OOM
/// kill): `PR_SET_PDEATHSIG` is set in the child before `exec` and survives the `exec` chain
/// `spark-submit` → `spark-class` → `java`, so the JVM gets SIGKILL when the driver's thread
/// that started it dies. It does not reach the JVM's own children (the Python driver of the
/// job): [`group_sentinel`] covers those.
pub(crate) fn die_with_the_driver(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let driver = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only makes two
        // async-signal-safe system calls (prctl, getppid) and `_exit`.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(std::io::Error::from)?;
                // The driver may have died before the prctl: then nobody would send the signal.
                if nix::unistd::getppid().as_raw() as u32 != driver {
                    nix::libc::_exit(137);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// A sentinel process in the step's process group: `sh` blocked reading a pipe whose only
/// writer is the driver. When the write end closes (the step ended, or the driver died in any
/// way, SIGKILL included) the read returns and the sentinel kills the whole group: the JVM,
/// the job's Python driver and whatever else the step started in it. Returns the write end;
/// `None` (with a warning) when the sentinel could not start (the step still runs, with only
/// the parent-death signal).
pub(crate) fn group_sentinel(pgid: i32, step_id: &str) -> Option<std::os::fd::OwnedFd> {
    let (reader, writer) = match cloexec_pipe() {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!("step {step_id}: no sentinel for its process group: {e}");
            return None;
        }
    };
    let mut sentinel = std::process::Command::new("sh");
    sentinel
        .args(["-c", "read _; kill -KILL 0"])
        .stdin(reader)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(pgid);
    match sentinel.spawn() {
        // Reaped with the rest of the group (the driver is their subreaper).
        Ok(_child) => Some(writer),
        Err(e) => {
            tracing::warn!("step {step_id}: no sentinel for its process group: {e}");
            None
        }
    }
}

/// Variables a step process gets from the driver's environment, by exact name.
const STEP_ENV_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TMP",
    "TEMP",
    "JAVA_HOME",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONIOENCODING",
    "VIRTUAL_ENV",
];

/// ... and by prefix: locale, Spark, PySpark and Hadoop settings.
const STEP_ENV_PREFIXES: &[&str] = &["LC_", "SPARK_", "PYSPARK_", "HADOOP_"];

/// The part of the driver's environment a step process gets (pure): the names above, nothing
/// else. `DATABASE_URL`, `WAREHOUSE_URL` (passwords), `AWS_*` keys, `PG*` and the driver's own
/// `EMR_DRIVER_*` settings stay in the driver: the local lake needs no credentials and the jobs
/// read none.
pub fn step_env(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vars.into_iter()
        .filter(|(name, _)| {
            let Some(name) = name.to_str() else { return false };
            STEP_ENV_NAMES.contains(&name) || STEP_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .collect()
}

/// A pipe whose two ends close on `exec`, so no step process inherits the write end.
fn cloexec_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as nix::libc::c_int; 2];
    // SAFETY: pipe2 writes two new descriptors on success; each is owned exactly once below.
    if unsafe { nix::libc::pipe2(fds.as_mut_ptr(), nix::libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and belong to nobody else.
    Ok(unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) })
}

/// The environment a local `spark-submit` needs when it lives in a virtualenv that is not
/// activated (the usual `.venv/bin/spark-submit`): its folder first on `PATH` (the script runs
/// `python3 find_spark_home.py`), and that venv's Python for the driver and the workers, unless
/// the caller chose them (`PYSPARK_PYTHON`, `PYSPARK_DRIVER_PYTHON`). Pure.
pub fn spark_env(
    spark_submit: &Path,
    path: Option<std::ffi::OsString>,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(String, std::ffi::OsString)> {
    let Some(bin) = spark_submit.parent().filter(|b| !b.as_os_str().is_empty()) else {
        return Vec::new();
    };
    let bin = std::path::absolute(bin).unwrap_or_else(|_| bin.to_path_buf());
    let mut new_path = std::ffi::OsString::from(bin.as_os_str());
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        new_path.push(":");
        new_path.push(path);
    }
    let mut env = vec![("PATH".to_string(), new_path)];
    let python = bin.join("python3");
    if python.exists() {
        for key in ["PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"] {
            if !is_set(key) {
                env.push((key.to_string(), python.clone().into_os_string()));
            }
        }
    }
    env
}

/// Kills whatever is left in the step's process group and reaps it, so the group is gone when
/// the step's state changes. Bounded: gives up after a few seconds.
pub(crate) async fn reap_group(pgid: i32) {
    let _ = tokio::task::spawn_blocking(move || {
        use nix::sys::wait::{waitpid, WaitPidFlag};
        let group = Pid::from_raw(pgid);
        for _ in 0..500 {
            if killpg(group, Signal::SIGKILL).is_err() {
                return; // ESRCH: no process left in the group.
            }
            // Reap the group's members that are our children (re-parented to us).
            while let Ok(status) = waitpid(Pid::from_raw(-pgid), Some(WaitPidFlag::WNOHANG)) {
                if status == nix::sys::wait::WaitStatus::StillAlive {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .await;
}

/// Gzips `stdout` and `stderr` into the lake next to them; returns the URI of `stderr.gz`.
async fn compress_logs(inner: &Arc<Inner>, log_prefix: &ObjectUri, log_dir: &Path) -> Option<String> {
    let mut stderr_uri = None;
    for name in ["stdout", "stderr"] {
        let raw_path = log_dir.join(name);
        let Ok(raw) = tokio::fs::read(&raw_path).await else {
            continue;
        };
        let gz = match tokio::task::spawn_blocking(move || gzip(&raw)).await {
            Ok(Ok(gz)) => gz,
            _ => continue,
        };
        let uri = log_prefix.join(&format!("{name}.gz"));
        if inner.options.lake.put_bytes(&uri, Bytes::from(gz)).await.is_ok() {
            let _ = tokio::fs::remove_file(&raw_path).await;
            if name == "stderr" {
                stderr_uri = Some(uri.to_string());
            }
        }
    }
    stderr_uri
}

fn gzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(raw)?;
    encoder.finish()
}

/// Records the end of a step and applies its `ActionOnFailure` to the others.
fn finish_step(inner: &Arc<Inner>, id: &str, end: ProcessEnd, stderr_uri: Option<String>) {
    let mut table = inner.lock();
    let now = inner.clock.now();
    let Some(index) = table.iter().position(|e| e.id == id) else {
        return;
    };
    let entry = &mut table[index];
    entry.pgid = None;
    entry.state = final_state(end, entry.cancel_requested);
    entry.ended_at = Some(now);
    if entry.state != StepState::Failed {
        return;
    }
    entry.failure = Some(FailureDetails {
        reason: Some(match end {
            ProcessEnd::NotStarted => "The step could not be started.".to_string(),
            _ => "Unknown Error.".to_string(),
        }),
        message: Some(match end {
            ProcessEnd::Exited(code) => format!("Step exited with code {code}"),
            ProcessEnd::Signalled(signal) => format!("Step was killed by signal {signal}"),
            ProcessEnd::NotStarted => "see stderr".to_string(),
            ProcessEnd::ApplicationEnded => {
                "The shared Spark application ended while the step ran; see stderr".to_string()
            }
        }),
        log_file: stderr_uri,
    });
    let effect = failure_effect(entry.config.action_on_failure);
    for other in table.iter_mut() {
        match (effect, other.state) {
            (FailureEffect::CancelPending | FailureEffect::CancelAll, StepState::Pending) => {
                other.state = StepState::Cancelled;
                other.ended_at = Some(now);
            }
            (FailureEffect::CancelAll, StepState::Running) => request_kill(inner, other),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn rewrites_spark_submit_for_the_local_spark() {
        let args = s(&[
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "--py-files",
            "s3://raw/artifacts/abc/pyspark_jobs.zip",
            "--conf",
            "spark.sql.shuffle.partitions=16",
            "--conf",
            "spark.yarn.dist.files=s3a://raw/a.txt,s3://raw/b.txt",
            "s3://raw/artifacts/abc/run_job.py",
            "parse_logs",
            "--output",
            "s3://staging/review_logs/dt=2021-10-31/",
        ]);
        let local = rewrite_command(&args, Path::new("/lake"), Path::new("/venv/bin/spark-submit"), "local[2]", "4g");
        assert_eq!(
            local,
            s(&[
                "/venv/bin/spark-submit",
                "--master",
                "local[2]",
                "--driver-memory",
                "4g",
                "--py-files",
                "/lake/raw/artifacts/abc/pyspark_jobs.zip",
                "--conf",
                "spark.sql.shuffle.partitions=16",
                "--conf",
                "spark.yarn.dist.files=/lake/raw/a.txt,/lake/raw/b.txt",
                "/lake/raw/artifacts/abc/run_job.py",
                "parse_logs",
                "--output",
                "/lake/staging/review_logs/dt=2021-10-31/",
            ])
        );
    }

    #[test]
    fn replaces_master_and_memory_given_by_the_step() {
        let args =
            s(&["/usr/bin/spark-submit", "--master", "yarn", "--driver-memory=1g", "--deploy-mode=cluster", "x.py"]);
        let local = rewrite_command(&args, Path::new("/l"), Path::new("ss"), "local[1]", "2g");
        assert_eq!(local, s(&["ss", "--master", "local[1]", "--driver-memory", "2g", "x.py"]));
    }

    #[test]
    fn the_local_shuffle_partitions_replace_the_rendered_ones() {
        let args = s(&[
            "spark-submit",
            "--conf",
            "spark.sql.shuffle.partitions=16",
            "--conf=spark.sql.shuffle.partitions=16",
            "-c",
            "spark.sql.shuffle.partitions=16",
            "--conf",
            "spark.sql.shuffle.partitions.extra=1",
            "run_job.py",
            "spark.sql.shuffle.partitions=16",
        ]);
        assert_eq!(
            with_conf(&args, SHUFFLE_PARTITIONS, "4"),
            s(&[
                "spark-submit",
                "--conf",
                "spark.sql.shuffle.partitions=4",
                "--conf=spark.sql.shuffle.partitions=4",
                "-c",
                "spark.sql.shuffle.partitions=4",
                "--conf",
                "spark.sql.shuffle.partitions.extra=1",
                "run_job.py",
                "spark.sql.shuffle.partitions=16",
            ]),
            "only the property itself, and only as a --conf value"
        );
        let other = s(&["bash", "-c", "spark.sql.shuffle.partitions=16"]);
        assert_eq!(with_conf(&other, SHUFFLE_PARTITIONS, "4"), other);
    }

    #[test]
    fn other_commands_run_as_they_are() {
        let args = s(&["bash", "-c", "echo s3://raw/x"]);
        assert_eq!(rewrite_command(&args, Path::new("/l"), Path::new("ss"), "local", "1g"), args);
    }

    #[test]
    fn maps_only_what_is_an_object_uri() {
        let root = Path::new("/l");
        assert_eq!(map_uris("--input", root), "--input");
        assert_eq!(map_uris("k=v", root), "k=v");
        assert_eq!(map_uris("s3n://b/k", root), "/l/b/k");
        assert_eq!(map_uris("/already/local", root), "/already/local");
    }

    #[test]
    fn puts_the_spark_submit_folder_first_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python3"), "").unwrap();
        let env = spark_env(&bin.join("spark-submit"), Some("/usr/bin:/bin".into()), |k| k == "PYSPARK_DRIVER_PYTHON");
        assert_eq!(env[0], ("PATH".to_string(), format!("{}:/usr/bin:/bin", bin.display()).into()));
        assert_eq!(env[1], ("PYSPARK_PYTHON".to_string(), bin.join("python3").into_os_string()));
        assert_eq!(env.len(), 2, "a Python the caller chose is kept");
        assert!(spark_env(Path::new("spark-submit"), None, |_| false).is_empty(), "found on PATH: nothing to add");
    }

    #[test]
    fn auto_gives_the_quick_jit_only_to_a_run_known_to_be_small() {
        let policy = |mode| JitPolicy { mode, quick_max_records: 400_000 };
        assert_eq!(policy(JitMode::Auto).resolve(Some(200_000)), JitMode::Quick);
        assert_eq!(policy(JitMode::Auto).resolve(Some(400_000)), JitMode::Quick);
        assert_eq!(policy(JitMode::Auto).resolve(Some(400_001)), JitMode::Full);
        assert_eq!(policy(JitMode::Auto).resolve(None), JitMode::Full, "unknown size: the default JIT");
        assert_eq!(policy(JitMode::Quick).resolve(None), JitMode::Quick);
        assert_eq!(policy(JitMode::Full).resolve(Some(1)), JitMode::Full);
        assert_eq!(JitPolicy { mode: JitMode::Auto, quick_max_records: 0 }.resolve(Some(1)), JitMode::Full);
        for name in JitMode::NAMES {
            assert!(JitMode::parse(name).is_some(), "{name}");
        }
        assert_eq!(JitMode::parse("c1"), None);
    }

    #[test]
    fn the_jit_option_goes_after_the_callers_and_before_the_archive() {
        let archive = Path::new("/a.jsa");
        assert_eq!(submit_opts(None, None, JitMode::Full), "");
        assert_eq!(submit_opts(None, None, JitMode::Quick), "-XX:TieredStopAtLevel=1");
        assert_eq!(
            submit_opts(Some("-Dx=1".into()), Some(archive), JitMode::Quick),
            r#"-Dx=1 -XX:TieredStopAtLevel=1 "-XX:SharedArchiveFile=/a.jsa""#
        );
        assert_eq!(
            submit_opts(Some("-Dx=1".into()), Some(archive), JitMode::Full),
            r#"-Dx=1 "-XX:SharedArchiveFile=/a.jsa""#
        );
    }

    #[test]
    fn the_archive_option_is_quoted_as_sparks_launcher_splits_it() {
        let archive = Path::new("/opt/a \"b\"\\c.jsa");
        assert_eq!(submit_opts_with_archive(None, archive), r#""-XX:SharedArchiveFile=/opt/a \"b\"\\c.jsa""#);
        assert_eq!(
            submit_opts_with_archive(Some("-Dx=1".into()), Path::new("/a.jsa")),
            r#"-Dx=1 "-XX:SharedArchiveFile=/a.jsa""#
        );
        assert_eq!(submit_opts_with_archive(Some("".into()), Path::new("/a.jsa")), r#""-XX:SharedArchiveFile=/a.jsa""#);
    }

    #[test]
    fn steps_get_only_the_environment_spark_needs() {
        let os = |s: &str| std::ffi::OsString::from(s);
        let driver_env = [
            ("PATH", "/usr/bin"),
            ("JAVA_HOME", "/usr/lib/jvm/java-17"),
            ("SPARK_HOME", "/opt/spark"),
            ("PYSPARK_PYTHON", "/venv/bin/python3"),
            ("LC_ALL", "C.UTF-8"),
            ("HADOOP_CONF_DIR", "/etc/hadoop"),
            ("DATABASE_URL", "postgres://etl:hunter2@db/movies"),
            ("WAREHOUSE_URL", "postgres://etl:hunter2@dw/movies"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("PGPASSWORD", "hunter2"),
            ("EMR_DRIVER_BUCKETS_RAW", "raw"),
        ];
        let kept: Vec<String> = step_env(driver_env.iter().map(|(k, v)| (os(k), os(v))))
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(kept, vec!["PATH", "JAVA_HOME", "SPARK_HOME", "PYSPARK_PYTHON", "LC_ALL", "HADOOP_CONF_DIR"]);
    }

    #[test]
    fn starts_the_oldest_pending_steps_up_to_the_concurrency() {
        use StepState::*;
        assert_eq!(steps_to_start(&[Pending, Pending, Pending], 2), vec![0, 1]);
        assert_eq!(steps_to_start(&[Completed, Running, Pending, Pending], 2), vec![2]);
        assert_eq!(steps_to_start(&[Running, CancelPending, Pending], 2), Vec::<usize>::new());
        assert_eq!(steps_to_start(&[Failed, Cancelled, Pending], 1), vec![2]);
        assert_eq!(steps_to_start(&[Pending], 0), vec![0], "a concurrency of 0 still runs one step");
    }

    #[test]
    fn final_states_follow_the_exit_and_the_cancel() {
        assert_eq!(final_state(ProcessEnd::Exited(0), false), StepState::Completed);
        assert_eq!(final_state(ProcessEnd::Exited(3), false), StepState::Failed);
        assert_eq!(final_state(ProcessEnd::Signalled(9), false), StepState::Failed);
        assert_eq!(final_state(ProcessEnd::NotStarted, false), StepState::Failed);
        assert_eq!(final_state(ProcessEnd::Signalled(15), true), StepState::Cancelled);
        assert_eq!(final_state(ProcessEnd::Exited(0), true), StepState::Cancelled);
    }

    #[test]
    fn action_on_failure_maps_to_its_effect() {
        assert_eq!(failure_effect(ActionOnFailure::Continue), FailureEffect::Nothing);
        assert_eq!(failure_effect(ActionOnFailure::CancelAndWait), FailureEffect::CancelPending);
        assert_eq!(failure_effect(ActionOnFailure::TerminateCluster), FailureEffect::CancelAll);
        assert_eq!(failure_effect(ActionOnFailure::TerminateJobFlow), FailureEffect::CancelAll);
    }
}
