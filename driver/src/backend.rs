//! The edge, assembled once: for a plan (or a configuration), the object store, the step
//! runner provider, the clock and the per-target poll / diagnose / settle options, all from
//! ONE AWS configuration loaded once. Every command (run, submit, status, wait, logs, deploy,
//! ingest...) starts from a [`Backend`]; nothing else loads an AWS configuration or chooses a
//! runner by target.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::clock::{Clock, SystemClock};
use crate::cluster::{create_cluster, find_cluster_for_run};
use crate::config::{Config, ConfigError, Overrides, Target};
use crate::diagnose::DiagnoseOptions;
use crate::error::{Error, ExitCode, Result};
use crate::manifest::ClusterRef;
use crate::pipeline::{ProvidedRunner, RunnerProvider};
use crate::plan::Plan;
use crate::poll::PollOptions;
use crate::runner::emr::{CreatedCluster, EmrRunner};
use crate::runner::local::{JitMode, JitPolicy, LocalRunner, LocalRunnerOptions, SparkApplication};
use crate::runner::serverless::{ensure_application, ReadyApplication, ServerlessRunner};
use crate::runner::StepRunner;
use crate::store::local::LocalStore;
use crate::store::s3::S3Store;
use crate::store::{ObjectStore, ObjectUri};

/// How long cancelled steps get to settle before the cluster is terminated.
pub const SETTLE: Duration = Duration::from_secs(120);

/// How long a stopped EMR Serverless application gets to start.
pub const APPLICATION_START_WAIT: Duration = Duration::from_secs(10 * 60);

/// The EMR Serverless poll lists the job runs created in this last stretch of time: the run's
/// own (its deadline is hours) and those of an earlier attempt it attaches to.
pub const LOOKBACK: Duration = Duration::from_secs(24 * 3600);

/// How often a local run asks the local runner for its steps' states. The answer is in memory
/// (a lock and a copy of a few rows), and a step's successor starts only once a poll sees it
/// ended: at 1 s the three waits of a local run cost about 2 s of its 27 s, at 250 ms about
/// 0.4 s of 16 s (BENCHMARKS.md section 3); at 50 ms about 0.1 s.
pub const LOCAL_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The timing of one target: how often to poll (and the run's deadline), how long to wait for
/// the logs of a failed step, how long cancelled steps get to settle.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    pub poll: PollOptions,
    pub diagnose: DiagnoseOptions,
    pub settle: Duration,
}

impl TargetOptions {
    /// From the configuration: `[emr] poll_interval_seconds` and `run_timeout_minutes` on AWS;
    /// the local runner answers from memory and its logs are complete when the process ends,
    /// so it is polled every [`LOCAL_POLL_INTERVAL`] and its logs are waited for briefly.
    pub fn for_config(config: &Config) -> Self {
        let emr = &config.emr;
        let deadline = Duration::from_secs(emr.run_timeout_minutes.max(1) as u64 * 60);
        match config.pipeline.target {
            Target::Local => TargetOptions {
                poll: PollOptions { interval: LOCAL_POLL_INTERVAL, deadline: Some(deadline), ..PollOptions::default() },
                diagnose: DiagnoseOptions {
                    wait_for_logs: Duration::from_secs(2),
                    first_backoff: Duration::from_millis(200),
                    ..Default::default()
                },
                settle: SETTLE,
            },
            // EMR Serverless polls, diagnoses and settles as EMR does.
            Target::Emr | Target::EmrServerless => TargetOptions {
                poll: PollOptions {
                    interval: Duration::from_secs(emr.poll_interval_seconds.max(1) as u64),
                    deadline: Some(deadline),
                    ..PollOptions::default()
                },
                diagnose: DiagnoseOptions::default(),
                settle: SETTLE,
            },
        }
    }
}

/// Everything a command needs to reach where the steps run, built once.
pub struct Backend {
    pub config: Config,
    pub target: Target,
    pub store: Arc<dyn ObjectStore>,
    pub clock: Arc<dyn Clock>,
    pub options: TargetOptions,
    /// The AWS configuration (standard chain + `[aws]`), loaded once; `None` for `local`.
    sdk: Option<SdkConfig>,
    project_root: PathBuf,
}

impl Backend {
    /// The backend of a resolved plan.
    pub async fn for_plan(plan: &Plan, project_root: &Path) -> Backend {
        Backend::for_config(&plan.config, project_root).await
    }

    /// The backend of a configuration (commands without a run date: deploy, status...).
    pub async fn for_config(config: &Config, project_root: &Path) -> Backend {
        let sdk = match config.pipeline.target {
            Target::Local => None,
            Target::Emr | Target::EmrServerless => {
                Some(crate::aws::sdk_config(&crate::aws::AwsSettings::from_config(config)).await)
            }
        };
        let store: Arc<dyn ObjectStore> = match &sdk {
            None => Arc::new(LocalStore::new(&config.local.lake_dir)),
            Some(sdk) => Arc::new(S3Store::new(crate::aws::s3_client(sdk))),
        };
        Backend {
            config: config.clone(),
            target: config.pipeline.target,
            store,
            clock: SystemClock::shared(),
            options: TargetOptions::for_config(config),
            sdk,
            project_root: project_root.to_path_buf(),
        }
    }

    /// The same backend with another clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The AWS configuration, when the target is on AWS.
    pub fn sdk(&self) -> Option<&SdkConfig> {
        self.sdk.as_ref()
    }

    fn sdk_or_err(&self, what: &str) -> Result<&SdkConfig> {
        self.sdk.as_ref().ok_or_else(|| {
            Error::new(
                ExitCode::BadInput,
                format!("{what} needs an AWS target; pass --target emr (or set pipeline.target)"),
            )
        })
    }

    pub fn emr_client(&self) -> Result<aws_sdk_emr::Client> {
        Ok(crate::aws::emr_client(self.sdk_or_err("EMR")?))
    }

    pub fn serverless_client(&self) -> Result<aws_sdk_emrserverless::Client> {
        Ok(aws_sdk_emrserverless::Client::new(self.sdk_or_err("EMR Serverless")?))
    }

    /// The application to run job runs on (configured, found, or created, and started), and
    /// a runner on it that lists the job runs created since [`LOOKBACK`] ago.
    pub async fn serverless_runner(
        &self,
        application_id: Option<&str>,
        run_id: &str,
        config_hash: &str,
    ) -> Result<(ServerlessRunner, ReadyApplication)> {
        let client = self.serverless_client()?;
        let request = crate::serverless::create_application_request(&self.config, run_id, config_hash);
        let configured = application_id.or(self.config.application_id());
        let ready = ensure_application(
            &client,
            configured,
            &request,
            self.clock.as_ref(),
            self.options.poll.interval,
            APPLICATION_START_WAIT,
        )
        .await?;
        let context = crate::serverless::JobRunContext::new(&self.config, run_id, config_hash);
        let since = self.clock.now() - chrono::Duration::from_std(LOOKBACK).expect("a day fits");
        Ok((ServerlessRunner::new(client, ready.id.clone(), context, since), ready))
    }

    /// `[emr] log_uri`, parsed.
    fn log_uri(&self) -> Option<ObjectUri> {
        ObjectUri::parse(&self.config.emr.log_uri).ok()
    }

    /// What `run` gets its runner from, once the artifacts are deployed.
    pub fn provider(&self) -> Result<Box<dyn RunnerProvider>> {
        Ok(match self.target {
            Target::Local => Box::new(LocalProvider::new(
                local_runner_options(&self.config, &self.project_root)?,
                Arc::clone(&self.clock),
            )),
            Target::Emr => Box::new(EmrProvider { client: self.emr_client()? }),
            Target::EmrServerless => Box::new(ServerlessProvider { backend: self.clone_for_provider() }),
        })
    }

    fn clone_for_provider(&self) -> Backend {
        Backend {
            config: self.config.clone(),
            target: self.target,
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            options: self.options.clone(),
            sdk: self.sdk.clone(),
            project_root: self.project_root.clone(),
        }
    }

    /// A runner for steps outside a run (`submit`, `status`, `wait`): the local Spark, the
    /// given EMR cluster, attached (never terminated), or the EMR Serverless application
    /// (`id`, else the configured or the driver's own, started if stopped).
    pub async fn attached_runner(
        &self,
        id: Option<&str>,
        run_id: &str,
        config_hash: &str,
    ) -> Result<Arc<dyn StepRunner>> {
        Ok(match self.target {
            Target::Local => Arc::new(LocalRunner::new(
                local_runner_options(&self.config, &self.project_root)?,
                Arc::clone(&self.clock),
            )),
            Target::Emr => Arc::new(self.emr_runner(id.or(self.config.cluster_id()))?),
            Target::EmrServerless => Arc::new(self.serverless_runner(id, run_id, config_hash).await?.0),
        })
    }

    /// An EMR runner attached to `cluster_id`, with `[emr] log_uri` for the diagnosis.
    pub fn emr_runner(&self, cluster_id: Option<&str>) -> Result<EmrRunner> {
        let cluster = cluster_id.ok_or_else(|| {
            Error::new(ExitCode::BadInput, "this needs an EMR cluster: pass --cluster-id j-... (or set emr.cluster_id)")
        })?;
        Ok(EmrRunner::attach(self.emr_client()?, cluster).with_log_uri(self.log_uri()))
    }
}

/// The configuration at `path` (then the environment, then `overrides`) or, when the file
/// cannot be read, the built-in defaults with an empty `[aws]` section, so the standard AWS
/// chain alone decides the region, profile and endpoint. For the commands that only reach
/// steps already submitted (`status`, `wait`, `logs`), which work without a config file.
pub fn config_or_defaults(path: &Path, overrides: &Overrides) -> Result<Config> {
    let env = crate::config::process_env();
    match Config::load(path, &env, overrides) {
        Err(ConfigError::Read { .. }) => {
            tracing::debug!("no config file at {}: using the built-in defaults", path.display());
            let mut table: toml::Table = DEFAULT_CONFIG.parse().expect("the built-in configuration is valid TOML");
            if let Some(aws) = table.get_mut("aws").and_then(|a| a.as_table_mut()) {
                for key in ["region", "endpoint_url", "profile"] {
                    aws.insert(key.to_string(), toml::Value::String(String::new()));
                }
            }
            Ok(Config::from_toml_str(&table.to_string(), "the built-in defaults", &env, overrides)?)
        }
        other => Ok(other?),
    }
}

/// `config/pipeline.toml` as shipped.
const DEFAULT_CONFIG: &str = include_str!("../../config/pipeline.toml");

/// The local runner's options from the configuration: the lake folder, the pinned
/// spark-submit (a relative path is taken from the project root), logs under
/// `<emr.log_uri>local/` in the lake, the class-data archive (relative: from the project root).
pub fn local_runner_options(config: &Config, project_root: &Path) -> Result<LocalRunnerOptions> {
    let spark_submit = PathBuf::from(&config.local.spark_submit);
    let spark_submit = if spark_submit.is_relative() && spark_submit.components().count() > 1 {
        project_root.join(spark_submit)
    } else {
        spark_submit
    };
    let log_uri = ObjectUri::parse(&config.emr.log_uri)?;
    // Checked by the configuration (one of SparkApplication::NAMES); the default otherwise.
    let spark_application = SparkApplication::parse(&config.local.spark_application).unwrap_or_default();
    Ok(LocalRunnerOptions {
        lake: LocalStore::new(&config.local.lake_dir),
        spark_submit,
        master: config.local.master.clone(),
        driver_memory: config.local.driver_memory.clone(),
        concurrency: config.emr.step_concurrency.max(1) as usize,
        log_prefix: log_uri.join("local/"),
        kill_grace: Duration::from_secs(10),
        spark_application,
        step_server: project_root.join("pyspark_jobs").join("step_server.py"),
        class_data_archive: Some(&config.local.class_data_archive)
            .filter(|a| !a.is_empty())
            .map(|archive| project_root.join(archive)),
        jit: JitPolicy {
            // Checked by the configuration (one of JitMode::NAMES, a count >= 0).
            mode: JitMode::parse(&config.local.jit).unwrap_or_default(),
            quick_max_records: config.local.jit_quick_max_records.max(0) as u64,
        },
        shuffle_partitions: u32::try_from(config.local.shuffle_partitions).ok().filter(|n| *n > 0),
    })
}

/// Steps on a local Spark, in this process: one runner, made by the first of `warm_up` and
/// `provide`, so the application the warm-up starts is the one the steps go to.
pub struct LocalProvider {
    pub options: LocalRunnerOptions,
    pub clock: Arc<dyn Clock>,
    runner: std::sync::OnceLock<Arc<LocalRunner>>,
}

impl LocalProvider {
    pub fn new(options: LocalRunnerOptions, clock: Arc<dyn Clock>) -> Self {
        LocalProvider { options, clock, runner: std::sync::OnceLock::new() }
    }

    fn runner(&self) -> Arc<LocalRunner> {
        Arc::clone(
            self.runner.get_or_init(|| Arc::new(LocalRunner::new(self.options.clone(), Arc::clone(&self.clock)))),
        )
    }
}

#[async_trait]
impl RunnerProvider for LocalProvider {
    /// Starts the shared Spark application while the driver checks the inputs and stages
    /// user_purchase (the JVM start-up then costs the run nothing).
    async fn warm_up(&self, _plan: &Plan, records: Option<u64>) {
        self.runner().warm_up(records);
    }

    async fn provide(&self, _plan: &Plan) -> Result<ProvidedRunner> {
        Ok(ProvidedRunner { runner: self.runner(), kind: "local-spark", cluster: None })
    }

    async fn wait_terminated(&self) {
        if let Some(runner) = self.runner.get() {
            runner.wait_terminated().await;
        }
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
            (
                EmrRunner::attach(self.client.clone(), id.clone()),
                ClusterRef { id: id.clone(), created_by_run: false, kind: None },
            )
        } else if let Some(id) = find_cluster_for_run(&self.client, &plan.run_id).await? {
            tracing::info!("reusing cluster {id}, created by an earlier attempt of run {}", plan.run_id);
            let created = CreatedCluster::adopted_from_earlier_attempt(id.clone());
            (
                EmrRunner::created_by_this_run(self.client.clone(), created),
                ClusterRef { id, created_by_run: true, kind: None },
            )
        } else {
            let request = plan.cluster.as_ref().expect("an EMR plan without a cluster id has a cluster request");
            let created = create_cluster(&self.client, request).await?;
            let id = created.cluster_id().to_string();
            tracing::info!(
                "created cluster {id} (terminates itself after {} idle minutes)",
                plan.config.emr.idle_timeout_minutes
            );
            (
                EmrRunner::created_by_this_run(self.client.clone(), created),
                ClusterRef { id, created_by_run: true, kind: None },
            )
        };
        Ok(ProvidedRunner { runner: Arc::new(runner.with_log_uri(log_uri)), kind: "emr", cluster: Some(cluster) })
    }
}

/// Job runs on EMR Serverless: the configured application, else the one the driver created
/// earlier (by name), else a new one (`CreateApplication` as the plan shows it); started and
/// waited for when stopped. The run never deletes it.
pub struct ServerlessProvider {
    backend: Backend,
}

#[async_trait]
impl RunnerProvider for ServerlessProvider {
    async fn provide(&self, plan: &Plan) -> Result<ProvidedRunner> {
        let (runner, ready) =
            self.backend.serverless_runner(plan.config.application_id(), &plan.run_id, &plan.config_hash).await?;
        Ok(ProvidedRunner {
            runner: Arc::new(runner),
            kind: "emr-serverless",
            cluster: Some(ClusterRef {
                id: ready.id,
                created_by_run: ready.created_by_run,
                kind: Some("application".into()),
            }),
        })
    }
}
