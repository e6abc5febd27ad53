//! Rendering: snapshots of every template for a fixed config, date and artifact digests, and
//! the properties the snapshots cannot show (JSON safety, strictness, the DAG, the run id).

use emr_driver::inputs::BoundInputs;
use std::collections::HashMap;
use std::path::PathBuf;

use emr_driver::cluster::ClusterRequest;
use emr_driver::config::{Config, Overrides, Target};
use emr_driver::deploy::{Artifact, ArtifactSet};
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::pipeline::steps::STEPS;
use emr_driver::plan::{Plan, PlanError};
use emr_driver::render::{render_step_file, RenderError};

/// A fixed copy of config/pipeline.toml, so that the snapshots change only when rendering
/// does, not when the checked-in defaults are edited.
const FILE: &str = r#"
[pipeline]
name = "movie-analytics"
target = "local"
[buckets]
raw = "movie-analytics-dev-raw"
staging = "movie-analytics-dev-staging"
[aws]
region = "us-east-1"
endpoint_url = ""
profile = ""
[emr]
release_label = "emr-7.12.0"      # ships Spark 3.5.6 and Python 3.9; pyspark is pinned to match
cluster_id = ""
log_uri = "s3://movie-analytics-dev-raw/emr-logs/"
service_role = "movie-analytics-dev-emr-service"
instance_profile = "movie-analytics-dev-emr-instance"
autoscaling_role = ""
subnet_id = ""
security_configuration = "movie-analytics-dev"
master_instance_type = "m6g.xlarge"
core_instance_type = "m6g.xlarge"
core_instance_count = 2
idle_timeout_minutes = 30
step_concurrency = 2
keep_cluster = false
poll_interval_seconds = 15
run_timeout_minutes = 180
[local]
lake_dir = ".lake"
spark_submit = ".venv/bin/spark-submit"
master = "local[2]"
driver_memory = "4g"
[warehouse]
kind = "postgres"
schema = "public"
redshift_copy_role_arn = ""
[spark]
"spark.sql.shuffle.partitions" = "16"
"spark.sql.session.timeZone" = "UTC"
"#;
const DATE: &str = "2021-10-31";

fn config(sets: &[&str]) -> Config {
    let overrides = Overrides::parse_sets(sets).unwrap();
    Config::from_toml_str(FILE, "config/pipeline.toml", &HashMap::new(), &overrides).unwrap()
}

fn artifact(name: &str, digit: char) -> Artifact {
    Artifact {
        name: name.to_string(),
        path: PathBuf::from(format!("/build/{name}")),
        sha256: digit.to_string().repeat(64),
        size: 100,
    }
}

fn artifacts() -> ArtifactSet {
    ArtifactSet {
        pyspark_jobs_zip: artifact("pyspark_jobs.zip", 'a'),
        run_job_py: artifact("run_job.py", 'b'),
        packages_sh: artifact("packages.sh", 'c'),
    }
}

fn emr_plan(sets: &[&str]) -> Plan {
    // A cluster the driver creates needs a subnet; later sets override it.
    let mut all = vec!["pipeline.target=emr", "emr.subnet_id=subnet-0abc"];
    all.extend_from_slice(sets);
    Plan::resolve(
        &config(&[]),
        &Overrides::parse_sets(&all).unwrap(),
        DATE,
        &artifacts(),
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap()
}

#[test]
fn every_step_template_snapshot() {
    let plan = emr_plan(&[]);
    assert_eq!(plan.steps.len(), STEPS.len());
    for step in &plan.steps {
        insta::assert_json_snapshot!(format!("step_{}", step.key), step.config);
    }
}

#[test]
fn cluster_template_snapshot() {
    let plan = emr_plan(&["emr.subnet_id=subnet-0abc", "emr.autoscaling_role=EMR_AutoScaling_DefaultRole"]);
    insta::assert_json_snapshot!("cluster_request", plan.cluster.as_ref().unwrap());
}

#[test]
fn plan_json_snapshot() {
    insta::assert_json_snapshot!("plan", emr_plan(&[]).to_json());
}

#[test]
fn spark_submit_command_line_has_the_documented_shape() {
    let plan = emr_plan(&[]);
    let step = plan.step("parse_logs").unwrap();
    let args = &step.config.hadoop_jar_step.args;
    assert_eq!(step.config.hadoop_jar_step.jar, "command-runner.jar");
    let zip = &plan.artifacts.pyspark_jobs_zip.uri;
    let expected_start = ["spark-submit", "--deploy-mode", "cluster", "--py-files", zip.as_str()];
    assert_eq!(&args[..5], &expected_start);
    let entry = args.iter().position(|a| *a == plan.artifacts.run_job_py.uri).unwrap();
    assert_eq!(&args[entry + 1..entry + 4], &["parse_logs", "--run-date", DATE]);
    // Every --conf of the [spark] table, in key order, before the entry script.
    let confs: Vec<&str> = args[5..entry]
        .chunks(2)
        .map(|c| {
            assert_eq!(c[0], "--conf");
            c[1].as_str()
        })
        .collect();
    assert_eq!(confs, vec!["spark.sql.session.timeZone=UTC", "spark.sql.shuffle.partitions=16"]);
    assert_eq!(
        plan.artifacts.pyspark_jobs_zip.uri,
        format!("s3://movie-analytics-dev-raw/artifacts/{}/pyspark_jobs.zip", "a".repeat(64))
    );
}

#[test]
fn values_render_exactly_and_stay_json_safe() {
    let plan = emr_plan(&[r#"spark.spark.driver.extraJavaOptions=-Da="x y" -Db=c:\d & <e>"#]);
    let args = &plan.step("build_fact").unwrap().config.hadoop_jar_step.args;
    assert!(args.contains(&r#"spark.driver.extraJavaOptions=-Da="x y" -Db=c:\d & <e>"#.to_string()), "{args:?}");
}

#[test]
fn an_empty_spark_table_still_renders_valid_json() {
    let text = FILE.split("[spark]").next().unwrap();
    let config = Config::from_toml_str(text, "t", &HashMap::new(), &Overrides::default()).unwrap();
    assert!(config.spark.is_empty());
    let plan =
        Plan::resolve(&config, &Overrides::default(), DATE, &artifacts(), &BoundInputs::not_yet("not looked for"))
            .unwrap();
    assert!(!plan.step("classify_reviews").unwrap().config.hadoop_jar_step.args.iter().any(|a| a == "--conf"));
}

#[test]
fn steps_carry_the_run_id_and_the_dag() {
    let plan = emr_plan(&[]);
    let keys: Vec<&str> = plan.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, vec!["classify_reviews", "parse_logs", "build_dimensions", "build_fact"]);
    for step in &plan.steps {
        assert_eq!(step.config.name, format!("{} {}", plan.run_id, step.key));
        assert_eq!(serde_json::to_value(step.config.action_on_failure).unwrap(), "CONTINUE");
    }
    assert!(plan.step("classify_reviews").unwrap().depends_on.is_empty());
    assert!(plan.step("parse_logs").unwrap().depends_on.is_empty());
    assert_eq!(plan.step("build_dimensions").unwrap().depends_on, vec!["parse_logs"]);
    assert_eq!(plan.step("build_fact").unwrap().depends_on, vec!["classify_reviews", "parse_logs", "build_dimensions"]);
    assert!(matches!(plan.step("nope"), Err(PlanError::UnknownStep { .. })));
}

#[test]
fn the_run_id_follows_the_config_and_the_code_but_not_the_cluster() {
    let base = emr_plan(&[]);
    assert!(base.run_id.starts_with("2021-10-31-") && base.run_id.len() == "2021-10-31-".len() + 12, "{}", base.run_id);
    assert_eq!(base.run_id, emr_plan(&[]).run_id);
    assert_eq!(base.run_id, emr_plan(&["emr.cluster_id=j-ABCDEF"]).run_id);
    assert_ne!(base.run_id, emr_plan(&["spark.spark.sql.shuffle.partitions=8"]).run_id);
    let mut changed = artifacts();
    changed.run_job_py.sha256 = "d".repeat(64);
    let other = Plan::resolve(
        &config(&["pipeline.target=emr", "emr.subnet_id=subnet-0abc"]),
        &Overrides::default(),
        DATE,
        &changed,
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap();
    assert_ne!(base.run_id, other.run_id);
    assert_eq!(base.uris.manifest, format!("s3://movie-analytics-dev-staging/_runs/{}.json", base.run_id));
}

#[test]
fn a_cluster_is_requested_only_for_emr_without_a_cluster_id() {
    let plan = emr_plan(&[]);
    let cluster = plan.cluster.as_ref().unwrap();
    assert_eq!(cluster.tag("run-id"), Some(plan.run_id.as_str()));
    assert_eq!(cluster.tag("config-hash"), Some(plan.config_hash.as_str()));
    assert_eq!(cluster.tag("managed-by"), Some("emr-driver"));
    // The tags the IAM policies require: AmazonEMRServicePolicy_v2, and the driver's own.
    assert_eq!(cluster.tag("for-use-with-amazon-emr-managed-policies"), Some("true"));
    assert_eq!(cluster.tag("project"), Some("movie-analytics"));
    assert_eq!(cluster.bootstrap_actions[0].script_bootstrap_action.path, plan.artifacts.packages_sh.uri);
    assert_eq!(cluster.auto_termination_policy.idle_timeout, 30 * 60);
    assert_eq!(cluster.instances.ec2_subnet_id.as_deref(), Some("subnet-0abc"));
    assert_eq!(cluster.instances.emr_managed_master_security_group, None);
    assert_eq!(cluster.security_configuration.as_deref(), Some("movie-analytics-dev"));

    let reuse = emr_plan(&["emr.cluster_id=j-ABCDEF"]);
    assert!(reuse.cluster.is_none());
    assert_eq!(reuse.cluster_id.as_deref(), Some("j-ABCDEF"));
    let local =
        Plan::resolve(&config(&[]), &Overrides::default(), DATE, &artifacts(), &BoundInputs::not_yet("not looked for"))
            .unwrap();
    assert_eq!(local.target, Target::Local);
    assert!(local.cluster.is_none());
}

#[test]
fn a_bad_date_is_refused() {
    let err = Plan::resolve(
        &config(&[]),
        &Overrides::default(),
        "2021-13-01",
        &artifacts(),
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn a_template_file_renders_with_the_plan_vars_and_strictly() {
    let plan = emr_plan(&[]);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("adhoc.json.hbs");
    std::fs::write(&good, r#"{"Name": "{{run_id}} adhoc", "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "{{artifacts.run_job_py}}", "{{uris.review_logs}}"]}}"#).unwrap();
    let step = render_step_file(&good, &plan.step_vars("adhoc")).unwrap();
    assert_eq!(
        step.hadoop_jar_step.args[2],
        format!("s3://movie-analytics-dev-staging/review_logs/dt=2021-10-31/run={}", plan.run_id)
    );

    let bad = dir.path().join("bad.json.hbs");
    std::fs::write(
        &bad,
        r#"{"Name": "{{no_such_var}}", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "x"}}"#,
    )
    .unwrap();
    let err = render_step_file(&bad, &plan.vars()).unwrap_err();
    assert!(matches!(err, RenderError::Template { .. }) && err.to_string().contains("no_such_var"), "{err}");
    assert!(matches!(render_step_file(&dir.path().join("missing"), &plan.vars()), Err(RenderError::Read { .. })));
}

#[test]
fn a_cluster_template_with_an_unknown_field_is_refused() {
    let plan = emr_plan(&[]);
    let template = emr_driver::render::CLUSTER_TEMPLATE.replace("\"VisibleToAllUsers\"", "\"VisibleToAll\"");
    let err = ClusterRequest::render_template("cluster", &template, &plan.cluster_vars()).unwrap_err();
    assert!(err.to_string().contains("VisibleToAll"), "{err}");
}

fn resolve(sets: &[&str]) -> Result<Plan, PlanError> {
    Plan::resolve(
        &config(&[]),
        &Overrides::parse_sets(sets).unwrap(),
        DATE,
        &artifacts(),
        &BoundInputs::not_yet("not looked for"),
    )
}

#[test]
fn a_cluster_the_driver_creates_needs_a_subnet() {
    let err = resolve(&["pipeline.target=emr"]).unwrap_err();
    assert!(matches!(err, PlanError::NoSubnet), "{err}");
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    let text = err.to_string();
    assert!(text.contains("emr.subnet_id") && text.contains("`emr_subnet_id`"), "{text}");
    // A blank value is empty too.
    assert!(matches!(resolve(&["pipeline.target=emr", "emr.subnet_id= "]), Err(PlanError::NoSubnet)));
    // Reusing a cluster, or running locally, needs none.
    assert!(resolve(&["pipeline.target=emr", "emr.cluster_id=j-ABCDEF"]).is_ok());
    assert!(resolve(&[]).is_ok());
}

#[test]
fn the_emr_managed_security_groups_go_together() {
    let groups =
        ["emr.master_security_group=sg-01", "emr.core_security_group=sg-02", "emr.service_access_security_group=sg-03"];
    let plan = emr_plan(&groups);
    let instances = &plan.cluster.as_ref().unwrap().instances;
    assert_eq!(instances.emr_managed_master_security_group.as_deref(), Some("sg-01"));
    assert_eq!(instances.emr_managed_slave_security_group.as_deref(), Some("sg-02"));
    assert_eq!(instances.service_access_security_group.as_deref(), Some("sg-03"));

    let err = resolve(&["pipeline.target=emr", "emr.subnet_id=subnet-0abc", groups[0]]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PlanError::PartialSecurityGroups { .. }), "{text}");
    assert!(text.contains("empty: emr.core_security_group, emr.service_access_security_group"), "{text}");
    assert!(text.contains("emr_core_security_group"), "{text}");
}

#[test]
fn a_redshift_warehouse_needs_its_own_url() {
    let role = "warehouse.redshift_copy_role_arn=arn:aws:iam::111122223333:role/copy";
    let err = resolve(&["warehouse.kind=redshift", role]).unwrap_err();
    assert!(matches!(err, PlanError::NoWarehouseUrl), "{err}");
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(err.to_string().contains("WAREHOUSE_URL") && err.to_string().contains("DATABASE_URL"), "{err}");

    let url = "warehouse.url=postgres://loader:s3cret@wh.example:5439/dev?sslmode=verify-full";
    let plan = resolve(&["warehouse.kind=redshift", role, url]).unwrap();
    let shown = plan.to_json()["warehouse"].to_string();
    assert!(shown.contains("wh.example:5439/dev") && !shown.contains("s3cret"), "{shown}");
    // PostgreSQL may be the source database itself: no URL needed.
    assert!(resolve(&[]).is_ok());
}
