//! `emr-driver wait --cluster-id J STEP_ID... [--timeout 2h]`: polls steps already submitted
//! to their end, with progress, diagnoses the failed ones, and exits with the outcome's code
//! (0 completed, 3 failed, 4 cancelled, 5 timed out).
//!
//! Ctrl-C only stops waiting: the steps were not submitted by this command, so they are left
//! running (cancel them with the AWS CLI if that is what you want).

use std::time::Duration;

use crate::cli::logs::{diagnose_emr_step, diagnose_job_run, LogWait};
use crate::cli::status::{attached_runner, render_table, Attached, EmrConnection};
use crate::cli::{Global, Output};
use crate::error::{ExitCode, Result};
use crate::poll::{outcome_exit_code, wait_for_steps, JsonEvents, PollObserver, PollOptions, TextProgress};
use crate::step::StepState;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connection: EmrConnection,
    /// The steps to wait for (s-...).
    #[arg(required = true)]
    pub step_ids: Vec<String>,
    /// Give up after this long (exit code 5), e.g. `2h`, `90m`.
    #[arg(long, default_value = "3h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Time between two polls; default [emr] poll_interval_seconds.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// Do not read the logs of failed steps.
    #[arg(long)]
    pub no_diagnose: bool,
    #[command(flatten)]
    pub log_wait: LogWait,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let backend = args.connection.backend(global).await?;
    let attached = attached_runner(&backend, &args.connection)?;
    let runner = attached.runner();
    let observer: Box<dyn PollObserver> = match global.output {
        Output::Json => Box::new(JsonEvents::stdout()),
        Output::Text => Box::new(TextProgress::stderr()),
    };
    let poll = &backend.options.poll;
    let options =
        PollOptions { interval: args.interval.unwrap_or(poll.interval), deadline: Some(args.timeout), ..poll.clone() };
    let clock = backend.clock.as_ref();
    let steps = wait_for_steps(runner, &args.step_ids, clock, &options, observer.as_ref()).await?;
    let mut diagnoses = Vec::new();
    if !args.no_diagnose {
        for step in steps.iter().filter(|s| matches!(s.state, StepState::Failed | StepState::Interrupted)) {
            let diagnosis = match &attached {
                Attached::Emr(emr) => diagnose_emr_step(&backend, emr, step, &args.log_wait).await,
                Attached::Serverless(runner) => diagnose_job_run(&backend, runner, step, &args.log_wait).await,
            };
            match diagnosis {
                Ok(diagnosis) => diagnoses.push(diagnosis),
                Err(e) => eprintln!("could not diagnose step {}: {e}", step.id),
            }
        }
    }
    let code = outcome_exit_code(&steps);
    match global.output {
        Output::Json => {
            let summary = serde_json::json!({
                "event": "done",
                "exit_code": code.code(),
                "steps": steps,
                "diagnoses": diagnoses,
            });
            println!("{summary}");
        }
        Output::Text => {
            print!("{}", render_table(&steps));
            for diagnosis in &diagnoses {
                print!("\n{}", diagnosis.render_text());
            }
        }
    }
    Ok(code)
}
