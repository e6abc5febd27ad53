//! The EMR cluster the driver creates when no cluster id is given: the `RunJobFlow` request
//! (rendered from `templates/cluster.json.hbs`, same shape as `aws emr create-cluster
//! --cli-input-json`), its mapping onto the SDK, and finding the cluster a run created so a
//! rerun reuses it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{tag_map, AwsError};
use crate::render::{render_json, RenderError, CLUSTER_TEMPLATE, CLUSTER_TEMPLATE_NAME};
use crate::runner::emr::CreatedCluster;

/// Tag keys on clusters the driver creates.
pub const TAG_RUN_ID: &str = "run-id";
pub const TAG_CONFIG_HASH: &str = "config-hash";
pub const TAG_MANAGED_BY: &str = "managed-by";
pub const MANAGED_BY: &str = "emr-driver";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ClusterRequest {
    pub name: String,
    pub release_label: String,
    pub log_uri: String,
    pub applications: Vec<NameOnly>,
    pub instances: Instances,
    pub bootstrap_actions: Vec<BootstrapAction>,
    pub service_role: String,
    pub job_flow_role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_configuration: Option<String>,
    pub auto_termination_policy: AutoTerminationPolicy,
    pub step_concurrency_level: i32,
    pub visible_to_all_users: bool,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NameOnly {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Instances {
    pub instance_groups: Vec<InstanceGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_subnet_id: Option<String>,
    pub keep_job_flow_alive_when_no_steps: bool,
    pub termination_protected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceGroup {
    pub name: String,
    pub instance_role: String,
    pub market: String,
    pub instance_type: String,
    pub instance_count: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BootstrapAction {
    pub name: String,
    pub script_bootstrap_action: ScriptBootstrapAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ScriptBootstrapAction {
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AutoTerminationPolicy {
    /// Seconds of idleness after which the cluster terminates itself.
    pub idle_timeout: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl ClusterRequest {
    /// Renders `templates/cluster.json.hbs` with `vars` (see `Plan::cluster_vars`).
    pub fn render(vars: &Value) -> Result<Self, RenderError> {
        Self::render_template(CLUSTER_TEMPLATE_NAME, CLUSTER_TEMPLATE, vars)
    }

    pub fn render_template(name: &str, template: &str, vars: &Value) -> Result<Self, RenderError> {
        let json = render_json(name, template, vars)?;
        serde_json::from_value(json).map_err(|e| RenderError::Shape {
            name: name.to_string(),
            what: "an EMR RunJobFlow request",
            message: e.to_string(),
        })
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// Creates the cluster; returns its id.
pub async fn create_cluster(emr: &aws_sdk_emr::Client, req: &ClusterRequest) -> Result<CreatedCluster, AwsError> {
    use aws_sdk_emr::types as t;
    let groups = req.instances.instance_groups.iter().map(|g| {
        t::InstanceGroupConfig::builder()
            .name(&g.name)
            .instance_role(t::InstanceRoleType::from(g.instance_role.as_str()))
            .market(t::MarketType::from(g.market.as_str()))
            .instance_type(&g.instance_type)
            .instance_count(g.instance_count)
            .build()
    });
    let instances = t::JobFlowInstancesConfig::builder()
        .set_instance_groups(Some(groups.collect()))
        .set_ec2_subnet_id(req.instances.ec2_subnet_id.clone())
        .keep_job_flow_alive_when_no_steps(req.instances.keep_job_flow_alive_when_no_steps)
        .termination_protected(req.instances.termination_protected)
        .build();
    let bootstrap = req.bootstrap_actions.iter().map(|b| {
        t::BootstrapActionConfig::builder()
            .name(&b.name)
            .script_bootstrap_action(
                t::ScriptBootstrapActionConfig::builder()
                    .path(&b.script_bootstrap_action.path)
                    .set_args(Some(b.script_bootstrap_action.args.clone()))
                    .build(),
            )
            .build()
    });
    let output = emr
        .run_job_flow()
        .name(&req.name)
        .release_label(&req.release_label)
        .log_uri(&req.log_uri)
        .set_applications(Some(
            req.applications.iter().map(|a| t::Application::builder().name(&a.name).build()).collect(),
        ))
        .instances(instances)
        .set_bootstrap_actions(Some(bootstrap.collect()))
        .service_role(&req.service_role)
        .job_flow_role(&req.job_flow_role)
        .set_auto_scaling_role(req.auto_scaling_role.clone())
        .set_security_configuration(req.security_configuration.clone())
        .auto_termination_policy(
            t::AutoTerminationPolicy::builder().idle_timeout(req.auto_termination_policy.idle_timeout).build(),
        )
        .step_concurrency_level(req.step_concurrency_level)
        .visible_to_all_users(req.visible_to_all_users)
        .set_tags(Some(req.tags.iter().map(|tag| t::Tag::builder().key(&tag.key).value(&tag.value).build()).collect()))
        .send()
        .await
        .map_err(|e| AwsError::new("EMR", "RunJobFlow", &e))?;
    Ok(CreatedCluster::from_run_job_flow(&output).expect("RunJobFlow answers with the new cluster's id"))
}

/// The active cluster (starting, bootstrapping, running or waiting) this driver created for
/// `run_id`, if any: one `ListClusters` (paginated) and a `DescribeCluster` per candidate
/// whose name carries the run id.
pub async fn find_cluster_for_run(emr: &aws_sdk_emr::Client, run_id: &str) -> Result<Option<String>, AwsError> {
    use aws_sdk_emr::types::ClusterState;
    let mut pages = emr
        .list_clusters()
        .set_cluster_states(Some(vec![
            ClusterState::Starting,
            ClusterState::Bootstrapping,
            ClusterState::Running,
            ClusterState::Waiting,
        ]))
        .into_paginator()
        .send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new("EMR", "ListClusters", &e))?;
        for summary in page.clusters() {
            // Names are not unique; the tags decide. The name filter saves describe calls.
            if summary.name().is_some_and(|name| name.contains(run_id)) {
                candidates.extend(summary.id().map(str::to_string));
            }
        }
    }
    for id in candidates {
        let described = emr
            .describe_cluster()
            .cluster_id(&id)
            .send()
            .await
            .map_err(|e| AwsError::new("EMR", "DescribeCluster", &e))?;
        let Some(cluster) = described.cluster() else { continue };
        let tags = tag_map(cluster.tags());
        if tags.get(TAG_RUN_ID).map(String::as_str) == Some(run_id)
            && tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
