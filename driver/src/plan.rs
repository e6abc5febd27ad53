//! The resolved plan: configuration, run date, artifacts and inputs resolved once into the
//! single object every command reads. Resolving calls nothing (no AWS, no store): the inputs
//! are found before ([`crate::inputs`]), so `render` and `--dry-run` print exactly what a run
//! would send, its run id included. The plan is never changed once resolved.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cluster::ClusterRequest;
use crate::config::{Config, ConfigError, Overrides, Target, WarehouseKind};
use crate::deploy::{ArtifactSet, DeployError, PlannedArtifact};
use crate::error::{ExitCode, ExitStatus};
use crate::inputs::{BoundInputs, Inputs};
use crate::pipeline::steps::STEPS;
use crate::render::{render_step, RenderError};
use crate::step::StepConfig;
use crate::store::ObjectStore;

/// EMR limits step names to 256 characters.
pub const MAX_STEP_NAME: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("run date `{value}` is not a date; write it as YYYY-MM-DD, e.g. --date 2021-10-31")]
    BadDate { value: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Artifacts(#[from] DeployError),
    #[error("step name `{name}` is {len} characters; EMR allows {MAX_STEP_NAME}: shorten pipeline.name")]
    StepNameTooLong { name: String, len: usize },
    #[error(
        "no step `{key}` in the pipeline; the steps are {}",
        crate::pipeline::steps::keys().collect::<Vec<_>>().join(", ")
    )]
    UnknownStep { key: String },
    #[error(transparent)]
    Serverless(#[from] crate::serverless::ServerlessError),
    #[error("the inputs' folder is not an object URI: {0}; check buckets.raw")]
    Inputs(String),
    #[error(
        "emr.subnet_id is empty, and a cluster the driver creates (target = emr without a cluster id) must land in \
         the private subnets: set it to the Terraform output `emr_subnet_id` (scripts/config-from-terraform.py \
         prints EMR_DRIVER_EMR_SUBNET_ID), or --set emr.subnet_id=subnet-..., or reuse a cluster with --cluster-id"
    )]
    NoSubnet,
    #[error(
        "emr.master_security_group, emr.core_security_group and emr.service_access_security_group go together \
         (EMR needs all three for a cluster in a private subnet); empty: {}; set them to the Terraform outputs \
         emr_master_security_group, emr_core_security_group and emr_service_access_security_group, or leave all \
         three empty", .missing.join(", ")
    )]
    PartialSecurityGroups { missing: Vec<String> },
    #[error(
        "warehouse.kind = redshift but the warehouse URL is empty: set WAREHOUSE_URL (or --warehouse-url, or \
         warehouse.url / EMR_DRIVER_WAREHOUSE_URL) to postgres://<user>@<Terraform output redshift_endpoint>/\
         <Terraform output redshift_database>?sslmode=verify-full; the source database (DATABASE_URL) is never \
         used for Redshift"
    )]
    NoWarehouseUrl,
}

impl ExitStatus for PlanError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PlanError::Config(e) => e.exit_code(),
            PlanError::Render(e) => e.exit_code(),
            PlanError::Artifacts(e) => e.exit_code(),
            _ => ExitCode::BadInput,
        }
    }
}

/// Every URI of the lake layout for one run (docs/architecture.md). Folders have no trailing
/// slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeUris {
    /// The date's folder of vendor inputs in the raw bucket.
    pub incoming: String,
    /// The folder of movie_review's parts (or, put there without `ingest`, one file).
    pub movie_review_input: String,
    /// The folder of log_reviews' parts (or one file).
    pub log_reviews_input: String,
    pub user_purchase_input: String,
    /// The folder of the run's user_purchase export: gzip parts, `_SUCCESS` last.
    pub user_purchase_export: String,
    pub classified_movie_review: String,
    pub review_logs: String,
    pub rejects_movie_review: String,
    pub rejects_log_reviews: String,
    pub rejects_user_purchase: String,
    pub dims_root: String,
    /// Dimension table → this run's snapshot of it (`dims/<dim>/dt=D/run=<run id>`).
    pub dims_snapshots: BTreeMap<String, String>,
    pub load_root: String,
    pub fact_movie_analytics: String,
    pub metrics_root: String,
    /// Job name → its metrics folder.
    pub metrics: BTreeMap<String, String>,
    pub artifacts_root: String,
    pub manifest: String,
    /// The date's pointer to the run whose outputs are published (`_published/dt=D.json`).
    pub published: String,
    pub lock: String,
    pub emr_log_uri: String,
}

impl LakeUris {
    pub fn new(config: &Config, date: &str, run_id: &str) -> Self {
        let raw = &config.buckets.raw;
        let staging = &config.buckets.staging;
        let suffix = &config.pipeline.input_suffix;
        let dt = format!("dt={date}");
        // Staging outputs are run-scoped (`<dataset>/dt=D/run=<run id>`, docs/architecture.md
        // "Lake layout"): another run of the date never writes or replaces them, and the
        // date's pointer (`published`) says which run's folders are the date's data.
        let run = format!("{dt}/run={run_id}");
        let st = |path: &str| format!("s3://{staging}/{path}");
        let metrics_root = st(&format!("_metrics/{run}"));
        let dims_snapshots = crate::db::warehouse::DIMENSIONS
            .iter()
            .map(|d| (d.table.to_string(), st(&format!("dims/{}/{run}", d.table))))
            .collect();
        let metrics = STEPS.iter().map(|s| (s.key.to_string(), format!("{metrics_root}/{}", s.key))).collect();
        LakeUris {
            incoming: format!("s3://{raw}/incoming/{dt}"),
            movie_review_input: format!("s3://{raw}/incoming/{dt}/movie_review"),
            log_reviews_input: format!("s3://{raw}/incoming/{dt}/log_reviews"),
            user_purchase_input: format!("s3://{raw}/incoming/{dt}/user_purchase{suffix}"),
            user_purchase_export: st(&format!("user_purchase/{run}")),
            classified_movie_review: st(&format!("classified_movie_review/{run}")),
            review_logs: st(&format!("review_logs/{run}")),
            rejects_movie_review: st(&format!("rejects/movie_review/{run}")),
            rejects_log_reviews: st(&format!("rejects/log_reviews/{run}")),
            rejects_user_purchase: st(&format!("rejects/user_purchase/{run}")),
            dims_root: st("dims"),
            dims_snapshots,
            load_root: st(&format!("warehouse_load/{run}")),
            fact_movie_analytics: st(&format!("fact_movie_analytics/{run}")),
            metrics_root,
            metrics,
            artifacts_root: format!("s3://{raw}/artifacts"),
            manifest: st(&format!("_runs/{run_id}.json")),
            published: crate::publish::pointer_uri(staging, date).to_string(),
            lock: crate::lock::lock_uri(staging, date).to_string(),
            emr_log_uri: config.emr.log_uri.clone(),
        }
    }
}

/// One rendered pipeline step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    pub key: String,
    pub depends_on: Vec<String>,
    pub config: StepConfig,
}

/// The run's artifacts with their URIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanArtifacts {
    pub pyspark_jobs_zip: PlannedArtifact,
    pub run_job_py: PlannedArtifact,
    pub packages_sh: PlannedArtifact,
}

impl PlanArtifacts {
    pub fn all(&self) -> Vec<PlannedArtifact> {
        vec![self.pyspark_jobs_zip.clone(), self.run_job_py.clone(), self.packages_sh.clone()]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub config: Config,
    pub run_date: NaiveDate,
    /// Of the configuration, the code and (when bound) the inputs.
    pub run_id: String,
    /// The inputs the run reads, or why they are not known yet.
    pub inputs: BoundInputs,
    /// What the artifacts were built from (to resolve the plan again once the inputs are bound).
    pub artifact_set: ArtifactSet,
    pub target: Target,
    pub config_hash: String,
    pub uris: LakeUris,
    pub artifacts: PlanArtifacts,
    /// In DAG order.
    pub steps: Vec<PlannedStep>,
    /// The cluster to reuse (`emr.cluster_id` / `--cluster-id`), if any.
    pub cluster_id: Option<String>,
    /// The cluster to create when the target is EMR and no cluster id is given.
    pub cluster: Option<ClusterRequest>,
    /// The EMR Serverless requests, when that is the target.
    pub serverless: Option<ServerlessPlan>,
}

/// What an EMR Serverless run sends: a `CreateApplication` when no application is configured
/// (and none the driver created earlier exists), and one `StartJobRun` per step, in DAG order
/// (first attempts; a rerun after a failed attempt ends the client token in `-2`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerlessPlan {
    pub application_id: Option<String>,
    pub create_application: Option<crate::serverless::CreateApplicationRequest>,
    pub job_runs: Vec<crate::serverless::StartJobRunRequest>,
}

/// Parses a run date, `YYYY-MM-DD`.
pub fn parse_run_date(value: &str) -> Result<NaiveDate, PlanError> {
    let trimmed = value.trim();
    if trimmed.len() != 10 {
        return Err(PlanError::BadDate { value: value.to_string() });
    }
    NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|_| PlanError::BadDate { value: value.to_string() })
}

/// `<run-date>-<12 hex of sha256(config hash + artifact digests + input digests)>`: the same
/// configuration, code and input parts are the same run (a rerun finds its steps); a vendor
/// file sent again with other content is a new run. Without inputs (not there yet), the run id
/// of the configuration and code alone.
pub fn run_id(run_date: NaiveDate, config_hash: &str, artifacts: &ArtifactSet, inputs: Option<&Inputs>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(config_hash.as_bytes());
    for artifact in artifacts.all() {
        hasher.update(b"\n");
        hasher.update(artifact.name.as_bytes());
        hasher.update(b"=");
        hasher.update(artifact.sha256.as_bytes());
    }
    if let Some(inputs) = inputs {
        hasher.update(b"\ninputs\n");
        hasher.update(inputs.fingerprint().as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    format!("{}-{}", run_date.format("%Y-%m-%d"), &digest[..12])
}

/// A cluster the driver creates lands in the configured (private) subnet, with all three
/// EMR-managed security groups or none.
fn check_cluster_network(config: &Config) -> Result<(), PlanError> {
    let emr = &config.emr;
    if emr.subnet_id.trim().is_empty() {
        return Err(PlanError::NoSubnet);
    }
    let groups = [
        ("emr.master_security_group", &emr.master_security_group),
        ("emr.core_security_group", &emr.core_security_group),
        ("emr.service_access_security_group", &emr.service_access_security_group),
    ];
    let missing: Vec<String> = groups.iter().filter(|(_, v)| v.trim().is_empty()).map(|(k, _)| k.to_string()).collect();
    if !missing.is_empty() && missing.len() < groups.len() {
        return Err(PlanError::PartialSecurityGroups { missing });
    }
    Ok(())
}

/// The warehouse is where the configuration says: Redshift needs its own URL (the COPY role
/// is checked with the configuration).
fn check_warehouse(config: &Config) -> Result<(), PlanError> {
    if config.warehouse.kind == WarehouseKind::Redshift && config.warehouse.url.trim().is_empty() {
        return Err(PlanError::NoWarehouseUrl);
    }
    Ok(())
}

impl Plan {
    /// Applies the flag overrides, validates the date and renders every request for the
    /// `inputs` found (the date's incoming folder, or a local folder's files as they will be
    /// ingested).
    pub fn resolve(
        config: &Config,
        overrides: &Overrides,
        run_date: &str,
        artifacts: &ArtifactSet,
        inputs: &BoundInputs,
    ) -> Result<Plan, PlanError> {
        let config = config.with_overrides(overrides)?;
        let run_date = parse_run_date(run_date)?;
        let config_hash = config.hash();
        let run_id = run_id(run_date, &config_hash, artifacts, inputs.bound());
        let date = run_date.format("%Y-%m-%d").to_string();
        let raw = config.buckets.raw.clone();
        let plan_artifacts = PlanArtifacts {
            pyspark_jobs_zip: PlannedArtifact::new(&artifacts.pyspark_jobs_zip, &raw),
            run_job_py: PlannedArtifact::new(&artifacts.run_job_py, &raw),
            packages_sh: PlannedArtifact::new(&artifacts.packages_sh, &raw),
        };
        let mut uris = LakeUris::new(&config, &date, &run_id);
        if let Some(bound) = inputs.bound() {
            uris.movie_review_input = bound.movie_review.uri.clone();
            uris.log_reviews_input = bound.log_reviews.uri.clone();
            if let Some(purchases) = &bound.user_purchase {
                uris.user_purchase_input = purchases.uri.clone();
            }
        }
        let mut plan = Plan {
            uris,
            inputs: inputs.clone(),
            artifact_set: artifacts.clone(),
            target: config.pipeline.target,
            cluster_id: config.cluster_id().map(str::to_string),
            config,
            run_date,
            run_id,
            config_hash,
            artifacts: plan_artifacts,
            steps: Vec::new(),
            cluster: None,
            serverless: None,
        };
        for spec in STEPS {
            let config = render_step(&spec.template_name(), spec.template, &plan.step_vars(spec.key))?;
            if config.name.chars().count() > MAX_STEP_NAME {
                return Err(PlanError::StepNameTooLong { len: config.name.chars().count(), name: config.name });
            }
            plan.steps.push(PlannedStep {
                key: spec.key.to_string(),
                depends_on: spec.after.iter().map(|d| d.to_string()).collect(),
                config,
            });
        }
        if plan.target == Target::Emr && plan.cluster_id.is_none() {
            check_cluster_network(&plan.config)?;
            plan.cluster = Some(ClusterRequest::render(&plan.cluster_vars())?);
        }
        plan.serverless = plan.serverless_plan()?;
        check_warehouse(&plan.config)?;
        Ok(plan)
    }

    /// The EMR Serverless requests of the rendered steps (when that is the target).
    fn serverless_plan(&self) -> Result<Option<ServerlessPlan>, PlanError> {
        if self.target != Target::EmrServerless {
            return Ok(None);
        }
        let context = crate::serverless::JobRunContext::new(&self.config, &self.run_id, &self.config_hash);
        let job_runs = self
            .steps
            .iter()
            .map(|s| crate::serverless::start_job_run_request(&s.config, &context, 1))
            .collect::<Result<Vec<_>, _>>()?;
        let application_id = self.config.application_id().map(str::to_string);
        let create_application = application_id
            .is_none()
            .then(|| crate::serverless::create_application_request(&self.config, &self.run_id, &self.config_hash));
        Ok(Some(ServerlessPlan { application_id, create_application, job_runs }))
    }

    /// The plan of the same configuration, code and date for `inputs`: what a run resolves
    /// once it has ingested the inputs that were not there when this plan was resolved.
    pub fn for_inputs(&self, inputs: Inputs) -> Result<Plan, PlanError> {
        Plan::resolve(
            &self.config,
            &Overrides::default(),
            &self.date(),
            &self.artifact_set,
            &BoundInputs::Bound(inputs),
        )
    }

    /// The run date as `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        self.run_date.format("%Y-%m-%d").to_string()
    }

    /// The variables every template sees: run id and date, artifacts, URIs, Spark conf and
    /// the `[emr]` section. `submit` renders any template file with these (plus its own).
    pub fn vars(&self) -> Value {
        let spark_conf: Vec<Value> = self.config.spark.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        json!({
            "run_id": self.run_id,
            "run_date": self.date(),
            "config_hash": self.config_hash,
            "pipeline_name": self.config.pipeline.name,
            "action_on_failure": self.config.emr.action_on_failure,
            "buckets": {"raw": self.config.buckets.raw, "staging": self.config.buckets.staging},
            "artifacts": {
                "pyspark_jobs_zip": self.artifacts.pyspark_jobs_zip.uri,
                "run_job_py": self.artifacts.run_job_py.uri,
                "packages_sh": self.artifacts.packages_sh.uri,
            },
            "uris": self.uris,
            "spark_conf": spark_conf,
            "emr": self.config.emr,
        })
    }

    /// [`Plan::vars`] plus `step_name` for the step `key`.
    pub fn step_vars(&self, key: &str) -> Value {
        let mut vars = self.vars();
        vars["step_name"] = Value::String(crate::runner::step_name(&self.run_id, key));
        vars
    }

    /// [`Plan::vars`] plus what the cluster template needs.
    pub fn cluster_vars(&self) -> Value {
        let mut vars = self.vars();
        vars["cluster_name"] = Value::String(format!("{} {}", self.config.pipeline.name, self.run_id));
        vars["idle_timeout_seconds"] = json!(self.config.emr.idle_timeout_minutes * 60);
        vars
    }

    /// The rendered step `key`.
    pub fn step(&self, key: &str) -> Result<&PlannedStep, PlanError> {
        self.steps.iter().find(|s| s.key == key).ok_or_else(|| PlanError::UnknownStep { key: key.to_string() })
    }

    /// The exact requests and resolved URIs, for `render` and `--dry-run`. Holds no secret:
    /// credentials never enter the plan, and an endpoint URL's user info is masked.
    /// `[spark]` settings whose names look secret are masked wherever they appear (the
    /// `--conf` arguments of the steps, the cluster's configurations).
    pub fn to_json(&self) -> Value {
        let mut plan = self.to_json_unmasked();
        let secrets: Vec<&str> = self
            .config
            .spark
            .iter()
            .filter(|(key, value)| crate::config::looks_secret(key) && !value.is_empty())
            .map(|(_, value)| value.as_str())
            .collect();
        mask_values(&mut plan, &secrets);
        plan
    }

    fn to_json_unmasked(&self) -> Value {
        let run_id_of = match &self.inputs {
            BoundInputs::Bound(_) => "configuration, code and inputs".to_string(),
            BoundInputs::NotYet { reason } => format!(
                "configuration and code alone: the inputs are not there yet ({reason}); the run binds them once it \
                 has ingested them, and its run id is then another"
            ),
        };
        let mut doc = json!({
            "run_id": self.run_id,
            "run_id_of": run_id_of,
            "inputs": self.inputs,
            "run_date": self.date(),
            "target": self.target,
            "config_hash": self.config_hash,
            "aws": {
                "region": self.config.aws.region,
                "endpoint_url": self.config.endpoint_url().map(crate::config::mask_user_info),
            },
            "buckets": {"raw": self.config.buckets.raw, "staging": self.config.buckets.staging},
            "uris": self.uris,
            "artifacts": self.artifacts,
            "steps": self.steps,
            "cluster_id": self.cluster_id,
            "cluster_request": self.cluster,
            "warehouse": {
                "kind": self.config.warehouse.kind,
                "schema": self.config.warehouse.schema,
                "url": crate::config::non_empty(&self.config.warehouse.url).map(crate::db::redact_url),
                "redshift_copy_role_arn": crate::config::non_empty(&self.config.warehouse.redshift_copy_role_arn),
            },
        });
        if let Some(serverless) = &self.serverless {
            doc["serverless"] = json!(serverless);
        }
        doc
    }
}

/// Replaces every occurrence of the `secrets` in the strings of `value` with `***`.
fn mask_values(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(text) => {
            for secret in secrets {
                if text.contains(secret) {
                    *text = text.replace(secret, "***");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_values(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_values(v, secrets)),
        _ => {}
    }
}

/// The object store of the target: the lake folder (`local.lake_dir`) for `local`, S3 (over
/// the standard AWS chain and `aws.*` settings) otherwise. Commands take it from their
/// [`crate::backend::Backend`], which also holds the runner and the AWS configuration.
pub async fn open_store(config: &Config) -> Arc<dyn ObjectStore> {
    crate::backend::Backend::for_config(config, Path::new(".")).await.store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dates_are_strict() {
        assert_eq!(parse_run_date("2021-10-31").unwrap(), NaiveDate::from_ymd_opt(2021, 10, 31).unwrap());
        for bad in ["2021-02-30", "2021-1-5", "31/10/2021", "", "2021-10-31T00:00"] {
            assert!(matches!(parse_run_date(bad), Err(PlanError::BadDate { .. })), "{bad}");
        }
    }

    #[test]
    fn endpoint_user_info_is_masked() {
        use crate::config::mask_user_info;
        assert_eq!(mask_user_info("http://user:secret@localhost:5000/"), "http://***@localhost:5000/");
        assert_eq!(mask_user_info("user:secret@host"), "***@host");
        assert_eq!(mask_user_info("http://127.0.0.1:5000/a@b"), "http://127.0.0.1:5000/a@b");
    }
}
