//! Cancellation: on SIGINT / SIGTERM or when the run's deadline passes, cancel this run's
//! pending and running steps, wait (bounded) for them to settle, and terminate the cluster
//! only if this run created it (the runner decides: see [`super::emr::ClusterOwnership`]).
//!
//! [`wait_or_cancel`] takes the shutdown trigger as a future, so orchestration passes
//! [`ShutdownSignals::recv`] and tests may pass anything; the `run` and `submit` commands use
//! it around their wait.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::{retry_transient, CancelOutcome, RunnerError, StepRunner, Termination};
use crate::clock::{Backoff, Clock};
use crate::error::{ExitCode, ExitStatus};
use crate::poll::{wait_for_steps, PollError, PollObserver, PollOptions};
use crate::step::StepStatus;

/// SIGINT and SIGTERM, listened to from the moment [`ShutdownSignals::install`] returns (the
/// default action, which would kill the driver without cancelling anything, is replaced).
pub struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Waits for the first of SIGINT and SIGTERM; returns its name.
    pub async fn recv(&mut self) -> String {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT".to_string(),
            _ = self.terminate.recv() => "SIGTERM".to_string(),
        }
    }
}

/// What cancelling did.
#[derive(Debug, Clone, Serialize)]
pub struct CancelReport {
    pub cancelled: Vec<CancelOutcome>,
    pub termination: Termination,
}

/// How waiting for a run's steps ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every step reached a final state on its own.
    Finished { steps: Vec<StepStatus> },
    /// A signal arrived: the steps were cancelled.
    Cancelled { signal: String, steps: Vec<StepStatus>, report: CancelReport },
    /// The deadline passed: the steps were cancelled.
    TimedOut { waited_seconds: u64, steps: Vec<StepStatus>, report: CancelReport },
}

impl RunOutcome {
    pub fn steps(&self) -> &[StepStatus] {
        match self {
            RunOutcome::Finished { steps }
            | RunOutcome::Cancelled { steps, .. }
            | RunOutcome::TimedOut { steps, .. } => steps,
        }
    }

    /// 0 / 3 failed / 4 cancelled / 5 timed out.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunOutcome::Finished { steps } => crate::poll::outcome_exit_code(steps),
            RunOutcome::Cancelled { .. } => ExitCode::Cancelled,
            RunOutcome::TimedOut { .. } => ExitCode::TimedOut,
        }
    }
}

/// Cancels the steps of `step_ids` that have not ended yet, then terminates the cluster if
/// (and only if) this run created it.
pub async fn cancel_run(
    runner: &dyn StepRunner,
    step_ids: &[String],
    clock: &dyn Clock,
) -> Result<CancelReport, RunnerError> {
    let cancelled = cancel_steps_only(runner, step_ids, clock).await?;
    let termination = terminate(runner, clock).await?;
    Ok(CancelReport { cancelled, termination })
}

/// Errors of [`wait_or_cancel`].
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error(transparent)]
    Poll(#[from] PollError),
    #[error("could not cancel the run's steps: {0}; cancel them by hand (aws emr cancel-steps) before rerunning")]
    Cancel(#[source] RunnerError),
}

impl ExitStatus for CancelError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CancelError::Poll(e) => e.exit_code(),
            CancelError::Cancel(e) => e.exit_code(),
        }
    }
}

/// Waits for the steps as [`wait_for_steps`] does, but when `shutdown` resolves (a signal) or
/// the deadline passes, cancels them ([`cancel_run`]) and waits at most `settle` for them to
/// reach a final state. The cluster is terminated only after the steps settled, so they are
/// recorded CANCELLED rather than lost with the cluster.
pub async fn wait_or_cancel<S>(
    runner: &dyn StepRunner,
    step_ids: &[String],
    clock: &dyn Clock,
    options: &PollOptions,
    observer: &dyn PollObserver,
    shutdown: S,
    settle: Duration,
) -> Result<RunOutcome, CancelError>
where
    S: Future<Output = String>,
{
    let trigger = tokio::select! {
        result = wait_for_steps(runner, step_ids, clock, options, observer) => match result {
            Ok(steps) => return Ok(RunOutcome::Finished { steps }),
            Err(PollError::TimedOut { waited, .. }) => Trigger::Deadline(waited),
            Err(other) => return Err(other.into()),
        },
        signal = shutdown => Trigger::Signal(signal),
    };
    let cancelled = cancel_steps_only(runner, step_ids, clock).await.map_err(CancelError::Cancel)?;
    let settle_options = PollOptions { deadline: Some(settle), ..options.clone() };
    let steps = match wait_for_steps(runner, step_ids, clock, &settle_options, observer).await {
        Ok(steps) => steps,
        Err(PollError::TimedOut { last, .. }) => last,
        Err(_) => runner.list_steps(step_ids).await.unwrap_or_default(),
    };
    let termination = terminate(runner, clock).await.map_err(CancelError::Cancel)?;
    let report = CancelReport { cancelled, termination };
    Ok(match trigger {
        Trigger::Signal(signal) => RunOutcome::Cancelled { signal, steps, report },
        Trigger::Deadline(waited) => RunOutcome::TimedOut { waited_seconds: waited.as_secs(), steps, report },
    })
}

enum Trigger {
    Signal(String),
    Deadline(Duration),
}

/// Cancelling happens while the driver is being stopped: transient errors are retried a few
/// times, quickly, rather than leaving steps running.
fn cancel_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(10))
}
const CANCEL_ATTEMPTS: u32 = 5;

async fn terminate(runner: &dyn StepRunner, clock: &dyn Clock) -> Result<Termination, RunnerError> {
    retry_transient(clock, &mut cancel_backoff(), CANCEL_ATTEMPTS, || runner.terminate_if_created()).await
}

async fn cancel_steps_only(
    runner: &dyn StepRunner,
    step_ids: &[String],
    clock: &dyn Clock,
) -> Result<Vec<CancelOutcome>, RunnerError> {
    let mut backoff = cancel_backoff();
    let listed = retry_transient(clock, &mut backoff, CANCEL_ATTEMPTS, || runner.list_steps(step_ids)).await?;
    // In the run's order, whatever the listing's order (EMR lists newest first).
    let live: Vec<String> =
        step_ids.iter().filter(|id| listed.iter().any(|s| &s.id == *id && !s.state.is_terminal())).cloned().collect();
    if live.is_empty() {
        return Ok(Vec::new());
    }
    retry_transient(clock, &mut backoff, CANCEL_ATTEMPTS, || runner.cancel(&live)).await
}
