//! `run`: the nightly DAG for one date, written once over the traits (object store, step
//! runner, clock) so the same code drives EMR and the local Spark.
//!
//! Order: lock → (runner warm-up: the local shared Spark application starts) → preflight of
//! the vendor files → deploy → runner (cluster) → classify_reviews ∥ parse_logs ∥ user_purchase
//! to staging (only build_fact reads it) → build_dimensions → build_fact → warehouse load →
//! manifest. The manifest is written after every stage, so a rerun of the same run id knows
//! which steps already completed (and skips them), and a crash leaves a record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::WarehouseKind;
use crate::diagnose::{self, DiagnoseOptions};
use crate::error::{Error, ExitCode, ExitStatus, Result};
use crate::inputs::{BoundInputs, Inputs, Located};
use crate::lock::{LockRequest, RunLock};
use crate::manifest::{ArtifactRef, ClusterRef, RecordState, RunManifest, RunState, StepRecord};
use crate::plan::Plan;
use crate::poll::{PollObserver, PollOptions};
use crate::preflight::{self, InputSpec};
use crate::runner::cancel::{wait_or_cancel, RunOutcome};
use crate::runner::{find_steps_by_name, ExistingStep, StepRunner};
use crate::step::{StepState, StepStatus};
use crate::store::{ObjectStore, ObjectUri};

pub mod steps;

pub use steps::{DEPLOY, LOAD_WAREHOUSE, USER_PURCHASE};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("step {key} ({step_id}) FAILED: {cause}")]
    StepFailed { key: String, step_id: String, cause: String },
    #[error("the run was cancelled ({signal}); cancelled: {cancelled}")]
    Cancelled { signal: String, cancelled: String },
    #[error("the run passed its deadline after {waited_seconds}s; cancelled: {cancelled}. Raise [emr] run_timeout_minutes if the data grew")]
    TimedOut { waited_seconds: u64, cancelled: String },
    #[error("step {key} ended {state} without failing; rerun the date to retry it")]
    Interrupted { key: String, state: StepState },
    #[error("no source for user_purchase: give --database-url (export the table) or put user_purchase.csv beside the vendor files")]
    NoPurchaseSource,
    #[error("the job metrics of {job} at {uri} are unreadable: {reason}; the job's output cannot be trusted, rerun the date")]
    BadMetrics { job: String, uri: String, reason: String },
    #[error("input {input} does not balance: rows_in {rows_in} != rows_out {rows_out} + rejected {rows_rejected}; a job lost records, which is a bug")]
    Unbalanced { input: String, rows_in: u64, rows_out: u64, rows_rejected: u64 },
    #[error("the inputs of {date} changed between resolving the plan and taking the run lock (another ingest?): the plan was for run {planned}, the incoming folder now makes run {found}; render the plan again and rerun the date")]
    InputsChanged { date: String, planned: String, found: String },
    #[error("input {input} ({uri}) has {counted} CSV records (counted by the driver at ingest) but its job read rows_in {rows_in}; the job lost or invented records, which is a bug: the warehouse was not loaded")]
    Miscounted { input: String, uri: String, counted: u64, rows_in: u64 },
}

impl ExitStatus for PipelineError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PipelineError::StepFailed { .. } => ExitCode::StepFailed,
            PipelineError::Cancelled { .. } | PipelineError::Interrupted { .. } => ExitCode::Cancelled,
            PipelineError::TimedOut { .. } => ExitCode::TimedOut,
            PipelineError::NoPurchaseSource | PipelineError::InputsChanged { .. } => ExitCode::BadInput,
            PipelineError::BadMetrics { .. } | PipelineError::Unbalanced { .. } | PipelineError::Miscounted { .. } => {
                ExitCode::Internal
            }
        }
    }
}

/// A runner, and what the manifest should say about where it runs.
pub struct ProvidedRunner {
    pub runner: Arc<dyn StepRunner>,
    /// `emr` or `local-spark`.
    pub kind: &'static str,
    pub cluster: Option<ClusterRef>,
}

/// Makes the step runner once the artifacts are deployed (a cluster the driver creates
/// bootstraps from the deployed `packages.sh`).
#[async_trait]
pub trait RunnerProvider: Send + Sync {
    /// Called when the run starts (holding the lock, before the inputs are checked): a runner
    /// with something slow to start that needs no deployed artifact (the local runner's shared
    /// Spark application) starts it now. Default: nothing.
    async fn warm_up(&self, _plan: &Plan) {}

    async fn provide(&self, plan: &Plan) -> Result<ProvidedRunner>;
}

/// The databases of a run.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    /// PostgreSQL holding `user_purchase` (local, or RDS), and how to log in to it.
    pub source: Option<crate::db::login::DbLogin>,
    /// The warehouse (PostgreSQL, or Redshift when `[warehouse] kind = "redshift"`).
    pub warehouse: Option<crate::db::login::DbLogin>,
    /// Without a warehouse URL: the embedded SQLite warehouse file to load (a local run).
    pub embedded_warehouse: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub databases: Databases,
    /// Who runs it (for the lock): the nightly trigger, a user.
    pub owner: String,
    pub break_stale_lock: bool,
    /// Run every step again even if an earlier attempt of this run id completed it.
    pub force: bool,
    /// Load the good purchase rows and report the bad ones instead of failing.
    pub skip_bad_purchase_rows: bool,
    /// Leave a cluster this run created running at the end.
    pub keep_cluster: bool,
    pub poll: PollOptions,
    pub diagnose: DiagnoseOptions,
    /// How long cancelled steps get to settle before the cluster is terminated.
    pub settle: Duration,
    /// Refresh the locks this often in the background (`None`: no heartbeat, the lock holds
    /// for the whole deadline; tests with a fake clock).
    pub lock_heartbeat: Option<Duration>,
    /// Ingest the vendor files of this folder under the lock first; the run reads exactly them.
    pub raw_dir: Option<std::path::PathBuf>,
    /// Set by a backfill: the build_dimensions wave waits for the earlier dates' (dimension ids
    /// in date order) and the database work takes turns with the other dates' runs.
    pub turns: Option<crate::backfill::RunTurns>,
}

/// Whether an earlier attempt's step can be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Recorded COMPLETED, and its outputs are exactly what it recorded.
    Yes,
    /// Recorded COMPLETED, but its outputs changed or were never recorded: run it again.
    Redo,
    /// Not recorded as completed.
    No,
}

/// Lines for people (stderr) about the driver's own work; the poll observer shows the steps.
pub trait Progress: Send + Sync {
    fn line(&self, text: &str);
    /// A driver step changed state (for `--output json` events: `state.as_str()`).
    fn stage(&self, _key: &str, _state: RecordState) {}
}

/// The run lock while the run holds it: with a heartbeat task, or without one.
enum Held {
    Beating(crate::lock::HeldLock),
    Still(RunLock),
}

/// Everything `run` needs, resolved at the edge.
pub struct Pipeline {
    pub plan: Plan,
    pub store: Arc<dyn ObjectStore>,
    pub provider: Box<dyn RunnerProvider>,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn PollObserver>,
    pub progress: Arc<dyn Progress>,
    pub options: RunOptions,
    /// Resolves with the signal's name when the run must stop (SIGINT / SIGTERM).
    pub shutdown: watch::Receiver<Option<String>>,
}

/// A shutdown channel whose sender fires on SIGINT / SIGTERM.
pub fn shutdown_on_signals() -> std::io::Result<watch::Receiver<Option<String>>> {
    let mut signals = crate::runner::cancel::ShutdownSignals::install()?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let name = signals.recv().await;
        let _ = tx.send(Some(name));
    });
    Ok(rx)
}

/// A channel that fires with the first of `a` and `b` (a signal, or a failure beside a wave).
fn either_fires(
    a: watch::Receiver<Option<String>>,
    b: watch::Receiver<Option<String>>,
) -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = tokio::select! {
            reason = shutdown_requested(a) => reason,
            reason = shutdown_requested(b) => reason,
            // Nobody listens any more: the wave is over.
            _ = tx.closed() => return,
        };
        let _ = tx.send(Some(reason));
    });
    rx
}

async fn shutdown_requested(mut rx: watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(name) = rx.borrow().clone() {
            return name;
        }
        if rx.changed().await.is_err() {
            // The sender is gone: no signal can come any more.
            std::future::pending::<()>().await;
        }
    }
}

impl Pipeline {
    /// Runs the date. Returns the manifest (also written to the staging bucket) and how the
    /// run ended.
    pub async fn run(mut self) -> (RunManifest, Result<()>) {
        // One deadline for the whole run: every wait gets what is left of it.
        let deadline_at = self.options.poll.deadline.map(|d| self.clock.monotonic() + d);
        let manifest = self.new_manifest();
        let (lock_ttl, heartbeat) = self.lock_timing();
        let lock_request = LockRequest {
            owner: self.options.owner.clone(),
            run_id: self.plan.run_id.clone(),
            ttl: lock_ttl,
            break_stale: self.options.break_stale_lock,
        };
        let lock_uri = match ObjectUri::parse(&self.plan.uris.lock) {
            Ok(uri) => uri,
            Err(e) => return (manifest, Err(e.into())),
        };
        // The lock comes first: a run refused because another run holds the date changes
        // nothing, not the inputs (ingest), not the manifest the other run is writing.
        let lock = match RunLock::acquire(self.store.as_ref(), &lock_uri, &lock_request, self.clock.as_ref()).await {
            Ok(lock) => lock,
            Err(e) => return (manifest, Err(e.into())),
        };
        let held = self.keep_alive(lock, heartbeat);
        let (manifest, result) = self.run_locked(deadline_at).await;
        let lock = match held {
            Held::Beating(held) => held.stop().await,
            Held::Still(lock) => lock,
        };
        let released = lock.release(self.store.as_ref()).await;
        let result = match (result, released) {
            (Ok(()), Err(e @ crate::lock::LockError::Lost { .. })) => Err(e.into()),
            (result, Err(e)) => {
                self.progress.line(&format!("warning: could not release the run lock: {e}"));
                result
            }
            (result, Ok(())) => result,
        };
        (manifest, result)
    }

    /// How long the locks hold without a heartbeat, and how often the heartbeat beats (none:
    /// the lock holds for the whole deadline and half an hour more).
    fn lock_timing(&self) -> (Duration, Option<Duration>) {
        match self.options.lock_heartbeat {
            Some(every) => (crate::lock::HEARTBEAT_TTL.max(every * 3), Some(every)),
            None => {
                (self.options.poll.deadline.unwrap_or(Duration::from_secs(6 * 3600)) + Duration::from_secs(1800), None)
            }
        }
    }

    /// Starts the lock's heartbeat; a heartbeat that finds the lock taken over stops the run
    /// as a signal would (its steps are cancelled).
    fn keep_alive(&mut self, lock: RunLock, heartbeat: Option<Duration>) -> Held {
        let Some(every) = heartbeat else { return Held::Still(lock) };
        let (ttl, _) = self.lock_timing();
        let held = lock.keep_alive(Arc::clone(&self.store), Arc::clone(&self.clock), every, ttl);
        let mut lost = held.lost();
        let signals = self.shutdown.clone();
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let reason = tokio::select! {
                signal = shutdown_requested(signals) => signal,
                reason = async {
                    loop {
                        if let Some(reason) = lost.borrow().clone() {
                            return format!("lock lost: {reason}");
                        }
                        if lost.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                } => reason,
            };
            let _ = tx.send(Some(reason));
        });
        self.shutdown = rx;
        Held::Beating(held)
    }

    /// Everything the run does while it holds the date's lock.
    async fn run_locked(&mut self, deadline_at: Option<Duration>) -> (RunManifest, Result<()>) {
        self.provider.warm_up(&self.plan).await;
        if let Some(dir) = self.options.raw_dir.clone() {
            if let Err(e) = self.ingest_exactly(&dir).await {
                return self.failed_before_start(e);
            }
        }
        // Read-only checks of what is now in the incoming folder; they also make sure that the
        // plan is the one of these inputs.
        let purchases_from_file = match self.preflight().await {
            Ok(file) => file,
            Err(e) => return self.failed_before_start(e),
        };
        let mut manifest = self.new_manifest();
        let result = self.execute(&mut manifest, purchases_from_file, deadline_at).await;
        manifest.ended_at = Some(self.clock.now());
        manifest.state = match &result {
            Ok(()) => RunState::Succeeded,
            Err(e) => match e.exit_code() {
                ExitCode::Cancelled => RunState::Cancelled,
                ExitCode::TimedOut => RunState::TimedOut,
                _ => RunState::Failed,
            },
        };
        if let Err(e) = &result {
            manifest.error = Some(e.chain().join(": "));
        }
        // The answers and the HTML report beside the manifest (a problem there is a warning).
        let warehouse = crate::reporting::run::run_warehouse(&self.plan, &self.options.databases);
        manifest.analysts = Some(
            crate::reporting::run::after_run(
                self.store.as_ref(),
                &self.plan,
                warehouse.as_ref(),
                &manifest,
                self.clock.now(),
            )
            .await,
        );
        let written = self.write_manifest(&manifest).await;
        let result = result.and(written);
        (manifest, result)
    }

    fn failed_before_start(&self, e: Error) -> (RunManifest, Result<()>) {
        let mut manifest = self.new_manifest();
        manifest.state = RunState::Failed;
        manifest.ended_at = Some(self.clock.now());
        manifest.error = Some(e.chain().join(": "));
        (manifest, Err(e))
    }

    /// `--raw-dir`: the run reads exactly the files of that folder. They are ingested under
    /// the lock, and the date's incoming files of inputs the folder does not hold are removed,
    /// so that nothing of an earlier ingest (a stale user_purchase.csv) is used.
    async fn ingest_exactly(&self, dir: &std::path::Path) -> Result<()> {
        let incoming = ObjectUri::parse(&self.plan.uris.incoming)?;
        let files = crate::ingest::files_in_dir(dir)?;
        for spec in [&preflight::MOVIE_REVIEW, &preflight::LOG_REVIEWS] {
            if !files.iter().any(|f| crate::ingest::input_for(f).is_some_and(|(s, _)| s.name == spec.name)) {
                return Err(preflight::PreflightError::Unusable {
                    uri: dir.join(spec.name).display().to_string(),
                    problem: preflight::Problem::Missing,
                }
                .into());
            }
        }
        self.progress.line(&format!("ingesting {} file(s) from {} into {incoming}", files.len(), dir.display()));
        let part_size = self.plan.config.ingest.part_size_bytes();
        let ingested = crate::ingest::ingest(self.store.as_ref(), &incoming, &files, part_size).await?;
        for spec in crate::ingest::INPUTS {
            if !ingested.contains_key(spec.name) {
                for stale in crate::ingest::remove_input(self.store.as_ref(), &incoming, &spec).await? {
                    self.progress.line(&format!("removed {stale}: not among the files of {}", dir.display()));
                }
            }
        }
        Ok(())
    }

    fn new_manifest(&self) -> RunManifest {
        let artifacts = self
            .plan
            .artifacts
            .all()
            .into_iter()
            .map(|a| ArtifactRef { name: a.name.clone(), sha256: a.sha256.clone(), uri: a.uri.clone() })
            .collect();
        let mut steps = vec![driver_step(DEPLOY), driver_step(USER_PURCHASE)];
        steps.extend(self.plan.steps.iter().map(|s| StepRecord { kind: "spark".into(), ..driver_step(&s.key) }));
        steps.push(driver_step(LOAD_WAREHOUSE));
        RunManifest {
            run_id: self.plan.run_id.clone(),
            run_date: self.plan.date(),
            target: self.plan.target.as_str().to_string(),
            config_hash: self.plan.config_hash.clone(),
            state: RunState::Running,
            started_at: self.clock.now(),
            ended_at: None,
            artifacts,
            cluster: None,
            steps,
            sources: BTreeMap::new(),
            manifest_uri: self.plan.uris.manifest.clone(),
            error: None,
            usage: None,
            analysts: None,
            published: None,
        }
    }

    async fn write_manifest(&self, manifest: &RunManifest) -> Result<()> {
        let uri = ObjectUri::parse(&manifest.manifest_uri)?;
        let body = serde_json::to_vec_pretty(manifest).expect("the manifest serialises");
        self.store.put_bytes(&uri, Bytes::from(body)).await?;
        Ok(())
    }

    /// The manifest an earlier attempt of this run id left, if any.
    async fn previous_manifest(&self) -> Option<RunManifest> {
        let uri = ObjectUri::parse(&self.plan.uris.manifest).ok()?;
        let bytes = self.store.get_bytes(&uri).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn completed_before(&self, previous: &Option<RunManifest>, key: &str) -> bool {
        !self.options.force
            && previous
                .as_ref()
                .and_then(|m| m.steps.iter().find(|s| s.key == key))
                .is_some_and(|s| s.state == RecordState::Completed)
    }

    /// Whether step `key` is done: the earlier attempt of this run id recorded it COMPLETED
    /// (and not `force`) and the store still holds exactly the outputs it recorded. A step
    /// whose outputs were removed or rewritten since is run again, and so is one recorded
    /// without outputs (a manifest from before the outputs were recorded).
    ///
    /// A step one of whose inputs was written again in this attempt runs again too: its output
    /// was built from a write that is gone.
    async fn done_before(&self, previous: &Option<RunManifest>, manifest: &RunManifest, key: &str) -> Result<Done> {
        if !self.completed_before(previous, key) {
            return Ok(Done::No);
        }
        // What it waits for, and the driver's work it reads (build_fact: the user_purchase export).
        for dep in steps::upstream(key) {
            if manifest.steps.iter().any(|s| s.key == dep && !s.reused) {
                self.progress.line(&format!("{key}: {dep} was written again in this attempt; running {key} again"));
                return Ok(Done::Redo);
            }
        }
        let recorded =
            previous.as_ref().and_then(|m| m.steps.iter().find(|s| s.key == key)).and_then(|s| s.outputs.clone());
        let Some(recorded) = recorded else {
            self.progress.line(&format!("{key}: the earlier attempt recorded no outputs for it; running it again"));
            return Ok(Done::Redo);
        };
        match crate::publish::differs(self.store.as_ref(), &recorded).await? {
            None => Ok(Done::Yes),
            Some(why) => {
                self.progress.line(&format!("{key}: completed by an earlier attempt, but {why}; running it again"));
                Ok(Done::Redo)
            }
        }
    }

    /// Records the outputs of step `key`, which just completed, with their write ids.
    async fn record_outputs(&self, manifest: &mut RunManifest, key: &str) -> Result<()> {
        let outputs = crate::publish::record(self.store.as_ref(), &self.plan.uris, key).await?;
        manifest.step_mut(key).expect("every step is in the manifest").outputs = Some(outputs);
        Ok(())
    }

    /// Publishes the run's outputs: one atomic write of the date's pointer, naming the run and
    /// every output with its write id, once every step succeeded and the counts were checked.
    async fn publish(&self, manifest: &mut RunManifest) -> Result<()> {
        let mut outputs = crate::publish::StepOutputs::new();
        for step in &manifest.steps {
            if crate::publish::step_outputs(&self.plan.uris, &step.key)?.is_empty() {
                continue;
            }
            let recorded = step
                .outputs
                .as_ref()
                .ok_or_else(|| crate::publish::PublishError::Unrecorded { step: step.key.clone() })?;
            outputs.extend(recorded.clone());
        }
        let pointer = ObjectUri::parse(&self.plan.uris.published)?;
        let published = crate::publish::Published {
            run_date: self.plan.date(),
            run_id: self.plan.run_id.clone(),
            manifest: self.plan.uris.manifest.clone(),
            published_at: self.clock.now(),
            load_root: self.plan.uris.load_root.clone(),
            outputs,
        };
        let previous = self
            .with_shutdown(async { Ok(crate::publish::publish(self.store.as_ref(), &pointer, &published).await?) })
            .await?;
        let replaced = match previous {
            Some(p) if p.run_id != published.run_id => format!(" (it named run {})", p.run_id),
            _ => String::new(),
        };
        self.progress.line(&format!("published run {} at {pointer}{replaced}", published.run_id));
        manifest.published = Some(pointer.to_string());
        Ok(())
    }

    /// The date's pointer, which must name this run with every output unchanged: what the
    /// warehouse load and Spectrum read, never a bare date folder.
    async fn published(&self) -> Result<crate::publish::Published> {
        let pointer = ObjectUri::parse(&self.plan.uris.published)?;
        Ok(crate::publish::published_run(self.store.as_ref(), &pointer, &self.plan.run_id).await?)
    }

    /// After the load: the date's folders of every other run go (docs/driver-operations.md,
    /// "Old run folders"); a problem there is only a warning.
    async fn remove_superseded(&self) {
        let removed = match self.published().await {
            Ok(published) => {
                crate::publish::remove_superseded(self.store.as_ref(), &published).await.map_err(Error::from)
            }
            Err(e) => Err(e),
        };
        match removed {
            Ok(folders) => {
                for folder in folders {
                    self.progress.line(&format!("removed {folder}: a run of the date the pointer does not name"));
                }
            }
            Err(e) => self.progress.line(&format!("warning: could not remove the date's other run folders: {e}")),
        }
    }

    async fn execute(
        &mut self,
        manifest: &mut RunManifest,
        purchases_from_file: Option<ObjectUri>,
        deadline_at: Option<Duration>,
    ) -> Result<()> {
        let previous = self.previous_manifest().await;
        self.write_manifest(manifest).await?;

        self.deploy(manifest).await?;
        let provided = self.provider.provide(&self.plan).await?;
        manifest.cluster = provided.cluster.clone();
        self.progress.line(&format!("steps run on {}", provided.runner.describe()));
        self.write_manifest(manifest).await?;
        if let Err(e) = self.wait_for_cluster(&provided).await {
            self.finish_runner(&provided, manifest).await;
            return Err(e);
        }

        let mut purchases_from_file = Some(purchases_from_file);
        for (index, wave) in steps::waves().iter().enumerate() {
            // build_dimensions hands out new dimension ids from the union of every date's
            // snapshots: two dates doing that at once (a parallel backfill) could give two
            // values the same id, so that one wave holds a lock shared by all dates.
            let builds_dimensions =
                wave.iter().filter_map(|key| steps::step(key)).any(|s| s.extends_dimension_registry());
            if builds_dimensions {
                if let Err(e) = self.await_dimension_turn().await {
                    self.finish_runner(&provided, manifest).await;
                    return Err(e);
                }
            }
            let registry_lock = if builds_dimensions {
                match self.acquire_dimension_registry(deadline_at).await {
                    Ok(lock) => Some(lock),
                    Err(e) => {
                        self.finish_runner(&provided, manifest).await;
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let outcome = match purchases_from_file.take().filter(|_| index == 0) {
                // user_purchase is needed by build_fact only: it is staged while the first
                // wave runs.
                Some(file) => {
                    self.first_wave_and_user_purchase(manifest, &provided, &previous, wave, deadline_at, file).await
                }
                None => self.run_wave(manifest, &provided, &previous, wave, deadline_at, self.shutdown.clone()).await,
            };
            if let Some(held) = registry_lock {
                let lock = match held {
                    Held::Beating(held) => held.stop().await,
                    Held::Still(lock) => lock,
                };
                if let Err(e) = lock.release(self.store.as_ref()).await {
                    self.progress.line(&format!("warning: could not release the dimension registry lock: {e}"));
                }
            }
            if let (true, Some(turns)) = (builds_dimensions, &self.options.turns) {
                turns.dimensions.pass();
            }
            self.write_manifest(manifest).await?;
            if let Err(e) = outcome {
                self.finish_runner(&provided, manifest).await;
                return Err(e);
            }
        }
        self.check_balances(manifest)?;
        if let Err(e) = self.check_counts(manifest).await {
            self.finish_runner(&provided, manifest).await;
            return Err(e);
        }
        self.finish_runner(&provided, manifest).await;
        self.publish(manifest).await?;
        self.load_warehouse(manifest).await?;
        self.remove_superseded().await;
        Ok(())
    }

    /// Waits until the cluster (created or reused) is WAITING or RUNNING; a cluster that ends
    /// or never gets there fails the run with its `StateChangeReason` (exit 10).
    async fn wait_for_cluster(&self, provided: &ProvidedRunner) -> Result<()> {
        let timeout = Duration::from_secs(self.plan.config.emr.cluster_start_timeout_minutes.max(1) as u64 * 60);
        let wait = crate::cluster::wait_until_ready(
            provided.runner.as_ref(),
            self.clock.as_ref(),
            self.options.poll.interval,
            timeout,
        );
        if let Some(status) = self.with_shutdown(wait).await? {
            self.progress.line(&format!("cluster {} is {}", status.id, status.state.as_str()));
        }
        Ok(())
    }

    /// In a backfill, waits until every earlier date of it is done with build_dimensions.
    async fn await_dimension_turn(&self) -> Result<()> {
        let Some(turns) = &self.options.turns else { return Ok(()) };
        if !turns.dimensions.is_my_turn() {
            self.progress.line("waiting for the earlier dates of the backfill to build their dimensions");
        }
        tokio::select! {
            _ = turns.dimensions.wait() => Ok(()),
            signal = shutdown_requested(self.shutdown.clone()) => {
                Err(PipelineError::Cancelled { signal, cancelled: "nothing (waiting for the earlier dates' dimensions)".into() }.into())
            }
        }
    }

    /// In a backfill, the turn of this run at the databases (held while it is kept).
    async fn database_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let turns = self.options.turns.as_ref()?;
        Some(std::sync::Arc::clone(&turns.database).lock_owned().await)
    }

    /// The manifest of an earlier run of this date with the same inputs, code and configuration
    /// (the same run id) that succeeded, unless `force`: a backfill skips such a date. Read-only
    /// (the vendor files are checked as `run` checks them first).
    pub async fn succeeded_before(&mut self) -> Result<Option<RunManifest>> {
        if self.options.force {
            return Ok(None);
        }
        let incoming = ObjectUri::parse(&self.plan.uris.incoming)?;
        // With a folder of inputs, the earlier run counts only if the date's incoming files are
        // exactly that folder's (otherwise the run ingests them and is a new run).
        if let Some(dir) = self.options.raw_dir.clone() {
            let files = crate::ingest::files_in_dir(&dir)?;
            let part_size = self.plan.config.ingest.part_size_bytes();
            if !crate::ingest::already_ingested(self.store.as_ref(), &incoming, &files, part_size).await? {
                return Ok(None);
            }
        }
        let (found, _) = self.checked_inputs().await?;
        let plan = match &self.plan.inputs {
            BoundInputs::Bound(bound) if *bound == found => self.plan.clone(),
            // The plan was for other inputs: the run will say so; nothing to skip.
            BoundInputs::Bound(_) => return Ok(None),
            BoundInputs::NotYet { .. } => self.plan.for_inputs(found)?,
        };
        let uri = ObjectUri::parse(&plan.uris.manifest)?;
        let previous: Option<RunManifest> = match self.store.get_bytes(&uri).await {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        let run_id = plan.run_id.clone();
        let Some(previous) = previous.filter(|m| m.state == RunState::Succeeded && m.run_id == run_id) else {
            return Ok(None);
        };
        // Succeeded is not enough: the date's pointer must still name that run, with every
        // output it published unchanged (another run of the date may have been published
        // since, or files removed); otherwise the date runs again (reusing what is intact).
        let pointer = ObjectUri::parse(&plan.uris.published)?;
        let published = match crate::publish::read_pointer(self.store.as_ref(), &pointer).await {
            Ok(Some(published)) if published.run_id == run_id => published,
            _ => return Ok(None),
        };
        if crate::publish::differs(self.store.as_ref(), &published.outputs).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(previous))
    }

    /// The lock around the dimension registry, shared by every run date: waits (polling) while
    /// another date's build_dimensions holds it, up to the run's deadline.
    async fn acquire_dimension_registry(&self, deadline_at: Option<Duration>) -> Result<Held> {
        let uri = ObjectUri::new(self.plan.config.buckets.staging.clone(), "_locks/dimension-registry.json");
        let (ttl, heartbeat) = match self.options.lock_heartbeat {
            Some(every) => (crate::lock::HEARTBEAT_TTL.max(every * 3), Some(every)),
            None => (Duration::from_secs(3 * 3600), None),
        };
        let request = LockRequest {
            owner: self.options.owner.clone(),
            run_id: self.plan.run_id.clone(),
            ttl,
            break_stale: self.options.break_stale_lock,
        };
        let deadline_at = deadline_at.unwrap_or(self.clock.monotonic() + Duration::from_secs(6 * 3600));
        let mut told = false;
        loop {
            match RunLock::acquire(self.store.as_ref(), &uri, &request, self.clock.as_ref()).await {
                Ok(lock) => {
                    return Ok(match heartbeat {
                        Some(every) => {
                            Held::Beating(lock.keep_alive(Arc::clone(&self.store), Arc::clone(&self.clock), every, ttl))
                        }
                        None => Held::Still(lock),
                    })
                }
                Err(crate::lock::LockError::Held { held, .. }) if self.clock.monotonic() < deadline_at => {
                    if !told {
                        self.progress
                            .line(&format!("waiting for run {} to finish building the dimensions", held.run_id));
                        told = true;
                    }
                    tokio::select! {
                        _ = self.clock.sleep(self.options.poll.interval) => {}
                        signal = shutdown_requested(self.shutdown.clone()) => {
                            return Err(PipelineError::Cancelled { signal, cancelled: "nothing (waiting for the dimension registry)".into() }.into());
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The inputs in the incoming folder, checked as a run checks them before loading anything:
    /// each split input's parts all there and alone (and the first one's header), a single file's
    /// head, the user_purchase file's head. Also returns the user_purchase file, if any.
    async fn checked_inputs(&self) -> Result<(Inputs, Option<ObjectUri>)> {
        let incoming = ObjectUri::parse(&self.plan.uris.incoming)?;
        // The source database as the run id knows it: its URL without credentials.
        let database = self.options.databases.source.as_ref().map(|login| login.shown());
        let (inputs, located, purchases) =
            crate::inputs::read_store(self.store.as_ref(), &incoming, database.as_deref()).await?;
        let specs: [&InputSpec; 2] = [&preflight::MOVIE_REVIEW, &preflight::LOG_REVIEWS];
        for (spec, located) in specs.into_iter().zip(&located) {
            match located {
                Located::Parts { folder, manifest } => {
                    crate::inputs::check_parts(self.store.as_ref(), folder, manifest).await?;
                    let first = folder.join(&manifest.parts[0].name);
                    preflight::check(self.store.as_ref(), &first, spec).await?;
                }
                Located::File(uri) => {
                    preflight::check(self.store.as_ref(), uri, spec).await?;
                    self.progress.line(&format!(
                        "{uri} was put in the bucket without `emr-driver ingest`: it is read as one file (one Spark \
                         task); ingest it to cut it into parts"
                    ));
                }
            }
        }
        if let Some(uri) = &purchases {
            preflight::check(self.store.as_ref(), uri, &preflight::USER_PURCHASE).await?;
        }
        Ok((inputs, purchases))
    }

    /// Checks the vendor files before anything is loaded, and that the plan is the one of these
    /// inputs: a plan resolved before they were there is resolved again now (the run id then
    /// covers them); a plan resolved for other inputs fails the run. Returns the raw
    /// user_purchase file to stage, when that is the source (no database given).
    async fn preflight(&mut self) -> Result<Option<ObjectUri>> {
        let (found, purchases) = self.checked_inputs().await?;
        if purchases.is_none() && self.options.databases.source.is_none() {
            return Err(PipelineError::NoPurchaseSource.into());
        }
        // What the plan was resolved for: these inputs, others, or none yet.
        let (same, bound) = match &self.plan.inputs {
            BoundInputs::Bound(bound) => (*bound == found, true),
            BoundInputs::NotYet { .. } => (false, false),
        };
        if bound && !same {
            let found = self.plan.for_inputs(found)?;
            return Err(PipelineError::InputsChanged {
                date: self.plan.date(),
                planned: self.plan.run_id.clone(),
                found: found.run_id,
            }
            .into());
        }
        if !bound {
            let unbound = self.plan.run_id.clone();
            self.plan = self.plan.for_inputs(found)?;
            self.progress.line(&format!(
                "inputs bound: run {} (the plan was resolved before they were there, as {unbound})",
                self.plan.run_id
            ));
        }
        self.progress.line(&format!(
            "inputs checked: {}, {}{}",
            self.plan.uris.movie_review_input,
            self.plan.uris.log_reviews_input,
            purchases.as_ref().map(|p| format!(", {p}")).unwrap_or_default()
        ));
        Ok(purchases)
    }

    async fn deploy(&self, manifest: &mut RunManifest) -> Result<()> {
        self.driver_step(manifest, DEPLOY, async {
            let progress = Arc::clone(&self.progress);
            let mut lines = move |line: &str| progress.line(line);
            let report = crate::deploy::deploy(self.store.as_ref(), &self.plan.artifacts.all(), &mut lines).await?;
            Ok(serde_json::json!({"uploaded": report.uploaded.len(), "skipped": report.skipped.len()}))
        })
        .await
    }

    /// Runs one of the driver's own steps, recording it in the manifest (state, times, figures
    /// or failure); gives up on a signal.
    async fn driver_step<F>(&self, manifest: &mut RunManifest, key: &str, work: F) -> Result<()>
    where
        F: std::future::Future<Output = Result<Value>>,
    {
        let started = self.clock.now();
        self.progress.stage(key, RecordState::Running);
        let result = self.with_shutdown(work).await;
        let record = manifest.step_mut(key).expect("every driver step is in the manifest");
        record.started_at = Some(started);
        record.ended_at = Some(self.clock.now());
        match result {
            Ok(metrics) => {
                record.state = RecordState::Completed;
                record.metrics = Some(metrics);
                self.progress.stage(key, RecordState::Completed);
                Ok(())
            }
            Err(e) => {
                record.state = RecordState::Failed;
                record.failure = Some(e.to_string());
                self.progress.stage(key, RecordState::Failed);
                Err(e)
            }
        }
    }

    /// user_purchase → `s3://<staging>/user_purchase/dt=D/user_purchase.csv.gz`: loaded into
    /// the source database first when a file came with the vendor files and a database is
    /// given, exported from the database when there is one, converted straight from the file
    /// otherwise.
    async fn stage_user_purchase(
        &self,
        manifest: &mut RunManifest,
        previous: &Option<RunManifest>,
        file: Option<ObjectUri>,
    ) -> Result<()> {
        if self.done_before(previous, manifest, USER_PURCHASE).await? == Done::Yes {
            return self.reuse_previous(manifest, previous, USER_PURCHASE);
        }
        let _turn = match self.options.databases.source {
            Some(_) => self.database_turn().await,
            None => None,
        };
        self.driver_step(manifest, USER_PURCHASE, self.stage_user_purchase_inner(file)).await?;
        self.record_outputs(manifest, USER_PURCHASE).await
    }

    async fn stage_user_purchase_inner(&self, file: Option<ObjectUri>) -> Result<Value> {
        use crate::db::user_purchase::{self, LoadOptions};
        let export_uri = ObjectUri::parse(&self.plan.uris.user_purchase_export_file)?;
        let opts = LoadOptions { skip_bad_rows: self.options.skip_bad_purchase_rows };
        let mut metrics = serde_json::Map::new();
        match (&self.options.databases.source, file) {
            (Some(login), file) => {
                let mut client = login.connect().await?;
                let report = if let Some(file) = file {
                    // Loaded and exported in one transaction from a table of this run's own:
                    // another date loading at the same time never changes this export.
                    self.progress.line(&format!("loading {file} into user_purchase and exporting it to {export_uri}"));
                    let reader = self.store.reader(&file).await?;
                    let (loaded, exported) = user_purchase::load_and_export(
                        &mut client,
                        reader,
                        &file.to_string(),
                        opts,
                        self.store.as_ref(),
                        &export_uri,
                    )
                    .await?;
                    self.note_bad_purchase_rows(&loaded);
                    metrics.insert("loaded".into(), serde_json::to_value(&loaded).unwrap_or_default());
                    exported
                } else {
                    self.progress.line(&format!("exporting user_purchase to {export_uri}"));
                    crate::db::export::export_user_purchase(&client, self.store.as_ref(), &export_uri).await?
                };
                metrics.insert("exported_rows".into(), report.rows.into());
                metrics.insert("exported_bytes".into(), report.bytes.into());
            }
            (None, Some(file)) => {
                self.progress.line(&format!("converting {file} to {export_uri} (no database given)"));
                let reader = self.store.reader(&file).await?;
                let report = user_purchase::uci_to_export_object(
                    reader,
                    &file.to_string(),
                    self.store.as_ref(),
                    &export_uri,
                    opts,
                )
                .await?;
                self.note_bad_purchase_rows(&report);
                metrics.insert("exported_rows".into(), report.rows_loaded.into());
                metrics.insert("bad_rows".into(), report.bad_row_count.into());
            }
            (None, None) => return Err(PipelineError::NoPurchaseSource.into()),
        }
        Ok(Value::Object(metrics))
    }

    fn note_bad_purchase_rows(&self, report: &crate::db::user_purchase::LoadReport) {
        if report.bad_row_count > 0 {
            self.progress.line(&format!("user_purchase: {} bad row(s) skipped", report.bad_row_count));
            for bad in &report.bad_rows {
                self.progress.line(&format!("  line {}: {}", bad.line, bad.reason));
            }
        }
    }

    fn reuse_previous(&self, manifest: &mut RunManifest, previous: &Option<RunManifest>, key: &str) -> Result<()> {
        let before = previous.as_ref().and_then(|m| m.steps.iter().find(|s| s.key == key)).cloned();
        if let Some(before) = before {
            if let Some(metrics) = &before.metrics {
                manifest.add_job_metrics(metrics);
            }
            *manifest.step_mut(key).expect("every step is in the manifest") = StepRecord { reused: true, ..before };
        }
        self.progress.line(&format!("{key}: already completed by an earlier attempt of this run, skipped"));
        Ok(())
    }

    /// The first wave and the staging of user_purchase at once. The staging is recorded in the
    /// manifest as before (its own record, its figures); its failure cancels the wave's steps
    /// and fails the run with the staging's error, as it failed the run before the wave did;
    /// a failed wave fails the run once the staging has ended (a rerun reuses it).
    async fn first_wave_and_user_purchase(
        &self,
        manifest: &mut RunManifest,
        provided: &ProvidedRunner,
        previous: &Option<RunManifest>,
        wave: &[&str],
        deadline_at: Option<Duration>,
        file: Option<ObjectUri>,
    ) -> Result<()> {
        let mut staging_manifest = manifest.clone();
        let (failed_tx, failed_rx) = watch::channel(None);
        let staging = async {
            let staged = self.stage_user_purchase(&mut staging_manifest, previous, file).await;
            if let Err(e) = &staged {
                let _ = failed_tx.send(Some(format!("user_purchase failed: {e}")));
            }
            staged
        };
        let shutdown = either_fires(self.shutdown.clone(), failed_rx);
        let waved = self.run_wave(manifest, provided, previous, wave, deadline_at, shutdown);
        let (staged, waved) = tokio::join!(staging, waved);
        if let (Some(record), Some(staged_record)) =
            (manifest.step_mut(USER_PURCHASE), staging_manifest.steps.iter().find(|s| s.key == USER_PURCHASE))
        {
            *record = staged_record.clone();
        }
        for (source, counts) in staging_manifest.sources {
            manifest.sources.entry(source).or_insert(counts);
        }
        staged.and(waved)
    }

    /// Submits the wave's steps that are not done yet (attaching to the ones already running on
    /// the cluster), waits for them, and records them in the manifest.
    async fn run_wave(
        &self,
        manifest: &mut RunManifest,
        provided: &ProvidedRunner,
        previous: &Option<RunManifest>,
        wave: &[&str],
        deadline_at: Option<Duration>,
        shutdown: watch::Receiver<Option<String>>,
    ) -> Result<()> {
        let runner = provided.runner.as_ref();
        // What is left of the run's one deadline.
        let poll = PollOptions {
            deadline: deadline_at.map(|at| at.saturating_sub(self.clock.monotonic())),
            ..self.options.poll.clone()
        };
        let names: Vec<String> = wave
            .iter()
            .map(|key| self.plan.step(key).map(|s| s.config.name.clone()))
            .collect::<std::result::Result<_, _>>()?;
        let listed = if self.options.force { Vec::new() } else { runner.list_steps(&[]).await.unwrap_or_default() };
        let existing = find_steps_by_name(&listed, &names);

        let mut done = Vec::new();
        for key in wave {
            done.push(self.done_before(previous, manifest, key).await?);
        }

        let mut ids: Vec<(String, String)> = Vec::new(); // (key, step id) to wait for
        let mut to_submit = Vec::new();
        for ((key, (_, found)), done) in wave.iter().zip(existing).zip(done) {
            match found {
                _ if done == Done::Yes => self.reuse_previous(manifest, previous, key)?,
                // Its recorded outputs changed since: what the cluster says it completed then
                // is not what the store holds now.
                ExistingStep::Completed { .. } if done == Done::Redo => to_submit.push(key.to_string()),
                ExistingStep::Completed { id } => {
                    // Found by name only (the manifest of that attempt did not record it): its
                    // outputs count only if every write finished.
                    let outputs = match crate::publish::record(self.store.as_ref(), &self.plan.uris, key).await {
                        Ok(outputs) => outputs,
                        Err(crate::publish::PublishError::Incomplete { uri, marker, .. }) => {
                            self.progress.line(&format!(
                                "{key}: step {id} COMPLETED on {}, but {uri} has no {marker}; submitting it again",
                                runner.describe()
                            ));
                            to_submit.push(key.to_string());
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    self.progress
                        .line(&format!("{key}: step {id} already COMPLETED on {}, skipped", runner.describe()));
                    let record = manifest.step_mut(key).expect("every step is in the manifest");
                    record.step_id = Some(id.clone());
                    record.state = RecordState::Completed;
                    record.reused = true;
                    record.kind = provided.kind.into();
                    record.outputs = Some(outputs);
                    self.collect_metrics(manifest, key).await?;
                }
                ExistingStep::Attach { id, state } => {
                    self.progress.line(&format!(
                        "{key}: step {id} is already {state}, waiting for it instead of submitting again"
                    ));
                    ids.push((key.to_string(), id));
                }
                ExistingStep::Submit => to_submit.push(key.to_string()),
            }
        }
        if !to_submit.is_empty() {
            let configs: Vec<_> = to_submit
                .iter()
                .map(|k| self.plan.step(k).map(|s| s.config.clone()))
                .collect::<std::result::Result<_, _>>()?;
            let submitted = runner.submit(&configs).await?;
            for (key, id) in to_submit.into_iter().zip(submitted) {
                ids.push((key, id));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        for (key, id) in &ids {
            let record = manifest.step_mut(key).expect("every step is in the manifest");
            record.step_id = Some(id.clone());
            record.kind = provided.kind.into();
            record.logs = runner.log_prefix(id).map(|p| p.to_string());
        }
        let step_ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
        let outcome = wait_or_cancel(
            runner,
            &step_ids,
            self.clock.as_ref(),
            &poll,
            self.observer.as_ref(),
            shutdown_requested(shutdown),
            self.options.settle,
        )
        .await?;
        for status in outcome.steps() {
            if let Some((key, _)) = ids.iter().find(|(_, id)| *id == status.id) {
                record_status(manifest.step_mut(key).expect("every step is in the manifest"), status);
            }
        }
        self.record_usage(manifest, runner, &ids, outcome.steps()).await;
        match outcome {
            RunOutcome::Finished { steps } => self.after_wave(manifest, runner, &ids, &steps).await,
            RunOutcome::Cancelled { signal, report, .. } => {
                Err(PipelineError::Cancelled { signal, cancelled: describe_cancel(&report) }.into())
            }
            RunOutcome::TimedOut { waited_seconds, report, .. } => {
                Err(PipelineError::TimedOut { waited_seconds, cancelled: describe_cancel(&report) }.into())
            }
        }
    }

    /// Records what the ended steps used, when the runner reports it (EMR Serverless job runs),
    /// and the run's total so far. Not being able to read it is only a warning.
    async fn record_usage(
        &self,
        manifest: &mut RunManifest,
        runner: &dyn StepRunner,
        ids: &[(String, String)],
        steps: &[StepStatus],
    ) {
        let ended: Vec<String> = steps.iter().filter(|s| s.state.is_terminal()).map(|s| s.id.clone()).collect();
        match runner.usage(&ended).await {
            Ok(usage) if !usage.is_empty() => {
                for (key, id) in ids {
                    if let Some(used) = usage.get(id) {
                        manifest.step_mut(key).expect("every step is in the manifest").usage = Some(used.clone());
                    }
                }
                manifest.usage = manifest.steps.iter().filter_map(|s| s.usage.as_ref()).fold(None, |total, used| {
                    Some(total.map_or_else(|| used.clone(), |t: crate::manifest::ResourceUsage| t.add(used)))
                });
            }
            Ok(_) => {}
            Err(e) => self.progress.line(&format!("warning: could not read what the steps used: {e}")),
        }
    }

    /// Collects the metrics of the completed steps; diagnoses the first failed one.
    async fn after_wave(
        &self,
        manifest: &mut RunManifest,
        runner: &dyn StepRunner,
        ids: &[(String, String)],
        steps: &[StepStatus],
    ) -> Result<()> {
        let mut first_error: Option<Error> = None;
        for status in steps {
            let Some((key, _)) = ids.iter().find(|(_, id)| *id == status.id) else { continue };
            match status.state {
                StepState::Completed => {
                    self.collect_metrics(manifest, key).await?;
                    self.record_outputs(manifest, key).await?;
                }
                StepState::Failed => {
                    let (report, cause) = self.diagnose(runner, status).await;
                    manifest.step_mut(key).expect("every step is in the manifest").failure =
                        Some(format!("{cause}\n{report}"));
                    self.progress.line(&format!("{key} FAILED:\n{report}"));
                    first_error.get_or_insert_with(|| {
                        PipelineError::StepFailed { key: key.clone(), step_id: status.id.clone(), cause }.into()
                    });
                }
                state => {
                    if first_error.is_none() {
                        // Steps cancelled under the run: a cluster that ended says why.
                        if let Ok(Some(cluster)) = runner.cluster_status().await {
                            if cluster.state.is_ending() {
                                first_error = Some(crate::cluster::ClusterError::Ended { status: cluster }.into());
                            }
                        }
                    }
                    first_error.get_or_insert_with(|| PipelineError::Interrupted { key: key.clone(), state }.into());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The diagnosis for people, and its probable cause in one line.
    async fn diagnose(&self, runner: &dyn StepRunner, status: &StepStatus) -> (String, String) {
        let Some(prefix) = runner.log_prefix(&status.id) else {
            let text = "the runner keeps no logs for this step".to_string();
            return (text.clone(), text);
        };
        let cluster_prefix = runner.cluster_log_prefix();
        match diagnose::diagnose(
            self.store.as_ref(),
            &status.id,
            &prefix,
            cluster_prefix.as_ref(),
            status.failure.as_ref(),
            self.clock.as_ref(),
            &self.options.diagnose,
        )
        .await
        {
            Ok(diagnosis) => (diagnosis.render_text(), first_line(&diagnosis.cause.summary)),
            Err(e) => {
                let text = format!("could not read the logs under {prefix}: {e}");
                (text.clone(), text)
            }
        }
    }

    /// Reads the job's metrics file into the manifest.
    async fn collect_metrics(&self, manifest: &mut RunManifest, key: &str) -> Result<()> {
        let Some(folder) = self.plan.uris.metrics.get(key) else { return Ok(()) };
        let folder_uri = ObjectUri::parse(&format!("{folder}/"))?;
        let bad = |reason: String| PipelineError::BadMetrics { job: key.to_string(), uri: folder.clone(), reason };
        let listing = self.store.list(&folder_uri).await?;
        let part = listing
            .iter()
            .find(|m| m.uri.file_name().starts_with("part-") && m.size > 0)
            .ok_or_else(|| bad("no part file".into()))?;
        let bytes = self.store.get_bytes(&part.uri).await?;
        let text = String::from_utf8_lossy(&bytes);
        let line = text.lines().find(|l| !l.trim().is_empty()).ok_or_else(|| bad("empty".into()))?;
        let metrics: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        manifest.add_job_metrics(&metrics);
        manifest.step_mut(key).expect("every step is in the manifest").metrics = Some(metrics);
        Ok(())
    }

    fn check_balances(&self, manifest: &RunManifest) -> Result<()> {
        for (source, counts) in &manifest.sources {
            if !counts.balances() {
                return Err(PipelineError::Unbalanced {
                    input: source.clone(),
                    rows_in: counts.rows_in,
                    rows_out: counts.rows_out,
                    rows_rejected: counts.rows_rejected,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Compares each job's `rows_in` with the record count the driver made at ingest (an
    /// independent reader: `csv_core`, the parser of the `csv` crate, not Spark), summed over the
    /// parts in their manifest. Inputs put in the bucket by something else than `ingest` carry
    /// no count and are not compared (said on the progress lines).
    async fn check_counts(&self, manifest: &RunManifest) -> Result<()> {
        let Some(bound) = self.plan.inputs.bound() else { return Ok(()) };
        let inputs = [
            (preflight::MOVIE_REVIEW.name, "movie_review", &bound.movie_review),
            (preflight::LOG_REVIEWS.name, "log_reviews", &bound.log_reviews),
        ];
        for (file, source, input) in inputs {
            let Some(counts) = manifest.sources.get(source) else { continue };
            match input.records {
                Some(counted) if counted != counts.rows_in => {
                    return Err(PipelineError::Miscounted {
                        input: file.to_string(),
                        uri: input.uri.clone(),
                        counted,
                        rows_in: counts.rows_in,
                    }
                    .into())
                }
                Some(_) => {}
                None => self.progress.line(&format!(
                    "{file}: no record count from ingest at {}; rows_in {} is not checked independently",
                    input.uri, counts.rows_in
                )),
            }
        }
        Ok(())
    }

    /// Records what the runner used (EMR: the cluster's normalized instance hours), then
    /// terminates the cluster if this run created it (unless it is to be kept).
    async fn finish_runner(&self, provided: &ProvidedRunner, manifest: &mut RunManifest) {
        match provided.runner.total_usage().await {
            Ok(Some(total)) => manifest.usage = Some(total),
            Ok(None) => {}
            Err(e) => {
                self.progress.line(&format!("warning: could not read what {} used: {e}", provided.runner.describe()))
            }
        }
        if self.options.keep_cluster {
            return;
        }
        match provided.runner.terminate_if_created().await {
            Ok(crate::runner::Termination::Terminated) => {
                self.progress.line(&format!("terminating {} (created by this run)", provided.runner.describe()))
            }
            Ok(_) => {}
            Err(e) => self.progress.line(&format!("warning: could not terminate {}: {e}", provided.runner.describe())),
        }
    }

    async fn load_warehouse(&self, manifest: &mut RunManifest) -> Result<()> {
        let Some(login) = self.options.databases.warehouse.clone() else {
            // A local run without a database: the embedded warehouse file under the lake.
            if let Some(path) = self.options.databases.embedded_warehouse.clone() {
                return self.driver_step(manifest, LOAD_WAREHOUSE, self.load_embedded(path)).await;
            }
            let record = manifest.step_mut(LOAD_WAREHOUSE).expect("load_warehouse is in every manifest");
            record.state = RecordState::Skipped;
            record.metrics = Some(
                serde_json::json!({"skipped": "no warehouse database given", "tables_under": self.plan.uris.load_root}),
            );
            self.progress.line(&format!("no warehouse database: dims and fact are in {}", self.plan.uris.load_root));
            return Ok(());
        };
        let _turn = self.database_turn().await;
        self.driver_step(manifest, LOAD_WAREHOUSE, self.load_warehouse_inner(&login)).await
    }

    async fn load_embedded(&self, path: std::path::PathBuf) -> Result<Value> {
        let load_root = ObjectUri::parse(&self.published().await?.load_root)?;
        self.progress.line(&format!("loading {load_root} into the embedded warehouse {}", path.display()));
        let report =
            crate::db::embedded::load_run(&path, Arc::clone(&self.store), &load_root, self.plan.run_date).await?;
        let mut metrics = serde_json::to_value(&report).unwrap_or_default();
        metrics["warehouse"] = serde_json::json!({"kind": "sqlite", "location": path.display().to_string()});
        Ok(metrics)
    }

    async fn load_warehouse_inner(&self, login: &crate::db::login::DbLogin) -> Result<Value> {
        let published = self.published().await?;
        let load_root = ObjectUri::parse(&published.load_root)?;
        let schema = self.plan.config.warehouse.schema.clone();
        let mut client = login.connect().await?;
        match self.plan.config.warehouse.kind {
            WarehouseKind::Postgres => {
                self.progress.line(&format!("loading {load_root} into the warehouse (schema {schema})"));
                let report = crate::db::warehouse::load_run(
                    &mut client,
                    self.store.as_ref(),
                    &schema,
                    &load_root,
                    self.plan.run_date,
                )
                .await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            }
            WarehouseKind::Redshift => {
                // Redshift reads the files itself: check first that every write completed.
                crate::db::warehouse::check_complete(self.store.as_ref(), &load_root).await?;
                let role = self.plan.config.warehouse.redshift_copy_role_arn.clone();
                let statements = crate::db::redshift::render_load_sql(&schema, &load_root, &role, self.plan.run_date)?;
                self.progress.line(&format!("loading {load_root} into Redshift (schema {schema}) with COPY"));
                let executed = crate::db::redshift::execute(&mut client, &statements).await?;
                let spectrum = self.register_spectrum(&mut client, &published).await?;
                Ok(serde_json::json!({"statements": executed, "spectrum_statements": spectrum}))
            }
        }
    }

    /// Redshift Spectrum over staging (when `warehouse.glue_database` is set): the external
    /// schema and tables created when absent, and this run's dt= partitions registered, after
    /// the load committed (Redshift runs these only outside a transaction).
    async fn register_spectrum(
        &self,
        client: &mut tokio_postgres::Client,
        published: &crate::publish::Published,
    ) -> Result<Option<usize>> {
        let warehouse = &self.plan.config.warehouse;
        let Some(glue) = crate::config::non_empty(&warehouse.glue_database) else { return Ok(None) };
        let settings = crate::db::redshift::SpectrumSettings {
            schema: warehouse.spectrum_schema.clone(),
            glue_database: glue.to_string(),
            role_arn: warehouse.redshift_copy_role_arn.clone(),
            staging_bucket: self.plan.config.buckets.staging.clone(),
        };
        // The published run's folders (the pointer's), each date's partition set to them.
        let mut folders = Vec::new();
        for table in ["classified_movie_review", "review_logs", "fact_movie_analytics", "user_purchase"] {
            let uri = published.uri_of(table).ok_or_else(|| crate::publish::PublishError::Unrecorded {
                step: format!("{table} (in the date's pointer)"),
            })?;
            folders.push((table, ObjectUri::parse(uri)?));
        }
        let partitions: Vec<(&str, &ObjectUri)> = folders.iter().map(|(t, u)| (*t, u)).collect();
        let statements = crate::db::redshift::render_spectrum_sql(&settings, self.plan.run_date, &partitions)?;
        self.progress.line(&format!(
            "registering the {} partitions in Spectrum (schema {})",
            self.plan.date(),
            settings.schema
        ));
        Ok(Some(crate::db::redshift::execute_spectrum(client, &statements).await?))
    }

    /// Runs driver work, giving up (and so rolling back an open transaction) on a signal.
    async fn with_shutdown<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            result = work => result,
            signal = shutdown_requested(self.shutdown.clone()) => {
                Err(PipelineError::Cancelled { signal, cancelled: "the driver's own work (nothing was committed)".into() }.into())
            }
        }
    }
}

fn driver_step(key: &str) -> StepRecord {
    StepRecord {
        key: key.to_string(),
        kind: "driver".into(),
        step_id: None,
        state: RecordState::Pending,
        started_at: None,
        ended_at: None,
        logs: None,
        reused: false,
        metrics: None,
        failure: None,
        usage: None,
        outputs: None,
    }
}

fn record_status(record: &mut StepRecord, status: &StepStatus) {
    record.state = status.state.into();
    record.started_at = status.started_at;
    record.ended_at = status.ended_at;
}

fn describe_cancel(report: &crate::runner::cancel::CancelReport) -> String {
    let steps: Vec<&str> = report.cancelled.iter().filter(|c| c.accepted).map(|c| c.step_id.as_str()).collect();
    let steps = if steps.is_empty() { "no step".to_string() } else { steps.join(", ") };
    match report.termination {
        crate::runner::Termination::Terminated => format!("{steps}; the cluster this run created is terminating"),
        crate::runner::Termination::LeftRunning => {
            format!("{steps}; the cluster (not created by this run) is left running")
        }
        crate::runner::Termination::NotApplicable => steps,
    }
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
