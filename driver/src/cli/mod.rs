//! The command line. Each subcommand lives in its own file with its `Args` and its `run`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{ExitCode, Result};

mod backfill;
mod check;
mod deploy;
mod export_user_purchase;
mod generate;
mod ingest;
mod load_user_purchase;
mod load_warehouse;
mod logins;
mod logs;
mod render;
mod report;
mod run;
mod status;
mod submit;
mod wait;

#[derive(Debug, Parser)]
#[command(name = "emr-driver", version, about = "Runs the movie-analytics pipeline on Amazon EMR or on a local Spark")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The pipeline configuration file.
    #[arg(long, global = true, env = "EMR_DRIVER_CONFIG", default_value = "config/pipeline.toml")]
    pub config: PathBuf,
    /// `text` for people (progress on stderr, a summary at the end); `json` for machines
    /// (one JSON document or event per line on stdout, nothing else).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr: `text` (UTC timestamps; colour only on a terminal and without
    /// `NO_COLOR`) or `json` (one JSON object per line, for log collectors).
    #[arg(long, global = true, value_enum, env = "EMR_DRIVER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the nightly pipeline for one date (deploy, export, jobs, warehouse load, manifest).
    Run(run::Args),
    /// Run a range of dates, each as an ordinary run, up to N at once; resumable.
    Backfill(backfill::Args),
    /// Print the exact requests a run would send (step configs, cluster request), calling nothing.
    Render(render::Args),
    /// Upload the job code and the bootstrap script to the raw bucket, content-addressed.
    Deploy(deploy::Args),
    /// Put a date's vendor files into the raw bucket.
    Ingest(ingest::Args),
    /// Submit one ad-hoc step rendered from any template.
    Submit(submit::Args),
    /// Show the state of steps already submitted.
    Status(status::Args),
    /// Wait for steps already submitted to finish.
    Wait(wait::Args),
    /// Diagnose a step from its logs.
    Logs(logs::Args),
    /// Load the UCI user_purchase.csv into PostgreSQL.
    LoadUserPurchase(load_user_purchase::Args),
    /// Export the user_purchase table to the staging bucket.
    ExportUserPurchase(export_user_purchase::Args),
    /// Load a run's dimensions and fact into the warehouse.
    LoadWarehouse(load_warehouse::Args),
    /// Answer the five analysts' questions from the warehouse.
    Report(report::Args),
    /// Write sample input files in the vendor formats.
    Generate(generate::Args),
    /// Exit non-zero when the warehouse is stale or the newest run failed (for monitoring).
    Check(check::Args),
}

/// Parses the command line, runs the command, prints any error chain on stderr and returns
/// the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return std::process::ExitCode::from(ExitCode::Internal.code());
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(code) => std::process::ExitCode::from(code.code()),
        Err(error) => {
            let mut chain = error.chain().into_iter();
            if let Some(first) = chain.next() {
                eprintln!("error: {first}");
            }
            for cause in chain {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(error.exit_code().code())
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Run(args) => run::run(args, g).await,
        Command::Backfill(args) => backfill::run(args, g).await,
        Command::Render(args) => render::run(args, g).await,
        Command::Deploy(args) => deploy::run(args, g).await,
        Command::Ingest(args) => ingest::run(args, g).await,
        Command::Submit(args) => submit::run(args, g).await,
        Command::Status(args) => status::run(args, g).await,
        Command::Wait(args) => wait::run(args, g).await,
        Command::Logs(args) => logs::run(args, g).await,
        Command::LoadUserPurchase(args) => load_user_purchase::run(args, g).await,
        Command::ExportUserPurchase(args) => export_user_purchase::run(args, g).await,
        Command::LoadWarehouse(args) => load_warehouse::run(args, g).await,
        Command::Report(args) => report::run(args, g).await,
        Command::Generate(args) => generate::run(args, g).await,
        Command::Check(args) => check::run(args, g).await,
    }
}

fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn,emr_driver=info",
        1 => "info,emr_driver=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMR_DRIVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Logs go to stderr so that `--output json` keeps stdout for data only.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::ChronoUtc::rfc_3339());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(use_colour(std::env::var_os("NO_COLOR"), stderr_is_terminal())).try_init(),
    };
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>).
fn use_colour(no_color: Option<std::ffi::OsString>, terminal: bool) -> bool {
    terminal && !matches!(no_color, Some(v) if !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(None, true));
        assert!(use_colour(Some("".into()), true));
        assert!(!use_colour(Some("1".into()), true));
        assert!(!use_colour(None, false));
    }
}
