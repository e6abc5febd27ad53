//! `emr-driver load-user-purchase FILE`: the UCI `user_purchase.csv` into PostgreSQL.

use std::path::PathBuf;

use crate::cli::{Global, Output};
use crate::db::login::{DbLogin, DbRole};
use crate::db::user_purchase::{self, LoadOptions, LoadReport};
use crate::db::{self, DbError};
use crate::error::{ExitCode, Result};
use std::sync::Arc;

use crate::cli::render::PlanArgs;
use crate::store::{ObjectReader, ObjectStore, ObjectUri};

/// Connection options shared by the database commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// PostgreSQL / Redshift connection URL (postgres://user:password@host:5432/db?sslmode=require)
    /// or key=value conninfo. The password is never logged.
    #[arg(long, env = db::DATABASE_URL_ENV, hide_env_values = true, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
}

/// Where `s3://` URIs live: the configured store (the local lake folder for the local target,
/// S3 for `emr`).
#[derive(Debug, Clone, clap::Args)]
pub struct LakeArgs {
    /// The local folder standing in for the buckets (`s3://b/k` is `<lake-dir>/b/k`);
    /// overrides [local] lake_dir.
    #[arg(long)]
    pub lake_dir: Option<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
}

impl LakeArgs {
    pub async fn store(&self, global: &Global) -> Result<Arc<dyn ObjectStore>> {
        let mut plan = self.plan.clone();
        if let Some(dir) = &self.lake_dir {
            plan.sets.push(format!("local.lake_dir={}", dir.display()));
        }
        Ok(crate::backend::Backend::for_config(&plan.config(global)?, &plan.project_root).await.store)
    }

    /// The configuration for a database login: the file, the environment and the flags, or,
    /// without a config file, the built-in defaults under the same environment and flags (a
    /// local file loads into a local database with no configuration at all).
    pub fn login_config(&self, global: &Global) -> Result<crate::config::Config> {
        crate::backend::config_or_defaults(&global.config, &self.plan.overrides()?)
    }
}

impl DbArgs {
    /// The login to `--database-url` for `role` (`source.auth` or `warehouse.auth`, and the
    /// secrets' ARNs, from the configuration): the same keys as `run`.
    pub async fn login(&self, role: DbRole, lake: &LakeArgs, global: &Global) -> Result<DbLogin> {
        let config = lake.login_config(global)?;
        crate::cli::logins::login(role, &self.database_url, &config, None, crate::clock::SystemClock::shared()).await
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The UCI file (`.csv` or `.csv.gz`): a local path or an `s3://` URI.
    pub file: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Load the good rows and report the bad ones, instead of failing on the first load
    /// with bad rows.
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
}

/// Opens a local path or an `s3://` URI for streaming; the configured store is opened only
/// for a URI, so loading a local file needs no configuration.
pub async fn open_source(source: &str, lake: &LakeArgs, global: &Global) -> Result<ObjectReader> {
    if source.contains("://") {
        let uri = ObjectUri::parse(source)?;
        let store = lake.store(global).await?;
        return Ok(store.reader(&uri).await?);
    }
    let file = tokio::fs::File::open(source)
        .await
        .map_err(|source_err| DbError::Read { source_name: source.to_string(), source: source_err })?;
    Ok(Box::pin(file))
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let reader = open_source(&args.file, &args.lake, global).await?;
    let mut client = args.db.login(DbRole::Source, &args.lake, global).await?.connect().await?;
    let opts = LoadOptions { skip_bad_rows: args.skip_bad_rows };
    let report = user_purchase::load(&mut client, reader, &args.file, opts).await?;
    print_load_report(&report, &args.file, "loaded into user_purchase", global.output);
    Ok(ExitCode::Success)
}

/// JSON on stdout, or a summary on stdout and the bad rows on stderr.
pub fn print_load_report(report: &LoadReport, source: &str, done: &str, output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string(report).expect("report serialises")),
        Output::Text => {
            println!("{source}: {} rows {done}, {} bad rows skipped", report.rows_loaded, report.bad_row_count);
            for bad in &report.bad_rows {
                eprintln!("  line {}: {}", bad.line, bad.reason);
            }
            let hidden = report.bad_row_count.saturating_sub(report.bad_rows.len() as u64);
            if hidden > 0 {
                eprintln!("  ... and {hidden} more");
            }
        }
    }
}
