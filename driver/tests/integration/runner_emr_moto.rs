//! The EMR runner through the real SDK against a moto server: step submission, listing (one
//! request per poll), the log URI, and termination only of a cluster the run created.
//! (moto never moves steps past RUNNING and does not implement CancelSteps: those paths are
//! covered in runner_emr_http.rs.)

use crate::support;

use aws_sdk_emr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_emr::types::{ClusterState, JobFlowInstancesConfig};
use aws_sdk_emr::Client;
use emr_driver::runner::emr::{CreatedCluster, EmrRunner};
use emr_driver::runner::{find_steps_by_name, step_name, ExistingStep, StepRunner, Termination};
use emr_driver::step::{ActionOnFailure, HadoopJarStep, StepConfig, StepState};
use support::moto::MotoServer;
use support::requests::RequestLog;

fn client(moto: &MotoServer, log: &RequestLog) -> Client {
    let conf = aws_sdk_emr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .interceptor(log.clone())
        .build();
    Client::from_conf(conf)
}

async fn create_cluster(client: &Client) -> aws_sdk_emr::operation::run_job_flow::RunJobFlowOutput {
    client
        .run_job_flow()
        .name("movie-analytics-test")
        .release_label("emr-7.12.0")
        .log_uri("s3://movie-analytics-dev-raw/emr-logs/")
        .service_role("movie-analytics-dev-emr-service")
        .job_flow_role("movie-analytics-dev-emr-instance")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_count(3)
                .master_instance_type("m6g.xlarge")
                .slave_instance_type("m6g.xlarge")
                .keep_job_flow_alive_when_no_steps(true)
                .build(),
        )
        .send()
        .await
        .expect("moto creates the cluster")
}

fn step(run_id: &str, key: &str) -> StepConfig {
    StepConfig {
        name: step_name(run_id, key),
        action_on_failure: ActionOnFailure::CancelAndWait,
        hadoop_jar_step: HadoopJarStep {
            jar: "command-runner.jar".into(),
            args: vec![
                "spark-submit".into(),
                "--deploy-mode".into(),
                "cluster".into(),
                "s3://movie-analytics-dev-raw/artifacts/abc/run_job.py".into(),
                key.into(),
            ],
            main_class: None,
        },
    }
}

async fn cluster_state(client: &Client, id: &str) -> ClusterState {
    let out = client.describe_cluster().cluster_id(id).send().await.unwrap();
    out.cluster().unwrap().status().unwrap().state().unwrap().clone()
}

#[tokio::test]
async fn submits_lists_with_one_request_and_terminates_only_what_it_created() {
    let moto = MotoServer::start();
    let log = RequestLog::operations();
    let client = client(&moto, &log);
    let created = create_cluster(&client).await;
    let other = create_cluster(&client).await;
    log.take();

    // A cluster the run created: submit five steps.
    let proof = CreatedCluster::from_run_job_flow(&created).unwrap();
    let cluster_id = proof.cluster_id().to_string();
    let runner = EmrRunner::created_by_this_run(client.clone(), proof);
    let keys = ["classify_reviews", "parse_logs", "build_dimensions", "build_fact", "export"];
    let steps: Vec<StepConfig> = keys.iter().map(|k| step("2021-10-31-abc", k)).collect();
    let ids = runner.submit(&steps).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|id| id.starts_with("s-")), "{ids:?}");
    assert_eq!(log.take(), vec!["AddJobFlowSteps"], "one request for all the steps");

    let listed = runner.list_steps(&ids).await.unwrap();
    assert_eq!(log.take(), vec!["ListSteps"], "five steps, one request");
    assert_eq!(listed.len(), 5);
    let mut names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| step_name("2021-10-31-abc", k)).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(listed.iter().all(|s| matches!(s.state, StepState::Pending | StepState::Running)));

    // A rerun finds its live steps by name instead of submitting again.
    let all = runner.list_steps(&[]).await.unwrap();
    let found = find_steps_by_name(&all, &expected);
    assert!(found.iter().all(|(_, e)| matches!(e, ExistingStep::Attach { .. })), "{found:?}");

    // The log prefix comes from the cluster's LogUri.
    let log_uri = runner.fetch_log_uri().await.unwrap().unwrap();
    assert_eq!(log_uri.to_string(), "s3://movie-analytics-dev-raw/emr-logs/");
    let runner = runner.with_log_uri(Some(log_uri));
    assert_eq!(
        runner.log_prefix(&ids[0]).unwrap().to_string(),
        format!("s3://movie-analytics-dev-raw/emr-logs/{cluster_id}/steps/{}/", ids[0])
    );
    log.take();

    // Attached to someone else's cluster: never terminated.
    let other_id = other.job_flow_id().unwrap();
    let attached = EmrRunner::attach(client.clone(), other_id);
    assert_eq!(attached.terminate_if_created().await.unwrap(), Termination::LeftRunning);
    assert!(log.take().is_empty(), "no TerminateJobFlows for an attached cluster");
    assert_eq!(cluster_state(&client, other_id).await, ClusterState::Waiting);
    log.take();

    // Created by this run: terminated.
    assert_eq!(runner.terminate_if_created().await.unwrap(), Termination::Terminated);
    assert_eq!(log.take(), vec!["TerminateJobFlows"]);
    assert_eq!(cluster_state(&client, &cluster_id).await, ClusterState::Terminated);
    assert_eq!(cluster_state(&client, other_id).await, ClusterState::Waiting);
}
