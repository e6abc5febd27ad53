//! `emr-driver export-user-purchase --date D --to URI`: the `user_purchase` table to the
//! staging bucket (gzip CSV), or, with `--from-uci FILE`, the UCI file converted to the same
//! format without a database.

use crate::cli::load_user_purchase::{open_source, print_load_report, DbArgs, LakeArgs};
use crate::cli::{Global, Output};
use crate::db::export;
use crate::db::login::DbRole;
use crate::db::user_purchase::{self, LoadOptions};
use crate::error::{ExitCode, Result};
use crate::store::ObjectUri;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date (YYYY-MM-DD), for the log; the partition is in `--to`.
    #[arg(long)]
    pub date: chrono::NaiveDate,
    /// The object to write: s3://<staging>/user_purchase/dt=D/user_purchase.csv.gz
    #[arg(long)]
    pub to: String,
    /// Convert this UCI file (local path or s3:// URI) instead of reading the database.
    #[arg(long)]
    pub from_uci: Option<String>,
    /// With --from-uci: write the good rows and report the bad ones instead of failing.
    #[arg(long, requires = "from_uci")]
    pub skip_bad_rows: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub lake: LakeArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let store = args.lake.store(global).await?;
    let uri = ObjectUri::parse(&args.to)?;
    let target = export::ExportTarget::File(uri.clone());
    tracing::info!(date = %args.date, %uri, "exporting user_purchase");
    if let Some(source) = &args.from_uci {
        let reader = open_source(source, &args.lake, global).await?;
        let opts = LoadOptions { skip_bad_rows: args.skip_bad_rows };
        let report = user_purchase::uci_to_export_object(reader, source, store.as_ref(), &target, opts).await?;
        print_load_report(&report, source, &format!("written to {uri}"), global.output);
        return Ok(ExitCode::Success);
    }
    let client = args.db.login(DbRole::Source, &args.lake, global).await?.connect().await?;
    let report = export::export_user_purchase(&client, store.as_ref(), &target).await?;
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&report).expect("report serialises")),
        Output::Text => println!("{uri}: {} rows exported ({} bytes gzip)", report.rows, report.bytes),
    }
    Ok(ExitCode::Success)
}
