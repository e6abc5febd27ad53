//! The two backends, chosen once at the edge: the step runner (and cluster) for a plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::cluster::{create_cluster, find_cluster_for_run};
use crate::config::Config;
use crate::error::Result;
use crate::manifest::ClusterRef;
use crate::pipeline::{ProvidedRunner, RunnerProvider};
use crate::plan::Plan;
use crate::runner::emr::{CreatedCluster, EmrRunner};
use crate::runner::local::{LocalRunner, LocalRunnerOptions};
use crate::store::local::LocalStore;
use crate::store::ObjectUri;

/// The local runner's options from the configuration: the lake folder, the pinned
/// spark-submit (a relative path is taken from the project root), logs under
/// `<emr.log_uri>local/` in the lake.
pub fn local_runner_options(config: &Config, project_root: &Path) -> Result<LocalRunnerOptions> {
    let spark_submit = PathBuf::from(&config.local.spark_submit);
    let spark_submit = if spark_submit.is_relative() && spark_submit.components().count() > 1 {
        project_root.join(spark_submit)
    } else {
        spark_submit
    };
    let log_uri = ObjectUri::parse(&config.emr.log_uri)?;
    Ok(LocalRunnerOptions {
        lake: LocalStore::new(&config.local.lake_dir),
        spark_submit,
        master: config.local.master.clone(),
        driver_memory: config.local.driver_memory.clone(),
        concurrency: config.emr.step_concurrency.max(1) as usize,
        log_prefix: log_uri.join("local/"),
        kill_grace: Duration::from_secs(10),
    })
}

/// Steps on a local Spark, in this process.
pub struct LocalProvider {
    pub options: LocalRunnerOptions,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl RunnerProvider for LocalProvider {
    async fn provide(&self, _plan: &Plan) -> Result<ProvidedRunner> {
        Ok(ProvidedRunner {
            runner: Arc::new(LocalRunner::new(self.options.clone(), Arc::clone(&self.clock))),
            kind: "local-spark",
            cluster: None,
        })
    }
}

/// Steps on EMR: the cluster given (`--cluster-id`), else the one an earlier attempt of this
/// run created, else a new one (with the plan's auto-termination policy and tags).
pub struct EmrProvider {
    pub client: aws_sdk_emr::Client,
}

#[async_trait]
impl RunnerProvider for EmrProvider {
    async fn provide(&self, plan: &Plan) -> Result<ProvidedRunner> {
        let log_uri = ObjectUri::parse(&plan.config.emr.log_uri).ok();
        let (runner, cluster) = if let Some(id) = &plan.cluster_id {
            (EmrRunner::attach(self.client.clone(), id.clone()), ClusterRef { id: id.clone(), created_by_run: false })
        } else if let Some(id) = find_cluster_for_run(&self.client, &plan.run_id).await? {
            tracing::info!("reusing cluster {id}, created by an earlier attempt of run {}", plan.run_id);
            let created = CreatedCluster::adopted_from_earlier_attempt(id.clone());
            (EmrRunner::created_by_this_run(self.client.clone(), created), ClusterRef { id, created_by_run: true })
        } else {
            let request = plan.cluster.as_ref().expect("an EMR plan without a cluster id has a cluster request");
            let created = create_cluster(&self.client, request).await?;
            let id = created.cluster_id().to_string();
            tracing::info!(
                "created cluster {id} (terminates itself after {} idle minutes)",
                plan.config.emr.idle_timeout_minutes
            );
            (EmrRunner::created_by_this_run(self.client.clone(), created), ClusterRef { id, created_by_run: true })
        };
        Ok(ProvidedRunner { runner: Arc::new(runner.with_log_uri(log_uri)), kind: "emr", cluster: Some(cluster) })
    }
}
