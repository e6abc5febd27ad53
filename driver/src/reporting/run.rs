//! The end of a run: the warehouse it loaded, the date's fact rows there, the five answers in
//! words and the HTML report written beside the manifest (`s3://<staging>/reports/dt=D/`).
//! Called by the pipeline once the run's outcome is known; a problem here never changes the
//! run's outcome (the data is loaded): it is a warning in the summary.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::html::{render, RejectsLinks};
use super::words::sentence;
use crate::config::{Target, WarehouseKind};
use crate::db::embedded;
use crate::db::target::Warehouse;
use crate::manifest::{AnalystsSummary, RunManifest};
use crate::pipeline::Databases;
use crate::plan::Plan;
use crate::store::local::LocalStore;
use crate::store::ObjectStore;

/// The warehouse a run loads: PostgreSQL when a warehouse URL is given (`[warehouse] kind =
/// "postgres"`), the embedded SQLite file when the run has one (a local run without a
/// database), none otherwise (Redshift is loaded but not read back by the driver; an EMR run
/// without a warehouse leaves the load files in staging).
pub fn run_warehouse(plan: &Plan, databases: &Databases) -> Option<Warehouse> {
    match (&databases.warehouse, &databases.embedded_warehouse) {
        (Some(login), _) if plan.config.warehouse.kind == WarehouseKind::Postgres => {
            Some(Warehouse::Postgres { login: login.clone(), schema: plan.config.warehouse.schema.clone() })
        }
        (Some(_), _) => None,
        (None, Some(path)) => Some(Warehouse::Embedded { path: path.clone() }),
        (None, None) => None,
    }
}

/// The embedded warehouse of a local run without a database: `<lake_dir>/warehouse/movie_analytics.sqlite`.
pub fn default_embedded(plan: &Plan) -> Option<std::path::PathBuf> {
    (plan.target == Target::Local).then(|| embedded::default_path(Path::new(&plan.config.local.lake_dir)))
}

/// Reads the answers, writes the report, and says what to print.
pub async fn after_run(
    store: &dyn ObjectStore,
    plan: &Plan,
    warehouse: Option<&Warehouse>,
    manifest: &RunManifest,
    now: DateTime<Utc>,
) -> AnalystsSummary {
    let Some(warehouse) = warehouse else {
        let (kind, text) = match plan.config.warehouse.kind {
            WarehouseKind::Redshift => (
                "redshift",
                "loaded into Redshift (the driver does not read it back: run sql/questions/ there)".to_string(),
            ),
            WarehouseKind::Postgres => ("none", format!("no warehouse: the load files are in {}", plan.uris.load_root)),
        };
        return AnalystsSummary { warehouse_kind: kind.into(), warehouse: text, ..Default::default() };
    };
    let mut summary = AnalystsSummary {
        warehouse_kind: warehouse.kind().into(),
        warehouse: warehouse.describe(),
        ..Default::default()
    };
    let staging = plan.config.buckets.staging.clone();
    let data = match super::gather(warehouse, store, &staging, Some(manifest), now).await {
        Ok(data) => data,
        Err(e) => {
            summary.error = Some(format!("no answers and no report: {e}"));
            return summary;
        }
    };
    summary.fact_rows =
        Some(data.loaded.iter().find(|d| d.run_date.to_string() == manifest.run_date).map_or(0, |d| d.fact_rows));
    summary.answers =
        data.answers.iter().enumerate().map(|(i, a)| format!("{}. {} {}", i + 1, a.question, sentence(a))).collect();
    let uri = super::report_uri(&staging, &manifest.run_date);
    let page = render(&data, &RejectsLinks::BesideManifest);
    match store.put_bytes(&uri, Bytes::from(page)).await {
        Ok(()) => {
            summary.report_uri = Some(uri.to_string());
            if plan.target == Target::Local {
                let path = LocalStore::new(&plan.config.local.lake_dir).path_of(&uri);
                summary.report_path = Some(path.display().to_string());
            }
        }
        Err(e) => summary.error = Some(format!("the report could not be written to {uri}: {e}")),
    }
    summary
}
