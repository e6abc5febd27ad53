//! `emr-driver load-warehouse --date D --load-root URI`: a run's dims and fact into the
//! warehouse; with `--redshift-iam-role ARN`, prints the Redshift load script instead.

use crate::cli::load_user_purchase::{DbArgs, LakeArgs};
use crate::cli::{Global, Output};
use crate::db::login::DbRole;
use crate::db::{self, redshift, warehouse};
use crate::error::{ExitCode, Result};
use crate::store::ObjectUri;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run date (YYYY-MM-DD): its fact rows are replaced.
    #[arg(long)]
    pub date: chrono::NaiveDate,
    /// The folder the jobs wrote the load files to: a run's own
    /// s3://<staging>/warehouse_load/dt=D/run=<run id> (the date's published one is the `load_root`
    /// of s3://<staging>/_published/dt=D.json), never the bare dt=D folder.
    #[arg(long)]
    pub load_root: String,
    /// The warehouse schema.
    #[arg(long, env = "WAREHOUSE_SCHEMA", default_value = "public")]
    pub schema: String,
    /// Print the Redshift load script (COPY ... IAM_ROLE) for this role instead of loading.
    #[arg(long)]
    pub redshift_iam_role: Option<String>,
    /// Load into this embedded SQLite warehouse file instead of PostgreSQL (a local run
    /// without a database uses <lake_dir>/warehouse/movie_analytics.sqlite).
    #[arg(long, conflicts_with = "redshift_iam_role")]
    pub sqlite: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub lake: LakeArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let load_root = ObjectUri::parse(args.load_root.trim_end_matches('/'))?;
    if let Some(role) = &args.redshift_iam_role {
        let statements = redshift::render_load_sql(&args.schema, &load_root, role, args.date)?;
        match global.output {
            Output::Json => {
                let sql: Vec<&str> = statements.iter().map(|s| s.sql()).collect();
                println!("{}", serde_json::to_string(&sql).expect("strings serialise"));
            }
            Output::Text => print!("{}", redshift::to_script(&statements)),
        }
        return Ok(ExitCode::Success);
    }
    let store = args.lake.store(global).await?;
    let report = match &args.sqlite {
        Some(path) => db::embedded::load_run(path, store, &load_root, args.date).await?,
        None => {
            let mut client = args.db.login(DbRole::Warehouse, &args.lake, global).await?.connect().await?;
            warehouse::load_run(&mut client, store.as_ref(), &args.schema, &load_root, args.date).await?
        }
    };
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&report).expect("report serialises")),
        Output::Text => {
            println!(
                "warehouse loaded for {} ({} fact rows of that date replaced)",
                report.run_date, report.fact_rows_replaced
            );
            for table in &report.tables {
                println!("  {:<22} {:>9} rows from {} file(s)", table.table, table.rows, table.files);
            }
        }
    }
    Ok(ExitCode::Success)
}
