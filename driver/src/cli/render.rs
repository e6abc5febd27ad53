//! `emr-driver render`: prints the resolved plan (every step config, the cluster request,
//! every URI) as JSON, calling nothing.

use std::path::PathBuf;

use crate::cli::Global;
use crate::config::{process_env, Config, Overrides, Target};
use crate::deploy::ArtifactSet;
use crate::error::{ExitCode, Result};
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

    /// The plan for `date`, with the artifacts built from the project root.
    pub fn plan(&self, global: &Global, date: &str) -> Result<Plan> {
        let config = self.config(global)?;
        let artifacts = ArtifactSet::build(&self.project_root)?;
        Ok(Plan::resolve(&config, &Overrides::default(), date, &artifacts)?)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    #[command(flatten)]
    pub plan: PlanArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let plan = args.plan.plan(global, &args.date)?;
    let text = serde_json::to_string_pretty(&plan.to_json()).expect("the plan serialises");
    println!("{text}");
    Ok(ExitCode::Success)
}
