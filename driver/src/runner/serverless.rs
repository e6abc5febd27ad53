//! The EMR Serverless step runner: a thin adapter over `aws_sdk_emrserverless::Client` and one
//! application. Each step is one `StartJobRun`, built by the pure
//! [`crate::serverless::start_job_run_request`] (the request `render` prints).
//!
//! Polling cost: [`ServerlessRunner::list_steps`] sends ONE `ListJobRuns` per poll for the
//! whole run, filtered by `createdAtAfter` (the runner's look-back start, so the run's job
//! runs are on the first page of 50); it follows `nextToken` only when a job run it waits for
//! is not on that page. No `states` filter: the poller must see the job runs end. `GetJobRun`
//! is called once per job at the end, for its resource usage.
//!
//! Rerun: `list_steps(&[])` is the application's newest page, so the pipeline finds completed
//! (skipped) and running (attached) job runs by name, exactly as on EMR. The client token of a
//! submit is the job name and its attempt number (one more than the FAILED / CANCELLED job runs
//! of that name on that page), so a submit retried after a timeout starts no second job.
//!
//! The application is never deleted by the driver: one it created stops itself when idle
//! (auto-stop), and the next run finds it by name.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_emrserverless::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_emrserverless::types as sl;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};

use super::{CancelOutcome, RunnerError, StepRunner, Termination};
use crate::clock::Clock;
use crate::manifest::ResourceUsage;
use crate::serverless::{
    driver_log_prefix, start_job_run_request, step_state, CreateApplicationRequest, JobRunContext, StartJobRunRequest,
};
use crate::step::{FailureDetails, StepConfig, StepState, StepStatus};
use crate::store::ObjectUri;

/// A `ListJobRuns` page holds at most this many job runs.
pub const PAGE_SIZE: i32 = 50;

/// Job runs on one EMR Serverless application.
#[derive(Debug, Clone)]
pub struct ServerlessRunner {
    client: aws_sdk_emrserverless::Client,
    application_id: String,
    context: JobRunContext,
    /// `createdAtAfter` of the poll's `ListJobRuns`.
    since: DateTime<Utc>,
}

impl ServerlessRunner {
    /// Job runs on `application_id`; the poll lists the job runs created after `since`.
    pub fn new(
        client: aws_sdk_emrserverless::Client,
        application_id: impl Into<String>,
        mut context: JobRunContext,
        since: DateTime<Utc>,
    ) -> Self {
        let application_id = application_id.into();
        context.application_id = Some(application_id.clone());
        ServerlessRunner { client, application_id, context, since }
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The request this runner sends for `step` at attempt `attempt`.
    pub fn request(&self, step: &StepConfig, attempt: u32) -> Result<StartJobRunRequest, RunnerError> {
        start_job_run_request(step, &self.context, attempt).map_err(|e| RunnerError::Aws {
            operation: "StartJobRun",
            code: None,
            message: e.to_string(),
            hint: String::new(),
            transient: false,
        })
    }

    async fn list_page(
        &self,
        since: Option<DateTime<Utc>>,
        token: Option<String>,
    ) -> Result<(Vec<StepStatus>, Option<String>), RunnerError> {
        let mut request = self
            .client
            .list_job_runs()
            .application_id(&self.application_id)
            .max_results(PAGE_SIZE)
            .set_next_token(token);
        if let Some(since) = since {
            request = request.created_at_after(aws_smithy_types::DateTime::from_secs(since.timestamp()));
        }
        let out = match request.send().await {
            Ok(out) => out,
            // moto answers so for an application without job runs yet; the service lists
            // nothing. A missing application fails its StartJobRun with a clear error.
            Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok((Vec::new(), None)),
            Err(e) => return Err(classify("ListJobRuns", e)),
        };
        let steps = out.job_runs().iter().map(status_from_summary).collect::<Result<Vec<_>, _>>()?;
        Ok((steps, out.next_token().map(str::to_string)))
    }

    /// How many job runs named `name` FAILED or were CANCELLED (in the newest page).
    fn failed_attempts(listed: &[StepStatus], name: &str) -> u32 {
        listed.iter().filter(|s| s.name == name && matches!(s.state, StepState::Failed | StepState::Cancelled)).count()
            as u32
    }
}

#[async_trait]
impl StepRunner for ServerlessRunner {
    fn describe(&self) -> String {
        format!("EMR Serverless application {}", self.application_id)
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let (listed, _) = self.list_page(None, None).await?;
        let mut ids = Vec::with_capacity(steps.len());
        for step in steps {
            let request = self.request(step, Self::failed_attempts(&listed, &step.name) + 1)?;
            let id = start_job_run(&self.client, &request).await?;
            ids.push(id);
        }
        Ok(ids)
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        if ids.is_empty() {
            return Ok(self.list_page(None, None).await?.0);
        }
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self.list_page(Some(self.since), token).await?;
            found.extend(page.into_iter().filter(|s| ids.contains(&s.id)));
            if found.len() >= ids.len() || next.is_none() {
                return Ok(found);
            }
            token = next;
        }
    }

    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        let mut outcomes = Vec::new();
        for id in ids {
            let sent = self.client.cancel_job_run().application_id(&self.application_id).job_run_id(id).send().await;
            outcomes.push(match sent {
                Ok(_) => CancelOutcome { step_id: id.clone(), accepted: true, reason: None },
                // The job run already ended (or is unknown): nothing to cancel, say why.
                Err(e) if matches!(e.code(), Some("ValidationException" | "ResourceNotFoundException")) => {
                    CancelOutcome { step_id: id.clone(), accepted: false, reason: e.message().map(str::to_string) }
                }
                Err(e) => return Err(classify("CancelJobRun", e)),
            });
        }
        Ok(outcomes)
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        ObjectUri::parse(&driver_log_prefix(&self.context.log_uri, &self.application_id, step_id)).ok()
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        // The driver's stderr holds the cause; there are no YARN containers to follow.
        None
    }

    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        // Nothing to terminate: the application stops itself when idle (auto-stop), and one
        // this run did not create is never touched.
        Ok(Termination::NotApplicable)
    }

    async fn usage(&self, ids: &[String]) -> Result<BTreeMap<String, ResourceUsage>, RunnerError> {
        let mut usage = BTreeMap::new();
        for id in ids {
            if let Some(used) = describe_job_run(&self.client, &self.application_id, id).await?.usage {
                usage.insert(id.clone(), used);
            }
        }
        Ok(usage)
    }
}

/// One job run as `GetJobRun` tells it: its status, the log location it was given, and what
/// it used (`totalResourceUtilization`).
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedJobRun {
    pub status: StepStatus,
    pub log_uri: Option<String>,
    pub usage: Option<ResourceUsage>,
}

pub async fn describe_job_run(
    client: &aws_sdk_emrserverless::Client,
    application_id: &str,
    job_run_id: &str,
) -> Result<DescribedJobRun, RunnerError> {
    let out = client
        .get_job_run()
        .application_id(application_id)
        .job_run_id(job_run_id)
        .send()
        .await
        .map_err(|e| classify("GetJobRun", e))?;
    let job = out.job_run().ok_or_else(|| RunnerError::Aws {
        operation: "GetJobRun",
        code: None,
        message: format!("no job run {job_run_id} on application {application_id}"),
        hint: "; check the application and job run ids".into(),
        transient: false,
    })?;
    let status = status_of(
        job.job_run_id(),
        job.name(),
        job.state(),
        job.state_details(),
        job.started_at().or(Some(job.created_at())),
        job.ended_at().or(Some(job.updated_at())),
    )?;
    let log_uri = job
        .configuration_overrides()
        .and_then(|c| c.monitoring_configuration())
        .and_then(|m| m.s3_monitoring_configuration())
        .and_then(|s| s.log_uri())
        .map(str::to_string);
    let usage = job.total_resource_utilization().map(|total| ResourceUsage {
        vcpu_hours: total.v_cpu_hour(),
        memory_gb_hours: total.memory_gb_hour(),
        storage_gb_hours: total.storage_gb_hour(),
        normalized_instance_hours: None,
    });
    Ok(DescribedJobRun { status, log_uri, usage })
}

/// Sends one `StartJobRun`; returns the job run id.
pub async fn start_job_run(
    client: &aws_sdk_emrserverless::Client,
    request: &StartJobRunRequest,
) -> Result<String, RunnerError> {
    let submit = &request.job_driver.spark_submit;
    let spark = sl::SparkSubmit::builder()
        .entry_point(&submit.entry_point)
        .set_entry_point_arguments(Some(submit.entry_point_arguments.clone()))
        .spark_submit_parameters(&submit.spark_submit_parameters)
        .build()
        .map_err(|e| build_error("StartJobRun", e))?;
    let monitoring = sl::MonitoringConfiguration::builder()
        .s3_monitoring_configuration(
            sl::S3MonitoringConfiguration::builder()
                .log_uri(&request.configuration_overrides.monitoring_configuration.s3_monitoring_configuration.log_uri)
                .build(),
        )
        .build();
    let out = client
        .start_job_run()
        .set_application_id(request.application_id.clone())
        .client_token(&request.client_token)
        .execution_role_arn(&request.execution_role_arn)
        .name(&request.name)
        .job_driver(sl::JobDriver::SparkSubmit(spark))
        .configuration_overrides(sl::ConfigurationOverrides::builder().monitoring_configuration(monitoring).build())
        .set_tags(Some(request.tags.clone().into_iter().collect()))
        .execution_timeout_minutes(request.execution_timeout_minutes)
        .send()
        .await
        .map_err(|e| classify("StartJobRun", e))?;
    Ok(out.job_run_id().to_string())
}

/// The application the job runs go to, and whether this run created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyApplication {
    pub id: String,
    pub created_by_run: bool,
}

/// The configured application (`serverless.application_id`), else the one named
/// `request.name` that the driver created earlier, else a new one from `request`; then, when
/// it is CREATED or STOPPED, started, and waited for (polling `GetApplication` every
/// `interval`, at most `wait`) until STARTED.
pub async fn ensure_application(
    client: &aws_sdk_emrserverless::Client,
    configured: Option<&str>,
    request: &CreateApplicationRequest,
    clock: &dyn Clock,
    interval: Duration,
    wait: Duration,
) -> Result<ReadyApplication, RunnerError> {
    let ready = match configured {
        Some(id) => ReadyApplication { id: id.to_string(), created_by_run: false },
        None => match find_application(client, &request.name).await? {
            Some(id) => {
                tracing::info!("using EMR Serverless application {id} ({}), created by an earlier run", request.name);
                ReadyApplication { id, created_by_run: false }
            }
            None => {
                let id = create_application(client, request).await?;
                tracing::info!(
                    "created EMR Serverless application {id} ({}; stops itself after {} idle minutes)",
                    request.name,
                    request.auto_stop_configuration.idle_timeout_minutes
                );
                ReadyApplication { id, created_by_run: true }
            }
        },
    };
    let start = clock.monotonic();
    let mut started = false;
    loop {
        let out = client
            .get_application()
            .application_id(&ready.id)
            .send()
            .await
            .map_err(|e| classify("GetApplication", e))?;
        let state = out.application().map(|a| a.state().clone());
        match state {
            Some(sl::ApplicationState::Started) => return Ok(ready),
            Some(sl::ApplicationState::Created | sl::ApplicationState::Stopped) if !started => {
                tracing::info!("starting EMR Serverless application {}", ready.id);
                client
                    .start_application()
                    .application_id(&ready.id)
                    .send()
                    .await
                    .map_err(|e| classify("StartApplication", e))?;
                started = true;
            }
            Some(sl::ApplicationState::Terminated) => {
                return Err(RunnerError::Aws {
                    operation: "GetApplication",
                    code: None,
                    message: format!("EMR Serverless application {} is terminated", ready.id),
                    hint: "; set serverless.application_id to a live application (terraform output emr_serverless_application_id), or empty to create one".into(),
                    transient: false,
                });
            }
            _ => {}
        }
        if clock.monotonic().saturating_sub(start) >= wait {
            return Err(RunnerError::Aws {
                operation: "StartApplication",
                code: None,
                message: format!(
                    "EMR Serverless application {} is not STARTED after {} (state {state:?})",
                    ready.id,
                    humantime::format_duration(wait)
                ),
                hint: "; see the application in the EMR Studio console (capacity, network configuration)".into(),
                transient: false,
            });
        }
        clock.sleep(interval).await;
    }
}

/// The live application named `name`, if any (the newest one when several are).
async fn find_application(client: &aws_sdk_emrserverless::Client, name: &str) -> Result<Option<String>, RunnerError> {
    let mut token = None;
    let mut best: Option<(i64, String)> = None;
    loop {
        let out = client
            .list_applications()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify("ListApplications", e))?;
        for app in out.applications() {
            let live = !matches!(app.state(), sl::ApplicationState::Terminated);
            if live && app.name() == Some(name) {
                let created = app.created_at().secs();
                if best.as_ref().is_none_or(|(t, _)| created > *t) {
                    best = Some((created, app.id().to_string()));
                }
            }
        }
        match out.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(best.map(|(_, id)| id)),
        }
    }
}

async fn create_application(
    client: &aws_sdk_emrserverless::Client,
    request: &CreateApplicationRequest,
) -> Result<String, RunnerError> {
    let capacity = sl::MaximumAllowedResources::builder()
        .cpu(&request.maximum_capacity.cpu)
        .memory(&request.maximum_capacity.memory)
        .build()
        .map_err(|e| build_error("CreateApplication", e))?;
    let network = request.network_configuration.as_ref().map(|n| {
        sl::NetworkConfiguration::builder()
            .set_subnet_ids(Some(n.subnet_ids.clone()))
            .set_security_group_ids(Some(n.security_group_ids.clone()))
            .build()
    });
    let out = client
        .create_application()
        .name(&request.name)
        .release_label(&request.release_label)
        .r#type(&request.application_type)
        .client_token(&request.client_token)
        .auto_start_configuration(
            sl::AutoStartConfig::builder().enabled(request.auto_start_configuration.enabled).build(),
        )
        .auto_stop_configuration(
            sl::AutoStopConfig::builder()
                .enabled(request.auto_stop_configuration.enabled)
                .idle_timeout_minutes(request.auto_stop_configuration.idle_timeout_minutes as i32)
                .build(),
        )
        .maximum_capacity(capacity)
        .set_network_configuration(network)
        .set_tags(Some(request.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| classify("CreateApplication", e))?;
    Ok(out.application_id().to_string())
}

/// A `ListJobRuns` entry → the status every runner reports: the state mapped by
/// [`step_state`], `stateDetails` as the failure message, `createdAt` as the start (the
/// summary has no start time) and `updatedAt` as the end of a job run that ended.
pub fn status_from_summary(summary: &sl::JobRunSummary) -> Result<StepStatus, RunnerError> {
    status_of(
        summary.id(),
        summary.name(),
        summary.state(),
        summary.state_details(),
        Some(summary.created_at()),
        Some(summary.updated_at()),
    )
}

fn status_of(
    id: &str,
    name: Option<&str>,
    state: &sl::JobRunState,
    details: &str,
    started: Option<&aws_smithy_types::DateTime>,
    ended: Option<&aws_smithy_types::DateTime>,
) -> Result<StepStatus, RunnerError> {
    let mapped = step_state(state.as_str()).ok_or_else(|| RunnerError::Aws {
        operation: "ListJobRuns",
        code: None,
        message: format!("job run {id} has a state this driver does not know: {}", state.as_str()),
        hint: "; upgrade emr-driver (its aws-sdk-emrserverless) to a version that knows it".into(),
        transient: false,
    })?;
    let details = details.trim();
    let failure = (mapped == StepState::Failed).then(|| FailureDetails {
        reason: Some(format!("job run {}", state.as_str())),
        message: (!details.is_empty()).then(|| details.to_string()),
        log_file: None,
    });
    Ok(StepStatus {
        id: id.to_string(),
        name: name.unwrap_or_default().to_string(),
        state: mapped,
        failure,
        started_at: started.and_then(to_chrono),
        ended_at: if mapped.is_terminal() { ended.and_then(to_chrono) } else { None },
    })
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn build_error(operation: &'static str, e: aws_smithy_types::error::operation::BuildError) -> RunnerError {
    RunnerError::Aws {
        operation,
        code: None,
        message: e.to_string(),
        hint: "; a bug: the request misses a required field".into(),
        transient: false,
    }
}

/// Classifies an SDK error as [`crate::runner::emr::classify`] does (transient or permanent),
/// with the hints of EMR Serverless (its IAM actions, application and job run ids).
pub fn classify<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> RunnerError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut classified = crate::runner::emr::classify(operation, error);
    if let RunnerError::Aws { hint, code, .. } = &mut classified {
        if hint.contains("elasticmapreduce:") {
            *hint = format!(
                "; the driver's IAM identity needs emr-serverless:{operation} on the application (and iam:PassRole on the runtime role for StartJobRun; see terraform/modules/emr_serverless)"
            );
        } else if matches!(code.as_deref(), Some("ValidationException" | "ResourceNotFoundException")) {
            *hint = "; check serverless.application_id, serverless.execution_role_arn and the job run ids: the application may be terminated or in another region".into();
        }
    }
    classified
}
