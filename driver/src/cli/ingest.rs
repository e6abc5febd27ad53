//! `emr-driver ingest --date D FILE...`: puts a date's vendor files into the raw bucket
//! (`incoming/dt=D/`), checking each one first; movie_review and log_reviews are cut into
//! record-aligned gzipped parts (`incoming/dt=D/movie_review/part-00000.csv.gz`..., with a
//! `_manifest.json`), so Spark reads a big file as many tasks.

use std::path::PathBuf;

use crate::cli::render::PlanArgs;
use crate::cli::{Global, Output};
use crate::error::{ExitCode, Result};
use crate::plan::{parse_run_date, LakeUris};
use crate::store::ObjectUri;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date the files belong to, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// movie_review.csv, log_reviews.csv and/or user_purchase.csv (each may be .csv.gz).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let config = args.plan.config(global)?;
    let date = parse_run_date(&args.date)?.format("%Y-%m-%d").to_string();
    let uris = LakeUris::new(&config, &date, "");
    let incoming = ObjectUri::parse(&uris.incoming)?;
    let store = crate::backend::Backend::for_config(&config, &args.plan.project_root).await.store;
    let part_size = config.ingest.part_size_bytes();
    let done = crate::ingest::ingest(store.as_ref(), &incoming, &args.files, part_size).await?;
    match global.output {
        Output::Json => {
            let done: std::collections::BTreeMap<_, String> = done.iter().map(|(k, v)| (*k, v.to_string())).collect();
            println!("{}", serde_json::to_string(&done).expect("a map of strings serialises"))
        }
        Output::Text => {
            for (input, uri) in &done {
                println!("{input}\t{uri}");
            }
        }
    }
    Ok(ExitCode::Success)
}
