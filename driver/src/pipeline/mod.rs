//! `run`: the nightly DAG for one date, written once over the traits (object store, step
//! runner, clock) so the same code drives EMR and the local Spark.
//!
//! Order: lock → (runner warm-up: the local shared Spark application starts) → preflight of
//! the vendor files → deploy → runner (cluster) → classify_reviews ∥ parse_logs ∥ user_purchase
//! to staging (only build_fact reads it) → build_dimensions → build_fact → warehouse load →
//! manifest. The manifest is written after every stage, so a rerun of the same run id knows
//! which steps already completed (and skips them), and a crash leaves a record.
//!
//! A folder of stages, one `impl Pipeline` block each: this file has the types, [`Pipeline::run`]
//! (the date's lock, then everything under it) and the manifest; [`steps`] the one table of
//! Spark steps; `locks` the heartbeat, the dimension registry's lock and a backfill's turns;
//! `intake` the inputs (ingest, checks, binding the plan); `waves` the Spark steps in waves;
//! `driver_steps` deploy, the user_purchase staging and the warehouse load; `outputs` reuse,
//! recording and publishing of what the steps wrote; `metrics` the jobs' metrics files.

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

mod driver_steps;
mod intake;
mod locks;
mod metrics;
mod outputs;
pub mod steps;
mod waves;

use outputs::Done;
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
    /// Spark application) starts it now. `records`: the run's vendor records (movie_review and
    /// log_reviews) when the plan knows them, which a local runner sizes its JVM's JIT by.
    /// Default: nothing.
    async fn warm_up(&self, _plan: &Plan, _records: Option<u64>) {}

    async fn provide(&self, plan: &Plan) -> Result<ProvidedRunner>;

    /// Called as the run ends, after its report: waits until what the runner's
    /// `terminate_if_created` set going has ended (the local runner's shared application
    /// stopped, so the command never returns with a JVM of its own still shutting down).
    /// Default: nothing to wait for.
    async fn wait_terminated(&self) {}
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

    /// Everything the run does while it holds the date's lock.
    async fn run_locked(&mut self, deadline_at: Option<Duration>) -> (RunManifest, Result<()>) {
        self.provider.warm_up(&self.plan, vendor_records(&self.plan)).await;
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
        // The shared Spark application stopped as the last step ended; the publish, the
        // warehouse load and the report ran while it shut down.
        self.provider.wait_terminated().await;
        (manifest, result)
    }

    fn failed_before_start(&self, e: Error) -> (RunManifest, Result<()>) {
        let mut manifest = self.new_manifest();
        manifest.state = RunState::Failed;
        manifest.ended_at = Some(self.clock.now());
        manifest.error = Some(e.chain().join(": "));
        (manifest, Err(e))
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

/// The run's vendor records (movie_review + log_reviews) as the plan knows them: counted at
/// ingest, or by the plan from `--raw-dir`; None when an input was not counted (a file put in
/// the bucket without `emr-driver ingest`) or the inputs are not there yet.
pub fn vendor_records(plan: &Plan) -> Option<u64> {
    let inputs = plan.inputs.bound()?;
    Some(inputs.movie_review.records? + inputs.log_reviews.records?)
}
