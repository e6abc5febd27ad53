//! `emr-driver check --max-age 36h`: is the warehouse fresh? For the CronJob's monitoring
//! (docs/driver-operations.md): exit 0 when it is, 10 when the newest run date loaded is too
//! old (or nothing is loaded), 11 when the newest run ended without succeeding.
//!
//! The age of a run date D is measured from the end of that day (D + 1 at 00:00 UTC), when
//! its data is complete: a nightly run for yesterday at 02:00 leaves an age of about 26 h just
//! before the next one, so `--max-age 36h` alerts when one night is missed.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::db::target::LoadedDate;
use crate::error::{ExitCode, ExitStatus};
use crate::manifest::{RunManifest, RunState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub latest_run_date: Option<NaiveDate>,
    /// Seconds since the end of the latest run date.
    pub age_seconds: Option<i64>,
    pub max_age_seconds: u64,
    /// The newest finished run (any date): its id, date and state.
    pub newest_run: Option<(String, String, String)>,
    pub fresh: bool,
    pub newest_run_failed: bool,
    /// One line for people.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{message}")]
    Stale { message: String },
    #[error("{message}")]
    RunFailed { message: String },
}

impl ExitStatus for CheckError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CheckError::Stale { .. } => ExitCode::Stale,
            CheckError::RunFailed { .. } => ExitCode::RunFailed,
        }
    }
}

impl CheckReport {
    /// The error to exit with, if the check failed (stale first: it is what analysts see).
    pub fn error(&self) -> Option<CheckError> {
        if !self.fresh {
            Some(CheckError::Stale { message: self.message.clone() })
        } else if self.newest_run_failed {
            Some(CheckError::RunFailed { message: self.message.clone() })
        } else {
            None
        }
    }
}

/// The end of a run date: its data is complete then.
pub fn end_of(date: NaiveDate) -> DateTime<Utc> {
    date.succ_opt().unwrap_or(date).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// Judges freshness from the fact's run dates and the run manifests (any order).
pub fn evaluate(
    loaded: &[LoadedDate],
    manifests: &[RunManifest],
    now: DateTime<Utc>,
    max_age: Duration,
) -> CheckReport {
    let latest = loaded.iter().filter(|d| d.fact_rows > 0).map(|d| d.run_date).max();
    let age_seconds = latest.map(|d| (now - end_of(d)).num_seconds());
    let max_age_seconds = max_age.as_secs();
    let fresh = age_seconds.is_some_and(|age| age <= max_age_seconds as i64);
    let newest =
        manifests.iter().filter(|m| m.state != RunState::Running).max_by_key(|m| (m.started_at, m.run_id.clone()));
    let newest_run_failed = newest.is_some_and(|m| m.state != RunState::Succeeded);
    let newest_run = newest.map(|m| (m.run_id.clone(), m.run_date.clone(), format!("{:?}", m.state).to_lowercase()));
    let limit = humantime::format_duration(Duration::from_secs(max_age_seconds)).to_string();
    let mut message = match (latest, age_seconds) {
        (None, _) | (_, None) => "stale: the warehouse has no fact rows; no run has loaded it yet".to_string(),
        (Some(date), Some(age)) if !fresh => format!(
            "stale: the newest run date loaded is {date}, {} old (limit {limit}); the nightly run has not loaded {} — see its manifest under _runs/ and its logs",
            super::format_age(age),
            date.succ_opt().unwrap_or(date)
        ),
        (Some(date), Some(age)) => {
            format!("fresh: the newest run date loaded is {date}, {} old (limit {limit})", super::format_age(age))
        }
    };
    if let (true, Some(m)) = (newest_run_failed, newest) {
        message.push_str(&format!(
            "; the newest run, {} for {}, ended {}{}",
            m.run_id,
            m.run_date,
            format!("{:?}", m.state).to_lowercase(),
            m.error.as_ref().map(|e| format!(": {}", e.lines().next().unwrap_or(""))).unwrap_or_default()
        ));
    }
    CheckReport { latest_run_date: latest, age_seconds, max_age_seconds, newest_run, fresh, newest_run_failed, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn loaded(date: &str) -> Vec<LoadedDate> {
        vec![LoadedDate { run_date: date.parse().unwrap(), fact_rows: 5, reviews: 9 }]
    }

    fn manifest(run_date: &str, started: DateTime<Utc>, state: RunState) -> RunManifest {
        RunManifest {
            run_id: format!("{run_date}-0123456789ab"),
            run_date: run_date.into(),
            target: "local".into(),
            config_hash: "c".into(),
            state,
            started_at: started,
            ended_at: Some(started + chrono::Duration::minutes(2)),
            artifacts: vec![],
            cluster: None,
            steps: vec![],
            sources: Default::default(),
            manifest_uri: "s3://s/_runs/x.json".into(),
            error: (state == RunState::Failed).then(|| "step build_fact FAILED: boom".to_string()),
            usage: None,
            analysts: None,
            published: None,
        }
    }

    const MAX: Duration = Duration::from_secs(36 * 3600);

    #[test]
    fn fresh_stale_and_failed() {
        let run_night = Utc.with_ymd_and_hms(2021, 11, 1, 2, 0, 0).unwrap();
        let ok = manifest("2021-10-31", run_night, RunState::Succeeded);
        // The next evening: 20 h after the end of 2021-10-31.
        let now = Utc.with_ymd_and_hms(2021, 11, 1, 20, 0, 0).unwrap();
        let report = evaluate(&loaded("2021-10-31"), std::slice::from_ref(&ok), now, MAX);
        assert!(report.fresh && !report.newest_run_failed && report.error().is_none(), "{report:?}");
        assert_eq!(report.age_seconds, Some(20 * 3600));

        // Two nights later with nothing new: 50 h.
        let later = Utc.with_ymd_and_hms(2021, 11, 3, 2, 0, 0).unwrap();
        let report = evaluate(&loaded("2021-10-31"), std::slice::from_ref(&ok), later, MAX);
        assert!(!report.fresh, "{report:?}");
        let err = report.error().unwrap();
        assert_eq!(err.exit_code(), ExitCode::Stale);
        assert!(err.to_string().contains("2021-10-31, 2 d 2 h old"), "{err}");

        // The next night's run failed: fresh enough still, but the newest run failed.
        let failed = manifest("2021-11-01", Utc.with_ymd_and_hms(2021, 11, 2, 2, 0, 0).unwrap(), RunState::Failed);
        let now = Utc.with_ymd_and_hms(2021, 11, 2, 3, 0, 0).unwrap();
        let report = evaluate(&loaded("2021-10-31"), &[ok.clone(), failed.clone()], now, MAX);
        assert!(report.fresh && report.newest_run_failed, "{report:?}");
        let err = report.error().unwrap();
        assert_eq!(err.exit_code(), ExitCode::RunFailed);
        assert!(
            err.to_string().contains("2021-11-01-0123456789ab for 2021-11-01, ended failed: step build_fact FAILED"),
            "{err}"
        );

        // A rerun that succeeded afterwards clears it; a run still going is not judged.
        let rerun = manifest("2021-11-01", Utc.with_ymd_and_hms(2021, 11, 2, 4, 0, 0).unwrap(), RunState::Succeeded);
        let running = manifest("2021-11-02", Utc.with_ymd_and_hms(2021, 11, 2, 5, 0, 0).unwrap(), RunState::Running);
        let now = Utc.with_ymd_and_hms(2021, 11, 2, 6, 0, 0).unwrap();
        let report = evaluate(&loaded("2021-11-01"), &[failed, rerun, running, ok], now, MAX);
        assert!(report.error().is_none(), "{report:?}");

        // Nothing loaded at all is stale.
        let report = evaluate(&[], &[], now, MAX);
        assert_eq!(report.error().unwrap().exit_code(), ExitCode::Stale);
    }
}
