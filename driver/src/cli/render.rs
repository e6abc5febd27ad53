//! `emr-driver render`: prints the resolved plan (every step config, the cluster request,
//! every URI) as JSON, calling nothing.

use std::path::PathBuf;

use crate::cli::Global;
use crate::config::{process_env, Config, Overrides, Target};
use crate::deploy::ArtifactSet;
use crate::error::{ExitCode, Result};
use crate::inputs::BoundInputs;
use crate::plan::Plan;

/// Flags that shape the plan; other commands flatten them too.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Where the Spark steps run (overrides pipeline.target).
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Reuse this EMR cluster instead of creating one (overrides emr.cluster_id).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Override any config key, e.g. --set buckets.raw=my-raw --set spark.spark.sql.shuffle.partitions=8.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub sets: Vec<String>,
    /// The repository root holding pyspark_jobs/ and bootstrap/.
    #[arg(long, default_value = ".")]
    pub project_root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    Local,
    Emr,
    EmrServerless,
}

impl From<TargetArg> for Target {
    fn from(value: TargetArg) -> Self {
        match value {
            TargetArg::Local => Target::Local,
            TargetArg::Emr => Target::Emr,
            TargetArg::EmrServerless => Target::EmrServerless,
        }
    }
}

impl PlanArgs {
    /// The flag overrides: `--set` first, then the dedicated flags (which win).
    pub fn overrides(&self) -> Result<Overrides> {
        let mut overrides = Overrides::parse_sets(&self.sets)?;
        if let Some(target) = self.target {
            overrides = overrides.set("pipeline.target", Target::from(target).as_str());
        }
        if let Some(id) = &self.cluster_id {
            overrides = overrides.set("emr.cluster_id", id.clone());
        }
        Ok(overrides)
    }

    /// The configuration: file, environment, then these flags, validated once as a whole
    /// (so a flag can fix a bad value from the file or the environment).
    pub fn config(&self, global: &Global) -> Result<Config> {
        Ok(Config::load(&global.config, &process_env(), &self.overrides()?)?)
    }

    /// The plan for `date` and `inputs`, with the artifacts built from the project root.
    pub fn plan(&self, config: &Config, date: &str, inputs: &BoundInputs) -> Result<Plan> {
        let artifacts = ArtifactSet::build(&self.project_root)?;
        Ok(Plan::resolve(config, &Overrides::default(), date, &artifacts, inputs)?)
    }
}

pub use crate::inputs::find as find_inputs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// The plan of `run --raw-dir DIR`: the inputs are the files of DIR as `ingest` will cut
    /// them (nothing is written). Without it, the date's incoming folder in the raw bucket.
    #[arg(long)]
    pub raw_dir: Option<PathBuf>,
    /// The source database the run will be given (its URL, without credentials, is part of
    /// the inputs, hence of the run id).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub plan: PlanArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let config = args.plan.config(global)?;
    let inputs = find_inputs(
        &config,
        &args.date,
        args.raw_dir.as_deref(),
        args.database_url.as_deref(),
        &args.plan.project_root,
    )
    .await?;
    let plan = args.plan.plan(&config, &args.date, &inputs)?;
    let text = serde_json::to_string_pretty(&plan.to_json()).expect("the plan serialises");
    println!("{text}");
    Ok(ExitCode::Success)
}
