//! The EMR step runner: a thin adapter over `aws_sdk_emr::Client` and one cluster id.
//!
//! Polling cost: [`EmrRunner::list_steps`] sends ONE `ListSteps` request for up to ten step
//! ids, passing them as `StepIds` (EMR accepts at most ten ids in that filter). A run has four
//! or five steps, so each poll of a run costs one request whatever the number of steps, and
//! `DescribeStep` is never called. For more than ten ids, it lists the cluster's steps newest
//! first without a filter; a page holds 50 steps, and the steps a run waits for are among the
//! newest on the cluster, so the first page suffices unless more than 50 steps were added after
//! them — only then does it follow the `Marker` to the next page.

use async_trait::async_trait;
use aws_sdk_emr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_emr::operation::run_job_flow::RunJobFlowOutput;
use aws_sdk_emr::types as emr;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::{CancelOutcome, RunnerError, StepRunner, Termination};
use crate::cluster::{BootstrapActionInfo, ClusterState, ClusterStatus};
use crate::step::{ActionOnFailure, FailureDetails, StepConfig, StepState, StepStatus};
use crate::store::ObjectUri;

/// EMR accepts at most this many ids in the `StepIds` filter of `ListSteps` and `CancelSteps`.
pub const MAX_STEP_IDS_PER_REQUEST: usize = 10;

/// Proof that this run created a cluster. It can only be made from the output of the
/// `RunJobFlow` call that created it, and it carries that cluster's id, so a runner attached
/// to a cluster someone else started has no way to terminate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCluster {
    cluster_id: String,
}

impl CreatedCluster {
    /// From the `RunJobFlow` answer; `None` if EMR returned no job flow id.
    pub fn from_run_job_flow(output: &RunJobFlowOutput) -> Option<Self> {
        output.job_flow_id().map(|id| CreatedCluster { cluster_id: id.to_string() })
    }

    /// A cluster that an earlier attempt of this same run created: found by its `run-id` and
    /// `managed-by` tags ([`crate::cluster::find_cluster_for_run`]), so this run owns it.
    pub fn adopted_from_earlier_attempt(cluster_id: impl Into<String>) -> Self {
        CreatedCluster { cluster_id: cluster_id.into() }
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }
}

/// Whether this run may terminate the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOwnership {
    /// A cluster that was there before the run (`--cluster-id`): never terminated.
    Attached,
    /// The run created it (and only then may it terminate it).
    CreatedByThisRun(CreatedCluster),
}

/// Steps on one EMR cluster.
#[derive(Debug, Clone)]
pub struct EmrRunner {
    client: aws_sdk_emr::Client,
    cluster_id: String,
    ownership: ClusterOwnership,
    /// The cluster's `LogUri` (`s3://<raw>/emr-logs/`), for the diagnosis.
    log_uri: Option<ObjectUri>,
}

impl EmrRunner {
    /// Runs steps on an existing cluster. This runner will never terminate it.
    pub fn attach(client: aws_sdk_emr::Client, cluster_id: impl Into<String>) -> Self {
        EmrRunner { client, cluster_id: cluster_id.into(), ownership: ClusterOwnership::Attached, log_uri: None }
    }

    /// Runs steps on the cluster this run created; `terminate_if_created` terminates it.
    pub fn created_by_this_run(client: aws_sdk_emr::Client, cluster: CreatedCluster) -> Self {
        EmrRunner {
            client,
            cluster_id: cluster.cluster_id.clone(),
            ownership: ClusterOwnership::CreatedByThisRun(cluster),
            log_uri: None,
        }
    }

    /// Sets the cluster's `LogUri` (from the configuration, or [`EmrRunner::fetch_log_uri`]).
    pub fn with_log_uri(mut self, log_uri: Option<ObjectUri>) -> Self {
        self.log_uri = log_uri;
        self
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn ownership(&self) -> &ClusterOwnership {
        &self.ownership
    }

    /// Reads the cluster's `LogUri` with `DescribeCluster` (for `emr-driver logs`, which knows
    /// only the cluster id). `None` when the cluster has no log URI.
    pub async fn fetch_log_uri(&self) -> Result<Option<ObjectUri>, RunnerError> {
        let out = self
            .client
            .describe_cluster()
            .cluster_id(&self.cluster_id)
            .send()
            .await
            .map_err(|e| classify("DescribeCluster", e))?;
        Ok(out.cluster().and_then(|c| c.log_uri()).and_then(|uri| ObjectUri::parse(uri).ok()))
    }

    async fn list_page(
        &self,
        ids: Option<&[String]>,
        marker: Option<String>,
    ) -> Result<(Vec<StepStatus>, Option<String>), RunnerError> {
        let mut request = self.client.list_steps().cluster_id(&self.cluster_id).set_marker(marker);
        if let Some(ids) = ids {
            request = request.set_step_ids(Some(ids.to_vec()));
        }
        let out = request.send().await.map_err(|e| classify("ListSteps", e))?;
        let steps = out.steps().iter().map(step_status_from_sdk).collect::<Result<Vec<_>, _>>()?;
        Ok((steps, out.marker().map(str::to_string)))
    }
}

#[async_trait]
impl StepRunner for EmrRunner {
    fn describe(&self) -> String {
        format!("cluster {}", self.cluster_id)
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let request = steps.iter().fold(self.client.add_job_flow_steps().job_flow_id(&self.cluster_id), |req, step| {
            req.steps(step_config_to_sdk(step))
        });
        let out = request.send().await.map_err(|e| classify("AddJobFlowSteps", e))?;
        Ok(out.step_ids().to_vec())
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        if ids.is_empty() {
            // The newest page (50 steps) of the cluster: what `status` shows.
            return Ok(self.list_page(None, None).await?.0);
        }
        if ids.len() <= MAX_STEP_IDS_PER_REQUEST {
            let (steps, _) = self.list_page(Some(ids), None).await?;
            return Ok(steps);
        }
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let (page, next) = self.list_page(None, marker).await?;
            found.extend(page.into_iter().filter(|s| ids.contains(&s.id)));
            if found.len() >= ids.len() || next.is_none() {
                return Ok(found);
            }
            marker = next;
        }
    }

    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        let mut outcomes = Vec::new();
        for chunk in ids.chunks(MAX_STEP_IDS_PER_REQUEST) {
            let out = self
                .client
                .cancel_steps()
                .cluster_id(&self.cluster_id)
                .set_step_ids(Some(chunk.to_vec()))
                // Interrupt running steps too, not only pending ones.
                .step_cancellation_option(emr::StepCancellationOption::SendInterrupt)
                .send()
                .await
                .map_err(|e| classify("CancelSteps", e))?;
            outcomes.extend(out.cancel_steps_info_list().iter().map(|info| CancelOutcome {
                step_id: info.step_id().unwrap_or_default().to_string(),
                accepted: matches!(info.status(), Some(emr::CancelStepsRequestStatus::Submitted)),
                reason: info.reason().map(str::to_string),
            }));
        }
        Ok(outcomes)
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        self.cluster_log_prefix().map(|root| root.join("steps").join(step_id).join(""))
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        self.log_uri.as_ref().map(|uri| uri.join(&self.cluster_id).join(""))
    }

    async fn total_usage(&self) -> Result<Option<crate::manifest::ResourceUsage>, RunnerError> {
        let out = self
            .client
            .describe_cluster()
            .cluster_id(&self.cluster_id)
            .send()
            .await
            .map_err(|e| classify("DescribeCluster", e))?;
        Ok(out.cluster().and_then(|c| c.normalized_instance_hours()).map(|hours| crate::manifest::ResourceUsage {
            normalized_instance_hours: Some(hours as i64),
            ..Default::default()
        }))
    }

    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        let ClusterOwnership::CreatedByThisRun(created) = &self.ownership else {
            return Ok(Termination::LeftRunning);
        };
        self.client
            .terminate_job_flows()
            .job_flow_ids(created.cluster_id())
            .send()
            .await
            .map_err(|e| classify("TerminateJobFlows", e))?;
        Ok(Termination::Terminated)
    }

    async fn cluster_status(&self) -> Result<Option<ClusterStatus>, RunnerError> {
        let out = self
            .client
            .describe_cluster()
            .cluster_id(&self.cluster_id)
            .send()
            .await
            .map_err(|e| classify("DescribeCluster", e))?;
        let Some(cluster) = out.cluster() else {
            return Err(RunnerError::Aws {
                operation: "DescribeCluster",
                code: None,
                message: format!("EMR answered without cluster {}", self.cluster_id),
                hint: "; check the cluster id and the region".into(),
                transient: false,
            });
        };
        let mut status = cluster_status_from_sdk(&self.cluster_id, cluster)?;
        if status.reason_code.as_deref() == Some("BOOTSTRAP_FAILURE") {
            let actions = self
                .client
                .list_bootstrap_actions()
                .cluster_id(&self.cluster_id)
                .send()
                .await
                .map_err(|e| classify("ListBootstrapActions", e))?;
            status.bootstrap_actions = actions
                .bootstrap_actions()
                .iter()
                .map(|a| BootstrapActionInfo {
                    name: a.name().unwrap_or_default().to_string(),
                    path: a.script_path().unwrap_or_default().to_string(),
                })
                .collect();
        }
        Ok(Some(status))
    }
}

/// The SDK's cluster description → our [`ClusterStatus`] (without the bootstrap actions).
pub fn cluster_status_from_sdk(id: &str, cluster: &emr::Cluster) -> Result<ClusterStatus, RunnerError> {
    let status = cluster.status();
    let name = status.and_then(|s| s.state()).map(|s| s.as_str().to_string()).unwrap_or_default();
    let state = ClusterState::parse(&name).ok_or_else(|| RunnerError::Aws {
        operation: "DescribeCluster",
        code: None,
        message: format!("cluster {id} has a state this driver does not know: {name:?}"),
        hint: "; upgrade emr-driver (its aws-sdk-emr) to a version that knows it".into(),
        transient: false,
    })?;
    let reason = status.and_then(|s| s.state_change_reason());
    Ok(ClusterStatus {
        id: id.to_string(),
        state,
        reason_code: reason.and_then(|r| r.code()).map(|c| c.as_str().to_string()),
        reason_message: reason.and_then(|r| r.message()).map(str::to_string),
        log_uri: cluster.log_uri().map(str::to_string),
        bootstrap_actions: Vec::new(),
    })
}

/// Our `StepConfig` → the SDK's.
pub fn step_config_to_sdk(step: &StepConfig) -> emr::StepConfig {
    let action = match step.action_on_failure {
        ActionOnFailure::TerminateJobFlow => emr::ActionOnFailure::TerminateJobFlow,
        ActionOnFailure::TerminateCluster => emr::ActionOnFailure::TerminateCluster,
        ActionOnFailure::CancelAndWait => emr::ActionOnFailure::CancelAndWait,
        ActionOnFailure::Continue => emr::ActionOnFailure::Continue,
    };
    let jar = emr::HadoopJarStepConfig::builder()
        .jar(&step.hadoop_jar_step.jar)
        .set_args(Some(step.hadoop_jar_step.args.clone()))
        .set_main_class(step.hadoop_jar_step.main_class.clone())
        .build();
    emr::StepConfig::builder().name(&step.name).action_on_failure(action).hadoop_jar_step(jar).build()
}

/// The SDK's step summary → our `StepStatus` (state, failure details, timeline).
pub fn step_status_from_sdk(summary: &emr::StepSummary) -> Result<StepStatus, RunnerError> {
    let status = summary.status();
    let state = match status.and_then(|s| s.state()) {
        Some(emr::StepState::Pending) => StepState::Pending,
        Some(emr::StepState::CancelPending) => StepState::CancelPending,
        Some(emr::StepState::Running) => StepState::Running,
        Some(emr::StepState::Completed) => StepState::Completed,
        Some(emr::StepState::Cancelled) => StepState::Cancelled,
        Some(emr::StepState::Failed) => StepState::Failed,
        Some(emr::StepState::Interrupted) => StepState::Interrupted,
        other => {
            return Err(RunnerError::Aws {
                operation: "ListSteps",
                code: None,
                message: format!(
                    "step {} has a state this driver does not know: {other:?}",
                    summary.id().unwrap_or("?")
                ),
                hint: "; upgrade emr-driver (its aws-sdk-emr) to a version that knows it".into(),
                transient: false,
            })
        }
    };
    let failure = status.and_then(|s| s.failure_details()).map(|f| FailureDetails {
        reason: f.reason().map(str::to_string),
        message: f.message().map(str::to_string),
        log_file: f.log_file().map(str::to_string),
    });
    let timeline = status.and_then(|s| s.timeline());
    Ok(StepStatus {
        id: summary.id().unwrap_or_default().to_string(),
        name: summary.name().unwrap_or_default().to_string(),
        state,
        failure,
        started_at: timeline.and_then(|t| t.start_date_time()).and_then(to_chrono),
        ended_at: timeline.and_then(|t| t.end_date_time()).and_then(to_chrono),
    })
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Transient or permanent, and a hint, from an error code and an HTTP status (pure, so the
/// classification is tested without the SDK). Which errors are transient is decided once, for
/// every AWS call of the driver, by [`crate::aws::classify_code`]; this adds EMR's own hints.
pub fn classify_code(operation: &str, code: Option<&str>, http_status: Option<u16>) -> (bool, String) {
    let (transient, generic_hint) = crate::aws::classify_code(code, http_status);
    let code = code.unwrap_or("");
    if transient {
        let throttled = http_status == Some(429) || crate::aws::is_throttling_code(code);
        let why = if throttled { "EMR is throttling the driver's requests" } else { "EMR had a server-side error" };
        return (true, format!("; {why}, retrying with backoff"));
    }
    let hint = if generic_hint == crate::aws::PERMISSION_HINT {
        format!(
            "; the driver's IAM identity needs elasticmapreduce:{operation} on this cluster \
             (see the driver policy in terraform/)"
        )
    } else if code == "ValidationException" || code == "InvalidRequestException" {
        "; check the cluster id (j-...) and the step ids (s-...): the cluster may have terminated \
         or be in another region"
            .into()
    } else {
        generic_hint.to_string()
    };
    (false, hint)
}

/// Classifies an SDK error into a [`RunnerError`]: throttling, 5xx, timeouts and connection
/// failures are transient; access denied, validation and credential errors are permanent.
pub fn classify<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> RunnerError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => RunnerError::Aws {
            operation,
            code: None,
            message: aws_sdk_emr::error::DisplayErrorContext(&error).to_string(),
            hint: "; the request timed out or the answer was cut off, retrying with backoff".into(),
            transient: true,
        },
        SdkError::DispatchFailure(failure) => {
            let transient = failure.is_timeout() || failure.is_io();
            RunnerError::Aws {
                operation,
                code: None,
                message: aws_sdk_emr::error::DisplayErrorContext(&error).to_string(),
                hint: if transient {
                    "; EMR could not be reached, retrying with backoff".into()
                } else {
                    "; check the endpoint (AWS_ENDPOINT_URL, [aws] endpoint_url), the region and the \
                     credentials"
                        .into()
                },
                transient,
            }
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = error.code().map(str::to_string);
            let (transient, hint) = classify_code(operation, code.as_deref(), Some(status));
            let message = error.message().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}"));
            let message = match &code {
                Some(code) => format!("{code}: {message}"),
                None => message,
            };
            RunnerError::Aws { operation, code, message, hint, transient }
        }
        _ => RunnerError::Aws {
            operation,
            code: None,
            message: aws_sdk_emr::error::DisplayErrorContext(&error).to_string(),
            hint: "; check the AWS credentials and the region (the request could not be built)".into(),
            transient: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::HadoopJarStep;

    #[test]
    fn classifies_throttling_and_server_errors_as_transient() {
        for (code, status) in [
            (Some("ThrottlingException"), Some(400)),
            (Some("RequestLimitExceeded"), Some(400)),
            (None, Some(429)),
            (Some("InternalServerError"), Some(500)),
            (None, Some(503)),
        ] {
            assert!(classify_code("ListSteps", code, status).0, "{code:?} {status:?}");
        }
    }

    #[test]
    fn classifies_access_and_validation_errors_as_permanent_with_hints() {
        let (transient, hint) = classify_code("ListSteps", Some("AccessDeniedException"), Some(400));
        assert!(!transient);
        assert!(hint.contains("elasticmapreduce:ListSteps"), "{hint}");
        let (transient, hint) = classify_code("ListSteps", Some("InvalidRequestException"), Some(400));
        assert!(!transient);
        assert!(hint.contains("cluster id"), "{hint}");
        let (transient, hint) = classify_code("ListSteps", Some("UnrecognizedClientException"), Some(400));
        assert!(!transient);
        assert!(hint.contains("credentials"), "{hint}");
    }

    #[test]
    fn converts_step_configs_field_by_field() {
        let step = StepConfig {
            name: "r1 parse_logs".into(),
            action_on_failure: ActionOnFailure::CancelAndWait,
            hadoop_jar_step: HadoopJarStep {
                jar: "command-runner.jar".into(),
                args: vec!["spark-submit".into(), "s3://raw/run_job.py".into()],
                main_class: None,
            },
        };
        let sdk = step_config_to_sdk(&step);
        assert_eq!(sdk.name(), Some("r1 parse_logs"));
        assert_eq!(sdk.action_on_failure(), Some(&emr::ActionOnFailure::CancelAndWait));
        let jar = sdk.hadoop_jar_step().unwrap();
        assert_eq!(jar.jar(), Some("command-runner.jar"));
        assert_eq!(jar.args(), ["spark-submit", "s3://raw/run_job.py"]);
    }

    #[test]
    fn converts_step_summaries_with_failure_and_timeline() {
        let summary = emr::StepSummary::builder()
            .id("s-1")
            .name("r1 x")
            .status(
                emr::StepStatus::builder()
                    .state(emr::StepState::Failed)
                    .failure_details(
                        emr::FailureDetails::builder()
                            .reason("Unknown Error.")
                            .log_file("s3://raw/emr-logs/j-1/steps/s-1/stderr.gz")
                            .build(),
                    )
                    .timeline(
                        emr::StepTimeline::builder()
                            .start_date_time(aws_smithy_types::DateTime::from_secs(1_635_638_400))
                            .end_date_time(aws_smithy_types::DateTime::from_secs(1_635_638_460))
                            .build(),
                    )
                    .build(),
            )
            .build();
        let status = step_status_from_sdk(&summary).unwrap();
        assert_eq!(status.state, StepState::Failed);
        let failure = status.failure.unwrap();
        assert_eq!(failure.reason.as_deref(), Some("Unknown Error."));
        assert_eq!(failure.log_file.as_deref(), Some("s3://raw/emr-logs/j-1/steps/s-1/stderr.gz"));
        assert_eq!(status.started_at.unwrap().to_rfc3339(), "2021-10-31T00:00:00+00:00");
        assert_eq!((status.ended_at.unwrap() - status.started_at.unwrap()).num_seconds(), 60);
    }

    #[test]
    fn log_prefixes_follow_the_emr_layout() {
        let conf =
            aws_sdk_emr::Config::builder().behavior_version(aws_sdk_emr::config::BehaviorVersion::latest()).build();
        let runner = EmrRunner::attach(aws_sdk_emr::Client::from_conf(conf), "j-ABC")
            .with_log_uri(Some(ObjectUri::parse("s3://raw/emr-logs/").unwrap()));
        assert_eq!(runner.log_prefix("s-1").unwrap().to_string(), "s3://raw/emr-logs/j-ABC/steps/s-1/");
        assert_eq!(runner.cluster_log_prefix().unwrap().to_string(), "s3://raw/emr-logs/j-ABC/");
        assert_eq!(runner.ownership(), &ClusterOwnership::Attached);
    }
}
