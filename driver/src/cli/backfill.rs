//! `emr-driver backfill --from D1 --to D2 [--parallel N]`: every date of the range as an
//! ordinary run (see `crate::backfill`), with every option of `run`.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use crate::backend::Backend;
use crate::backfill::{
    date_range, progress_line, raw_dir_name, run_dates, summary_table, worst_exit_code, BackfillError,
    BackfillObserver, BackfillOptions, DateOutcome, DateState, SharedProvider, Tally,
};
use crate::cli::run::{run_databases, run_options, RunFlags};
use crate::cli::{Global, Output};
use crate::config::Overrides;
use crate::deploy::ArtifactSet;
use crate::error::{ExitCode, Result};
use crate::pipeline::{shutdown_on_signals, Pipeline, Progress, RunOptions};
use crate::plan::Plan;
use crate::poll::{JsonEvents, PollObserver, TextProgress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first run date, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// The last run date (included), YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Run up to this many dates at once. Their build_dimensions steps still run one at a time
    /// in date order, so dimension ids are those of one-by-one runs.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Keep going when a date fails (or has no folder under --raw-dir) instead of stopping:
    /// without it, a failed date lets the running dates finish and starts no new one.
    #[arg(long)]
    pub continue_on_failure: bool,
    #[command(flatten)]
    pub flags: RunFlags,
}

pub async fn run(mut args: Args, global: &Global) -> Result<ExitCode> {
    if args.parallel == 0 {
        return Err(BackfillError::BadParallel.into());
    }
    let dates = date_range(&args.from, &args.to)?;
    args.flags.resolve_flags();
    let flags = &args.flags;
    let config = flags.plan.config(global)?;
    let artifacts = ArtifactSet::build(&flags.plan.project_root)?;
    let mut plans = Vec::new();
    for date in &dates {
        // Each date's plan for its own inputs: its dt=D/ folder under --raw-dir as ingest will
        // cut it, or its incoming folder in the raw bucket.
        let raw_dir = flags.raw_dir.as_ref().map(|dir| dir.join(raw_dir_name(*date)));
        let inputs = match &raw_dir {
            Some(dir) if !dir.is_dir() => {
                crate::inputs::BoundInputs::not_yet(format!("no folder {} in --raw-dir", raw_dir_name(*date)))
            }
            _ => {
                crate::cli::render::find_inputs(
                    &config,
                    &date.to_string(),
                    raw_dir.as_deref(),
                    flags.database_url.as_deref(),
                    &flags.plan.project_root,
                )
                .await?
            }
        };
        plans.push(Plan::resolve(&config, &Overrides::default(), &date.to_string(), &artifacts, &inputs)?);
    }
    let missing: Vec<NaiveDate> = match &flags.raw_dir {
        Some(dir) => dates.iter().copied().filter(|d| !dir.join(raw_dir_name(*d)).is_dir()).collect(),
        None => Vec::new(),
    };
    let missing_error = || BackfillError::MissingRawDirs {
        dir: flags.raw_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default(),
        dates: missing.iter().map(|d| d.to_string()).collect(),
    };
    if args.flags.dry_run {
        println!("{}", serde_json::to_string_pretty(&dry_run(&args, &plans, &missing)).expect("the plan serialises"));
        return Ok(if missing.is_empty() || args.continue_on_failure { ExitCode::Success } else { ExitCode::BadInput });
    }
    if !missing.is_empty() {
        if !args.continue_on_failure {
            return Err(missing_error().into());
        }
        eprintln!("warning: {}", missing_error());
    }

    // One backend (store, runner, clock, AWS configuration) for the whole range.
    let backend = Backend::for_plan(&plans[0], &flags.plan.project_root).await;
    let store = Arc::clone(&backend.store);
    let clock = Arc::clone(&backend.clock);
    let records = plans.iter().map(crate::pipeline::vendor_records).sum::<Option<u64>>();
    let shared = SharedProvider::new(backend.provider()?, records);
    let databases = run_databases(flags, &plans[0], &backend).await?;
    let shutdown = shutdown_on_signals().map_err(|e| crate::error::Error::new(ExitCode::Internal, e))?;
    let observer: Arc<dyn PollObserver> = match global.output {
        Output::Text => Arc::new(TextProgress::stderr()),
        Output::Json => Arc::new(JsonEvents::stdout()),
    };
    let reporter = Reporter { output: global.output };
    let given: Vec<(NaiveDate, Option<DateOutcome>)> = dates
        .iter()
        .map(|d| {
            let outcome = missing.contains(d).then(|| DateOutcome {
                exit_code: ExitCode::BadInput,
                cause: Some(format!("no folder {} in --raw-dir", raw_dir_name(*d))),
                ..DateOutcome::new(*d, DateState::Failed)
            });
            (*d, outcome)
        })
        .collect();
    let options = BackfillOptions { parallel: args.parallel, continue_on_failure: args.continue_on_failure };
    eprintln!(
        "backfill {} -> {}: {} date(s), up to {} at once, build_dimensions in date order",
        dates[0],
        dates[dates.len() - 1],
        dates.len(),
        args.parallel
    );
    let outcomes = run_dates(given, &options, Arc::clone(&clock), shutdown.clone(), &reporter, |date, turns| {
        let plan = plans.iter().find(|p| p.run_date == date).expect("a plan per date").clone();
        // Each date ingests its own dt=D/ folder under its own lock, like `run --raw-dir`.
        let raw_dir = flags.raw_dir.as_ref().map(|dir| dir.join(raw_dir_name(date)));
        let options = RunOptions {
            turns: Some(turns),
            raw_dir,
            databases: databases.clone(),
            ..run_options(flags, &plan, backend.options.clone())
        };
        Pipeline {
            plan,
            store: Arc::clone(&store),
            provider: shared.for_date(),
            clock: Arc::clone(&clock),
            observer: Arc::clone(&observer),
            progress: Arc::new(DateLines { date, output: global.output }),
            options,
            shutdown: shutdown.clone(),
        }
    })
    .await;
    if let Some(line) = shared.finish(config.emr.keep_cluster).await {
        eprintln!("{line}");
    }
    let exit_code = worst_exit_code(outcomes.iter().map(|o| o.exit_code));
    match global.output {
        Output::Text => print!("{}", summary_table(&outcomes, exit_code)),
        Output::Json => println!(
            "{}",
            serde_json::json!({"event": "backfill_finished", "exit_code": exit_code.code(), "dates": outcomes})
        ),
    }
    Ok(exit_code)
}

/// What `--dry-run` prints: the dates, the order they start and finish their dimensions in,
/// and every run's plan.
fn dry_run(args: &Args, plans: &[Plan], missing: &[NaiveDate]) -> serde_json::Value {
    let dates: Vec<String> = plans.iter().map(Plan::date).collect();
    serde_json::json!({
        "backfill": {
            "from": dates.first(),
            "to": dates.last(),
            "dates": dates,
            "parallel": args.parallel,
            "continue_on_failure": args.continue_on_failure,
            "order": format!(
                "dates start in date order, up to {} at once; each date's build_dimensions waits for every earlier date's, \
                 so dimension ids are those of one-by-one runs in date order; user_purchase and warehouse loads run one date at a time",
                args.parallel
            ),
            "missing_raw_dirs": missing.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "note": "each run id covers the configuration, the code and the date's inputs (their parts' digests); a date whose inputs are not there yet shows the run id of its configuration and code alone (its plan's run_id_of says so)",
        },
        "runs": plans.iter().map(|p| serde_json::json!({"date": p.date(), "plan": p.to_json()})).collect::<Vec<_>>(),
    })
}

/// The backfill's own progress: a line on stderr after every change; with `--output json`,
/// one `backfill_date` event on stdout when a date starts and when it ends.
struct Reporter {
    output: Output,
}

impl BackfillObserver for Reporter {
    fn date_changed(&self, outcome: &DateOutcome, tally: &Tally) {
        match self.output {
            Output::Text => {
                let detail = match (&outcome.run_id, &outcome.cause) {
                    (_, Some(cause)) => format!(": {}", cause.lines().next().unwrap_or("")),
                    (Some(run_id), None) => format!(" (run {run_id})"),
                    (None, None) => String::new(),
                };
                eprintln!("[{}] {}{detail}", outcome.date, outcome.state.as_str());
            }
            Output::Json => {
                let mut event = serde_json::to_value(outcome).unwrap_or_default();
                event["event"] = "backfill_date".into();
                event["exit_code"] = outcome.exit_code.code().into();
                event["tally"] = serde_json::to_value(tally).unwrap_or_default();
                println!("{event}");
            }
        }
    }

    fn progress(&self, tally: &Tally, elapsed: Duration, left: Option<Duration>) {
        eprintln!("{}", progress_line(tally, elapsed, left));
    }
}

/// A date's driver lines, prefixed with the date (stderr); its driver-step events (JSON).
struct DateLines {
    date: NaiveDate,
    output: Output,
}

impl Progress for DateLines {
    fn line(&self, text: &str) {
        for line in text.lines() {
            eprintln!("[{}] {line}", self.date);
        }
    }

    fn stage(&self, key: &str, state: crate::manifest::RecordState) {
        if self.output == Output::Json {
            let event = serde_json::json!({"event": "driver_step_state", "date": self.date.to_string(), "step": key, "state": state.as_str()});
            println!("{event}");
        }
    }
}
