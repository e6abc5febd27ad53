//! The pipeline configuration: `config/pipeline.toml`, then environment variables, then flags.
//!
//! Resolution works on the TOML table before anything is typed, so that every layer speaks
//! the same `section.key` names and every problem can name the key, its value, where the value
//! came from and the fix:
//!
//! 1. the file is parsed into a table;
//! 2. `EMR_DRIVER_<SECTION>_<KEY>` variables (from an injectable map) replace values;
//! 3. `--set section.key=value` flags (and dedicated flags such as `--target`) replace values;
//! 4. every key is checked against [`KEYS`] (unknown keys are refused) and coerced to its type;
//! 5. the table is deserialised into [`Config`] and validated as a whole (bucket names, URIs,
//!    release label, positive numbers), collecting one line per bad key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExitCode, ExitStatus};

/// Where the pipeline's Spark steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Local,
    Emr,
    /// EMR Serverless: each step is one job run on an application.
    #[serde(rename = "emr-serverless")]
    EmrServerless,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Emr => "emr",
            Target::EmrServerless => "emr-serverless",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which database the warehouse is (`[warehouse] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarehouseKind {
    Postgres,
    Redshift,
}

impl WarehouseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarehouseKind::Postgres => "postgres",
            WarehouseKind::Redshift => "redshift",
        }
    }
}

impl fmt::Display for WarehouseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub pipeline: PipelineSection,
    pub buckets: BucketsSection,
    pub aws: AwsSection,
    pub emr: EmrSection,
    pub local: LocalSection,
    pub warehouse: WarehouseSection,
    /// EMR Serverless (`pipeline.target = "emr-serverless"`); every key has a default.
    #[serde(default)]
    pub serverless: ServerlessSection,
    /// The source database (`DATABASE_URL`): where its credentials come from.
    #[serde(default)]
    pub source: SourceSection,
    /// How `ingest` cuts the vendor files into parts; every key has a default.
    #[serde(default)]
    pub ingest: IngestSection,
    /// Passed to every Spark step as `--conf key=value`, in key order.
    #[serde(default)]
    pub spark: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    pub target: Target,
    /// `.csv` or `.csv.gz`: the file names of the vendor inputs under `incoming/dt=D/`.
    #[serde(default = "default_input_suffix")]
    pub input_suffix: String,
}

fn default_input_suffix() -> String {
    ".csv".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketsSection {
    pub raw: String,
    pub staging: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    pub region: String,
    /// Empty: the SDK's own resolution (which honours `AWS_ENDPOINT_URL`).
    pub endpoint_url: String,
    pub profile: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmrSection {
    pub release_label: String,
    pub cluster_id: String,
    pub log_uri: String,
    pub service_role: String,
    pub instance_profile: String,
    pub autoscaling_role: String,
    pub subnet_id: String,
    pub security_configuration: String,
    pub master_instance_type: String,
    pub core_instance_type: String,
    pub core_instance_count: i64,
    pub idle_timeout_minutes: i64,
    pub step_concurrency: i64,
    pub keep_cluster: bool,
    pub poll_interval_seconds: i64,
    pub run_timeout_minutes: i64,
    /// `ActionOnFailure` of the pipeline steps. CONTINUE: the driver decides what to cancel.
    #[serde(default = "default_action_on_failure")]
    pub action_on_failure: String,
    /// EMR-managed security groups of a created cluster (Terraform outputs
    /// `emr_master_security_group`, `emr_core_security_group`,
    /// `emr_service_access_security_group`); all three or none (EMR then makes default ones).
    #[serde(default)]
    pub master_security_group: String,
    #[serde(default)]
    pub core_security_group: String,
    #[serde(default)]
    pub service_access_security_group: String,
    /// A created or reused cluster that is not WAITING / RUNNING after this long fails the run.
    #[serde(default = "default_cluster_start_timeout")]
    pub cluster_start_timeout_minutes: i64,
}

fn default_cluster_start_timeout() -> i64 {
    45
}

fn default_action_on_failure() -> String {
    "CONTINUE".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSection {
    pub lake_dir: String,
    pub spark_submit: String,
    pub master: String,
    pub driver_memory: String,
    /// `shared`: the run_job.py steps of a local run go into ONE long-lived Spark application
    /// started when the run starts; `per-step`: one spark-submit per step (a JVM each).
    #[serde(default = "default_spark_application")]
    pub spark_application: String,
    /// A JVM class-data archive of the local Spark driver's classes (`scripts/setup.sh`
    /// makes it), used by every local spark-submit when the file is there; empty: never.
    #[serde(default = "default_class_data_archive")]
    pub class_data_archive: String,
    /// The shared Spark application's JIT: `auto` (C1 only for a run of at most
    /// `jit_quick_max_records` vendor records, else the JVM's default tiered JIT), `quick`
    /// (always C1 only), `full` (always the default).
    #[serde(default = "default_jit")]
    pub jit: String,
    /// `auto`: the largest run (movie_review + log_reviews records) that gets the quick JIT.
    #[serde(default = "default_jit_quick_max_records")]
    pub jit_quick_max_records: i64,
    /// `spark.sql.shuffle.partitions` of the local Spark steps, instead of the `[spark]` value
    /// rendered for the cluster (0: that value).
    #[serde(default = "default_local_shuffle_partitions")]
    pub shuffle_partitions: i64,
}

fn default_local_shuffle_partitions() -> i64 {
    4
}

fn default_jit() -> String {
    "auto".to_string()
}

/// Measured break-even (BENCHMARKS.md section 3): at 100,000 reviews and logs the C1-only JIT
/// saves about an eighth of the run, at 300,000 it is even, at 1,000,000 it costs a quarter.
pub const DEFAULT_JIT_QUICK_MAX_RECORDS: i64 = 400_000;

fn default_jit_quick_max_records() -> i64 {
    DEFAULT_JIT_QUICK_MAX_RECORDS
}

fn default_spark_application() -> String {
    "shared".to_string()
}

/// The default `local.class_data_archive`, where `scripts/spark-class-archive.sh` writes it.
pub const DEFAULT_CLASS_DATA_ARCHIVE: &str = ".venv/spark-classes.jsa";

fn default_class_data_archive() -> String {
    DEFAULT_CLASS_DATA_ARCHIVE.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseSection {
    /// Checked as a string first (`KEYS`, `Kind::OneOf`), so a bad value is one clear problem.
    pub kind: WarehouseKind,
    pub schema: String,
    pub redshift_copy_role_arn: String,
    /// The warehouse database (`WAREHOUSE_URL`, `--warehouse-url`, or this key). Required when
    /// `kind = "redshift"`: Redshift never falls back to the source database (`DATABASE_URL`).
    /// A password in it is masked in every message; prefer a secret (docs/deploy-aws.md).
    #[serde(default)]
    pub url: String,
    /// Secrets Manager secret (the Redshift-managed admin secret, Terraform output
    /// `redshift_admin_secret_arn`) whose username and password the driver puts into
    /// `url` at run time; empty: the URL carries its own credentials.
    #[serde(default)]
    pub password_secret_arn: String,
    /// How the driver logs in: `auto` (a secret when `password_secret_arn` is set, else the
    /// URL's password), `password`, `secret`, or `iam` (`GetClusterCredentialsWithIAM` for
    /// Redshift, `GetCredentials` for a Redshift Serverless workgroup, an RDS auth token for
    /// PostgreSQL): driver/src/db/login.rs.
    #[serde(default = "default_auth")]
    pub auth: String,
    /// Redshift Spectrum over the staging layer: the Glue database (Terraform output
    /// `redshift_glue_database`); empty: no Spectrum. Every run creates the external schema
    /// `spectrum_schema` when absent and registers its dt= partitions (sql/redshift/).
    #[serde(default)]
    pub glue_database: String,
    #[serde(default = "default_spectrum_schema")]
    pub spectrum_schema: String,
}

fn default_spectrum_schema() -> String {
    "staging".to_string()
}

/// The source database of `user_purchase` (its URL is `DATABASE_URL` / `--database-url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Secrets Manager secret (the RDS-managed master secret, Terraform output
    /// `rds_admin_secret_arn`) whose username and password go into `DATABASE_URL` at run time.
    #[serde(default)]
    pub password_secret_arn: String,
    /// How the driver logs in: `auto`, `password`, `secret` or `iam` (an RDS auth token for
    /// the user of `DATABASE_URL`), as `warehouse.auth`.
    #[serde(default = "default_auth")]
    pub auth: String,
}

impl Default for SourceSection {
    fn default() -> Self {
        SourceSection { password_secret_arn: String::new(), auth: default_auth() }
    }
}

fn default_auth() -> String {
    "auto".to_string()
}

/// How the driver logs in to one database (`source.auth`, `warehouse.auth` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAuth<'a> {
    /// The URL as given (its own password, or none: trust or `.pgpass`-less local servers).
    Password,
    /// The user and password of this Secrets Manager secret.
    Secret(&'a str),
    /// IAM database authentication.
    Iam,
}

/// The values `source.auth` and `warehouse.auth` take.
pub const AUTH_METHODS: &[&str] = &["auto", "password", "secret", "iam"];

fn resolve_auth<'a>(auth: &str, secret_arn: &'a str) -> DbAuth<'a> {
    match (auth, non_empty(secret_arn)) {
        ("iam", _) => DbAuth::Iam,
        ("password", _) => DbAuth::Password,
        (_, Some(arn)) => DbAuth::Secret(arn),
        (_, None) => DbAuth::Password,
    }
}

/// `[ingest]`: how the vendor files (and the run's user_purchase export) are cut into
/// record-aligned gzipped parts (issue #14), so that Spark reads a big file as many tasks (a
/// gzipped, multi-line CSV is one task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Uncompressed bytes per part at most, in MiB (a part closes after the record that reaches
    /// it); each vendor file is cut into an even number of parts of one size
    /// ([`crate::split::balanced_part_size`]). 32: the 100,000-review movie_review.csv (88 MiB)
    /// is 4 parts, log_reviews.csv (21 MiB) 2; a 1 GB day 30 parts.
    pub part_size_mb: i64,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection { part_size_mb: DEFAULT_PART_SIZE_MB }
    }
}

/// The default `ingest.part_size_mb`.
pub const DEFAULT_PART_SIZE_MB: i64 = 32;

impl IngestSection {
    /// The part size in bytes.
    pub fn part_size_bytes(&self) -> u64 {
        self.part_size_mb.max(1) as u64 * 1024 * 1024
    }
}

/// `[serverless]`: the EMR Serverless application the job runs go to, or what the driver
/// creates when none is given (release label: `emr.release_label`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerlessSection {
    /// An existing application (e.g. Terraform's); empty: the driver finds the application
    /// named `<pipeline.name>` it created earlier, or creates it.
    pub application_id: String,
    /// The job runtime role (`StartJobRun` executionRoleArn).
    pub execution_role_arn: String,
    /// Private subnets and security groups of an application the driver creates
    /// (comma-separated; empty: no VPC access).
    pub subnet_ids: String,
    pub security_group_ids: String,
    /// Maximum capacity of a created application, e.g. "64 vCPU" and "256 GB".
    pub max_cpu: String,
    pub max_memory: String,
    /// A created application stops itself after this many idle minutes.
    pub auto_stop_minutes: i64,
    /// S3 monitoring location of the job runs (driver logs); empty: `<emr.log_uri>serverless/`.
    pub log_uri: String,
}

impl Default for ServerlessSection {
    fn default() -> Self {
        ServerlessSection {
            application_id: String::new(),
            execution_role_arn: String::new(),
            subnet_ids: String::new(),
            security_group_ids: String::new(),
            max_cpu: "64 vCPU".into(),
            max_memory: "256 GB".into(),
            auto_stop_minutes: 15,
            log_uri: String::new(),
        }
    }
}

/// The type of a configuration value, for coercing environment and flag strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
    OneOf(&'static [&'static str]),
}

/// Every known key but the free-form `[spark]` table. A test keeps it in step with [`Config`].
pub const KEYS: &[(&str, &str, Kind)] = &[
    ("pipeline", "name", Kind::Text),
    ("pipeline", "target", Kind::OneOf(&["local", "emr", "emr-serverless"])),
    ("pipeline", "input_suffix", Kind::OneOf(&[".csv", ".csv.gz"])),
    ("buckets", "raw", Kind::Text),
    ("buckets", "staging", Kind::Text),
    ("aws", "region", Kind::Text),
    ("aws", "endpoint_url", Kind::Text),
    ("aws", "profile", Kind::Text),
    ("emr", "release_label", Kind::Text),
    ("emr", "cluster_id", Kind::Text),
    ("emr", "log_uri", Kind::Text),
    ("emr", "service_role", Kind::Text),
    ("emr", "instance_profile", Kind::Text),
    ("emr", "autoscaling_role", Kind::Text),
    ("emr", "subnet_id", Kind::Text),
    ("emr", "security_configuration", Kind::Text),
    ("emr", "master_instance_type", Kind::Text),
    ("emr", "core_instance_type", Kind::Text),
    ("emr", "core_instance_count", Kind::Integer),
    ("emr", "idle_timeout_minutes", Kind::Integer),
    ("emr", "step_concurrency", Kind::Integer),
    ("emr", "keep_cluster", Kind::Bool),
    ("emr", "poll_interval_seconds", Kind::Integer),
    ("emr", "run_timeout_minutes", Kind::Integer),
    (
        "emr",
        "action_on_failure",
        Kind::OneOf(&["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"]),
    ),
    ("emr", "master_security_group", Kind::Text),
    ("emr", "core_security_group", Kind::Text),
    ("emr", "service_access_security_group", Kind::Text),
    ("emr", "cluster_start_timeout_minutes", Kind::Integer),
    ("local", "lake_dir", Kind::Text),
    ("local", "spark_submit", Kind::Text),
    ("local", "master", Kind::Text),
    ("local", "driver_memory", Kind::Text),
    ("local", "spark_application", Kind::OneOf(&["shared", "per-step"])),
    ("local", "class_data_archive", Kind::Text),
    ("local", "jit", Kind::OneOf(crate::runner::local::JitMode::NAMES)),
    ("local", "jit_quick_max_records", Kind::Integer),
    ("local", "shuffle_partitions", Kind::Integer),
    ("warehouse", "kind", Kind::OneOf(&["postgres", "redshift"])),
    ("warehouse", "schema", Kind::Text),
    ("warehouse", "redshift_copy_role_arn", Kind::Text),
    ("serverless", "application_id", Kind::Text),
    ("serverless", "execution_role_arn", Kind::Text),
    ("serverless", "subnet_ids", Kind::Text),
    ("serverless", "security_group_ids", Kind::Text),
    ("serverless", "max_cpu", Kind::Text),
    ("serverless", "max_memory", Kind::Text),
    ("serverless", "auto_stop_minutes", Kind::Integer),
    ("serverless", "log_uri", Kind::Text),
    ("warehouse", "url", Kind::Text),
    ("warehouse", "password_secret_arn", Kind::Text),
    ("warehouse", "glue_database", Kind::Text),
    ("warehouse", "spectrum_schema", Kind::Text),
    ("source", "password_secret_arn", Kind::Text),
    ("ingest", "part_size_mb", Kind::Integer),
    ("warehouse", "auth", Kind::OneOf(AUTH_METHODS)),
    ("source", "auth", Kind::OneOf(AUTH_METHODS)),
];

/// `EMR_DRIVER_*` variables that are not config overrides.
pub const NON_CONFIG_ENV: &[&str] = &["CONFIG", "LOG"];

/// Keys with a default, which the file may leave out.
pub const OPTIONAL_KEYS: &[&str] = &[
    "pipeline.input_suffix",
    "emr.action_on_failure",
    "serverless.application_id",
    "serverless.execution_role_arn",
    "serverless.subnet_ids",
    "serverless.security_group_ids",
    "serverless.max_cpu",
    "serverless.max_memory",
    "serverless.auto_stop_minutes",
    "serverless.log_uri",
    "emr.master_security_group",
    "emr.core_security_group",
    "emr.service_access_security_group",
    "emr.cluster_start_timeout_minutes",
    "local.spark_application",
    "local.class_data_archive",
    "local.jit",
    "local.jit_quick_max_records",
    "local.shuffle_partitions",
    "warehouse.url",
    "warehouse.password_secret_arn",
    "warehouse.glue_database",
    "warehouse.spectrum_schema",
    "source.password_secret_arn",
    "ingest.part_size_mb",
    "warehouse.auth",
    "source.auth",
];

/// The free-form section whose keys are Spark property names.
pub const SPARK_SECTION: &str = "spark";

/// The environment variable that holds the warehouse connection (`warehouse.url`).
pub const WAREHOUSE_URL_ENV: &str = "WAREHOUSE_URL";

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "EMR_DRIVER_";

/// Keys that say where and how to run rather than what the run computes: left out of the
/// config hash, so rerunning a date on an existing cluster (`--cluster-id`), from another
/// profile or with another poll interval keeps the same run id and finds its steps.
pub const NOT_HASHED: &[&str] = &[
    "aws.profile",
    "aws.endpoint_url",
    "emr.cluster_id",
    "emr.keep_cluster",
    "emr.poll_interval_seconds",
    "emr.run_timeout_minutes",
    "serverless.application_id",
    "emr.cluster_start_timeout_minutes",
    // How the local runner gives the steps their Spark: the same jobs compute the same data.
    "local.spark_application",
    "local.class_data_archive",
    "local.jit",
    "local.jit_quick_max_records",
    "local.shuffle_partitions",
    // The network of a created cluster: where it runs, like the cluster id.
    "emr.master_security_group",
    "emr.core_security_group",
    "emr.service_access_security_group",
    // Where the databases are and how the driver logs in to them; Spectrum's catalog.
    "warehouse.glue_database",
    "warehouse.spectrum_schema",
    "warehouse.url",
    "warehouse.password_secret_arn",
    "source.password_secret_arn",
    // How the inputs are cut: the parts' digests are in the run id already.
    "ingest.part_size_mb",
    "warehouse.auth",
    "source.auth",
];

/// One bad key: its name, the value found, where the value came from, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub value: String,
    pub origin: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?} (from {}): {}", self.key, self.value, self.origin, self.fix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the config file {path}: {source}; pass the right file with --config or EMR_DRIVER_CONFIG")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error(
        "`{flag}` is not a config override; write it as --set section.key=value (e.g. --set buckets.raw=my-raw-bucket)"
    )]
    BadOverride { flag: String },
    #[error("invalid configuration:\n  {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid { problems: Vec<Problem> },
}

impl ExitStatus for ConfigError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// Command-line overrides, applied after the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `(section.key, value)` pairs in the order given.
    pub sets: Vec<(String, String)>,
}

impl Overrides {
    /// Parses `--set section.key=value` flags.
    pub fn parse_sets<S: AsRef<str>>(flags: &[S]) -> Result<Self, ConfigError> {
        let mut sets = Vec::new();
        for flag in flags {
            let flag = flag.as_ref();
            let (path, value) =
                flag.split_once('=').ok_or_else(|| ConfigError::BadOverride { flag: flag.to_string() })?;
            if !path.contains('.') || path.starts_with('.') || path.ends_with('.') {
                return Err(ConfigError::BadOverride { flag: flag.to_string() });
            }
            sets.push((path.trim().to_string(), value.to_string()));
        }
        Ok(Overrides { sets })
    }

    /// Adds one override (used by dedicated flags such as `--target` and `--cluster-id`).
    pub fn set(mut self, path: &str, value: impl Into<String>) -> Self {
        self.sets.push((path.to_string(), value.into()));
        self
    }
}

/// The process environment as a map, for [`Config::load`] outside tests.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

impl Config {
    /// Reads `path`, applies `env` then `overrides`, validates.
    pub fn load(path: &Path, env: &HashMap<String, String>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Config::from_toml_str(&text, &path.display().to_string(), env, overrides)
    }

    /// Same as [`Config::load`] over the file's text; `origin` names it in messages.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: origin.to_string(), message: e.to_string() })?;
        let mut layers = Layers::new(table, origin);
        layers.apply_env(env);
        layers.apply_overrides(overrides, "--set");
        layers.into_config()
    }

    /// This configuration with further overrides applied (validated again).
    pub fn with_overrides(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        if overrides.sets.is_empty() {
            return Ok(self.clone());
        }
        let table = toml::Table::try_from(self).expect("the config serialises to a table");
        let mut layers = Layers::new(table, "resolved config");
        layers.apply_overrides(overrides, "a flag");
        layers.into_config()
    }

    /// `emr.cluster_id` when set.
    pub fn cluster_id(&self) -> Option<&str> {
        non_empty(&self.emr.cluster_id)
    }

    /// `serverless.application_id` when set.
    pub fn application_id(&self) -> Option<&str> {
        non_empty(&self.serverless.application_id)
    }

    /// Where the job runs' logs go: `serverless.log_uri`, else `<emr.log_uri>serverless/`.
    pub fn serverless_log_uri(&self) -> String {
        match non_empty(&self.serverless.log_uri) {
            Some(uri) => uri.to_string(),
            None if self.emr.log_uri.ends_with('/') => format!("{}serverless/", self.emr.log_uri),
            None => format!("{}/serverless/", self.emr.log_uri),
        }
    }

    /// How the driver logs in to the source database (`source.auth`, `auto` resolved).
    pub fn source_auth(&self) -> DbAuth<'_> {
        resolve_auth(&self.source.auth, &self.source.password_secret_arn)
    }

    /// How the driver logs in to the warehouse (`warehouse.auth`, `auto` resolved).
    pub fn warehouse_auth(&self) -> DbAuth<'_> {
        resolve_auth(&self.warehouse.auth, &self.warehouse.password_secret_arn)
    }

    /// `aws.endpoint_url` when set.
    pub fn endpoint_url(&self) -> Option<&str> {
        non_empty(&self.aws.endpoint_url)
    }

    /// The canonical JSON of the configuration that determines what a run computes
    /// ([`NOT_HASHED`] keys removed), with sorted keys.
    pub fn canonical_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("the config serialises");
        for path in NOT_HASHED {
            let (section, key) = path.split_once('.').expect("section.key");
            let emptied = match value.get_mut(section).and_then(|s| s.as_object_mut()) {
                Some(table) => {
                    table.remove(key);
                    table.is_empty()
                }
                None => false,
            };
            // A section of unhashed keys only ([source]) leaves no trace in the hash.
            if emptied {
                value.as_object_mut().expect("the config is a table").remove(section);
            }
        }
        // The [serverless] section shapes only EMR Serverless runs: other targets hash as before.
        if self.pipeline.target != Target::EmrServerless {
            if let Some(table) = value.as_object_mut() {
                table.remove("serverless");
            }
        }
        // serde_json's map is a BTreeMap (no preserve_order feature), so keys come out sorted.
        value
    }

    /// sha256 hex of [`Config::canonical_json`].
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(&self.canonical_json()).expect("json");
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

pub(crate) fn non_empty(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// The table being resolved, with where each overridden value came from.
struct Layers {
    table: toml::Table,
    file_origin: String,
    origins: HashMap<String, String>,
    problems: Vec<Problem>,
}

impl Layers {
    fn new(table: toml::Table, file_origin: &str) -> Self {
        Layers { table, file_origin: file_origin.to_string(), origins: HashMap::new(), problems: Vec::new() }
    }

    fn origin(&self, path: &str) -> String {
        self.origins.get(path).cloned().unwrap_or_else(|| self.file_origin.clone())
    }

    /// `EMR_DRIVER_<SECTION>_<KEY>`. Spark keys contain dots, which variable names cannot:
    /// `EMR_DRIVER_SPARK_SPARK_SQL_SHUFFLE_PARTITIONS` replaces the existing key that spells
    /// the same once dots become underscores, or adds `spark.sql.shuffle.partitions`.
    fn apply_env(&mut self, env: &HashMap<String, String>) {
        // The conventional name of the warehouse connection (the CronJob and the docs use it);
        // EMR_DRIVER_WAREHOUSE_URL, set below, wins over it.
        if let Some(url) = env.get(WAREHOUSE_URL_ENV).filter(|u| !u.trim().is_empty()) {
            self.set("warehouse", "url", url.clone(), &format!("environment variable {WAREHOUSE_URL_ENV}"));
        }
        let mut names: Vec<&String> = env.keys().filter(|k| k.starts_with(ENV_PREFIX)).collect();
        names.sort();
        for name in names {
            let rest = &name[ENV_PREFIX.len()..];
            let Some(section) = env_section(rest) else {
                if !NON_CONFIG_ENV.contains(&rest) {
                    // Not an error: other EMR_DRIVER_* variables may exist. But a misspelt
                    // section must not pass unnoticed.
                    tracing::warn!(
                        "ignoring {name}: not a config override; write EMR_DRIVER_<SECTION>_<KEY> with a section among {}",
                        known_sections().join(", ")
                    );
                }
                continue;
            };
            let key_part = &rest[section.len() + 1..];
            let value = env[name].clone();
            let key =
                if section == SPARK_SECTION { self.spark_key_for_env(key_part) } else { key_part.to_ascii_lowercase() };
            self.set(section, &key, value, &format!("environment variable {name}"));
        }
    }

    fn spark_key_for_env(&self, key_part: &str) -> String {
        let existing = self.table.get(SPARK_SECTION).and_then(|s| s.as_table());
        let wanted = key_part.to_ascii_uppercase();
        existing
            .and_then(|t| t.keys().find(|k| k.replace(['.', '-'], "_").to_ascii_uppercase() == wanted).cloned())
            .unwrap_or_else(|| key_part.to_ascii_lowercase().replace('_', "."))
    }

    fn apply_overrides(&mut self, overrides: &Overrides, what: &str) {
        for (path, value) in &overrides.sets {
            let (section, key) = path.split_once('.').unwrap_or((path, ""));
            self.set(section, key, value.clone(), &format!("{what} {path}"));
        }
    }

    fn set(&mut self, section: &str, key: &str, value: String, origin: &str) {
        let path = format!("{section}.{key}");
        let entry = self.table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry.as_table_mut() {
            Some(table) => {
                table.insert(key.to_string(), toml::Value::String(value));
                self.origins.insert(path, origin.to_string());
            }
            None => self.problems.push(Problem {
                key: section.to_string(),
                value,
                origin: origin.to_string(),
                fix: format!("[{section}] must be a table in the config file"),
            }),
        }
    }

    /// Names every required key the layers leave unset.
    fn check_required(&mut self) {
        for (section, key, _) in KEYS {
            let path = format!("{section}.{key}");
            let present = self.table.get(*section).and_then(|s| s.as_table()).is_some_and(|t| t.contains_key(*key));
            if !present && !OPTIONAL_KEYS.contains(&path.as_str()) {
                self.problems.push(Problem {
                    key: path.clone(),
                    value: String::new(),
                    origin: self.file_origin.clone(),
                    fix: format!(
                        "missing; add `{key} = ...` under [{section}] (see config/pipeline.toml) or set {ENV_PREFIX}{}_{}",
                        section.to_ascii_uppercase(),
                        key.to_ascii_uppercase()
                    ),
                });
            }
        }
    }

    /// Checks every key against [`KEYS`] and coerces string values to their kind.
    fn check_keys(&mut self) {
        let sections: Vec<String> = self.table.keys().cloned().collect();
        for section in sections {
            let origin = self.origin(&section);
            let Some(table) = self.table.get_mut(&section).and_then(|v| v.as_table_mut()) else {
                self.problems.push(Problem {
                    key: section.clone(),
                    value: String::new(),
                    origin,
                    fix: format!("write [{section}] as a table of keys"),
                });
                continue;
            };
            let known_section = section == SPARK_SECTION || KEYS.iter().any(|(s, _, _)| *s == section);
            if !known_section {
                self.problems.push(Problem {
                    key: section.clone(),
                    value: String::new(),
                    origin,
                    fix: format!("unknown section [{section}]; the sections are {}", known_sections().join(", ")),
                });
                continue;
            }
            let keys: Vec<String> = table.keys().cloned().collect();
            for key in keys {
                let path = format!("{section}.{key}");
                let origin = self.origins.get(&path).cloned().unwrap_or_else(|| self.file_origin.clone());
                let value = table.get(&key).expect("key listed").clone();
                let kind = if section == SPARK_SECTION {
                    Some(Kind::Text)
                } else {
                    KEYS.iter().find(|(s, k, _)| *s == section && *k == key).map(|(_, _, kind)| *kind)
                };
                let Some(kind) = kind else {
                    let known: Vec<&str> = KEYS.iter().filter(|(s, _, _)| *s == section).map(|(_, k, _)| *k).collect();
                    // The value of a key nobody knows is never echoed: it may be a password
                    // put under a misspelt name.
                    self.problems.push(Problem {
                        key: path,
                        value: NOT_SHOWN.to_string(),
                        origin,
                        fix: format!("unknown key; the keys of [{section}] are {}", known.join(", ")),
                    });
                    continue;
                };
                match coerce(&value, kind) {
                    Ok(coerced) => {
                        table.insert(key, coerced);
                    }
                    Err(fix) => {
                        let shown = if looks_secret(&key) { NOT_SHOWN.to_string() } else { display_value(&value) };
                        self.problems.push(Problem { key: path, value: shown, origin, fix })
                    }
                }
            }
        }
    }

    fn into_config(mut self) -> Result<Config, ConfigError> {
        self.check_keys();
        self.check_required();
        if !self.problems.is_empty() {
            return Err(ConfigError::Invalid { problems: self.problems });
        }
        let config: Config = toml::Value::Table(self.table.clone()).try_into().map_err(|e: toml::de::Error| {
            // Only missing keys and sections get here: unknown keys and types were checked.
            ConfigError::Invalid {
                problems: vec![Problem {
                    key: "(config)".to_string(),
                    value: String::new(),
                    origin: self.file_origin.clone(),
                    fix: format!("{}; add it to the config file (see config/pipeline.toml)", e.message()),
                }],
            }
        })?;
        let problems: Vec<Problem> = validate(&config)
            .into_iter()
            .map(|(key, value, fix)| Problem { origin: self.origin(&key), key, value, fix })
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }
}

fn known_sections() -> Vec<String> {
    let mut sections: Vec<String> = KEYS.iter().map(|(s, _, _)| format!("[{s}]")).collect();
    sections.dedup();
    sections.push(format!("[{SPARK_SECTION}]"));
    sections
}

/// The section an environment variable's name (after the prefix) starts with, if any.
fn env_section(rest: &str) -> Option<&'static str> {
    let mut sections: Vec<&'static str> = KEYS.iter().map(|(s, _, _)| *s).collect();
    sections.push(SPARK_SECTION);
    sections.into_iter().find(|section| {
        let upper = section.to_ascii_uppercase();
        rest.len() > upper.len() + 1 && rest.starts_with(&upper) && rest.as_bytes()[upper.len()] == b'_'
    })
}

fn display_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Coerces a value to `kind`: strings from the environment and flags become integers or
/// booleans; a file value of the wrong TOML type is an error.
fn coerce(value: &toml::Value, kind: Kind) -> Result<toml::Value, String> {
    match (kind, value) {
        (Kind::Text, toml::Value::String(_)) => Ok(value.clone()),
        (Kind::Text, _) => Err("must be a string; quote it".to_string()),
        (Kind::Integer, toml::Value::Integer(_)) => Ok(value.clone()),
        (Kind::Integer, toml::Value::String(s)) => {
            s.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| "must be a whole number, e.g. 2".to_string())
        }
        (Kind::Integer, _) => Err("must be a whole number, e.g. 2".to_string()),
        (Kind::Bool, toml::Value::Boolean(_)) => Ok(value.clone()),
        (Kind::Bool, toml::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err("must be true or false".to_string()),
        },
        (Kind::Bool, _) => Err("must be true or false".to_string()),
        (Kind::OneOf(allowed), toml::Value::String(s)) if allowed.contains(&s.as_str()) => Ok(value.clone()),
        (Kind::OneOf(allowed), _) => Err(format!("must be one of {}", allowed.join(", "))),
    }
}

/// Whole-config validation: `(key, value, fix)` for every bad key.
fn validate(config: &Config) -> Vec<(String, String, String)> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, value: &str, fix: String| problems.push((key.to_string(), value.to_string(), fix));

    let name = &config.pipeline.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bad("pipeline.name", name, "use letters, digits, '-' and '_' only (it names clusters and tags)".into());
    }
    for (key, bucket) in [("buckets.raw", &config.buckets.raw), ("buckets.staging", &config.buckets.staging)] {
        if let Err(fix) = check_bucket_name(bucket) {
            bad(key, bucket, fix);
        }
    }
    if config.buckets.raw == config.buckets.staging {
        bad(
            "buckets.staging",
            &config.buckets.staging,
            "must differ from buckets.raw (raw input and staging output are separate buckets)".into(),
        );
    }
    let region = &config.aws.region;
    if !region.is_empty() && !regex_is_match(r"^[a-z]{2}(-[a-z]+)+-\d$", region) {
        bad(
            "aws.region",
            region,
            "must be an AWS region such as us-east-1, or empty for the SDK's default chain".into(),
        );
    }
    if let Some(url) = config.endpoint_url() {
        match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
            _ => bad(
                "aws.endpoint_url",
                &mask_user_info(url),
                "must be an http(s) URL such as http://127.0.0.1:5000, or empty".into(),
            ),
        }
    }
    let label = &config.emr.release_label;
    if !regex_is_match(r"^emr-7\.\d+\.\d+$", label) {
        bad(
            "emr.release_label",
            label,
            "must be an EMR 7 release label such as emr-7.12.0 (the jobs need Spark 3.5)".into(),
        );
    }
    if let Some(id) = config.cluster_id() {
        if !regex_is_match(r"^j-[A-Z0-9]{1,64}$", id) {
            bad(
                "emr.cluster_id",
                id,
                "must be an EMR cluster id such as j-2AXXXXXXGAPLF, or empty to create a cluster".into(),
            );
        }
    }
    let log_uri = &config.emr.log_uri;
    let log_bucket = log_uri.strip_prefix("s3://").map(|rest| rest.split('/').next().unwrap_or(""));
    match log_bucket {
        Some(bucket) if !bucket.is_empty() => {
            // Locally the bucket is a folder of the lake: `..` would escape it.
            if let Err(fix) = check_bucket_name(bucket) {
                bad("emr.log_uri", log_uri, format!("its bucket {bucket:?} {fix}"));
            }
        }
        _ => bad("emr.log_uri", log_uri, "must be an s3:// URI such as s3://<raw bucket>/emr-logs/".into()),
    }
    for (key, value) in [
        ("emr.service_role", &config.emr.service_role),
        ("emr.instance_profile", &config.emr.instance_profile),
        ("emr.master_instance_type", &config.emr.master_instance_type),
        ("emr.core_instance_type", &config.emr.core_instance_type),
    ] {
        if value.trim().is_empty() {
            bad(key, value, "must not be empty (see the outputs of terraform/envs/dev)".into());
        }
    }
    for (key, value) in [
        ("emr.core_instance_count", config.emr.core_instance_count),
        ("emr.idle_timeout_minutes", config.emr.idle_timeout_minutes),
        ("emr.step_concurrency", config.emr.step_concurrency),
        ("emr.poll_interval_seconds", config.emr.poll_interval_seconds),
        ("emr.run_timeout_minutes", config.emr.run_timeout_minutes),
        ("emr.cluster_start_timeout_minutes", config.emr.cluster_start_timeout_minutes),
        ("ingest.part_size_mb", config.ingest.part_size_mb),
    ] {
        if value <= 0 {
            bad(key, &value.to_string(), "must be a positive whole number".into());
        }
    }
    if !(0..=100_000).contains(&config.local.shuffle_partitions) {
        bad(
            "local.shuffle_partitions",
            &config.local.shuffle_partitions.to_string(),
            "must be 0 (the [spark] value) to 100000".into(),
        );
    }
    if config.local.jit_quick_max_records < 0 {
        bad(
            "local.jit_quick_max_records",
            &config.local.jit_quick_max_records.to_string(),
            "must be 0 or more (0: `auto` never picks the quick JIT)".into(),
        );
    }
    if config.emr.step_concurrency > 256 {
        bad(
            "emr.step_concurrency",
            &config.emr.step_concurrency.to_string(),
            "EMR allows 1 to 256 concurrent steps".into(),
        );
    }
    // EMR's idle timeout is 60 seconds to 7 days.
    if config.emr.idle_timeout_minutes > 7 * 24 * 60 {
        bad(
            "emr.idle_timeout_minutes",
            &config.emr.idle_timeout_minutes.to_string(),
            "EMR allows at most 7 days (10080 minutes)".into(),
        );
    }
    for (key, value) in [
        ("local.lake_dir", &config.local.lake_dir),
        ("local.spark_submit", &config.local.spark_submit),
        ("local.master", &config.local.master),
    ] {
        if value.trim().is_empty() {
            bad(key, value, "must not be empty".into());
        }
    }
    if config.warehouse.kind == WarehouseKind::Redshift && config.warehouse.redshift_copy_role_arn.trim().is_empty() {
        bad(
            "warehouse.redshift_copy_role_arn",
            "",
            "must be the ARN of the role Redshift COPY assumes when warehouse.kind = redshift".into(),
        );
    }
    for (key, value) in [
        ("warehouse.password_secret_arn", &config.warehouse.password_secret_arn),
        ("source.password_secret_arn", &config.source.password_secret_arn),
    ] {
        if !value.trim().is_empty()
            && !regex_is_match(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$", value.trim())
        {
            bad(key, value, "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>), or empty".into());
        }
    }
    for (section, auth, arn) in [
        ("warehouse", &config.warehouse.auth, &config.warehouse.password_secret_arn),
        ("source", &config.source.auth, &config.source.password_secret_arn),
    ] {
        let key = format!("{section}.auth");
        match (auth.as_str(), non_empty(arn).is_some()) {
            ("secret", false) => bad(
                &key,
                auth,
                format!("needs {section}.password_secret_arn (the secret's ARN), or use auth = \"password\" / \"iam\""),
            ),
            ("password" | "iam", true) => bad(
                &key,
                auth,
                format!("{section}.password_secret_arn is set too: empty it, or use auth = \"secret\" (or \"auto\")"),
            ),
            _ => {}
        }
    }
    for (key, value) in &config.spark {
        if key.trim().is_empty() || key.contains(char::is_whitespace) || key.contains('=') {
            let shown = if looks_secret(key) { NOT_SHOWN } else { value.as_str() };
            bad(&format!("spark.{key}"), shown, "a Spark property name has no spaces or '='".into());
        }
    }
    if config.pipeline.target == Target::EmrServerless {
        validate_serverless(config, &mut bad);
    }
    problems
}

/// What a problem shows instead of a value that may be a secret.
pub const NOT_SHOWN: &str = "(value not shown)";

/// Whether a setting's name looks like it holds a secret (password, secret, token, key,
/// credential...): its value is masked wherever the driver echoes settings.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "credential", "private"].iter().any(|w| lower.contains(w))
        || lower.split(|c: char| !c.is_ascii_alphanumeric()).any(|part| part.ends_with("key") || part == "keytab")
}

/// `[serverless]`, checked only when the target is `emr-serverless`.
fn validate_serverless(config: &Config, bad: &mut impl FnMut(&str, &str, String)) {
    let sl = &config.serverless;
    if !regex_is_match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", &sl.execution_role_arn) {
        bad(
            "serverless.execution_role_arn",
            &sl.execution_role_arn,
            "must be the ARN of the job runtime role, arn:aws:iam::<account>:role/<name> (terraform output emr_serverless_runtime_role_arn)".into(),
        );
    }
    if let Some(id) = config.application_id() {
        if !regex_is_match(r"^[0-9a-z]{1,64}$", id) {
            bad(
                "serverless.application_id",
                id,
                "must be an EMR Serverless application id such as 00fabcdexyz12345, or empty to create one".into(),
            );
        }
    }
    for (key, value, prefix) in [
        ("serverless.subnet_ids", &sl.subnet_ids, "subnet-"),
        ("serverless.security_group_ids", &sl.security_group_ids, "sg-"),
    ] {
        if value.split(',').map(str::trim).filter(|v| !v.is_empty()).any(|v| !v.starts_with(prefix)) {
            bad(key, value, format!("must be comma-separated ids starting with {prefix}, or empty"));
        }
    }
    if !regex_is_match(r"^[1-9]\d* ?vCPU$", &sl.max_cpu) {
        bad("serverless.max_cpu", &sl.max_cpu, "must be a vCPU count such as \"64 vCPU\"".into());
    }
    if !regex_is_match(r"^[1-9]\d* ?GB$", &sl.max_memory) {
        bad("serverless.max_memory", &sl.max_memory, "must be a size in GB such as \"256 GB\"".into());
    }
    if !(1..=10080).contains(&sl.auto_stop_minutes) {
        bad(
            "serverless.auto_stop_minutes",
            &sl.auto_stop_minutes.to_string(),
            "EMR Serverless allows 1 to 10080 idle minutes".into(),
        );
    }
    if !sl.log_uri.is_empty() && !sl.log_uri.starts_with("s3://") {
        bad("serverless.log_uri", &sl.log_uri, "must be an s3:// URI, or empty for <emr.log_uri>serverless/".into());
    }
    for (key, value) in &config.spark {
        // sparkSubmitParameters is one string the service splits on whitespace.
        if value.contains(char::is_whitespace) {
            bad(
                &format!("spark.{key}"),
                if looks_secret(key) { NOT_SHOWN } else { value.as_str() },
                "EMR Serverless passes --conf in one space-separated string: a value cannot hold spaces".into(),
            );
        }
    }
}

/// Masks the user info of a URL-like value (`http://user:secret@host` → `http://***@host`),
/// so credentials embedded in an endpoint never reach messages or rendered output.
pub fn mask_user_info(url: &str) -> String {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[start..].find('/').map(|i| start + i).unwrap_or(url.len());
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

fn regex_is_match(pattern: &str, value: &str) -> bool {
    regex::Regex::new(pattern).expect("valid pattern").is_match(value)
}

/// S3 bucket naming rules (general purpose buckets).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let fix = |why: &str| {
        Err(format!("{why}; S3 bucket names are 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"))
    };
    if name.len() < 3 || name.len() > 63 {
        return fix("wrong length");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
        return fix("has characters S3 does not allow");
    }
    let first = name.chars().next().unwrap();
    let last = name.chars().last().unwrap();
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return fix("starts or ends with '.' or '-'");
    }
    if name.contains("..") || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return fix("has '..' or is an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return fix("uses a reserved prefix or suffix");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_list_matches_the_struct() {
        let text = include_str!("../../config/pipeline.toml");
        let config = Config::from_toml_str(text, "pipeline.toml", &HashMap::new(), &Overrides::default()).unwrap();
        let value = serde_json::to_value(&config).unwrap();
        let mut from_struct = Vec::new();
        for (section, table) in value.as_object().unwrap() {
            if section == SPARK_SECTION {
                continue;
            }
            for key in table.as_object().unwrap().keys() {
                from_struct.push(format!("{section}.{key}"));
            }
        }
        let mut from_list: Vec<String> = KEYS.iter().map(|(s, k, _)| format!("{s}.{k}")).collect();
        from_struct.sort();
        from_list.sort();
        assert_eq!(from_struct, from_list);
    }

    #[test]
    fn warehouse_url_comes_from_the_conventional_variable_and_emr_driver_wins() {
        let text = include_str!("../../config/pipeline.toml");
        let env: HashMap<String, String> = [("WAREHOUSE_URL".to_string(), "postgres://a@h/x".to_string())].into();
        let config = Config::from_toml_str(text, "f", &env, &Overrides::default()).unwrap();
        assert_eq!(config.warehouse.url, "postgres://a@h/x");
        let mut env = env;
        env.insert("EMR_DRIVER_WAREHOUSE_URL".into(), "postgres://b@h/x".into());
        let config = Config::from_toml_str(text, "f", &env, &Overrides::default()).unwrap();
        assert_eq!(config.warehouse.url, "postgres://b@h/x");
        // Where to run, not what is computed: the run id does not change with it.
        let without = Config::from_toml_str(text, "f", &HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(config.hash(), without.hash());
    }

    #[test]
    fn auth_auto_is_a_secret_when_one_is_named_and_conflicts_are_refused() {
        let text = include_str!("../../config/pipeline.toml");
        let load =
            |sets: &[&str]| Config::from_toml_str(text, "f", &HashMap::new(), &Overrides::parse_sets(sets).unwrap());
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-1-AbCdEf";
        let config = load(&[]).unwrap();
        assert_eq!((config.source_auth(), config.warehouse_auth()), (DbAuth::Password, DbAuth::Password));
        let config = load(&[&format!("source.password_secret_arn={arn}")]).unwrap();
        assert_eq!(config.source_auth(), DbAuth::Secret(arn));
        assert_eq!(config.warehouse_auth(), DbAuth::Password);
        let config = load(&[&format!("warehouse.password_secret_arn={arn}"), "warehouse.auth=secret"]).unwrap();
        assert_eq!(config.warehouse_auth(), DbAuth::Secret(arn));
        let config = load(&["source.auth=iam", "warehouse.auth=iam"]).unwrap();
        assert_eq!((config.source_auth(), config.warehouse_auth()), (DbAuth::Iam, DbAuth::Iam));
        // How the driver logs in is not what a run computes: the run id stays.
        assert_eq!(config.hash(), load(&[]).unwrap().hash());

        for (sets, key, fix) in [
            (vec!["source.auth=secret".to_string()], "source.auth", "needs source.password_secret_arn"),
            (
                vec!["warehouse.auth=iam".to_string(), format!("warehouse.password_secret_arn={arn}")],
                "warehouse.auth",
                "is set too",
            ),
            (vec!["source.auth=token".to_string()], "source.auth", "must be one of auto, password, secret, iam"),
        ] {
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            let text = load(&sets).unwrap_err().to_string();
            assert!(text.contains(key) && text.contains(fix), "{text}");
        }
    }

    #[test]
    fn warehouse_kind_is_typed_and_a_bad_one_is_named() {
        let text = include_str!("../../config/pipeline.toml");
        let load =
            |sets: &[&str]| Config::from_toml_str(text, "f", &HashMap::new(), &Overrides::parse_sets(sets).unwrap());
        assert_eq!(load(&[]).unwrap().warehouse.kind, WarehouseKind::Postgres);
        let redshift = load(&["warehouse.kind=redshift", "warehouse.redshift_copy_role_arn=arn:aws:iam::1:role/r"]);
        assert_eq!(redshift.unwrap().warehouse.kind, WarehouseKind::Redshift);
        // The keys' allowed values are the enum's names, which serialise as before (the run id).
        let allowed = KEYS.iter().find(|(s, k, _)| *s == "warehouse" && *k == "kind").map(|(_, _, kind)| *kind);
        assert_eq!(allowed, Some(Kind::OneOf(&["postgres", "redshift"])));
        for kind in [WarehouseKind::Postgres, WarehouseKind::Redshift] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let message = load(&["warehouse.kind=snowflake"]).unwrap_err().to_string();
        assert!(
            message.contains("warehouse.kind") && message.contains("must be one of postgres, redshift"),
            "{message}"
        );
    }

    #[test]
    fn bucket_rules() {
        assert!(check_bucket_name("movie-analytics-dev-raw").is_ok());
        for bad in ["ab", "Upper", "under_score", "-dash", "dot.", "a..b", "192.168.1.1", "xn--abc"] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
