//! `emr-driver check --max-age 36h`: exits 0 when the warehouse is fresh, 11 when the newest
//! run date loaded is older than that (or nothing is loaded), 12 when the newest run ended
//! without succeeding; one line says which (docs/driver-operations.md, "Monitoring").

use std::time::Duration;

use crate::cli::report::WarehouseArgs;
use crate::cli::{Global, Output};
use crate::clock::SystemClock;
use crate::error::{ExitCode, Result};
use crate::reporting::{check, read_manifests};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The oldest the newest run date may be, measured from the end of that day (e.g. 36h, 2d).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "36h")]
    pub max_age: Duration,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let warehouse = args.warehouse.warehouse(global).await?;
    let loaded = warehouse.loaded_dates().await?;
    let config = args.warehouse.lake.plan.config(global)?;
    let store = args.warehouse.lake.store(global).await?;
    let (manifests, unreadable) = read_manifests(store.as_ref(), &config.buckets.staging).await?;
    for name in &unreadable {
        eprintln!("warning: unreadable run manifest {name}");
    }
    let report = check::evaluate(&loaded, &manifests, SystemClock::shared().now(), args.max_age);
    match global.output {
        Output::Json => println!("{}", serde_json::to_string(&report).expect("the check serialises")),
        Output::Text => println!("{} ({})", report.message, warehouse.describe()),
    }
    match report.error() {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::Success),
    }
}
