//! `emr-driver report`: the five analysts' questions against the warehouse, as tables (or
//! JSON with `--output json`).

use crate::cli::load_user_purchase::DbArgs;
use crate::cli::{Global, Output};
use crate::db::{self, report};
use crate::error::{ExitCode, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The warehouse schema.
    #[arg(long, env = "WAREHOUSE_SCHEMA", default_value = "public")]
    pub schema: String,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let mut client = db::connect(&args.db.database_url).await?;
    let answers = report::run_report(&mut client, &args.schema).await?;
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&answers).expect("answers serialise")),
        Output::Text => print!("{}", report::format_text(&answers)),
    }
    Ok(ExitCode::Success)
}
