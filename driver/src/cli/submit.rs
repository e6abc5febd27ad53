//! `emr-driver submit TEMPLATE --var k=v ... [--wait]`: an engineer's ad-hoc step, rendered
//! from any step template with the plan's variables (URIs, artifacts, run id...) plus `--var`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::backend::Backend;
use crate::cli::render::{PlanArgs, TargetArg};
use crate::cli::{Global, Output};
use crate::config::Target;
use crate::error::{Error, ExitCode, Result};
use crate::poll::{JsonEvents, PollObserver, PollOptions, TextProgress};
use crate::runner::cancel::{wait_or_cancel, RunOutcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A handlebars step template (JSON StepConfig), e.g. driver/templates/steps/parse_logs.json.hbs.
    pub template: PathBuf,
    /// A template variable, `key=value` (dotted keys set nested values: `uris.review_logs=s3://...`).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// The run date the plan's variables are resolved for.
    #[arg(long, default_value = "1970-01-01")]
    pub date: String,
    /// Run on the local Spark (the step runs in this process, so submit waits for it).
    #[arg(long, conflicts_with = "target")]
    pub local: bool,
    /// Wait for the step to finish (Ctrl-C cancels it) and exit with its outcome.
    #[arg(long)]
    pub wait: bool,
    /// Print the rendered step (the exact StepConfig) and exit, calling nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting (and cancel the step) after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3h")]
    pub timeout: Duration,
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// Sets `vars[a][b]... = value` for `a.b...=value`.
fn set_var(vars: &mut Value, assignment: &str) -> Result<()> {
    let (path, value) = assignment
        .split_once('=')
        .ok_or_else(|| Error::new(ExitCode::BadInput, format!("--var `{assignment}` is not key=value")))?;
    let mut node = vars;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !node.get(*part).is_some_and(Value::is_object) {
            node[*part] = Value::Object(Default::default());
        }
        node = &mut node[*part];
    }
    node[parts[parts.len() - 1]] = Value::String(value.to_string());
    Ok(())
}

pub async fn run(mut args: Args, global: &Global) -> Result<ExitCode> {
    if args.local {
        args.plan.target = Some(TargetArg::Local);
    }
    // An ad-hoc step is not a run of the inputs: its plan is of the configuration and code.
    let config = args.plan.config(global)?;
    let inputs = crate::inputs::BoundInputs::not_yet("submit does not read the inputs");
    let plan = args.plan.plan(&config, &args.date, &inputs)?;
    let mut vars = plan.vars();
    let name = args.template.file_stem().and_then(|s| s.to_str()).unwrap_or("step").trim_end_matches(".json");
    vars["step_name"] = Value::String(format!("{} adhoc {name}", plan.run_id));
    for assignment in &args.vars {
        set_var(&mut vars, assignment)?;
    }
    let step = crate::render::render_step_file(&args.template, &vars)?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&step).expect("a step serialises"));
        return Ok(ExitCode::Success);
    }
    let backend = Backend::for_plan(&plan, &args.plan.project_root).await;
    let clock = Arc::clone(&backend.clock);
    if plan.target == Target::Emr && plan.cluster_id.is_none() {
        return Err(Error::new(
            ExitCode::BadInput,
            "submit on EMR needs a cluster: pass --cluster-id j-... (or set emr.cluster_id)",
        ));
    }
    let runner = backend.attached_runner(plan.cluster_id.as_deref(), &plan.run_id, &plan.config_hash).await?;
    // Listen for Ctrl-C before the step starts, so an early signal cancels it too.
    let shutdown = crate::pipeline::shutdown_on_signals().map_err(|e| Error::new(ExitCode::Internal, e))?;
    let ids = runner.submit(std::slice::from_ref(&step)).await?;
    match global.output {
        Output::Text => eprintln!("submitted {} as {} on {}", step.name, ids[0], runner.describe()),
        Output::Json => println!("{}", serde_json::json!({"event": "submitted", "step_id": ids[0], "name": step.name})),
    }
    if !args.wait && plan.target != Target::Local {
        if global.output == Output::Text {
            println!("{}", ids[0]);
        }
        return Ok(ExitCode::Success);
    }
    let observer: Box<dyn PollObserver> = match global.output {
        Output::Text => Box::new(TextProgress::stderr()),
        Output::Json => Box::new(JsonEvents::stdout()),
    };
    let options = PollOptions { deadline: Some(args.timeout), ..backend.options.poll.clone() };
    let shutdown_future = async move {
        let mut rx = shutdown;
        loop {
            if let Some(name) = rx.borrow().clone() {
                return name;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let outcome = wait_or_cancel(
        runner.as_ref(),
        &ids,
        clock.as_ref(),
        &options,
        observer.as_ref(),
        shutdown_future,
        backend.options.settle,
    )
    .await?;
    if let RunOutcome::Finished { steps } = &outcome {
        for status in steps.iter().filter(|s| s.state == crate::step::StepState::Failed) {
            if let Some(prefix) = runner.log_prefix(&status.id) {
                let store = &backend.store;
                let options = &backend.options.diagnose;
                let cluster_prefix = runner.cluster_log_prefix();
                if let Ok(diagnosis) = crate::diagnose::diagnose(
                    store.as_ref(),
                    &status.id,
                    &prefix,
                    cluster_prefix.as_ref(),
                    status.failure.as_ref(),
                    clock.as_ref(),
                    options,
                )
                .await
                {
                    eprintln!("{}", diagnosis.render_text());
                }
            }
        }
    }
    if let RunOutcome::Cancelled { signal, report, .. } = &outcome {
        let ids: Vec<&str> = report.cancelled.iter().filter(|c| c.accepted).map(|c| c.step_id.as_str()).collect();
        eprintln!("{signal}: cancelled {}", if ids.is_empty() { "nothing".to_string() } else { ids.join(", ") });
    }
    if global.output == Output::Json {
        println!("{}", serde_json::json!({"event": "finished", "outcome": outcome}));
    }
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_set_nested_values() {
        let mut vars = serde_json::json!({"uris": {"a": "x"}});
        set_var(&mut vars, "uris.b=s3://b/k==v&w").unwrap();
        set_var(&mut vars, "job=parse_logs").unwrap();
        assert_eq!(vars, serde_json::json!({"uris": {"a": "x", "b": "s3://b/k==v&w"}, "job": "parse_logs"}));
        assert!(set_var(&mut vars, "novalue").is_err());
    }
}
