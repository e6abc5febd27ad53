//! The poller and the cancellation logic against a scripted fake runner that walks steps
//! through EMR's states, with a FakeClock: no real sleeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use emr_driver::clock::{Backoff, FakeClock};
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::poll::{outcome_exit_code, wait_for_steps, PollError, PollObserver, PollOptions};
use emr_driver::runner::cancel::{wait_or_cancel, RunOutcome};
use emr_driver::runner::{CancelOutcome, RunnerError, StepRunner, Termination};
use emr_driver::step::{StepConfig, StepState, StepStatus};
use emr_driver::store::ObjectUri;

type Poll = Result<Vec<(&'static str, StepState)>, RunnerError>;

/// Answers each `list_steps` with the next scripted poll (the last one repeats).
struct ScriptedRunner {
    script: Mutex<VecDeque<Poll>>,
    last: Mutex<Vec<(&'static str, StepState)>>,
    list_calls: Mutex<Vec<Vec<String>>>,
    cancelled: Mutex<Vec<String>>,
    terminations: Mutex<u32>,
    created_cluster: bool,
    /// Fired on the n-th list call (to deliver a "signal" mid-wait).
    on_call: Mutex<Option<(usize, tokio::sync::oneshot::Sender<String>)>>,
}

impl ScriptedRunner {
    fn new(script: Vec<Poll>, created_cluster: bool) -> Self {
        ScriptedRunner {
            script: Mutex::new(script.into()),
            last: Mutex::new(Vec::new()),
            list_calls: Mutex::new(Vec::new()),
            cancelled: Mutex::new(Vec::new()),
            terminations: Mutex::new(0),
            created_cluster,
            on_call: Mutex::new(None),
        }
    }
    fn list_calls(&self) -> usize {
        self.list_calls.lock().unwrap().len()
    }
}

fn statuses(list: &[(&str, StepState)]) -> Vec<StepStatus> {
    list.iter()
        .map(|(id, state)| StepStatus {
            id: id.to_string(),
            name: format!("2021-10-31-abc {id}"),
            state: *state,
            failure: None,
            started_at: None,
            ended_at: None,
        })
        .collect()
}

#[async_trait]
impl StepRunner for ScriptedRunner {
    fn describe(&self) -> String {
        "cluster j-SCRIPTED".into()
    }
    async fn submit(&self, _steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        unreachable!("the poller never submits")
    }
    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        self.list_calls.lock().unwrap().push(ids.to_vec());
        let n = self.list_calls();
        let fire = matches!(&*self.on_call.lock().unwrap(), Some((at, _)) if *at == n);
        if fire {
            let (_, tx) = self.on_call.lock().unwrap().take().unwrap();
            let _ = tx.send("SIGINT".into());
        }
        let next = self.script.lock().unwrap().pop_front();
        let mut current = match next {
            Some(Ok(list)) => {
                *self.last.lock().unwrap() = list.clone();
                list
            }
            Some(Err(e)) => return Err(e),
            None => self.last.lock().unwrap().clone(),
        };
        // A cancelled step shows as CANCELLED from then on.
        let cancelled = self.cancelled.lock().unwrap().clone();
        for (id, state) in current.iter_mut() {
            if cancelled.iter().any(|c| c == id) && !state.is_terminal() {
                *state = StepState::Cancelled;
            }
        }
        Ok(statuses(&current))
    }
    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        self.cancelled.lock().unwrap().extend(ids.iter().cloned());
        Ok(ids.iter().map(|id| CancelOutcome { step_id: id.clone(), accepted: true, reason: None }).collect())
    }
    fn log_prefix(&self, _step_id: &str) -> Option<ObjectUri> {
        None
    }
    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        None
    }
    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        if self.created_cluster {
            *self.terminations.lock().unwrap() += 1;
            Ok(Termination::Terminated)
        } else {
            Ok(Termination::LeftRunning)
        }
    }
}

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<(String, Option<StepState>, StepState)>>,
    retries: Mutex<Vec<(u32, Duration)>>,
}
impl PollObserver for Recorder {
    fn state_changed(&self, step: &StepStatus, previous: Option<StepState>, _elapsed: Duration) {
        self.changes.lock().unwrap().push((step.id.clone(), previous, step.state));
    }
    fn retrying(&self, _error: &RunnerError, attempt: u32, delay: Duration) {
        self.retries.lock().unwrap().push((attempt, delay));
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn options() -> PollOptions {
    PollOptions {
        interval: Duration::from_secs(15),
        max_backoff: Duration::from_secs(120),
        deadline: Some(Duration::from_secs(3600)),
        max_transient_errors: 10,
        missing_polls_allowed: 2,
        jitter_seed: Some(11),
    }
}

fn throttled() -> RunnerError {
    RunnerError::Aws {
        operation: "ListSteps",
        code: Some("ThrottlingException".into()),
        message: "Rate exceeded".into(),
        hint: String::new(),
        transient: true,
    }
}

use StepState::*;

#[tokio::test]
async fn five_steps_walk_to_completed_with_one_list_call_per_poll() {
    let five = ["s-1", "s-2", "s-3", "s-4", "s-5"];
    let runner = ScriptedRunner::new(
        vec![
            Ok(five.iter().map(|id| (*id, Pending)).collect()),
            Ok(vec![("s-1", Running), ("s-2", Running), ("s-3", Pending), ("s-4", Pending), ("s-5", Pending)]),
            Ok(vec![("s-1", Completed), ("s-2", Running), ("s-3", Running), ("s-4", Pending), ("s-5", Pending)]),
            Ok(vec![("s-1", Completed), ("s-2", Completed), ("s-3", Completed), ("s-4", Running), ("s-5", Running)]),
            Ok(five.iter().map(|id| (*id, Completed)).collect()),
        ],
        false,
    );
    let clock = FakeClock::new();
    let recorder = Recorder::default();
    let done = wait_for_steps(&runner, &ids(&five), &clock, &options(), &recorder).await.unwrap();
    assert_eq!(done.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), five);
    assert!(done.iter().all(|s| s.state == Completed));
    assert_eq!(outcome_exit_code(&done), ExitCode::Success);
    assert_eq!(runner.list_calls(), 5, "one list call per poll, not one per step");
    assert!(runner.list_calls.lock().unwrap().iter().all(|call| call == &ids(&five)));
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(15); 4]);
    let changes = recorder.changes.lock().unwrap();
    // 5 first sightings + every change: s-1 2, s-2 2, s-3 2, s-4 2, s-5 2.
    assert_eq!(changes.len(), 15, "{changes:?}");
    assert!(changes.contains(&("s-3".into(), Some(Running), Completed)));
}

#[tokio::test]
async fn failed_and_cancelled_steps_end_the_wait_with_their_exit_codes() {
    let runner = ScriptedRunner::new(
        vec![Ok(vec![("s-1", Running), ("s-2", Pending)]), Ok(vec![("s-1", Failed), ("s-2", Cancelled)])],
        false,
    );
    let clock = FakeClock::new();
    let done = wait_for_steps(&runner, &ids(&["s-1", "s-2"]), &clock, &options(), &Recorder::default()).await.unwrap();
    assert_eq!(done[0].state, Failed);
    assert_eq!(done[1].state, Cancelled);
    assert_eq!(outcome_exit_code(&done), ExitCode::StepFailed);

    let runner = ScriptedRunner::new(vec![Ok(vec![("s-1", CancelPending)]), Ok(vec![("s-1", Cancelled)])], false);
    let done = wait_for_steps(&runner, &ids(&["s-1"]), &clock, &options(), &Recorder::default()).await.unwrap();
    assert_eq!(outcome_exit_code(&done), ExitCode::Cancelled);
}

#[tokio::test]
async fn throttling_is_retried_with_seeded_full_jitter_backoff() {
    let runner = ScriptedRunner::new(
        vec![
            Err(throttled()),
            Err(throttled()),
            Err(throttled()),
            Ok(vec![("s-1", Running)]),
            Ok(vec![("s-1", Completed)]),
        ],
        false,
    );
    let clock = FakeClock::new();
    let recorder = Recorder::default();
    let done = wait_for_steps(&runner, &ids(&["s-1"]), &clock, &options(), &recorder).await.unwrap();
    assert_eq!(done[0].state, Completed);
    // The same seed gives the same delays: the schedule is exactly the backoff's.
    let mut expected = Backoff::seeded(Duration::from_secs(15), Duration::from_secs(120), 11);
    let expected: Vec<Duration> = (0..3).map(|a| expected.delay(a)).collect();
    let sleeps = clock.sleeps();
    assert_eq!(&sleeps[..3], &expected[..]);
    assert_eq!(sleeps[3], Duration::from_secs(15), "back to the normal interval after a success");
    for (attempt, delay) in expected.iter().enumerate() {
        assert!(*delay <= Duration::from_secs(15) * 2u32.pow(attempt as u32));
    }
    assert_eq!(recorder.retries.lock().unwrap().iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[tokio::test]
async fn transient_errors_are_bounded() {
    let runner = ScriptedRunner::new((0..50).map(|_| Err(throttled())).collect(), false);
    let clock = FakeClock::new();
    let err = wait_for_steps(&runner, &ids(&["s-1"]), &clock, &options(), &Recorder::default()).await.unwrap_err();
    assert!(matches!(&err, PollError::Runner(e) if e.is_transient()), "{err}");
    assert_eq!(runner.list_calls(), 11, "10 retries, then the error");
    assert_eq!(err.exit_code(), ExitCode::Aws);
}

#[tokio::test]
async fn permanent_errors_fail_at_once() {
    let denied = RunnerError::Aws {
        operation: "ListSteps",
        code: Some("AccessDeniedException".into()),
        message: "User is not authorized".into(),
        hint: "; the driver's IAM identity needs elasticmapreduce:ListSteps".into(),
        transient: false,
    };
    let runner = ScriptedRunner::new(vec![Err(denied)], false);
    let clock = FakeClock::new();
    let err = wait_for_steps(&runner, &ids(&["s-1"]), &clock, &options(), &Recorder::default()).await.unwrap_err();
    assert_eq!(runner.list_calls(), 1);
    assert!(clock.sleeps().is_empty());
    assert_eq!(err.exit_code(), ExitCode::Aws);
    assert!(err.to_string().contains("elasticmapreduce:ListSteps"), "{err}");
}

#[tokio::test]
async fn the_deadline_ends_the_wait_exactly_on_time() {
    let runner = ScriptedRunner::new(vec![Ok(vec![("s-1", Running), ("s-2", Completed)])], false);
    let clock = FakeClock::new();
    let opts = PollOptions { deadline: Some(Duration::from_secs(100)), ..options() };
    let err = wait_for_steps(&runner, &ids(&["s-1", "s-2"]), &clock, &opts, &Recorder::default()).await.unwrap_err();
    let PollError::TimedOut { waited, last } = &err else { panic!("{err}") };
    assert_eq!(*waited, Duration::from_secs(100));
    assert_eq!(clock.slept(), Duration::from_secs(100), "{:?}", clock.sleeps());
    assert_eq!(last[0].state, Running);
    assert_eq!(err.exit_code(), ExitCode::TimedOut);
    assert!(err.to_string().contains("s-1 RUNNING"), "{err}");
    // 15 s polls: at 0, 15, ..., 90 and the last one exactly at 100.
    assert_eq!(runner.list_calls(), 8);
}

#[tokio::test]
async fn unknown_steps_are_reported_after_a_few_polls() {
    let runner = ScriptedRunner::new(vec![Ok(vec![("s-1", Running)])], false);
    let clock = FakeClock::new();
    let err =
        wait_for_steps(&runner, &ids(&["s-1", "s-404"]), &clock, &options(), &Recorder::default()).await.unwrap_err();
    assert!(matches!(&err, PollError::StepsNotFound { ids, .. } if ids == &["s-404".to_string()]), "{err}");
    assert_eq!(runner.list_calls(), 3);
}

#[tokio::test]
async fn a_signal_cancels_the_live_steps_and_terminates_only_a_created_cluster() {
    for created in [true, false] {
        let runner = ScriptedRunner::new(
            vec![
                Ok(vec![("s-1", Completed), ("s-2", Running), ("s-3", Pending)]),
                Ok(vec![("s-1", Completed), ("s-2", Running), ("s-3", Pending)]),
            ],
            created,
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        *runner.on_call.lock().unwrap() = Some((2, tx));
        let clock = FakeClock::new();
        let shutdown = async move { rx.await.unwrap_or_default() };
        let outcome = wait_or_cancel(
            &runner,
            &ids(&["s-1", "s-2", "s-3"]),
            &clock,
            &options(),
            &Recorder::default(),
            shutdown,
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        let RunOutcome::Cancelled { signal, steps, report } = &outcome else { panic!("{outcome:?}") };
        assert_eq!(signal, "SIGINT");
        assert_eq!(*runner.cancelled.lock().unwrap(), ids(&["s-2", "s-3"]), "only the live steps");
        assert_eq!(steps.iter().map(|s| s.state).collect::<Vec<_>>(), vec![Completed, Cancelled, Cancelled]);
        assert_eq!(outcome.exit_code(), ExitCode::Cancelled);
        let terminations = *runner.terminations.lock().unwrap();
        if created {
            assert_eq!(report.termination, Termination::Terminated);
            assert_eq!(terminations, 1);
        } else {
            assert_eq!(report.termination, Termination::LeftRunning);
            assert_eq!(terminations, 0);
        }
    }
}

#[tokio::test]
async fn the_run_deadline_cancels_too() {
    let runner = ScriptedRunner::new(vec![Ok(vec![("s-1", Running)])], true);
    let clock = FakeClock::new();
    let opts = PollOptions { deadline: Some(Duration::from_secs(60)), ..options() };
    let never = std::future::pending::<String>();
    let outcome =
        wait_or_cancel(&runner, &ids(&["s-1"]), &clock, &opts, &Recorder::default(), never, Duration::from_secs(30))
            .await
            .unwrap();
    assert!(matches!(outcome, RunOutcome::TimedOut { waited_seconds: 60, .. }), "{outcome:?}");
    assert_eq!(outcome.exit_code(), ExitCode::TimedOut);
    assert_eq!(*runner.cancelled.lock().unwrap(), ids(&["s-1"]));
    assert_eq!(outcome.steps()[0].state, Cancelled);
    assert_eq!(*runner.terminations.lock().unwrap(), 1);
}

#[tokio::test]
async fn finished_runs_are_not_cancelled() {
    let runner = Arc::new(ScriptedRunner::new(vec![Ok(vec![("s-1", Completed)])], true));
    let clock = FakeClock::new();
    let never = std::future::pending::<String>();
    let outcome = wait_or_cancel(
        runner.as_ref(),
        &ids(&["s-1"]),
        &clock,
        &options(),
        &Recorder::default(),
        never,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, RunOutcome::Finished { .. }));
    assert!(runner.cancelled.lock().unwrap().is_empty());
    assert_eq!(*runner.terminations.lock().unwrap(), 0, "terminating after success is the caller's choice");
}
