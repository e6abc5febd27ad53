//! EMR Serverless, the pure part: a rendered pipeline step (the EMR `StepConfig` every target
//! shares) → the `StartJobRun` request, the `CreateApplication` request of an application the
//! driver creates, the client token, and the job run states mapped onto the step life cycle.
//! Nothing here calls AWS: `render` and `--dry-run` print these requests as they are sent, and
//! `runner::serverless` only maps them onto the SDK. Field names are the API's (camelCase), so
//! the JSON is valid against botocore's `emr-serverless` model (checked by a pytest).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cluster::{MANAGED_BY, TAG_CONFIG_HASH, TAG_MANAGED_BY, TAG_RUN_ID};
use crate::config::{non_empty, Config};
use crate::step::{StepConfig, StepState};

/// Tag key naming the project, as on clusters.
pub const TAG_PROJECT: &str = "project";

/// The API's limit on `clientToken` (`[A-Za-z0-9._-]+`, 1 to 64 characters).
pub const MAX_CLIENT_TOKEN: usize = 64;

/// spark-submit options that make no sense on EMR Serverless (it chooses the deploy mode and
/// the master itself): dropped from `sparkSubmitParameters`, each with its value.
const DROPPED_OPTIONS: &[&str] = &["--deploy-mode", "--master"];

/// spark-submit options that take a value (every other `--x` before the entry point is a flag).
const OPTIONS_WITH_VALUE: &[&str] = &[
    "--deploy-mode",
    "--master",
    "--py-files",
    "--conf",
    "--jars",
    "--files",
    "--archives",
    "--class",
    "--name",
    "--packages",
    "--repositories",
    "--exclude-packages",
    "--properties-file",
    "--driver-memory",
    "--driver-cores",
    "--executor-memory",
    "--executor-cores",
    "--num-executors",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerlessError {
    #[error("step `{name}` is not a spark-submit command line (command-runner.jar, spark-submit ...); EMR Serverless runs spark-submit jobs only")]
    NotSparkSubmit { name: String },
    #[error("step `{name}` has no entry point after its spark-submit options; check its template")]
    NoEntryPoint { name: String },
    #[error("step `{name}`: spark-submit option {option} has no value; check its template")]
    MissingValue { name: String, option: String },
    #[error("step `{name}`: `{value}` holds whitespace, which sparkSubmitParameters (one space-separated string) cannot carry")]
    Whitespace { name: String, value: String },
}

impl crate::error::ExitStatus for ServerlessError {
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::BadInput
    }
}

/// `jobDriver.sparkSubmit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkSubmit {
    pub entry_point: String,
    pub entry_point_arguments: Vec<String>,
    pub spark_submit_parameters: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDriver {
    pub spark_submit: SparkSubmit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Monitoring {
    pub log_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    pub s3_monitoring_configuration: S3Monitoring,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationOverrides {
    pub monitoring_configuration: Monitoring,
}

/// One `StartJobRun` request, as sent. `applicationId` is absent from the plan of a run that
/// creates its application (the id is known only once it exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartJobRunRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    pub client_token: String,
    pub execution_role_arn: String,
    pub name: String,
    pub job_driver: JobDriver,
    pub configuration_overrides: ConfigurationOverrides,
    pub tags: BTreeMap<String, String>,
    pub execution_timeout_minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoStartConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoStopConfig {
    pub enabled: bool,
    pub idle_timeout_minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaximumCapacity {
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

/// The `CreateApplication` request of the application a run creates when none is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApplicationRequest {
    pub name: String,
    pub release_label: String,
    #[serde(rename = "type")]
    pub application_type: String,
    pub client_token: String,
    pub auto_start_configuration: AutoStartConfig,
    pub auto_stop_configuration: AutoStopConfig,
    pub maximum_capacity: MaximumCapacity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    pub tags: BTreeMap<String, String>,
}

/// What every job run of a plan shares: the application, the role, the log location, tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRunContext {
    pub application_id: Option<String>,
    pub execution_role_arn: String,
    pub log_uri: String,
    pub run_id: String,
    pub tags: BTreeMap<String, String>,
    pub execution_timeout_minutes: i64,
}

impl JobRunContext {
    pub fn new(config: &Config, run_id: &str, config_hash: &str) -> Self {
        JobRunContext {
            application_id: config.application_id().map(str::to_string),
            execution_role_arn: config.serverless.execution_role_arn.clone(),
            log_uri: config.serverless_log_uri(),
            run_id: run_id.to_string(),
            tags: tags(config, run_id, config_hash),
            execution_timeout_minutes: config.emr.run_timeout_minutes.max(5),
        }
    }
}

/// The tags of job runs and created applications: run id, config hash, project, managed-by.
pub fn tags(config: &Config, run_id: &str, config_hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_RUN_ID.to_string(), run_id.to_string()),
        (TAG_CONFIG_HASH.to_string(), config_hash.to_string()),
        (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (TAG_PROJECT.to_string(), config.pipeline.name.clone()),
    ])
}

/// The `clientToken` of attempt `attempt` (1, 2...) of the job named `name`: the name (which
/// holds the run id and the step) with the characters the API refuses replaced, and the
/// attempt number. The same submit retried sends the same token, so the service starts one
/// job; a rerun after a FAILED or CANCELLED attempt counts it and sends the next number. A
/// name too long for 64 characters keeps its start and a digest of the whole.
pub fn client_token(name: &str, attempt: u32) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect();
    let suffix = format!("-{attempt}");
    if clean.len() + suffix.len() <= MAX_CLIENT_TOKEN {
        return format!("{clean}{suffix}");
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let keep = MAX_CLIENT_TOKEN - suffix.len() - 13;
    format!("{}-{}{suffix}", &clean[..keep], &digest[..12])
}

/// A rendered step (`command-runner.jar spark-submit [options] ENTRY [args]`) → the
/// `StartJobRun` request: the entry point and its arguments exactly as the EMR step has them,
/// the spark-submit options (the job zip on `--py-files`, the `[spark]` settings as `--conf`)
/// as `sparkSubmitParameters`, without `--deploy-mode` / `--master`.
pub fn start_job_run_request(
    step: &StepConfig,
    context: &JobRunContext,
    attempt: u32,
) -> Result<StartJobRunRequest, ServerlessError> {
    let name = step.name.clone();
    let args = &step.hadoop_jar_step.args;
    if step.hadoop_jar_step.jar != "command-runner.jar" || args.first().map(String::as_str) != Some("spark-submit") {
        return Err(ServerlessError::NotSparkSubmit { name });
    }
    let mut parameters: Vec<&str> = Vec::new();
    let mut i = 1;
    let entry = loop {
        let Some(arg) = args.get(i) else { return Err(ServerlessError::NoEntryPoint { name }) };
        if !arg.starts_with("--") {
            break i;
        }
        let takes_value = OPTIONS_WITH_VALUE.contains(&arg.as_str());
        let value = if takes_value {
            Some(
                args.get(i + 1)
                    .ok_or_else(|| ServerlessError::MissingValue { name: name.clone(), option: arg.clone() })?,
            )
        } else {
            None
        };
        if !DROPPED_OPTIONS.contains(&arg.as_str()) {
            parameters.push(arg);
            if let Some(value) = value {
                if value.contains(char::is_whitespace) {
                    return Err(ServerlessError::Whitespace { name, value: value.clone() });
                }
                parameters.push(value);
            }
        }
        i += if takes_value { 2 } else { 1 };
    };
    let mut tags = context.tags.clone();
    tags.insert("step".to_string(), step_key(&name, &context.run_id));
    Ok(StartJobRunRequest {
        application_id: context.application_id.clone(),
        client_token: client_token(&name, attempt),
        execution_role_arn: context.execution_role_arn.clone(),
        job_driver: JobDriver {
            spark_submit: SparkSubmit {
                entry_point: args[entry].clone(),
                entry_point_arguments: args[entry + 1..].to_vec(),
                spark_submit_parameters: parameters.join(" "),
            },
        },
        configuration_overrides: ConfigurationOverrides {
            monitoring_configuration: Monitoring {
                s3_monitoring_configuration: S3Monitoring { log_uri: context.log_uri.clone() },
            },
        },
        tags,
        name,
        execution_timeout_minutes: context.execution_timeout_minutes,
    })
}

/// `"<run id> parse_logs"` → `parse_logs` (the whole name when it does not start with the run id).
fn step_key(name: &str, run_id: &str) -> String {
    name.strip_prefix(run_id).map(str::trim).filter(|k| !k.is_empty()).unwrap_or(name).chars().take(256).collect()
}

/// The name of the application the driver creates and finds again: `<pipeline.name>`.
pub fn application_name(config: &Config) -> String {
    config.pipeline.name.clone()
}

/// The `CreateApplication` request: Spark on the EMR release of `emr.release_label`, started
/// on the first job and stopped after `auto_stop_minutes` idle, capped at the maximum
/// capacity, in the private subnets when given, tagged. Its client token is the name and the
/// config hash, so a retried create makes one application.
pub fn create_application_request(config: &Config, run_id: &str, config_hash: &str) -> CreateApplicationRequest {
    let list = |value: &str| -> Vec<String> {
        value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect()
    };
    let sl = &config.serverless;
    let network = (non_empty(&sl.subnet_ids).is_some() || non_empty(&sl.security_group_ids).is_some()).then(|| {
        NetworkConfiguration { subnet_ids: list(&sl.subnet_ids), security_group_ids: list(&sl.security_group_ids) }
    });
    let mut tags = tags(config, run_id, config_hash);
    // The application outlives the run that created it: it is found again by name.
    tags.remove(TAG_RUN_ID);
    CreateApplicationRequest {
        name: application_name(config),
        release_label: config.emr.release_label.clone(),
        application_type: "SPARK".into(),
        client_token: client_token(
            &format!("{} {}", application_name(config), &config_hash[..12.min(config_hash.len())]),
            1,
        ),
        auto_start_configuration: AutoStartConfig { enabled: true },
        auto_stop_configuration: AutoStopConfig { enabled: true, idle_timeout_minutes: sl.auto_stop_minutes },
        maximum_capacity: MaximumCapacity { cpu: sl.max_cpu.clone(), memory: sl.max_memory.clone() },
        network_configuration: network,
        tags,
    }
}

/// A job run state (the API's string) → the step life cycle every runner shares. CANCELLING is
/// CANCEL_PENDING (not final: the poller keeps waiting for CANCELLED, as on EMR). `None` for a
/// state this driver does not know.
pub fn step_state(job_run_state: &str) -> Option<StepState> {
    Some(match job_run_state {
        "SUBMITTED" | "PENDING" | "SCHEDULED" | "QUEUED" => StepState::Pending,
        "RUNNING" => StepState::Running,
        "SUCCESS" => StepState::Completed,
        "FAILED" => StepState::Failed,
        "CANCELLING" => StepState::CancelPending,
        "CANCELLED" => StepState::Cancelled,
        _ => return None,
    })
}

/// The job run's logs (S3 monitoring): `<logUri>applications/<app>/jobs/<job>/SPARK_DRIVER/`,
/// where the driver's `stderr.gz` and `stdout.gz` land.
pub fn driver_log_prefix(log_uri: &str, application_id: &str, job_run_id: &str) -> String {
    let root = if log_uri.ends_with('/') { log_uri.to_string() } else { format!("{log_uri}/") };
    format!("{root}applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{ActionOnFailure, HadoopJarStep};

    fn step(args: &[&str]) -> StepConfig {
        StepConfig {
            name: "2021-10-31-abcdef123456 parse_logs".into(),
            action_on_failure: ActionOnFailure::Continue,
            hadoop_jar_step: HadoopJarStep {
                jar: "command-runner.jar".into(),
                args: args.iter().map(|s| s.to_string()).collect(),
                main_class: None,
            },
        }
    }

    fn context() -> JobRunContext {
        JobRunContext {
            application_id: Some("00abc".into()),
            execution_role_arn: "arn:aws:iam::123456789012:role/runtime".into(),
            log_uri: "s3://raw/emr-logs/serverless/".into(),
            run_id: "2021-10-31-abcdef123456".into(),
            tags: BTreeMap::from([("run-id".to_string(), "2021-10-31-abcdef123456".to_string())]),
            execution_timeout_minutes: 180,
        }
    }

    #[test]
    fn a_step_becomes_one_job_run_with_the_same_arguments() {
        let step = step(&[
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "--py-files",
            "s3://raw/artifacts/aa/pyspark_jobs.zip",
            "--conf",
            "spark.sql.shuffle.partitions=16",
            "s3://raw/artifacts/bb/run_job.py",
            "parse_logs",
            "--run-date",
            "2021-10-31",
        ]);
        let request = start_job_run_request(&step, &context(), 1).unwrap();
        let submit = &request.job_driver.spark_submit;
        assert_eq!(submit.entry_point, "s3://raw/artifacts/bb/run_job.py");
        assert_eq!(submit.entry_point_arguments, vec!["parse_logs", "--run-date", "2021-10-31"]);
        assert_eq!(
            submit.spark_submit_parameters,
            "--py-files s3://raw/artifacts/aa/pyspark_jobs.zip --conf spark.sql.shuffle.partitions=16"
        );
        assert_eq!(request.name, step.name);
        assert_eq!(request.client_token, "2021-10-31-abcdef123456-parse_logs-1");
        assert_eq!(request.tags["step"], "parse_logs");
        assert_eq!(request.tags["run-id"], "2021-10-31-abcdef123456");
    }

    #[test]
    fn bad_steps_are_refused_with_the_reason() {
        let mut not_spark = step(&["hadoop", "fs", "-ls"]);
        assert!(matches!(
            start_job_run_request(&not_spark, &context(), 1),
            Err(ServerlessError::NotSparkSubmit { .. })
        ));
        not_spark.hadoop_jar_step.args = vec!["spark-submit".into(), "--py-files".into()];
        assert!(matches!(start_job_run_request(&not_spark, &context(), 1), Err(ServerlessError::MissingValue { .. })));
        let no_entry = step(&["spark-submit", "--verbose"]);
        assert!(matches!(start_job_run_request(&no_entry, &context(), 1), Err(ServerlessError::NoEntryPoint { .. })));
        let spaced = step(&["spark-submit", "--conf", "a=b c", "x.py"]);
        assert!(matches!(start_job_run_request(&spaced, &context(), 1), Err(ServerlessError::Whitespace { .. })));
    }

    #[test]
    fn client_tokens_are_valid_stable_and_count_attempts() {
        let token = client_token("2021-10-31-abcdef123456 parse_logs", 2);
        assert_eq!(token, "2021-10-31-abcdef123456-parse_logs-2");
        let long = format!("2021-10-31-abcdef123456 adhoc {}", "x".repeat(100));
        let a = client_token(&long, 1);
        assert_eq!(a.len(), MAX_CLIENT_TOKEN);
        assert_eq!(a, client_token(&long, 1));
        assert_ne!(a, client_token(&format!("{long}y"), 1));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{a}");
    }

    #[test]
    fn job_run_states_map_onto_the_step_life_cycle() {
        for (state, want) in [
            ("SUBMITTED", StepState::Pending),
            ("PENDING", StepState::Pending),
            ("SCHEDULED", StepState::Pending),
            ("RUNNING", StepState::Running),
            ("SUCCESS", StepState::Completed),
            ("FAILED", StepState::Failed),
            ("CANCELLING", StepState::CancelPending),
            ("CANCELLED", StepState::Cancelled),
        ] {
            assert_eq!(step_state(state), Some(want), "{state}");
        }
        assert_eq!(step_state("EXPLODED"), None);
    }

    #[test]
    fn driver_logs_are_under_the_monitoring_location() {
        assert_eq!(
            driver_log_prefix("s3://raw/emr-logs/serverless", "00abc", "00job"),
            "s3://raw/emr-logs/serverless/applications/00abc/jobs/00job/SPARK_DRIVER/"
        );
    }
}
