//! `emr-driver run --date D`: the nightly pipeline for one date, on EMR or on the local Spark.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, TargetOptions};
use crate::cli::render::{PlanArgs, TargetArg};
use crate::cli::{Global, Output};
use crate::config::WarehouseKind;
use crate::error::{ExitCode, Result};
use crate::manifest::RecordState;
use crate::pipeline::{shutdown_on_signals, Databases, Pipeline, Progress, RunOptions};
use crate::plan::Plan;
use crate::poll::{JsonEvents, PollObserver, PollOptions, TextProgress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date (the logical date of the nightly run), YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// The options of a run, shared by `run` and `backfill` (flattened into both).
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// Run on the local Spark with the local lake (same as --target local). Without
    /// --raw-dir, `run` uses the bundled sample data (sample/), `backfill` the lake's incoming
    /// folders.
    #[arg(long, conflicts_with = "target")]
    pub local: bool,
    /// `run`: local folder with the date's vendor files (movie_review.csv, log_reviews.csv and,
    /// optionally, user_purchase.csv; each may be .csv.gz). `backfill`: the folder holding one
    /// dt=YYYY-MM-DD/ folder of those per date. Ingested into the raw bucket first.
    #[arg(long)]
    pub raw_dir: Option<PathBuf>,
    /// PostgreSQL holding user_purchase (and, locally, the warehouse). With a
    /// user_purchase.csv among the vendor files, it is loaded into this database first.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The warehouse database, when it is not the --database-url one (Redshift in AWS).
    #[arg(long, env = "WAREHOUSE_URL", hide_env_values = true)]
    pub warehouse_url: Option<String>,
    /// Accepted for compatibility, no longer needed: a lock whose run died is taken over by
    /// itself. Still replaces a lock object that is not a lock record.
    #[arg(long)]
    pub break_stale_lock: bool,
    /// Run every step again, even those an earlier attempt of this run completed.
    #[arg(long)]
    pub force: bool,
    /// Load the good user_purchase rows and report the bad ones instead of failing.
    #[arg(long)]
    pub skip_bad_purchase_rows: bool,
    /// Leave a cluster this run created running at the end (it still auto-terminates when idle).
    #[arg(long)]
    pub keep_cluster: bool,
    /// Give up (cancel the steps, exit 5) after this long; default [emr] run_timeout_minutes.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Print the plan (every request, every URI) and exit, calling nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let Args { date, flags: mut args } = args;
    args.resolve_flags();
    // The vendor files are ingested by the pipeline once it holds the date's lock; the plan is
    // resolved before, for what that ingest will put in the bucket.
    let raw_dir = match (&args.raw_dir, args.local) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(args.plan.project_root.join("sample")),
        (None, false) => None,
    };
    let config = args.plan.config(global)?;
    let inputs = crate::cli::render::find_inputs(
        &config,
        &date,
        raw_dir.as_deref(),
        args.database_url.as_deref(),
        &args.plan.project_root,
    )
    .await?;
    let plan = args.plan.plan(&config, &date, &inputs)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan.to_json()).expect("the plan serialises"));
        return Ok(ExitCode::Success);
    }
    let backend = Backend::for_plan(&plan, &args.plan.project_root).await;
    let store = Arc::clone(&backend.store);
    let provider = backend.provider()?;
    let clock = Arc::clone(&backend.clock);
    let mut options = run_options(&args, &plan, backend.options.clone());
    // The vendor files are ingested by the pipeline once it holds the date's lock.
    options.raw_dir = match (&args.raw_dir, args.local) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(args.plan.project_root.join("sample")),
        (None, false) => None,
    };
    options.databases = run_databases(&args, &plan, &backend).await?;
    let (observer, progress): (Arc<dyn PollObserver>, Arc<dyn Progress>) = match global.output {
        Output::Text => (Arc::new(TextProgress::stderr()), Arc::new(TextLines)),
        Output::Json => (Arc::new(JsonEvents::stdout()), Arc::new(JsonStages)),
    };
    let shutdown = shutdown_on_signals().map_err(|e| crate::error::Error::new(ExitCode::Internal, e))?;
    let pipeline = Pipeline { plan, store, provider, clock, observer, progress, options, shutdown };
    let (manifest, result) = pipeline.run().await;
    match global.output {
        Output::Text => print!("{}", manifest.summary()),
        Output::Json => println!("{}", serde_json::json!({"event": "run_finished", "manifest": manifest})),
    }
    result.map(|()| ExitCode::Success)
}

impl RunFlags {
    /// Folds the flags that are configuration into the plan arguments: `--local` is the local
    /// target; `--warehouse-url` (or WAREHOUSE_URL) is `warehouse.url`, checked with the rest.
    pub(crate) fn resolve_flags(&mut self) {
        if self.local {
            self.plan.target = Some(TargetArg::Local);
        }
        if let Some(url) = self.warehouse_url.clone().filter(|u| !u.trim().is_empty()) {
            self.plan.sets.push(format!("warehouse.url={url}"));
        }
        // Configuration too (not in the config hash), so the resolved plan is never changed.
        if self.keep_cluster {
            self.plan.sets.push("emr.keep_cluster=true".to_string());
        }
    }
}

/// The run's options: the target's timing from the backend, `--timeout` replacing the deadline;
/// no databases yet ([`run_databases`]).
pub(crate) fn run_options(args: &RunFlags, plan: &Plan, target: TargetOptions) -> RunOptions {
    let poll = PollOptions { deadline: args.timeout.or(target.poll.deadline), ..target.poll };
    RunOptions {
        // Set by [`run_databases`], which may call AWS.
        databases: Databases::default(),
        owner: std::env::var("USER").unwrap_or_else(|_| "emr-driver".into()),
        break_stale_lock: args.break_stale_lock,
        force: args.force,
        skip_bad_purchase_rows: args.skip_bad_purchase_rows,
        keep_cluster: plan.config.emr.keep_cluster,
        poll,
        diagnose: target.diagnose,
        settle: target.settle,
        lock_heartbeat: Some(crate::lock::HEARTBEAT_EVERY),
        raw_dir: None,
        turns: None,
    }
}

/// The warehouse of the run: `warehouse.url` (`WAREHOUSE_URL`, `--warehouse-url`); a
/// PostgreSQL warehouse may be the source database itself, Redshift never is (the plan refuses
/// `kind = redshift` without its own URL).
pub fn warehouse_url(plan: &Plan, source_url: Option<&str>) -> Option<String> {
    match crate::config::non_empty(&plan.config.warehouse.url) {
        Some(url) => Some(url.to_string()),
        None if plan.config.warehouse.kind == WarehouseKind::Postgres => source_url.map(str::to_string),
        None => None,
    }
}

/// The run's databases (`--database-url` / `DATABASE_URL`, the warehouse URL) with their
/// logins as the configuration says (`source.auth`, `warehouse.auth`, the secrets' ARNs),
/// through the backend's AWS configuration; each login is checked once now and makes fresh
/// credentials at every connection (a rotated secret, a 15-minute IAM token).
pub(crate) async fn run_databases(args: &RunFlags, plan: &Plan, backend: &Backend) -> Result<Databases> {
    let source_url = args.database_url.clone().filter(|u| !u.is_empty());
    let warehouse_url = warehouse_url(plan, source_url.as_deref());
    // A local run without a database loads the embedded warehouse file under the lake.
    let embedded_warehouse = if warehouse_url.is_none() { crate::reporting::run::default_embedded(plan) } else { None };
    crate::cli::logins::run_databases(
        &plan.config,
        backend.sdk(),
        Arc::clone(&backend.clock),
        source_url.as_deref(),
        warehouse_url.as_deref(),
        embedded_warehouse,
    )
    .await
}

/// Driver progress for people, on stderr.
struct TextLines;

impl Progress for TextLines {
    fn line(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// Driver progress for machines: one JSON event per driver-step state change on stdout.
struct JsonStages;

impl Progress for JsonStages {
    fn line(&self, text: &str) {
        eprintln!("{text}");
    }

    fn stage(&self, key: &str, state: RecordState) {
        println!("{}", serde_json::json!({"event": "driver_step_state", "step": key, "state": state.as_str()}));
    }
}
