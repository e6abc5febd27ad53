//! The poller: waits for steps to end with ONE `list_steps` call per poll (whatever the number
//! of steps), exponential backoff with full jitter on transient errors, a wall-clock deadline,
//! and every state change reported to an observer (progress lines for people, JSON events for
//! machines).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{format_duration, Backoff, Clock};
use crate::error::{ExitCode, ExitStatus};
use crate::runner::{RunnerError, StepRunner};
use crate::step::{StepState, StepStatus};

/// How to poll.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Time between two polls when all is well.
    pub interval: Duration,
    /// The longest wait between two attempts after transient errors.
    pub max_backoff: Duration,
    /// Give up (TimedOut) this long after the poll started; `None` waits for ever.
    pub deadline: Option<Duration>,
    /// Give up after this many transient errors in a row (the deadline may come first).
    pub max_transient_errors: u32,
    /// A step id the runner does not list is tolerated for this many polls (EMR may list a
    /// just-added step a moment later), then the poll fails.
    pub missing_polls_allowed: u32,
    /// Seed of the backoff jitter (tests); `None` draws from the OS.
    pub jitter_seed: Option<u64>,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            interval: Duration::from_secs(15),
            max_backoff: Duration::from_secs(120),
            deadline: Some(Duration::from_secs(3 * 3600)),
            max_transient_errors: 20,
            missing_polls_allowed: 3,
            jitter_seed: None,
        }
    }
}

/// Why waiting did not end with every step in a final state.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "gave up waiting after {}: {}; raise --timeout (or [emr] run_timeout_minutes) or check \
         the cluster",
        humantime::format_duration(*waited), unfinished_text(last)
    )]
    TimedOut { waited: Duration, last: Vec<StepStatus> },
    #[error("{runner} does not know step(s) {}; check the step ids (and the cluster id)", ids.join(", "))]
    StepsNotFound { runner: String, ids: Vec<String> },
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

fn unfinished_text(statuses: &[StepStatus]) -> String {
    let unfinished: Vec<String> =
        statuses.iter().filter(|s| !s.state.is_terminal()).map(|s| format!("{} {}", s.id, s.state)).collect();
    if statuses.is_empty() {
        "no poll succeeded before the deadline".to_string()
    } else {
        format!("{} step(s) still not finished ({})", unfinished.len(), unfinished.join(", "))
    }
}

impl ExitStatus for PollError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PollError::TimedOut { .. } => ExitCode::TimedOut,
            PollError::StepsNotFound { .. } => ExitCode::BadInput,
            PollError::Runner(e) => e.exit_code(),
        }
    }
}

/// Told about what the poller sees. Every method has a default, so an observer implements
/// only what it shows.
pub trait PollObserver: Send + Sync {
    /// A step was seen for the first time (`previous` is `None`) or changed state.
    fn state_changed(&self, _step: &StepStatus, _previous: Option<StepState>, _elapsed: Duration) {}
    /// A transient error: the poller waits `delay` and tries again.
    fn retrying(&self, _error: &RunnerError, _attempt: u32, _delay: Duration) {}
    /// After each successful poll (for a heartbeat line).
    fn polled(&self, _steps: &[StepStatus], _elapsed: Duration) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl PollObserver for Quiet {}

/// Waits until every step in `step_ids` is in a final state and returns their statuses in the
/// order of `step_ids`.
pub async fn wait_for_steps(
    runner: &dyn StepRunner,
    step_ids: &[String],
    clock: &dyn Clock,
    options: &PollOptions,
    observer: &dyn PollObserver,
) -> Result<Vec<StepStatus>, PollError> {
    let start = clock.monotonic();
    let mut backoff = match options.jitter_seed {
        Some(seed) => Backoff::seeded(options.interval, options.max_backoff, seed),
        None => Backoff::new(options.interval, options.max_backoff),
    };
    let mut seen: HashMap<String, StepState> = HashMap::new();
    let mut last: Vec<StepStatus> = Vec::new();
    let mut errors_in_a_row = 0u32;
    let mut missing_polls = 0u32;
    loop {
        let elapsed = clock.monotonic().saturating_sub(start);
        let pause = match runner.list_steps(step_ids).await {
            Ok(listed) => {
                errors_in_a_row = 0;
                let ordered = in_requested_order(&listed, step_ids);
                report_changes(&ordered, &mut seen, elapsed, observer);
                observer.polled(&ordered, elapsed);
                if ordered.len() < step_ids.len() {
                    missing_polls += 1;
                    if missing_polls > options.missing_polls_allowed {
                        let ids = step_ids.iter().filter(|id| !ordered.iter().any(|s| &s.id == *id)).cloned().collect();
                        return Err(PollError::StepsNotFound { runner: runner.describe(), ids });
                    }
                } else {
                    missing_polls = 0;
                    if ordered.iter().all(|s| s.state.is_terminal()) {
                        return Ok(ordered);
                    }
                }
                last = ordered;
                options.interval
            }
            Err(error) if error.is_transient() && errors_in_a_row < options.max_transient_errors => {
                let delay = backoff.delay(errors_in_a_row);
                observer.retrying(&error, errors_in_a_row + 1, delay);
                errors_in_a_row += 1;
                delay
            }
            Err(error) => return Err(PollError::Runner(error)),
        };
        let elapsed = clock.monotonic().saturating_sub(start);
        let pause = match options.deadline {
            Some(deadline) if elapsed >= deadline => {
                return Err(PollError::TimedOut { waited: elapsed, last });
            }
            // Never sleep past the deadline: one last poll exactly at it.
            Some(deadline) => pause.min(deadline - elapsed),
            None => pause,
        };
        clock.sleep(pause).await;
    }
}

fn in_requested_order(listed: &[StepStatus], step_ids: &[String]) -> Vec<StepStatus> {
    step_ids.iter().filter_map(|id| listed.iter().find(|s| &s.id == id).cloned()).collect()
}

fn report_changes(
    statuses: &[StepStatus],
    seen: &mut HashMap<String, StepState>,
    elapsed: Duration,
    observer: &dyn PollObserver,
) {
    for status in statuses {
        let previous = seen.insert(status.id.clone(), status.state);
        if previous != Some(status.state) {
            observer.state_changed(status, previous, elapsed);
        }
    }
}

/// The exit code of a set of final statuses: any failed (or interrupted) step → 3, else any
/// cancelled step → 4, else 0.
pub fn outcome_exit_code(statuses: &[StepStatus]) -> ExitCode {
    if statuses.iter().any(|s| matches!(s.state, StepState::Failed | StepState::Interrupted)) {
        ExitCode::StepFailed
    } else if statuses.iter().any(|s| s.state == StepState::Cancelled) {
        ExitCode::Cancelled
    } else if statuses.iter().all(|s| s.state == StepState::Completed) {
        ExitCode::Success
    } else {
        ExitCode::Internal
    }
}

/// Progress for people: one line per state change and a heartbeat line now and then, on the
/// writer given (stderr in the CLI).
pub struct TextProgress {
    out: Mutex<Box<dyn Write + Send>>,
    heartbeat: Duration,
    last_line_at: Mutex<Duration>,
}

impl TextProgress {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        TextProgress {
            out: Mutex::new(out),
            heartbeat: Duration::from_secs(60),
            last_line_at: Mutex::new(Duration::ZERO),
        }
    }

    pub fn stderr() -> Self {
        TextProgress::new(Box::new(std::io::stderr()))
    }

    fn line(&self, text: &str, elapsed: Duration) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "[{:>8}] {text}", format_duration(elapsed));
        let _ = out.flush();
        *self.last_line_at.lock().unwrap_or_else(|p| p.into_inner()) = elapsed;
    }
}

impl PollObserver for TextProgress {
    fn state_changed(&self, step: &StepStatus, _previous: Option<StepState>, elapsed: Duration) {
        let mut text = format!("{} {:<14} {}", step.id, step.state.as_str(), step.name);
        if let (Some(start), Some(end)) = (step.started_at, step.ended_at) {
            text.push_str(&format!(" (ran {})", format_duration((end - start).to_std().unwrap_or_default())));
        }
        self.line(&text, elapsed);
    }

    fn retrying(&self, error: &RunnerError, attempt: u32, delay: Duration) {
        let text = format!("retry {attempt} in {}: {error}", format_duration(delay));
        let elapsed = *self.last_line_at.lock().unwrap_or_else(|p| p.into_inner());
        self.line(&text, elapsed);
    }

    fn polled(&self, steps: &[StepStatus], elapsed: Duration) {
        let last = *self.last_line_at.lock().unwrap_or_else(|p| p.into_inner());
        if elapsed.saturating_sub(last) >= self.heartbeat {
            let running: Vec<String> =
                steps.iter().filter(|s| !s.state.is_terminal()).map(|s| format!("{} {}", s.id, s.state)).collect();
            self.line(&format!("still waiting: {}", running.join(", ")), elapsed);
        }
    }
}

/// One JSON event per line for machines (stdout in the CLI with `--output json`).
pub struct JsonEvents {
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event<'a> {
    StepState { step_id: &'a str, name: &'a str, state: StepState, previous: Option<StepState>, elapsed_seconds: u64 },
    Retry { attempt: u32, delay_ms: u128, transient_error: String },
}

impl JsonEvents {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonEvents { out: Mutex::new(out) }
    }

    pub fn stdout() -> Self {
        JsonEvents::new(Box::new(std::io::stdout()))
    }

    fn emit(&self, event: &Event<'_>) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

impl PollObserver for JsonEvents {
    fn state_changed(&self, step: &StepStatus, previous: Option<StepState>, elapsed: Duration) {
        self.emit(&Event::StepState {
            step_id: &step.id,
            name: &step.name,
            state: step.state,
            previous,
            elapsed_seconds: elapsed.as_secs(),
        });
    }

    fn retrying(&self, error: &RunnerError, attempt: u32, delay: Duration) {
        self.emit(&Event::Retry { attempt, delay_ms: delay.as_millis(), transient_error: error.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, state: StepState) -> StepStatus {
        StepStatus { id: id.into(), name: format!("r1 {id}"), state, failure: None, started_at: None, ended_at: None }
    }

    #[test]
    fn outcome_codes() {
        use StepState::*;
        assert_eq!(outcome_exit_code(&[status("a", Completed), status("b", Completed)]), ExitCode::Success);
        assert_eq!(outcome_exit_code(&[status("a", Completed), status("b", Cancelled)]), ExitCode::Cancelled);
        assert_eq!(outcome_exit_code(&[status("a", Failed), status("b", Cancelled)]), ExitCode::StepFailed);
        assert_eq!(outcome_exit_code(&[status("a", Interrupted)]), ExitCode::StepFailed);
    }

    #[test]
    fn formats_elapsed_times() {
        assert_eq!(format_duration(Duration::from_secs(6)), "6.0s");
        assert_eq!(format_duration(Duration::from_millis(12_400)), "12.4s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h02m");
    }

    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_events_are_one_object_per_line() {
        let sink = Sink::default();
        let events = JsonEvents::new(Box::new(sink.clone()));
        events.state_changed(&status("s-1", StepState::Running), Some(StepState::Pending), Duration::from_secs(30));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["event"], "step_state");
        assert_eq!(value["step_id"], "s-1");
        assert_eq!(value["state"], "RUNNING");
        assert_eq!(value["previous"], "PENDING");
        assert_eq!(value["elapsed_seconds"], 30);
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn text_progress_prints_a_line_per_change() {
        let sink = Sink::default();
        let progress = TextProgress::new(Box::new(sink.clone()));
        progress.state_changed(&status("s-1", StepState::Running), None, Duration::from_secs(75));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("1m15s") && text.contains("s-1") && text.contains("RUNNING"), "{text}");
    }
}
