//! Cluster creation against moto's EMR, checked through the real SDK: the request the plan
//! renders becomes a cluster with the bootstrap action, tags and release label, and a rerun
//! finds the cluster its run created.

use crate::support;
use emr_driver::inputs::BoundInputs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use emr_driver::aws::{emr_client, sdk_config, tag_map, AwsSettings};
use emr_driver::cluster::{create_cluster, find_cluster_for_run};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::{Artifact, ArtifactSet};
use emr_driver::plan::Plan;
use support::moto::MotoServer;

/// Keeps the JSON body of every request the EMR client sends.
#[derive(Debug, Clone, Default)]
struct Bodies(Arc<Mutex<Vec<serde_json::Value>>>);

impl Intercept for Bodies {
    fn name(&self) -> &'static str {
        "Bodies"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.request().body().bytes() {
            if let Ok(json) = serde_json::from_slice(bytes) {
                self.0.lock().unwrap().push(json);
            }
        }
        Ok(())
    }
}

fn artifacts() -> ArtifactSet {
    let artifact = |name: &str, digit: char| Artifact {
        name: name.to_string(),
        path: PathBuf::from(name),
        sha256: digit.to_string().repeat(64),
        size: 1,
    };
    ArtifactSet {
        pyspark_jobs_zip: artifact("pyspark_jobs.zip", '1'),
        run_job_py: artifact("run_job.py", '2'),
        packages_sh: artifact("packages.sh", '3'),
    }
}

fn plan_for(endpoint: &str, date: &str) -> Plan {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/pipeline.toml")).unwrap();
    let config = Config::from_toml_str(&file, "pipeline.toml", &HashMap::new(), &Overrides::default()).unwrap();
    let overrides = Overrides::default()
        .set("pipeline.target", "emr")
        .set("aws.endpoint_url", endpoint)
        .set("emr.subnet_id", "subnet-0123456789abcdef0");
    Plan::resolve(&config, &overrides, date, &artifacts(), &BoundInputs::not_yet("not looked for")).unwrap()
}

#[tokio::test]
async fn creates_the_cluster_with_its_bootstrap_action_and_finds_it_again() {
    let moto = MotoServer::start();
    let plan = plan_for(&moto.endpoint, "2021-10-31");
    let request = plan.cluster.as_ref().expect("emr target without a cluster id requests one");
    let sdk = sdk_config(&AwsSettings::from_config(&plan.config)).await;
    let emr = emr_client(&sdk);

    assert_eq!(find_cluster_for_run(&emr, &plan.run_id).await.unwrap(), None);
    let id = create_cluster(&emr, request).await.unwrap().cluster_id().to_string();
    assert!(id.starts_with("j-"), "{id}");

    let cluster = emr.describe_cluster().cluster_id(&id).send().await.unwrap().cluster.unwrap();
    assert_eq!(cluster.name(), Some(format!("movie-analytics {}", plan.run_id).as_str()));
    assert_eq!(cluster.release_label(), Some("emr-7.12.0"));
    assert_eq!(cluster.log_uri(), Some("s3://movie-analytics-dev-raw/emr-logs/"));
    assert_eq!(cluster.step_concurrency_level(), Some(2));
    let tags = tag_map(cluster.tags());
    assert_eq!(tags.get("run-id"), Some(&plan.run_id));
    assert_eq!(tags.get("config-hash"), Some(&plan.config_hash));
    assert_eq!(tags.get("managed-by").map(String::as_str), Some("emr-driver"));
    assert!(cluster.applications().iter().any(|a| a.name() == Some("Spark")));

    let actions = emr.list_bootstrap_actions().cluster_id(&id).send().await.unwrap();
    let paths: Vec<&str> = actions.bootstrap_actions().iter().filter_map(|a| a.script_path()).collect();
    assert_eq!(paths, vec![plan.artifacts.packages_sh.uri.as_str()]);
    assert!(paths[0].ends_with(&format!("/artifacts/{}/packages.sh", "3".repeat(64))));

    // A rerun of the same run finds it; another run does not.
    assert_eq!(find_cluster_for_run(&emr, &plan.run_id).await.unwrap(), Some(id.clone()));
    let other = plan_for(&moto.endpoint, "2021-11-01");
    assert_eq!(find_cluster_for_run(&emr, &other.run_id).await.unwrap(), None);

    // A terminated cluster is not reused.
    emr.terminate_job_flows().job_flow_ids(&id).send().await.unwrap();
    assert_eq!(find_cluster_for_run(&emr, &plan.run_id).await.unwrap(), None);
}

#[tokio::test]
async fn a_cluster_with_the_run_id_in_its_name_but_not_our_tags_is_not_ours() {
    let moto = MotoServer::start();
    let plan = plan_for(&moto.endpoint, "2021-10-31");
    let sdk = sdk_config(&AwsSettings::from_config(&plan.config)).await;
    let emr = emr_client(&sdk);
    let mut foreign = plan.cluster.clone().unwrap();
    foreign.tags.retain(|t| t.key != "managed-by");
    create_cluster(&emr, &foreign).await.unwrap();
    assert_eq!(find_cluster_for_run(&emr, &plan.run_id).await.unwrap(), None);
}

#[tokio::test]
async fn the_sdk_request_carries_every_field_of_the_rendered_one() {
    // moto ignores some fields (AutoTerminationPolicy), so compare what goes on the wire:
    // EMR speaks JSON, in the same shape as the rendered request.
    let moto = MotoServer::start();
    let plan = plan_for(&moto.endpoint, "2021-10-31");
    let sdk = sdk_config(&AwsSettings::from_config(&plan.config)).await;
    let bodies = Bodies::default();
    let emr =
        aws_sdk_emr::Client::from_conf(aws_sdk_emr::config::Builder::from(&sdk).interceptor(bodies.clone()).build());
    let request = plan.cluster.as_ref().unwrap();
    create_cluster(&emr, request).await.unwrap();
    let sent = bodies.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent, serde_json::to_value(request).unwrap());
    assert_eq!(sent["AutoTerminationPolicy"]["IdleTimeout"], 1800);
    assert_eq!(sent["Instances"]["Ec2SubnetId"], "subnet-0123456789abcdef0");
}

#[tokio::test]
async fn no_credentials_says_how_to_get_some() {
    let moto = MotoServer::start();
    // An EMR client with no credentials provider, as when no profile, variable or role is found.
    let conf = aws_sdk_emr::Config::builder()
        .behavior_version(aws_sdk_emr::config::BehaviorVersion::latest())
        .region(aws_sdk_emr::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .build();
    let err = find_cluster_for_run(&aws_sdk_emr::Client::from_conf(conf), "2021-10-31-abc").await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let message = err.to_string();
    assert!(message.contains("ListClusters") && message.contains("aws sso login"), "{message}");
    assert_eq!(emr_driver::error::ExitStatus::exit_code(&err), emr_driver::error::ExitCode::Aws);
}
