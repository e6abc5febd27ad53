//! Step runners: one trait, three implementations.
//!
//! * [`emr::EmrRunner`] adds steps to an EMR cluster and reads them back with one `ListSteps`
//!   request per poll.
//! * [`local::LocalRunner`] runs the same rendered `spark-submit` command lines with a local
//!   Spark, following EMR's step life cycle and `ActionOnFailure`.
//! * [`serverless::ServerlessRunner`] starts each step as one EMR Serverless job run and reads
//!   them back with one `ListJobRuns` request per poll.
//!
//! The poller ([`crate::poll`]), the diagnosis ([`crate::diagnose`]) and cancellation
//! ([`cancel`]) are written once against [`StepRunner`].

pub mod cancel;
pub mod emr;
pub mod local;
pub mod serverless;
pub mod shared_app;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{ExitCode, ExitStatus};
use crate::manifest::ResourceUsage;
use crate::step::{StepConfig, StepState, StepStatus};
use crate::store::ObjectUri;

/// What became of a request to cancel one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelOutcome {
    pub step_id: String,
    /// True when the runner accepted the cancellation (EMR: `CancelStepsInfo.Status =
    /// SUBMITTED`); the step reaches CANCELLED (or ends on its own) afterwards.
    pub accepted: bool,
    /// Why not, when refused (e.g. the step had already ended).
    pub reason: Option<String>,
}

/// What `terminate_if_created` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// This run created the cluster and asked EMR to terminate it.
    Terminated,
    /// The cluster was there before this run: it is left running.
    LeftRunning,
    /// Nothing to terminate (the local runner).
    NotApplicable,
}

/// A step runner: EMR or a local Spark.
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// For people: "cluster j-XXX" or "local Spark".
    fn describe(&self) -> String;

    /// Submits steps in order; returns their ids in the same order.
    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError>;

    /// The current status of the steps `ids` (the runner's newest steps when `ids` is empty);
    /// steps the runner does not know are absent from the answer. On EMR this is ONE
    /// `ListSteps` request for up to ten ids (a run has four or five steps); see
    /// [`emr::EmrRunner`] for more.
    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError>;

    /// Cancels steps (EMR: `CancelSteps` with `SEND_INTERRUPT`, so a running step is
    /// interrupted, not only a pending one).
    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError>;

    /// Where the logs of `step_id` go (EMR: `<LogUri>/<cluster>/steps/<step>/`), when known.
    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri>;

    /// Where the logs of the whole cluster go (EMR: `<LogUri>/<cluster>/`): the diagnosis
    /// follows the application id from the step's stderr to the YARN container logs there.
    fn cluster_log_prefix(&self) -> Option<ObjectUri>;

    /// Terminates the cluster only if this run created it. A runner attached to an existing
    /// cluster cannot terminate it: see [`emr::ClusterOwnership`].
    async fn terminate_if_created(&self) -> Result<Termination, RunnerError>;

    /// Waits until what [`StepRunner::terminate_if_created`] set going has ended (the local
    /// runner's shared application stopped, its processes gone, its logs written), so a command
    /// never returns with a process of its own still running. Default: nothing to wait for
    /// (EMR terminates a cluster on its own time).
    async fn wait_terminated(&self) {}

    /// What each of the ended steps `ids` used (EMR Serverless: the job run's
    /// `totalResourceUtilization`); steps without a figure are absent. Default: none.
    async fn usage(&self, _ids: &[String]) -> Result<BTreeMap<String, ResourceUsage>, RunnerError> {
        Ok(BTreeMap::new())
    }

    /// What the runner as a whole used so far (EMR: the cluster's `NormalizedInstanceHours`).
    /// Default: nothing to report.
    async fn total_usage(&self) -> Result<Option<ResourceUsage>, RunnerError> {
        Ok(None)
    }

    /// The state of the cluster the steps run on (EMR: `DescribeCluster`, and after a
    /// bootstrap failure `ListBootstrapActions`); `None` for runners without one (local Spark).
    async fn cluster_status(&self) -> Result<Option<crate::cluster::ClusterStatus>, RunnerError> {
        Ok(None)
    }
}

/// A runner failure. AWS errors are classified once, here, into transient (worth retrying
/// with backoff) and permanent (fail at once with the AWS message and a hint).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("EMR {operation} failed: {message}{hint}")]
    Aws {
        operation: &'static str,
        /// The AWS error code (`ThrottlingException`, `AccessDeniedException`...), if any.
        code: Option<String>,
        message: String,
        /// How to fix it, starting with "; " (empty when there is nothing useful to add).
        hint: String,
        /// Throttling, 5xx, timeouts, connection failures: retry with backoff.
        transient: bool,
    },
    #[error("could not start step {step_id} ({program}): {source}; check [local] spark_submit in the configuration and that the file is executable")]
    Spawn {
        step_id: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("step `{name}` has an empty command line; check its template")]
    EmptyCommand { name: String },
    #[error("the local runner could not {op}: {source}")]
    LocalIo {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

impl RunnerError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RunnerError::Aws { transient: true, .. })
    }
}

impl ExitStatus for RunnerError {
    fn exit_code(&self) -> ExitCode {
        match self {
            RunnerError::Aws { .. } => ExitCode::Aws,
            RunnerError::Spawn { .. } | RunnerError::EmptyCommand { .. } => ExitCode::BadInput,
            RunnerError::LocalIo { .. } => ExitCode::Internal,
        }
    }
}

/// Runs `operation` again after transient errors, with backoff on `clock`, at most
/// `max_attempts` times in all; a permanent error, or the last transient one, is returned.
///
/// Use it for idempotent calls (listing, cancelling, terminating). Do not wrap `submit` in it:
/// `AddJobFlowSteps` has no idempotency token, so after a timeout the steps may have been added
/// anyway — list them by name ([`find_steps_by_name`]) before submitting again.
pub async fn retry_transient<T, F, Fut>(
    clock: &dyn crate::clock::Clock,
    backoff: &mut crate::clock::Backoff,
    max_attempts: u32,
    mut operation: F,
) -> Result<T, RunnerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RunnerError>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(error) if error.is_transient() && attempt + 1 < max_attempts.max(1) => {
                tracing::warn!(%error, attempt = attempt + 1, "transient error, retrying");
                clock.sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// The step name the driver gives a step of run `run_id`: `"<run_id> <step key>"`. The run id
/// in the name is what lets a rerun find its own steps on a shared cluster.
pub fn step_name(run_id: &str, step_key: &str) -> String {
    format!("{run_id} {step_key}")
}

/// What a rerun should do about one wanted step, given what the cluster already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingStep {
    /// No usable step of that name: submit it.
    Submit,
    /// A step of that name COMPLETED: skip it.
    Completed { id: String },
    /// A step of that name is PENDING or RUNNING: wait for it instead of submitting twice.
    Attach { id: String, state: StepState },
}

/// For each wanted step name, in order, what to do given `listed` (a runner's listing, any
/// order). When a name appears several times the newest live or completed step wins (by start
/// time, then by position in a newest-first listing); failed and cancelled attempts are
/// ignored, so a rerun submits a fresh attempt for them.
pub fn find_steps_by_name(listed: &[StepStatus], names: &[String]) -> Vec<(String, ExistingStep)> {
    names
        .iter()
        .map(|name| {
            let existing = listed
                .iter()
                .enumerate()
                .filter(|(_, step)| &step.name == name)
                .filter(|(_, step)| {
                    matches!(step.state, StepState::Completed | StepState::Pending | StepState::Running)
                })
                // Newest first: a later start wins; among equal starts, the earlier position
                // in the (newest-first) listing wins.
                .max_by(|(ia, a), (ib, b)| a.started_at.cmp(&b.started_at).then(ib.cmp(ia)))
                .map(|(_, step)| match step.state {
                    StepState::Completed => ExistingStep::Completed { id: step.id.clone() },
                    state => ExistingStep::Attach { id: step.id.clone(), state },
                })
                .unwrap_or(ExistingStep::Submit);
            (name.clone(), existing)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn status(id: &str, name: &str, state: StepState, started_minute: Option<u32>) -> StepStatus {
        StepStatus {
            id: id.into(),
            name: name.into(),
            state,
            failure: None,
            started_at: started_minute.map(|m| chrono::Utc.with_ymd_and_hms(2021, 10, 31, 1, m, 0).unwrap()),
            ended_at: None,
        }
    }

    #[test]
    fn step_names_carry_the_run_id() {
        assert_eq!(step_name("2021-10-31-ab12cd", "parse_logs"), "2021-10-31-ab12cd parse_logs");
    }

    #[test]
    fn a_rerun_skips_completed_attaches_to_live_and_resubmits_the_rest() {
        let listed = vec![
            status("s-4", "r1 build_fact", StepState::Pending, None),
            status("s-3", "r1 parse_logs", StepState::Running, Some(3)),
            status("s-2", "r1 classify_reviews", StepState::Completed, Some(1)),
            status("s-1", "r1 build_dimensions", StepState::Failed, Some(0)),
            status("s-0", "r0 parse_logs", StepState::Completed, Some(0)),
        ];
        let names: Vec<String> =
            ["r1 classify_reviews", "r1 parse_logs", "r1 build_dimensions", "r1 build_fact", "r1 other"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let found = find_steps_by_name(&listed, &names);
        assert_eq!(
            found.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
            vec![
                ExistingStep::Completed { id: "s-2".into() },
                ExistingStep::Attach { id: "s-3".into(), state: StepState::Running },
                ExistingStep::Submit,
                ExistingStep::Attach { id: "s-4".into(), state: StepState::Pending },
                ExistingStep::Submit,
            ]
        );
        assert_eq!(found[0].0, "r1 classify_reviews");
    }

    #[test]
    fn the_newest_attempt_of_a_name_wins() {
        let listed = vec![
            status("s-9", "r1 parse_logs", StepState::Running, Some(30)),
            status("s-5", "r1 parse_logs", StepState::Completed, Some(10)),
            status("s-7", "r1 parse_logs", StepState::Cancelled, Some(20)),
        ];
        let found = find_steps_by_name(&listed, &["r1 parse_logs".to_string()]);
        assert_eq!(found[0].1, ExistingStep::Attach { id: "s-9".into(), state: StepState::Running });

        // Two pending steps (no start time yet): the first in a newest-first listing wins.
        let listed =
            vec![status("s-11", "r1 x", StepState::Pending, None), status("s-10", "r1 x", StepState::Pending, None)];
        let found = find_steps_by_name(&listed, &["r1 x".to_string()]);
        assert_eq!(found[0].1, ExistingStep::Attach { id: "s-11".into(), state: StepState::Pending });
    }

    #[tokio::test]
    async fn retries_transient_errors_only_and_within_the_bound() {
        use crate::clock::{Backoff, FakeClock};
        use std::time::Duration;
        let throttled = || RunnerError::Aws {
            operation: "CancelSteps",
            code: Some("ThrottlingException".into()),
            message: "Rate exceeded".into(),
            hint: String::new(),
            transient: true,
        };
        let clock = FakeClock::new();
        let mut backoff = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(8), 5);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry_transient(&clock, &mut backoff, 5, || async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err(throttled()),
                _ => Ok("done"),
            }
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(clock.sleeps().len(), 2);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let result: Result<(), _> = retry_transient(&clock, &mut backoff, 4, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(throttled())
        })
        .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4, "bounded");

        let calls = std::sync::atomic::AtomicU32::new(0);
        let result: Result<(), _> = retry_transient(&clock, &mut backoff, 4, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(RunnerError::EmptyCommand { name: "x".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "permanent: no retry");
    }

    #[test]
    fn transient_errors_are_the_only_retryable_ones() {
        let aws = |transient| RunnerError::Aws {
            operation: "ListSteps",
            code: None,
            message: "m".into(),
            hint: String::new(),
            transient,
        };
        assert!(aws(true).is_transient());
        assert!(!aws(false).is_transient());
        assert!(!RunnerError::EmptyCommand { name: "x".into() }.is_transient());
        assert_eq!(aws(false).exit_code(), ExitCode::Aws);
    }
}
