//! The EMR runner at the HTTP level, through the real SDK with aws-smithy-mocks: what moto
//! cannot do (steps past RUNNING, CancelSteps) and the exact requests the poller and the
//! cancellation send.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_emr::config::retry::RetryConfig;
use aws_sdk_emr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_emr::operation::cancel_steps::CancelStepsOutput;
use aws_sdk_emr::operation::list_steps::ListStepsOutput;
use aws_sdk_emr::operation::run_job_flow::RunJobFlowOutput;
use aws_sdk_emr::operation::terminate_job_flows::TerminateJobFlowsOutput;
use aws_sdk_emr::types::{
    CancelStepsInfo, CancelStepsRequestStatus, StepCancellationOption, StepState as SdkState, StepStatus as SdkStatus,
    StepSummary,
};
use aws_sdk_emr::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use emr_driver::clock::FakeClock;
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::poll::{wait_for_steps, PollError, PollOptions, Quiet};
use emr_driver::runner::cancel::{cancel_run, wait_or_cancel, RunOutcome};
use emr_driver::runner::emr::{CreatedCluster, EmrRunner};
use emr_driver::runner::{RunnerError, StepRunner, Termination};
use emr_driver::step::StepState;

fn client(rules: &[&Rule]) -> Client {
    let interceptor =
        rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r));
    let conf = aws_sdk_emr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        // The poller does its own retries: count exactly the requests it makes.
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

const FIVE: [&str; 5] = ["s-1", "s-2", "s-3", "s-4", "s-5"];

fn page(states: [SdkState; 5]) -> ListStepsOutput {
    FIVE.iter()
        .zip(states)
        .rev()
        .fold(ListStepsOutput::builder(), |b, (id, state)| {
            b.steps(
                StepSummary::builder()
                    .id(*id)
                    .name(format!("2021-10-31-abc {id}"))
                    .status(SdkStatus::builder().state(state).build())
                    .build(),
            )
        })
        .build()
}

fn ids() -> Vec<String> {
    FIVE.iter().map(|s| s.to_string()).collect()
}

fn options() -> PollOptions {
    PollOptions {
        interval: Duration::from_secs(15),
        max_backoff: Duration::from_secs(60),
        deadline: Some(Duration::from_secs(3600)),
        max_transient_errors: 5,
        missing_polls_allowed: 0,
        jitter_seed: Some(1),
    }
}

#[tokio::test]
async fn polling_five_steps_costs_one_list_steps_request_per_poll() {
    use SdkState::*;
    let list = mock!(Client::list_steps)
        .match_requests(|req| req.cluster_id() == Some("j-CLUSTER") && req.step_ids() == &ids()[..])
        .sequence()
        .output(|| page([Pending, Pending, Pending, Pending, Pending]))
        .output(|| page([Running, Running, Pending, Pending, Pending]))
        .output(|| page([Completed, Completed, Running, Running, Pending]))
        .output(|| page([Completed, Completed, Completed, Failed, Cancelled]))
        .build();
    let describe = mock!(Client::describe_step)
        .then_output(|| aws_sdk_emr::operation::describe_step::DescribeStepOutput::builder().build());
    let runner = EmrRunner::attach(client(&[&list, &describe]), "j-CLUSTER");
    let clock = FakeClock::new();
    let done = wait_for_steps(&runner, &ids(), &clock, &options(), &Quiet).await.unwrap();
    assert_eq!(list.num_calls(), 4, "four polls, one request each");
    assert_eq!(describe.num_calls(), 0, "never one request per step");
    assert_eq!(
        done.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StepState::Completed, StepState::Completed, StepState::Completed, StepState::Failed, StepState::Cancelled]
    );
    assert_eq!(clock.sleeps().len(), 3);
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_and_access_denied_is_not() {
    use SdkState::*;
    let list = mock!(Client::list_steps)
        .sequence()
        .http_status(400, Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()))
        .http_status(503, Some("Service Unavailable".into()))
        .output(|| page([Completed, Completed, Completed, Completed, Completed]))
        .build();
    let runner = EmrRunner::attach(client(&[&list]), "j-CLUSTER");
    let clock = FakeClock::new();
    let done = wait_for_steps(&runner, &ids(), &clock, &options(), &Quiet).await.unwrap();
    assert_eq!(done.len(), 5);
    assert_eq!(list.num_calls(), 3);
    assert_eq!(clock.sleeps().len(), 2, "two backoff waits");

    let denied = mock!(Client::list_steps)
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticmapreduce:ListSteps"}"#,
                ),
            )
        });
    let runner = EmrRunner::attach(client(&[&denied]), "j-CLUSTER");
    let clock = FakeClock::new();
    let err = wait_for_steps(&runner, &ids(), &clock, &options(), &Quiet).await.unwrap_err();
    assert_eq!(denied.num_calls(), 1, "a permanent error is not retried");
    assert!(clock.sleeps().is_empty());
    let PollError::Runner(RunnerError::Aws { code, transient, .. }) = &err else { panic!("{err}") };
    assert_eq!(code.as_deref(), Some("AccessDeniedException"));
    assert!(!transient);
    assert_eq!(err.exit_code(), ExitCode::Aws);
    let message = err.to_string();
    assert!(message.contains("is not authorized"), "the AWS message: {message}");
    assert!(message.contains("needs elasticmapreduce:ListSteps"), "a hint: {message}");
}

fn cancel_rule(cluster: &'static str) -> Rule {
    mock!(Client::cancel_steps)
        .match_requests(|req| {
            req.cluster_id() == Some(cluster)
                && req.step_cancellation_option() == Some(&StepCancellationOption::SendInterrupt)
        })
        .then_compute_output(|req| {
            req.step_ids()
                .iter()
                .fold(CancelStepsOutput::builder(), |b, id| {
                    b.cancel_steps_info_list(
                        CancelStepsInfo::builder().step_id(id).status(CancelStepsRequestStatus::Submitted).build(),
                    )
                })
                .build()
        })
}

fn live_then_cancelled() -> Rule {
    use SdkState::*;
    mock!(Client::list_steps)
        .sequence()
        .output(|| page([Completed, Running, Pending, Pending, Pending]))
        .output(|| page([Completed, Running, Pending, Pending, Pending]))
        .output(|| page([Completed, Cancelled, Cancelled, Cancelled, Cancelled]))
        .repeatedly()
        .build()
}

#[tokio::test]
async fn a_cancel_sends_cancel_steps_with_interrupt_for_the_live_steps_and_never_terminates_an_attached_cluster() {
    let list = live_then_cancelled();
    let cancel = cancel_rule("j-CLUSTER");
    let terminate = mock!(Client::terminate_job_flows).then_output(|| TerminateJobFlowsOutput::builder().build());
    let runner = EmrRunner::attach(client(&[&list, &cancel, &terminate]), "j-CLUSTER");
    let report = cancel_run(&runner, &ids(), &FakeClock::new()).await.unwrap();
    assert_eq!(cancel.num_calls(), 1);
    assert_eq!(report.cancelled.iter().map(|c| c.step_id.as_str()).collect::<Vec<_>>(), ["s-2", "s-3", "s-4", "s-5"]);
    assert!(report.cancelled.iter().all(|c| c.accepted));
    assert_eq!(report.termination, Termination::LeftRunning);
    assert_eq!(terminate.num_calls(), 0, "a cluster the run did not create is never terminated");
}

#[tokio::test]
async fn a_signal_on_a_cluster_this_run_created_cancels_then_terminates_it() {
    let list = live_then_cancelled();
    let cancel = cancel_rule("j-CREATED");
    let terminate = mock!(Client::terminate_job_flows)
        .match_requests(|req| req.job_flow_ids() == ["j-CREATED"])
        .then_output(|| TerminateJobFlowsOutput::builder().build());
    let created =
        CreatedCluster::from_run_job_flow(&RunJobFlowOutput::builder().job_flow_id("j-CREATED").build()).unwrap();
    let runner = EmrRunner::created_by_this_run(client(&[&list, &cancel, &terminate]), created);
    let clock = FakeClock::new();
    // The "signal" arrives once the first poll has been seen.
    let outcome = wait_or_cancel(
        &runner,
        &ids(),
        &clock,
        &options(),
        &Quiet,
        async { "SIGTERM".to_string() },
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    let RunOutcome::Cancelled { signal, steps, report } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(signal, "SIGTERM");
    assert_eq!(cancel.num_calls(), 1);
    assert_eq!(terminate.num_calls(), 1, "TerminateJobFlows for the cluster this run created");
    assert_eq!(report.termination, Termination::Terminated);
    assert_eq!(steps[1].state, StepState::Cancelled);
    assert_eq!(outcome.exit_code(), ExitCode::Cancelled);
}

#[tokio::test]
async fn a_runner_made_without_proof_of_creation_cannot_terminate() {
    let terminate = mock!(Client::terminate_job_flows).then_output(|| TerminateJobFlowsOutput::builder().build());
    let runner: Arc<dyn StepRunner> = Arc::new(EmrRunner::attach(client(&[&terminate]), "j-CREATED"));
    assert_eq!(runner.terminate_if_created().await.unwrap(), Termination::LeftRunning);
    assert_eq!(terminate.num_calls(), 0);
    assert!(CreatedCluster::from_run_job_flow(&RunJobFlowOutput::builder().build()).is_none());
}

#[tokio::test]
async fn cancelling_retries_a_throttled_cancel_steps() {
    let list = live_then_cancelled();
    let cancel = mock!(Client::cancel_steps)
        .sequence()
        .http_status(400, Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()))
        .output(|| {
            ["s-2", "s-3", "s-4", "s-5"]
                .iter()
                .fold(CancelStepsOutput::builder(), |b, id| {
                    b.cancel_steps_info_list(
                        CancelStepsInfo::builder().step_id(*id).status(CancelStepsRequestStatus::Submitted).build(),
                    )
                })
                .build()
        })
        .build();
    let runner = EmrRunner::attach(client(&[&list, &cancel]), "j-CLUSTER");
    let clock = FakeClock::new();
    let report = cancel_run(&runner, &ids(), &clock).await.unwrap();
    assert_eq!(cancel.num_calls(), 2, "throttled once, then sent again");
    assert_eq!(report.cancelled.len(), 4);
    assert_eq!(clock.sleeps().len(), 1);
}
