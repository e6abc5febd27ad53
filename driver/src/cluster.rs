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
/// The project tag: the driver's IAM policy (terraform/modules/eks, `CreateTaggedClusters`)
/// allows `RunJobFlow` only with it, and every later call only on clusters carrying it.
pub const TAG_PROJECT: &str = "project";
/// `AmazonEMRServicePolicy_v2` lets EMR launch instances only for clusters with this tag.
pub const TAG_MANAGED_POLICIES: &str = "for-use-with-amazon-emr-managed-policies";

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr_managed_master_security_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr_managed_slave_security_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_access_security_group: Option<String>,
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
        .set_emr_managed_master_security_group(req.instances.emr_managed_master_security_group.clone())
        .set_emr_managed_slave_security_group(req.instances.emr_managed_slave_security_group.clone())
        .set_service_access_security_group(req.instances.service_access_security_group.clone())
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

// --- the cluster's state ------------------------------------------------------------------

/// EMR cluster states (`ClusterState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterState {
    Starting,
    Bootstrapping,
    Running,
    Waiting,
    Terminating,
    Terminated,
    TerminatedWithErrors,
}

impl ClusterState {
    /// From EMR's name of the state; `None` for a state this driver does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "STARTING" => ClusterState::Starting,
            "BOOTSTRAPPING" => ClusterState::Bootstrapping,
            "RUNNING" => ClusterState::Running,
            "WAITING" => ClusterState::Waiting,
            "TERMINATING" => ClusterState::Terminating,
            "TERMINATED" => ClusterState::Terminated,
            "TERMINATED_WITH_ERRORS" => ClusterState::TerminatedWithErrors,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Starting => "STARTING",
            ClusterState::Bootstrapping => "BOOTSTRAPPING",
            ClusterState::Running => "RUNNING",
            ClusterState::Waiting => "WAITING",
            ClusterState::Terminating => "TERMINATING",
            ClusterState::Terminated => "TERMINATED",
            ClusterState::TerminatedWithErrors => "TERMINATED_WITH_ERRORS",
        }
    }

    /// Steps can run: WAITING or RUNNING.
    pub fn is_ready(self) -> bool {
        matches!(self, ClusterState::Waiting | ClusterState::Running)
    }

    /// The cluster is going or gone: it will never run a step again.
    pub fn is_ending(self) -> bool {
        matches!(self, ClusterState::Terminating | ClusterState::Terminated | ClusterState::TerminatedWithErrors)
    }
}

/// One bootstrap action of the cluster, as `ListBootstrapActions` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapActionInfo {
    pub name: String,
    pub path: String,
}

/// What `DescribeCluster` (and, after a bootstrap failure, `ListBootstrapActions`) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub id: String,
    pub state: ClusterState,
    /// `StateChangeReason.Code`: BOOTSTRAP_FAILURE, VALIDATION_ERROR, INSTANCE_FAILURE...
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    /// The cluster's `LogUri`.
    pub log_uri: Option<String>,
    /// Filled in only when the cluster ended with BOOTSTRAP_FAILURE.
    pub bootstrap_actions: Vec<BootstrapActionInfo>,
}

/// The bootstrap action a BOOTSTRAP_FAILURE names, and where its logs are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapFailure {
    /// 1-based, as EMR numbers them in the message and in the log folders.
    pub number: usize,
    pub name: Option<String>,
    pub path: Option<String>,
    pub instance_id: Option<String>,
    /// `<LogUri><cluster>/node/<instance>/bootstrap-actions/<n>/` (stderr.gz, stdout.gz).
    pub log_uri: Option<String>,
}

impl ClusterStatus {
    /// The failing bootstrap action, read from EMR's message ("On the master instance
    /// (i-0123...), bootstrap action 1 returned a non-zero return code").
    pub fn bootstrap_failure(&self) -> Option<BootstrapFailure> {
        if self.reason_code.as_deref() != Some("BOOTSTRAP_FAILURE") {
            return None;
        }
        let message = self.reason_message.as_deref().unwrap_or("");
        let number = regex::Regex::new(r"(?i)bootstrap action (\d+)")
            .expect("valid")
            .captures(message)
            .and_then(|c| c[1].parse::<usize>().ok())
            .unwrap_or(1);
        let instance_id =
            regex::Regex::new(r"\b(i-[0-9a-f]{8,17})\b").expect("valid").captures(message).map(|c| c[1].to_string());
        let action = self.bootstrap_actions.get(number.saturating_sub(1));
        let log_uri = match (&self.log_uri, &instance_id) {
            (Some(root), Some(instance)) => {
                Some(format!("{}/{}/node/{instance}/bootstrap-actions/{number}/", root.trim_end_matches('/'), self.id))
            }
            _ => None,
        };
        Some(BootstrapFailure {
            number,
            name: action.map(|a| a.name.clone()),
            path: action.map(|a| a.path.clone()),
            instance_id,
            log_uri,
        })
    }

    /// "TERMINATED_WITH_ERRORS (BOOTSTRAP_FAILURE: ...)", plus the bootstrap action and its logs.
    pub fn explain(&self) -> String {
        let mut text = self.state.as_str().to_string();
        match (&self.reason_code, &self.reason_message) {
            (Some(code), Some(message)) => text.push_str(&format!(" ({code}: {message})")),
            (Some(code), None) => text.push_str(&format!(" ({code})")),
            (None, Some(message)) => text.push_str(&format!(" ({message})")),
            (None, None) => {}
        }
        if let Some(failure) = self.bootstrap_failure() {
            text.push_str(&format!(
                "; bootstrap action {} `{}` ({})",
                failure.number,
                failure.name.as_deref().unwrap_or("?"),
                failure.path.as_deref().unwrap_or("path unknown")
            ));
            match &failure.log_uri {
                Some(uri) => text.push_str(&format!(", its logs: {uri}")),
                None => text.push_str(&format!(
                    ", its logs: under {}{}/node/<instance>/bootstrap-actions/{}/",
                    self.log_uri.as_deref().unwrap_or("<LogUri>"),
                    self.id,
                    failure.number
                )),
            }
        }
        text
    }

    /// What to do about it, from the reason code.
    pub fn hint(&self) -> &'static str {
        match self.reason_code.as_deref() {
            Some("BOOTSTRAP_FAILURE") => {
                "read the bootstrap action's stderr.gz there (bootstrap/packages.sh: a package that did not \
                 install, or no route to PyPI from the private subnet: check the NAT gateway)"
            }
            Some("VALIDATION_ERROR") => {
                "the request was refused by EMR: check the roles, the subnet, the security groups and the \
                 for-use-with-amazon-emr-managed-policies tags (docs/deploy-aws.md)"
            }
            Some("INSTANCE_FAILURE") | Some("INSTANCE_FLEET_TIMEOUT") => {
                "EC2 could not give the instances: try another instance type or subnet, or check the EC2 quotas"
            }
            Some("INTERNAL_ERROR") => "EMR had an internal error: run again",
            _ => "see the cluster in the EMR console and its logs under emr.log_uri",
        }
    }
}

/// Why the cluster cannot run the run's steps.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {}: {}; {}", .status.id, .status.explain(), .status.hint())]
    Ended { status: ClusterStatus },
    #[error(
        "cluster {} is still {} after {}{}; it never became WAITING or RUNNING: raise \
         emr.cluster_start_timeout_minutes or see the cluster in the EMR console",
        .status.id, .status.state.as_str(), humantime::format_duration(*.waited),
        .status.reason_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    NeverReady { status: ClusterStatus, waited: std::time::Duration },
}

impl crate::error::ExitStatus for ClusterError {
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::ClusterFailed
    }
}

/// Polls the runner's cluster (every `interval`) until it is WAITING or RUNNING. A cluster
/// that is terminating or terminated fails at once with its `StateChangeReason`; one that is
/// not ready after `timeout` fails too. Transient AWS errors are waited out (up to the timeout);
/// permanent ones fail. A runner without a cluster (local Spark) returns `Ok(None)` at once.
pub async fn wait_until_ready(
    runner: &dyn crate::runner::StepRunner,
    clock: &dyn crate::clock::Clock,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) -> crate::error::Result<Option<ClusterStatus>> {
    let started = clock.monotonic();
    let mut last: Option<ClusterStatus> = None;
    loop {
        match runner.cluster_status().await {
            Ok(None) => return Ok(None),
            Ok(Some(status)) if status.state.is_ready() => return Ok(Some(status)),
            Ok(Some(status)) if status.state.is_ending() => return Err(ClusterError::Ended { status }.into()),
            Ok(Some(status)) => last = Some(status),
            Err(e) if e.is_transient() => tracing::warn!("reading the cluster's state: {e}"),
            Err(e) => return Err(e.into()),
        }
        let waited = clock.monotonic().saturating_sub(started);
        if waited >= timeout {
            let status = last.unwrap_or_else(|| ClusterStatus {
                id: runner.describe(),
                state: ClusterState::Starting,
                reason_code: None,
                reason_message: Some("its state could not be read".into()),
                log_uri: None,
                bootstrap_actions: Vec::new(),
            });
            return Err(ClusterError::NeverReady { status, waited }.into());
        }
        clock.sleep(interval.min(timeout - waited)).await;
    }
}
