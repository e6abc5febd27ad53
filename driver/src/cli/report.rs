//! `emr-driver report`: the five analysts' questions against the warehouse, as tables (or
//! JSON with `--output json`); `--html FILE` also writes the self-contained HTML report.
//! Without `--database-url` (or `DATABASE_URL`) it reads the embedded warehouse of the lake.
//! `--over spectrum` asks them of the staging fact through the Redshift Spectrum external
//! schema (the dimensions stay the warehouse's); `--print-sql` prints the SQL that would run
//! and connects to nothing.

use std::path::PathBuf;

use crate::cli::load_user_purchase::LakeArgs;
use crate::cli::{Global, Output};
use crate::clock::SystemClock;
use crate::config::Target;
use crate::db::login::DbRole;
use crate::db::target::Warehouse;
use crate::db::{self, embedded, report};
use crate::error::{ExitCode, Result};
use crate::reporting::html::RejectsLinks;
use crate::store::local::LocalStore;

/// Which warehouse to read: PostgreSQL, or the embedded SQLite file of the lake.
#[derive(Debug, clap::Args)]
pub struct WarehouseArgs {
    /// The warehouse schema (PostgreSQL).
    #[arg(long, env = "WAREHOUSE_SCHEMA", default_value = "public")]
    pub schema: String,
    /// A PostgreSQL warehouse (postgres://user:password@host:5432/db or key=value conninfo; the
    /// password is never shown). Without it: the embedded warehouse of the lake.
    #[arg(long, env = db::DATABASE_URL_ENV, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The embedded warehouse file; default <lake_dir>/warehouse/movie_analytics.sqlite.
    #[arg(long, conflicts_with = "database_url")]
    pub sqlite: Option<PathBuf>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl WarehouseArgs {
    /// The warehouse to read; a PostgreSQL one logs in as `warehouse.auth` says (the same keys
    /// as `run`).
    pub async fn warehouse(&self, global: &Global) -> Result<Warehouse> {
        if let Some(url) = self.database_url.as_ref().filter(|u| !u.is_empty()) {
            let config = self.lake.login_config(global)?;
            let login = crate::cli::logins::login(DbRole::Warehouse, url, &config, None, SystemClock::shared()).await?;
            return Ok(Warehouse::Postgres { login, schema: self.schema.clone() });
        }
        let path = match &self.sqlite {
            Some(path) => path.clone(),
            None => embedded::default_path(&self.lake_dir(global)?),
        };
        Ok(Warehouse::Embedded { path })
    }

    pub fn lake_dir(&self, global: &Global) -> Result<PathBuf> {
        Ok(match &self.lake.lake_dir {
            Some(dir) => dir.clone(),
            None => PathBuf::from(self.lake.plan.config(global)?.local.lake_dir),
        })
    }
}

/// Which fact the questions read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Over {
    /// The warehouse's fact and dimensions (`--schema`).
    Warehouse,
    /// The staging fact through the Redshift Spectrum external schema (`--spectrum-schema`),
    /// joined with the warehouse's dimensions (`--schema`).
    Spectrum,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also write the HTML report (one self-contained file: open it in any browser, offline).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["print_sql", "over"])]
    pub html: Option<PathBuf>,
    /// What the questions read: the warehouse, or the staging fact over Redshift Spectrum
    /// (the dimensions are the warehouse's: Spectrum has none).
    #[arg(long, value_enum, default_value_t = Over::Warehouse)]
    pub over: Over,
    /// The Spectrum external schema (with `--over spectrum`); default: warehouse.spectrum_schema.
    #[arg(long, value_name = "SCHEMA")]
    pub spectrum_schema: Option<String>,
    /// Print the five questions' SQL as it would run (`--over`, `--schema`) and exit, without
    /// connecting to anything.
    #[arg(long)]
    pub print_sql: bool,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let spectrum_schema = match (&args.spectrum_schema, args.over) {
        (Some(schema), _) => schema.clone(),
        (None, Over::Spectrum) => args.warehouse.lake.plan.config(global)?.warehouse.spectrum_schema,
        (None, Over::Warehouse) => String::new(),
    };
    if args.print_sql {
        let questions = match args.over {
            Over::Warehouse => report::warehouse_questions(),
            Over::Spectrum => report::spectrum_questions(&spectrum_schema, &args.warehouse.schema)?,
        };
        match global.output {
            Output::Json => println!("{}", serde_json::to_string(&questions).expect("questions serialise")),
            Output::Text => {
                if args.over == Over::Warehouse {
                    println!("SET search_path TO {};\n", db::check_identifier(&args.warehouse.schema)?);
                }
                print!("{}", report::questions_script(&questions));
            }
        }
        return Ok(ExitCode::Success);
    }
    let warehouse = args.warehouse.warehouse(global).await?;
    let answers = match args.over {
        Over::Warehouse => warehouse.answers().await?,
        Over::Spectrum => warehouse.spectrum_answers(&spectrum_schema).await?,
    };
    if let Some(file) = &args.html {
        let config = args.warehouse.lake.plan.config(global)?;
        let store = args.warehouse.lake.store(global).await?;
        let staging = config.buckets.staging.clone();
        let data =
            crate::reporting::gather(&warehouse, store.as_ref(), &staging, None, SystemClock::shared().now()).await?;
        let links = match config.pipeline.target {
            Target::Local => {
                let root = LocalStore::new(args.warehouse.lake_dir(global)?).root().join(&staging);
                let root = std::path::absolute(&root).unwrap_or(root);
                RejectsLinks::Base(format!("file://{}/", root.display()))
            }
            Target::Emr | Target::EmrServerless => RejectsLinks::None,
        };
        let page = crate::reporting::html::render(&data, &links);
        std::fs::write(file, page)
            .map_err(|source| crate::reporting::ReportError::Write { path: file.display().to_string(), source })?;
        eprintln!("report written to {}", file.display());
    }
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&answers).expect("answers serialise")),
        Output::Text => print!("{}", report::format_text(&answers)),
    }
    Ok(ExitCode::Success)
}
