//! `emr-driver logs CLUSTER STEP`: the failure diagnosis after the fact.
//!
//! * EMR: `DescribeStep` for the FailureDetails, `DescribeCluster` for the `LogUri` (unless
//!   `--log-uri` is given), then the logs under `<LogUri>/<cluster>/steps/<step>/` and the YARN
//!   container logs, read from S3.
//! * Local (`CLUSTER` = `local`): the local runner's logs under `--log-uri` in the lake
//!   (`--lake`); the FailureDetails lived in the runner's memory, so only the logs speak.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::cli::status::{sdk_config, EmrConnection};
use crate::cli::{Global, Output};
use crate::clock::{Clock, SystemClock};
use crate::diagnose::{diagnose, DiagnoseOptions, Diagnosis};
use crate::error::{Error, ExitCode, Result};
use crate::runner::emr::{classify, EmrRunner};
use crate::runner::StepRunner;
use crate::step::StepStatus;
use crate::store::local::LocalStore;
use crate::store::{ObjectMeta, ObjectReader, ObjectStore, ObjectUri, StoreError};

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
        DiagnoseOptions {
            wait_for_logs: self.log_wait,
            ..DiagnoseOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster (j-...), or `local` for a step of the local runner.
    pub cluster: String,
    /// The step (s-...).
    pub step: String,
    /// The log URI: the cluster's `LogUri` on EMR (default: read from the cluster), the local
    /// runner's log prefix for `local`.
    #[arg(long)]
    pub log_uri: Option<String>,
    /// The lake folder, for `local`.
    #[arg(long, default_value = ".lake")]
    pub lake: PathBuf,
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub log_wait: LogWait,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let clock = SystemClock::new();
    let diagnosis = if args.cluster == "local" {
        let log_uri = args.log_uri.as_deref().ok_or_else(|| {
            Error::new(
                ExitCode::Usage,
                "`emr-driver logs local STEP` needs --log-uri, the local runner's log prefix (e.g. s3://<raw>/emr-logs/local/)",
            )
        })?;
        let prefix = ObjectUri::parse(log_uri)?.join(&args.step).join("");
        let store = LocalStore::new(&args.lake);
        diagnose(
            &store,
            &args.step,
            &prefix,
            None,
            None,
            &clock,
            &args.log_wait.options(),
        )
        .await?
    } else {
        let connection = EmrConnection {
            cluster_id: args.cluster.clone(),
            endpoint_url: args.endpoint_url.clone(),
            region: args.region.clone(),
        };
        let config = sdk_config(&connection).await;
        let client = aws_sdk_emr::Client::new(&config);
        let step = describe_step(&client, &args.cluster, &args.step).await?;
        let log_uri = args.log_uri.as_deref().map(ObjectUri::parse).transpose()?;
        let runner = EmrRunner::attach(client, args.cluster.clone()).with_log_uri(log_uri);
        diagnose_emr_step(&connection, &runner, &step, &args.log_wait, &clock).await?
    };
    match global.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(&diagnosis).expect("diagnosis serialises")
        ),
        Output::Text => print!("{}", diagnosis.render_text()),
    }
    Ok(ExitCode::Success)
}

async fn describe_step(
    client: &aws_sdk_emr::Client,
    cluster: &str,
    step: &str,
) -> Result<StepStatus> {
    let out = client
        .describe_step()
        .cluster_id(cluster)
        .step_id(step)
        .send()
        .await
        .map_err(|e| classify("DescribeStep", e))?;
    let step = out.step().ok_or_else(|| {
        Error::new(
            ExitCode::BadInput,
            format!("EMR knows no step {step} on {cluster}"),
        )
    })?;
    // A Step and a StepSummary carry the same fields the status needs.
    let summary = aws_sdk_emr::types::StepSummary::builder()
        .set_id(step.id().map(str::to_string))
        .set_name(step.name().map(str::to_string))
        .set_status(step.status().cloned())
        .build();
    Ok(crate::runner::emr::step_status_from_sdk(&summary)?)
}

/// Diagnoses one EMR step: its logs under the cluster's LogUri (read from the cluster when the
/// runner does not know it), read from S3.
pub(super) async fn diagnose_emr_step(
    connection: &EmrConnection,
    runner: &EmrRunner,
    step: &StepStatus,
    wait: &LogWait,
    clock: &dyn Clock,
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
    let config = sdk_config(connection).await;
    // An endpoint override (moto, LocalStack) serves buckets by path, not by host name.
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    let store = S3LogReader {
        client: aws_sdk_s3::Client::from_conf(s3),
    };
    let cluster_prefix = runner.cluster_log_prefix();
    Ok(diagnose(
        &store,
        &step.id,
        &step_prefix,
        cluster_prefix.as_ref(),
        step.failure.as_ref(),
        clock,
        &wait.options(),
    )
    .await?)
}

/// Reads logs from S3: listing and whole-object reads, which is all the diagnosis does.
/// Writing is refused: this command never writes. (The integrator may replace it with the
/// shared `store::s3` implementation.)
struct S3LogReader {
    client: aws_sdk_s3::Client,
}

fn s3_error(
    op: &'static str,
    uri: &ObjectUri,
    error: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::S3 {
        op,
        uri: uri.to_string(),
        message: aws_sdk_s3::error::DisplayErrorContext(&error).to_string(),
        hint: "; the driver's identity needs s3:ListBucket and s3:GetObject on the log bucket"
            .into(),
        transient: false,
    }
}

fn read_only(op: &'static str, uri: &ObjectUri) -> StoreError {
    StoreError::S3 {
        op,
        uri: uri.to_string(),
        message: "the log reader is read-only".into(),
        hint: String::new(),
        transient: false,
    }
}

#[async_trait]
impl ObjectStore for S3LogReader {
    async fn head(&self, uri: &ObjectUri) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.list(uri).await?.into_iter().find(|m| m.uri == *uri))
    }

    async fn list(&self, prefix: &ObjectUri) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&prefix.bucket)
            .prefix(&prefix.key)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("list", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectMeta {
                    uri: ObjectUri::new(prefix.bucket.clone(), key),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    last_modified: object
                        .last_modified()
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                    metadata: Default::default(),
                });
            }
        }
        out.sort_by(|a, b| a.uri.key.cmp(&b.uri.key));
        Ok(out)
    }

    async fn get_bytes(&self, uri: &ObjectUri) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| s3_error("read", uri, e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| s3_error("read", uri, e))?;
        Ok(body.into_bytes())
    }

    async fn reader(&self, uri: &ObjectUri) -> Result<ObjectReader, StoreError> {
        let bytes = self.get_bytes(uri).await?;
        Ok(Box::pin(std::io::Cursor::new(bytes.to_vec())))
    }

    async fn put_bytes(&self, uri: &ObjectUri, _body: Bytes) -> Result<(), StoreError> {
        Err(read_only("write", uri))
    }

    async fn put_if_absent(&self, uri: &ObjectUri, _body: Bytes) -> Result<bool, StoreError> {
        Err(read_only("write", uri))
    }

    async fn put_file(
        &self,
        uri: &ObjectUri,
        _path: &std::path::Path,
        _metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        Err(read_only("upload", uri))
    }

    async fn put_stream(&self, uri: &ObjectUri, _body: ObjectReader) -> Result<u64, StoreError> {
        Err(read_only("write", uri))
    }

    async fn delete(&self, uri: &ObjectUri) -> Result<(), StoreError> {
        Err(read_only("delete", uri))
    }
}
