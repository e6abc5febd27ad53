//! Waiting for the cluster: the EMR runner reads `DescribeCluster` (and, after a bootstrap
//! failure, `ListBootstrapActions`) through the real SDK with aws-smithy-mocks, because moto's
//! clusters are WAITING at once and never fail; the wait itself runs on a fake clock.

use std::time::Duration;

use aws_sdk_emr::config::retry::RetryConfig;
use aws_sdk_emr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_emr::operation::describe_cluster::DescribeClusterOutput;
use aws_sdk_emr::operation::list_bootstrap_actions::ListBootstrapActionsOutput;
use aws_sdk_emr::types::{
    Cluster, ClusterState as SdkState, ClusterStateChangeReason, ClusterStateChangeReasonCode, ClusterStatus, Command,
};
use aws_sdk_emr::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use emr_driver::clock::FakeClock;
use emr_driver::cluster::{wait_until_ready, ClusterState};
use emr_driver::error::ExitCode;
use emr_driver::runner::emr::{CreatedCluster, EmrRunner};
use emr_driver::runner::StepRunner;

const ID: &str = "j-2AXXXXXXGAPLF";
const INTERVAL: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(45 * 60);

fn client(rules: &[&Rule]) -> Client {
    let interceptor =
        rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r));
    let conf = aws_sdk_emr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn described(state: SdkState, reason: Option<(ClusterStateChangeReasonCode, &str)>) -> DescribeClusterOutput {
    let mut status = ClusterStatus::builder().state(state);
    if let Some((code, message)) = reason {
        status = status.state_change_reason(ClusterStateChangeReason::builder().code(code).message(message).build());
    }
    DescribeClusterOutput::builder()
        .cluster(
            Cluster::builder()
                .id(ID)
                .name("movie-analytics 2021-10-31-abc")
                .log_uri("s3://movie-analytics-dev-raw/emr-logs/")
                .status(status.build())
                .build(),
        )
        .build()
}

fn runner(rules: &[&Rule]) -> EmrRunner {
    EmrRunner::created_by_this_run(client(rules), CreatedCluster::adopted_from_earlier_attempt(ID))
}

#[tokio::test]
async fn a_cluster_that_starts_is_waited_for_then_used() {
    let describe = mock!(Client::describe_cluster)
        .match_requests(|req| req.cluster_id() == Some(ID))
        .sequence()
        .output(|| described(SdkState::Starting, None))
        .output(|| described(SdkState::Bootstrapping, None))
        .output(|| described(SdkState::Waiting, None))
        .build();
    let runner = runner(&[&describe]);
    let clock = FakeClock::new();
    let status = wait_until_ready(&runner, &clock, INTERVAL, TIMEOUT).await.unwrap().unwrap();
    assert_eq!(status.state, ClusterState::Waiting);
    assert_eq!(describe.num_calls(), 3);
    assert_eq!(clock.sleeps(), vec![INTERVAL, INTERVAL]);
}

#[tokio::test]
async fn a_bootstrap_failure_names_the_action_and_its_logs_with_its_own_exit_code() {
    let message = "On the master instance (i-0a1b2c3d4e5f67890), bootstrap action 1 returned a non-zero return code";
    let describe = mock!(Client::describe_cluster)
        .sequence()
        .output(|| described(SdkState::Bootstrapping, None))
        .output(move || {
            described(SdkState::TerminatedWithErrors, Some((ClusterStateChangeReasonCode::BootstrapFailure, message)))
        })
        .build();
    let actions =
        mock!(Client::list_bootstrap_actions).match_requests(|req| req.cluster_id() == Some(ID)).then_output(|| {
            ListBootstrapActionsOutput::builder()
                .bootstrap_actions(
                    Command::builder()
                        .name("packages")
                        .script_path("s3://movie-analytics-dev-raw/artifacts/abc/packages.sh")
                        .build(),
                )
                .build()
        });
    let runner = runner(&[&describe, &actions]);
    let clock = FakeClock::new();
    let err = wait_until_ready(&runner, &clock, INTERVAL, TIMEOUT).await.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::ClusterFailed);
    assert_eq!(ExitCode::ClusterFailed.code(), 10);
    let text = err.to_string();
    for part in [
        ID,
        "TERMINATED_WITH_ERRORS",
        "BOOTSTRAP_FAILURE",
        message,
        "bootstrap action 1 `packages`",
        "s3://movie-analytics-dev-raw/artifacts/abc/packages.sh",
        "s3://movie-analytics-dev-raw/emr-logs/j-2AXXXXXXGAPLF/node/i-0a1b2c3d4e5f67890/bootstrap-actions/1/",
    ] {
        assert!(text.contains(part), "missing {part:?} in: {text}");
    }
    assert_eq!(actions.num_calls(), 1);
    assert_eq!(clock.sleeps(), vec![INTERVAL]);
}

#[tokio::test]
async fn a_validation_error_is_reported_with_its_reason_and_no_bootstrap_lookup() {
    let describe = mock!(Client::describe_cluster).then_output(|| {
        described(
            SdkState::TerminatedWithErrors,
            Some((
                ClusterStateChangeReasonCode::ValidationError,
                "Service role arn:aws:iam::111122223333:role/x has insufficient EC2 permissions",
            )),
        )
    });
    let actions = mock!(Client::list_bootstrap_actions).then_output(|| ListBootstrapActionsOutput::builder().build());
    let runner = runner(&[&describe, &actions]);
    let err = wait_until_ready(&runner, &FakeClock::new(), INTERVAL, TIMEOUT).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("VALIDATION_ERROR: Service role") && text.contains("for-use-with-amazon-emr-managed-policies"),
        "{text}"
    );
    assert_eq!(actions.num_calls(), 0);
    assert_eq!(err.exit_code(), ExitCode::ClusterFailed);
}

#[tokio::test]
async fn a_cluster_that_never_gets_ready_fails_at_the_timeout() {
    let describe = mock!(Client::describe_cluster).then_output(|| described(SdkState::Starting, None));
    let runner = runner(&[&describe]);
    let clock = FakeClock::new();
    let timeout = Duration::from_secs(60);
    let err = wait_until_ready(&runner, &clock, INTERVAL, timeout).await.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::ClusterFailed);
    assert!(err.to_string().contains("still STARTING after 1m"), "{err}");
    assert_eq!(clock.slept(), timeout, "it waits exactly up to the timeout");
    assert_eq!(describe.num_calls(), 5);
}

#[tokio::test]
async fn throttling_is_waited_out_and_access_denied_is_not() {
    let describe = mock!(Client::describe_cluster)
        .sequence()
        .http_status(400, Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()))
        .output(|| described(SdkState::Running, None))
        .build();
    let runner = runner(&[&describe]);
    let status = wait_until_ready(&runner, &FakeClock::new(), INTERVAL, TIMEOUT).await.unwrap().unwrap();
    assert_eq!(status.state, ClusterState::Running);

    let denied = mock!(Client::describe_cluster).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AccessDeniedException","message":"not authorized to perform: elasticmapreduce:DescribeCluster"}"#,
            ),
        )
    });
    let runner = self::runner(&[&denied]);
    let err = wait_until_ready(&runner, &FakeClock::new(), INTERVAL, TIMEOUT).await.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Aws);
    assert!(err.to_string().contains("elasticmapreduce:DescribeCluster"), "{err}");
    assert_eq!(denied.num_calls(), 1);
}

#[tokio::test]
async fn a_cluster_that_ended_under_the_run_is_reported_by_the_runner() {
    // What the pipeline reads when steps come back CANCELLED without a signal.
    let describe = mock!(Client::describe_cluster).then_output(|| {
        described(
            SdkState::TerminatedWithErrors,
            Some((ClusterStateChangeReasonCode::InstanceFailure, "Instance group ig-1 failed")),
        )
    });
    let runner = runner(&[&describe]);
    let status = runner.cluster_status().await.unwrap().unwrap();
    assert!(status.state.is_ending());
    assert_eq!(status.reason_code.as_deref(), Some("INSTANCE_FAILURE"));
    assert!(status.explain().contains("Instance group ig-1 failed"));
    assert!(status.bootstrap_failure().is_none());
}
