//! `emr-driver deploy`: uploads the job package, the entry script and the bootstrap script to
//! the raw bucket under content-addressed keys, skipping what is already there.

use serde_json::json;

use crate::cli::render::PlanArgs;
use crate::cli::{Global, Output};
use crate::deploy::{deploy, ArtifactSet, PlannedArtifact};
use crate::error::{ExitCode, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List what would be uploaded and where, without calling anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let config = args.plan.config(global)?;
    let artifacts = ArtifactSet::build(&args.plan.project_root)?;
    let planned: Vec<PlannedArtifact> =
        artifacts.all().iter().map(|a| PlannedArtifact::new(a, &config.buckets.raw)).collect();
    if args.dry_run {
        print_dry_run(&planned, global.output);
        return Ok(ExitCode::Success);
    }
    let store = crate::backend::Backend::for_config(&config, &args.plan.project_root).await.store;
    let mut progress = |line: &str| eprintln!("{line}");
    let report = deploy(store.as_ref(), &planned, &mut progress).await?;
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&report).expect("the report serialises")),
        Output::Text => {
            for (name, uri) in &report.uris {
                println!("{name}\t{uri}");
            }
            eprintln!("{} uploaded, {} already there", report.uploaded.len(), report.skipped.len());
        }
    }
    Ok(ExitCode::Success)
}

fn print_dry_run(planned: &[PlannedArtifact], output: Output) {
    match output {
        Output::Json => {
            let doc = json!({"dry_run": true, "artifacts": planned});
            println!("{}", serde_json::to_string(&doc).expect("serialises"));
        }
        Output::Text => {
            for artifact in planned {
                println!("{}\t{}", artifact.name, artifact.uri);
            }
            eprintln!("dry run: each file above is uploaded unless an object with its sha256 is already at its URI");
        }
    }
}
