//! `emr-driver logs CLUSTER STEP`: the failure diagnosis after the fact.
//!
//! * EMR: `DescribeStep` for the FailureDetails, `DescribeCluster` for the `LogUri` (unless
//!   `--log-uri` is given), then the logs under `<LogUri>/<cluster>/steps/<step>/` and the YARN
//!   container logs, read from S3.
//! * Local (`CLUSTER` = `local`): the local runner's logs under `--log-uri` in the lake
//!   (`--lake`); the FailureDetails lived in the runner's memory, so only the logs speak.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::Backend;
use crate::cli::status::EmrConnection;
use crate::cli::{Global, Output};
use crate::config::Overrides;
use crate::diagnose::{diagnose, DiagnoseOptions, Diagnosis};
use crate::error::{Error, ExitCode, Result};
use crate::runner::emr::{classify, EmrRunner};
use crate::runner::StepRunner;
use crate::step::StepStatus;
use crate::store::ObjectUri;

/// How long to wait for logs that have not arrived yet.
#[derive(Debug, Clone, clap::Args)]
pub struct LogWait {
    /// Wait at most this long for the step's logs to appear (EMR uploads them every few
    /// minutes), e.g. `6m`; `0s` looks once.
    #[arg(long, default_value = "6m", value_parser = humantime::parse_duration)]
    pub log_wait: Duration,
}

impl LogWait {
    fn options(&self) -> DiagnoseOptions {
        DiagnoseOptions { wait_for_logs: self.log_wait, ..DiagnoseOptions::default() }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster (j-...), an EMR Serverless application id, or `local` for a step of the
    /// local runner.
    pub cluster: String,
    /// The step (s-...), or the job run id.
    pub step: String,
    /// The log URI: the cluster's `LogUri` on EMR (default: read from the cluster), the local
    /// runner's log prefix for `local`.
    #[arg(long)]
    pub log_uri: Option<String>,
    /// The lake folder, for `local`; default [local] lake_dir.
    #[arg(long)]
    pub lake: Option<PathBuf>,
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub log_wait: LogWait,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let diagnosis = if args.cluster == "local" {
        let log_uri = args.log_uri.as_deref().ok_or_else(|| {
            Error::new(
                ExitCode::Usage,
                "`emr-driver logs local STEP` needs --log-uri, the local runner's log prefix (e.g. s3://<raw>/emr-logs/local/)",
            )
        })?;
        let prefix = ObjectUri::parse(log_uri)?.join(&args.step).join("");
        let mut sets = vec!["pipeline.target=local".to_string()];
        sets.extend(args.lake.iter().map(|lake| format!("local.lake_dir={}", lake.display())));
        let config = crate::backend::config_or_defaults(&global.config, &Overrides::parse_sets(&sets)?)?;
        let backend = Backend::for_config(&config, Path::new(".")).await;
        let clock = backend.clock.as_ref();
        diagnose(backend.store.as_ref(), &args.step, &prefix, None, None, clock, &args.log_wait.options()).await?
    } else if !args.cluster.starts_with("j-") {
        // An EMR Serverless application id ([0-9a-z]+) and a job run id.
        let connection = EmrConnection {
            cluster_id: None,
            application_id: Some(args.cluster.clone()),
            endpoint_url: args.endpoint_url.clone(),
            region: args.region.clone(),
        };
        let backend = connection.backend(global).await?;
        let client = backend.serverless_client()?;
        let job = crate::runner::serverless::describe_job_run(&client, &args.cluster, &args.step).await?;
        // The log location the job run was given, unless --log-uri says otherwise.
        let log_uri = args.log_uri.clone().or(job.log_uri).unwrap_or_else(|| backend.config.serverless_log_uri());
        let prefix = ObjectUri::parse(&crate::serverless::driver_log_prefix(&log_uri, &args.cluster, &args.step))?;
        let (store, clock) = (backend.store.as_ref(), backend.clock.as_ref());
        diagnose(store, &args.step, &prefix, None, job.status.failure.as_ref(), clock, &args.log_wait.options()).await?
    } else {
        let connection = EmrConnection {
            cluster_id: Some(args.cluster.clone()),
            application_id: None,
            endpoint_url: args.endpoint_url.clone(),
            region: args.region.clone(),
        };
        let backend = connection.backend(global).await?;
        let client = backend.emr_client()?;
        let step = describe_step(&client, &args.cluster, &args.step).await?;
        let log_uri = args.log_uri.as_deref().map(ObjectUri::parse).transpose()?;
        let runner = EmrRunner::attach(client, args.cluster.clone()).with_log_uri(log_uri);
        diagnose_emr_step(&backend, &runner, &step, &args.log_wait).await?
    };
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&diagnosis).expect("diagnosis serialises")),
        Output::Text => print!("{}", diagnosis.render_text()),
    }
    Ok(ExitCode::Success)
}

async fn describe_step(client: &aws_sdk_emr::Client, cluster: &str, step: &str) -> Result<StepStatus> {
    let out = client
        .describe_step()
        .cluster_id(cluster)
        .step_id(step)
        .send()
        .await
        .map_err(|e| classify("DescribeStep", e))?;
    let step =
        out.step().ok_or_else(|| Error::new(ExitCode::BadInput, format!("EMR knows no step {step} on {cluster}")))?;
    // A Step and a StepSummary carry the same fields the status needs.
    let summary = aws_sdk_emr::types::StepSummary::builder()
        .set_id(step.id().map(str::to_string))
        .set_name(step.name().map(str::to_string))
        .set_status(step.status().cloned())
        .build();
    Ok(crate::runner::emr::step_status_from_sdk(&summary)?)
}

/// Diagnoses one EMR Serverless job run: its driver logs under the runner's log location.
pub(super) async fn diagnose_job_run(
    backend: &Backend,
    runner: &crate::runner::serverless::ServerlessRunner,
    step: &StepStatus,
    wait: &LogWait,
) -> Result<Diagnosis> {
    let prefix = runner.log_prefix(&step.id).ok_or_else(|| {
        Error::new(ExitCode::BadInput, "the job runs' log location is not an s3:// URI; check [serverless] log_uri")
    })?;
    let (store, clock) = (backend.store.as_ref(), backend.clock.as_ref());
    Ok(diagnose(store, &step.id, &prefix, None, step.failure.as_ref(), clock, &wait.options()).await?)
}

/// Diagnoses one EMR step: its logs under the cluster's LogUri (read from the cluster when the
/// runner does not know it), read from S3.
pub(super) async fn diagnose_emr_step(
    backend: &Backend,
    runner: &EmrRunner,
    step: &StepStatus,
    wait: &LogWait,
) -> Result<Diagnosis> {
    let runner = if runner.log_prefix(&step.id).is_some() {
        runner.clone()
    } else {
        let log_uri = runner.fetch_log_uri().await?;
        runner.clone().with_log_uri(log_uri)
    };
    let step_prefix = runner.log_prefix(&step.id).ok_or_else(|| {
        Error::new(
            ExitCode::BadInput,
            format!(
                "cluster {} has no LogUri, so its step logs are not in S3; pass --log-uri or read them on the master node",
                runner.cluster_id()
            ),
        )
    })?;
    let cluster_prefix = runner.cluster_log_prefix();
    let (store, clock) = (backend.store.as_ref(), backend.clock.as_ref());
    Ok(diagnose(store, &step.id, &step_prefix, cluster_prefix.as_ref(), step.failure.as_ref(), clock, &wait.options())
        .await?)
}
