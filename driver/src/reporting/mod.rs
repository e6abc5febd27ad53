//! The analysts' report (DESIGN.md 2.6): the five questions with their answers in words, a
//! chart, the table and the SQL; data freshness; data quality per source over the last runs.
//! One self-contained HTML page ([`html::render`]), written by every run beside its manifest
//! (`s3://<staging>/reports/dt=D/report.html`) and by `emr-driver report --html FILE`.
//!
//! [`ReportData`] is gathered once (the warehouse's answers, the fact's run dates, the run
//! manifests under `_runs/`); the words, the charts and the tables are all drawn from it, so
//! the page has one source of numbers.

pub mod check;
pub mod html;
pub mod run;
pub mod words;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::db::report::Answer;
use crate::db::target::{LoadedDate, Warehouse};
use crate::db::DbError;
use crate::manifest::{RunManifest, RunState, SourceCounts};
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// How many runs the data-quality section covers.
pub const QUALITY_RUNS: usize = 10;

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub generated_at: DateTime<Utc>,
    /// The warehouse, for people (password redacted).
    pub warehouse: String,
    pub answers: Vec<Answer>,
    /// Every run date in the fact, with its rows.
    pub loaded: Vec<LoadedDate>,
    pub freshness: Freshness,
    /// Per source, its counts in the last runs (newest first).
    pub quality: Vec<SourceHistory>,
    /// Manifests under `_runs/` that could not be read (named, not hidden).
    pub unreadable_manifests: Vec<String>,
    /// The staging bucket (for the rejects' URIs).
    pub staging_bucket: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// The newest run date with fact rows in the warehouse.
    pub latest_run_date: Option<NaiveDate>,
    pub fact_rows: u64,
    pub reviews: u64,
    /// The newest succeeded run of that date, from its manifest.
    pub run_id: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `generated_at - finished_at`.
    pub age_seconds: Option<i64>,
    /// The newest run of any date, when it did not succeed: (run id, run date, state, error).
    pub latest_failure: Option<(String, String, String, Option<String>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceHistory {
    pub source: String,
    pub runs: Vec<SourceRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceRun {
    pub run_date: String,
    pub run_id: String,
    pub counts: SourceCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write the report {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::ExitStatus for ReportError {
    fn exit_code(&self) -> crate::error::ExitCode {
        match self {
            ReportError::Db(e) => e.exit_code(),
            ReportError::Store(e) => e.exit_code(),
            ReportError::Write { .. } => crate::error::ExitCode::Internal,
        }
    }
}

/// Every run manifest under `s3://<staging>/_runs/`, newest first (by start time), and the
/// names of the ones that could not be read.
pub async fn read_manifests(
    store: &dyn ObjectStore,
    staging_bucket: &str,
) -> Result<(Vec<RunManifest>, Vec<String>), StoreError> {
    let prefix = ObjectUri::new(staging_bucket, "_runs/");
    let mut manifests = Vec::new();
    let mut unreadable = Vec::new();
    for meta in store.list(&prefix).await? {
        if !meta.uri.key.ends_with(".json") {
            continue;
        }
        let bytes = store.get_bytes(&meta.uri).await?;
        match serde_json::from_slice::<RunManifest>(&bytes) {
            Ok(manifest) => manifests.push(manifest),
            Err(e) => unreadable.push(format!("{}: {e}", meta.uri)),
        }
    }
    manifests.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.run_id.cmp(&a.run_id)));
    Ok((manifests, unreadable))
}

/// Replaces (or adds) the manifest of the same run id: the run writing the report knows its
/// own state better than the copy in the store.
pub fn with_current(mut manifests: Vec<RunManifest>, current: Option<&RunManifest>) -> Vec<RunManifest> {
    if let Some(current) = current {
        manifests.retain(|m| m.run_id != current.run_id);
        manifests.push(current.clone());
        manifests.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.run_id.cmp(&a.run_id)));
    }
    manifests
}

/// Freshness from the fact's run dates and the manifests (newest first).
pub fn freshness(loaded: &[LoadedDate], manifests: &[RunManifest], now: DateTime<Utc>) -> Freshness {
    let mut out = Freshness::default();
    if let Some(latest) = loaded.iter().max_by_key(|d| d.run_date) {
        out.latest_run_date = Some(latest.run_date);
        out.fact_rows = latest.fact_rows;
        out.reviews = latest.reviews;
        let date = latest.run_date.to_string();
        if let Some(run) = manifests.iter().find(|m| m.run_date == date && m.state == RunState::Succeeded) {
            out.run_id = Some(run.run_id.clone());
            out.finished_at = run.ended_at;
            out.age_seconds = run.ended_at.map(|end| (now - end).num_seconds());
        }
    }
    if let Some(newest) = manifests.iter().find(|m| m.state != RunState::Running) {
        if newest.state != RunState::Succeeded {
            out.latest_failure = Some((
                newest.run_id.clone(),
                newest.run_date.clone(),
                format!("{:?}", newest.state).to_lowercase(),
                newest.error.clone(),
            ));
        }
    }
    out
}

/// Per source, its counts over the last `runs` finished runs that recorded it (newest first).
pub fn quality(manifests: &[RunManifest], runs: usize) -> Vec<SourceHistory> {
    let mut by_source: std::collections::BTreeMap<String, Vec<SourceRun>> = Default::default();
    for manifest in manifests.iter().filter(|m| !m.sources.is_empty()).take(runs) {
        for (source, counts) in &manifest.sources {
            by_source.entry(source.clone()).or_default().push(SourceRun {
                run_date: manifest.run_date.clone(),
                run_id: manifest.run_id.clone(),
                counts: counts.clone(),
            });
        }
    }
    by_source.into_iter().map(|(source, runs)| SourceHistory { source, runs }).collect()
}

/// Gathers the page's data: the answers and run dates from the warehouse, the manifests from
/// the store (with `current`, the run writing the report, in place of its stored copy).
pub async fn gather(
    warehouse: &Warehouse,
    store: &dyn ObjectStore,
    staging_bucket: &str,
    current: Option<&RunManifest>,
    now: DateTime<Utc>,
) -> Result<ReportData, ReportError> {
    let answers = warehouse.answers().await?;
    let loaded = warehouse.loaded_dates().await?;
    let (manifests, unreadable_manifests) = read_manifests(store, staging_bucket).await?;
    let manifests = with_current(manifests, current);
    Ok(ReportData {
        generated_at: now,
        warehouse: warehouse.describe(),
        answers,
        freshness: freshness(&loaded, &manifests, now),
        loaded,
        quality: quality(&manifests, QUALITY_RUNS),
        unreadable_manifests,
        staging_bucket: staging_bucket.to_string(),
    })
}

/// `s3://<staging>/reports/dt=D/report.html`.
pub fn report_uri(staging_bucket: &str, run_date: &str) -> ObjectUri {
    ObjectUri::new(staging_bucket, format!("reports/dt={run_date}/report.html"))
}

/// `1 d 4 h`, `3 h 05 min`, `12 min`, `40 s`.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 86_400 {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}
