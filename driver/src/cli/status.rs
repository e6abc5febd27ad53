//! `emr-driver status --cluster-id J [STEP_ID...]`: the state of steps already submitted, as a
//! table for people or one JSON array for machines. Also the EMR connection options shared by
//! `wait` and `logs`.

use std::path::Path;

use crate::backend::Backend;
use crate::cli::{Global, Output};
use crate::config::{Overrides, Target};
use crate::error::{ExitCode, Result};
use crate::runner::emr::EmrRunner;
use crate::runner::serverless::ServerlessRunner;
use crate::runner::StepRunner;
use crate::step::StepStatus;

/// Where the cluster is and how to reach EMR.
#[derive(Debug, Clone, clap::Args)]
pub struct EmrConnection {
    /// The cluster (j-...).
    #[arg(long, env = "EMR_DRIVER_CLUSTER_ID", required_unless_present = "application_id")]
    pub cluster_id: Option<String>,
    /// An EMR Serverless application instead of a cluster: the steps are its job runs
    /// (their logs are looked for under [serverless] log_uri).
    #[arg(long)]
    pub application_id: Option<String>,
    /// An endpoint override (a moto or LocalStack server); default: the standard AWS
    /// resolution, which honours AWS_ENDPOINT_URL.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The AWS region; default: the standard AWS resolution (AWS_REGION, the profile).
    #[arg(long)]
    pub region: Option<String>,
}

impl EmrConnection {
    /// The backend these commands reach EMR through: the config file (its `[aws]` region,
    /// profile and endpoint; without a readable file, the standard AWS chain alone), with
    /// `--region` and `--endpoint-url` on top.
    pub(super) async fn backend(&self, global: &Global) -> Result<Backend> {
        // The AWS configuration is the same for job runs; the emr target spares them the
        // checks of what only starting job runs needs (the runtime role).
        let mut overrides = Overrides::default().set("pipeline.target", Target::Emr.as_str());
        if let Some(region) = self.region.as_ref().filter(|r| !r.is_empty()) {
            overrides = overrides.set("aws.region", region.clone());
        }
        if let Some(url) = self.endpoint_url.as_ref().filter(|e| !e.is_empty()) {
            overrides = overrides.set("aws.endpoint_url", url.clone());
        }
        let config = crate::backend::config_or_defaults(&global.config, &overrides)?;
        Ok(Backend::for_config(&config, Path::new(".")).await)
    }
}

/// The steps' runner: an EMR runner attached to the cluster (these commands never terminate
/// it; its log URI is read from the cluster when a diagnosis needs it, since the cluster may
/// log elsewhere than the configuration says), or the job runs of the EMR Serverless
/// application (never started, stopped or deleted here).
pub(super) fn attached_runner(backend: &Backend, connection: &EmrConnection) -> Result<Attached> {
    if let Some(application) = &connection.application_id {
        let context = crate::serverless::JobRunContext::new(&backend.config, "", "");
        let since = backend.clock.now() - chrono::Duration::from_std(crate::backend::LOOKBACK).expect("a day fits");
        let runner = ServerlessRunner::new(backend.serverless_client()?, application.clone(), context, since);
        return Ok(Attached::Serverless(runner));
    }
    let cluster = connection.cluster_id.clone().unwrap_or_default();
    Ok(Attached::Emr(EmrRunner::attach(backend.emr_client()?, cluster)))
}

/// The runner of `status` / `wait`.
pub(super) enum Attached {
    Emr(EmrRunner),
    Serverless(ServerlessRunner),
}

impl Attached {
    pub(super) fn runner(&self) -> &dyn StepRunner {
        match self {
            Attached::Emr(runner) => runner,
            Attached::Serverless(runner) => runner,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connection: EmrConnection,
    /// The steps to show (s-...); default: the cluster's 50 newest steps.
    pub step_ids: Vec<String>,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let backend = args.connection.backend(global).await?;
    let attached = attached_runner(&backend, &args.connection)?;
    let runner = attached.runner();
    let steps = runner.list_steps(&args.step_ids).await?;
    let steps: Vec<StepStatus> = if args.step_ids.is_empty() {
        steps
    } else {
        // In the order asked for.
        args.step_ids.iter().filter_map(|id| steps.iter().find(|s| &s.id == id).cloned()).collect()
    };
    let missing: Vec<&String> = args.step_ids.iter().filter(|id| !steps.iter().any(|s| &s.id == *id)).collect();
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&steps).expect("statuses serialise")),
        Output::Text => print!("{}", render_table(&steps)),
    }
    if !missing.is_empty() {
        eprintln!(
            "{} does not list step(s) {}; check the ids",
            runner.describe(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        return Ok(ExitCode::BadInput);
    }
    Ok(ExitCode::Success)
}

/// A fixed-width table: id, state, start, end, name, and the failure reason when failed.
pub fn render_table(steps: &[StepStatus]) -> String {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".to_string())
    };
    let mut out = format!("{:<16} {:<14} {:<19} {:<19} {}\n", "STEP", "STATE", "STARTED", "ENDED", "NAME");
    for step in steps {
        out.push_str(&format!(
            "{:<16} {:<14} {:<19} {:<19} {}\n",
            step.id,
            step.state.as_str(),
            time(step.started_at),
            time(step.ended_at),
            step.name
        ));
        if let Some(failure) = &step.failure {
            let why: Vec<&str> = [failure.reason.as_deref(), failure.message.as_deref(), failure.log_file.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !why.is_empty() {
                out.push_str(&format!("{:<16} {}\n", "", why.join(" — ")));
            }
        }
    }
    out
}
