//! `emr-driver run --date D`: the nightly pipeline for one date, on EMR or on the local Spark.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{local_runner_options, EmrProvider, LocalProvider};
use crate::cli::render::{PlanArgs, TargetArg};
use crate::cli::{Global, Output};
use crate::clock::{Clock, SystemClock};
use crate::config::Target;
use crate::diagnose::DiagnoseOptions;
use crate::error::{ExitCode, Result};
use crate::pipeline::{shutdown_on_signals, Databases, Pipeline, Progress, RunOptions, RunnerProvider};
use crate::plan::{open_store, Plan};
use crate::poll::{JsonEvents, PollObserver, PollOptions, TextProgress};
use crate::store::ObjectUri;

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
    /// Replace an expired lock left by a run that died.
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
    if args.local {
        args.plan.target = Some(TargetArg::Local);
    }
    let mut plan = args.plan.plan(global, &date)?;
    if args.keep_cluster {
        plan.config.emr.keep_cluster = true;
    }
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan.to_json()).expect("the plan serialises"));
        return Ok(ExitCode::Success);
    }
    let clock: Arc<dyn Clock> = SystemClock::shared();
    let store = open_store(&plan.config).await;
    let raw_dir = match (&args.raw_dir, args.local) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(args.plan.project_root.join("sample")),
        (None, false) => None,
    };
    if let Some(dir) = &raw_dir {
        let incoming = ObjectUri::parse(&plan.uris.movie_review_input)?;
        let incoming = incoming.parent();
        let files = crate::ingest::files_in_dir(dir)?;
        eprintln!("ingesting {} file(s) from {} into {incoming}", files.len(), dir.display());
        crate::ingest::ingest(store.as_ref(), &incoming, &files).await?;
    }

    let provider = runner_provider(&plan, &args, &clock).await?;
    let options = run_options(&args, &plan);
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

/// The runner provider of the plan's target.
pub(crate) async fn runner_provider(
    plan: &Plan,
    args: &RunFlags,
    clock: &Arc<dyn Clock>,
) -> Result<Box<dyn RunnerProvider>> {
    Ok(match plan.target {
        Target::Local => Box::new(LocalProvider {
            options: local_runner_options(&plan.config, &args.plan.project_root)?,
            clock: Arc::clone(clock),
        }),
        Target::Emr => {
            let sdk = crate::aws::sdk_config(&crate::aws::AwsSettings::from_config(&plan.config)).await;
            Box::new(EmrProvider { client: crate::aws::emr_client(&sdk) })
        }
    })
}

pub(crate) fn run_options(args: &RunFlags, plan: &Plan) -> RunOptions {
    let emr = &plan.config.emr;
    let deadline = args.timeout.unwrap_or(Duration::from_secs(emr.run_timeout_minutes.max(1) as u64 * 60));
    let interval = match plan.target {
        // The local runner answers from memory: poll often, the steps are short.
        Target::Local => Duration::from_secs(1),
        Target::Emr => Duration::from_secs(emr.poll_interval_seconds.max(1) as u64),
    };
    let diagnose = match plan.target {
        // Local logs are complete when the process ends.
        Target::Local => DiagnoseOptions {
            wait_for_logs: Duration::from_secs(2),
            first_backoff: Duration::from_millis(200),
            ..Default::default()
        },
        Target::Emr => DiagnoseOptions::default(),
    };
    let source_url = args.database_url.clone().filter(|u| !u.is_empty());
    let warehouse_url = args.warehouse_url.clone().filter(|u| !u.is_empty()).or_else(|| source_url.clone());
    RunOptions {
        databases: Databases { source_url, warehouse_url },
        owner: std::env::var("USER").unwrap_or_else(|_| "emr-driver".into()),
        break_stale_lock: args.break_stale_lock,
        force: args.force,
        skip_bad_purchase_rows: args.skip_bad_purchase_rows,
        keep_cluster: emr.keep_cluster,
        poll: PollOptions { interval, deadline: Some(deadline), ..PollOptions::default() },
        diagnose,
        settle: Duration::from_secs(120),
        turns: None,
    }
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

    fn stage(&self, key: &str, state: &str) {
        println!("{}", serde_json::json!({"event": "driver_step_state", "step": key, "state": state}));
    }
}
