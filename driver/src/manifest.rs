//! The run manifest (DESIGN.md 2.5): one JSON document per run, written to
//! `s3://<staging>/_runs/<run_id>.json`, and its human summary.

use crate::clock::format_duration;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::step::StepState;

/// How the whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub name: String,
    pub sha256: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRef {
    pub id: String,
    /// True when this run created the cluster (and so may terminate it).
    pub created_by_run: bool,
    /// `application` for an EMR Serverless application; absent for an EMR cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// What a step or a run used: EMR Serverless reports vCPU-, memory- and storage-hours per job
/// run (`totalResourceUtilization`), EMR the cluster's normalized instance hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gb_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_gb_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_instance_hours: Option<i64>,
}

impl ResourceUsage {
    /// The sum of two usages (a figure absent from both stays absent).
    pub fn add(&self, other: &ResourceUsage) -> ResourceUsage {
        fn sum<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        ResourceUsage {
            vcpu_hours: sum(self.vcpu_hours, other.vcpu_hours),
            memory_gb_hours: sum(self.memory_gb_hours, other.memory_gb_hours),
            storage_gb_hours: sum(self.storage_gb_hours, other.storage_gb_hours),
            normalized_instance_hours: sum(self.normalized_instance_hours, other.normalized_instance_hours),
        }
    }

    /// `3.250 vCPU-h, 13.000 GB-h memory, 0.500 GB-h storage` / `16 normalized instance hours`.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.vcpu_hours {
            parts.push(format!("{v:.3} vCPU-h"));
        }
        if let Some(v) = self.memory_gb_hours {
            parts.push(format!("{v:.3} GB-h memory"));
        }
        if let Some(v) = self.storage_gb_hours {
            parts.push(format!("{v:.3} GB-h storage"));
        }
        if let Some(v) = self.normalized_instance_hours {
            parts.push(format!("{v} normalized instance hours"));
        }
        parts.join(", ")
    }
}

/// Rows in / out / rejected of one input source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCounts {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_rejected: u64,
    #[serde(default)]
    pub rejected_by_reason: BTreeMap<String, u64>,
}

impl SourceCounts {
    /// `rows_in = rows_out + rows_rejected`, and the reasons add up to the rejects.
    pub fn balances(&self) -> bool {
        self.rows_in == self.rows_out + self.rows_rejected
            && self.rejected_by_reason.values().sum::<u64>() == self.rows_rejected
    }
}

/// The state of a step in the manifest: EMR's step states ([`StepState`], which the runners
/// report for every target) and `SKIPPED` (driver work there was nothing to do for, e.g. no
/// warehouse). Serialised as the same strings the manifests held when this was a `String`
/// (`"COMPLETED"`, `"SKIPPED"`...), so the manifests of earlier runs still parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordState {
    Pending,
    CancelPending,
    Running,
    Completed,
    Cancelled,
    Failed,
    Interrupted,
    Skipped,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Skipped => "SKIPPED",
            RecordState::Pending => StepState::Pending.as_str(),
            RecordState::CancelPending => StepState::CancelPending.as_str(),
            RecordState::Running => StepState::Running.as_str(),
            RecordState::Completed => StepState::Completed.as_str(),
            RecordState::Cancelled => StepState::Cancelled.as_str(),
            RecordState::Failed => StepState::Failed.as_str(),
            RecordState::Interrupted => StepState::Interrupted.as_str(),
        }
    }
}

impl From<StepState> for RecordState {
    fn from(state: StepState) -> Self {
        match state {
            StepState::Pending => RecordState::Pending,
            StepState::CancelPending => RecordState::CancelPending,
            StepState::Running => RecordState::Running,
            StepState::Completed => RecordState::Completed,
            StepState::Cancelled => RecordState::Cancelled,
            StepState::Failed => RecordState::Failed,
            StepState::Interrupted => RecordState::Interrupted,
        }
    }
}

impl std::fmt::Display for RecordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: the summary lines it up in a column (`{:<10}`).
        f.pad(self.as_str())
    }
}

/// `record.state == "COMPLETED"`: compares with the manifest's spelling.
impl PartialEq<&str> for RecordState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for RecordState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// One step of the run: an EMR step, a local Spark process, or work the driver did itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub key: String,
    /// `emr`, `local-spark` or `driver`.
    pub kind: String,
    pub step_id: Option<String>,
    pub state: RecordState,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Where the step's logs are (EMR log prefix or the local lake folder).
    pub logs: Option<String>,
    /// True when a rerun found the step already COMPLETED and did not run it again.
    #[serde(default)]
    pub reused: bool,
    /// What the step reported (the job's metrics file, or the driver's own figures).
    pub metrics: Option<Value>,
    /// The probable cause, when the step failed.
    pub failure: Option<String>,
    /// What the step used, when the runner reports it (EMR Serverless job runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResourceUsage>,
    /// The step's output folders with their write ids, recorded when it completed: a rerun
    /// reuses the step only while the store holds exactly these (crate::publish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<crate::publish::StepOutputs>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_id: String,
    pub run_date: String,
    pub target: String,
    pub config_hash: String,
    pub state: RunState,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub artifacts: Vec<ArtifactRef>,
    pub cluster: Option<ClusterRef>,
    pub steps: Vec<StepRecord>,
    /// Per input source, gathered from the jobs' metrics.
    pub sources: BTreeMap<String, SourceCounts>,
    pub manifest_uri: String,
    pub error: Option<String>,
    /// What the run used: the sum of its job runs' usage (EMR Serverless), or the cluster's
    /// normalized instance hours (EMR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResourceUsage>,
    /// What the run left for analysts (warehouse, the date's fact rows, the answers, the
    /// report); absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysts: Option<AnalystsSummary>,
    /// The date's pointer, once this run published its outputs there
    /// (`s3://<staging>/_published/dt=D.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
}

/// Where the run's data is and what it says, for the end of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalystsSummary {
    /// `postgres`, `sqlite` or `redshift`.
    pub warehouse_kind: String,
    /// For people, password redacted: `the embedded SQLite warehouse .lake/...`.
    pub warehouse: String,
    /// `fact_movie_analytics` rows of the run date in the warehouse.
    pub fact_rows: Option<u64>,
    /// `N. question — answer in words`, one per question.
    #[serde(default)]
    pub answers: Vec<String>,
    /// `s3://<staging>/reports/dt=D/report.html`.
    pub report_uri: Option<String>,
    /// The report as a local file, when the store is the local lake.
    pub report_path: Option<String>,
    /// Why the answers or the report are missing.
    pub error: Option<String>,
}

impl RunManifest {
    pub fn step_mut(&mut self, key: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| s.key == key)
    }

    /// Collects the `sources` of a job's metrics document into the manifest.
    pub fn add_job_metrics(&mut self, metrics: &Value) {
        let Some(sources) = metrics.get("sources").and_then(Value::as_object) else { return };
        for (name, counts) in sources {
            if let Ok(counts) = serde_json::from_value::<SourceCounts>(counts.clone()) {
                self.sources.insert(name.clone(), counts);
            }
        }
    }

    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let elapsed = self
            .ended_at
            .map(|end| format_duration((end - self.started_at).to_std().unwrap_or_default()))
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "run {} ({}, target {}): {} in {}",
            self.run_id,
            self.run_date,
            self.target,
            state_word(self.state),
            elapsed
        );
        if let Some(cluster) = &self.cluster {
            let how = if cluster.created_by_run { "created by this run" } else { "existing" };
            let what = cluster.kind.as_deref().unwrap_or("cluster");
            let _ = writeln!(out, "{what} {} ({how})", cluster.id);
        }
        let _ = writeln!(out, "{:<22} {:<10} {:>9}  detail", "step", "state", "time");
        for step in &self.steps {
            let time = match (step.started_at, step.ended_at) {
                (Some(start), Some(end)) => format_duration((end - start).to_std().unwrap_or_default()),
                _ => "-".to_string(),
            };
            let skipped_because = step.metrics.as_ref().and_then(|m| m.get("skipped")).and_then(Value::as_str);
            let detail = if step.reused {
                "already completed by an earlier attempt".to_string()
            } else if let Some(reason) = skipped_because {
                reason.to_string()
            } else {
                step.failure.clone().unwrap_or_default()
            };
            let detail = match (&step.usage, detail.is_empty()) {
                (Some(usage), true) => usage.text(),
                _ => first_line(&detail).to_string(),
            };
            let _ = writeln!(out, "{:<22} {:<10} {:>9}  {}", step.key, step.state, time, detail);
        }
        if let Some(usage) = &self.usage {
            let _ = writeln!(out, "used: {}", usage.text());
        }
        if !self.sources.is_empty() {
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>10} {:>9}  rejected by reason",
                "source", "rows in", "rows out", "rejected"
            );
            for (name, c) in &self.sources {
                let reasons: Vec<String> = c.rejected_by_reason.iter().map(|(r, n)| format!("{r}={n}")).collect();
                let _ = writeln!(
                    out,
                    "{:<22} {:>10} {:>10} {:>9}  {}",
                    name,
                    c.rows_in,
                    c.rows_out,
                    c.rows_rejected,
                    reasons.join(" ")
                );
            }
        }
        if let Some(a) = &self.analysts {
            match a.fact_rows {
                Some(rows) => {
                    let _ = writeln!(out, "fact_movie_analytics: {rows} rows for {} in {}", self.run_date, a.warehouse);
                }
                None => {
                    let _ = writeln!(out, "fact_movie_analytics: {}", a.warehouse);
                }
            }
            if !a.answers.is_empty() {
                let heading = if self.state == RunState::Succeeded {
                    "the five questions:"
                } else {
                    "the five questions, from the data already in the warehouse (this run did not succeed):"
                };
                let _ = writeln!(out, "{heading}");
                for answer in &a.answers {
                    let _ = writeln!(out, "  {answer}");
                }
            }
            if let Some(report) = a.report_path.as_ref().or(a.report_uri.as_ref()) {
                let _ = writeln!(out, "report: {report}");
            }
            if let Some(problem) = &a.error {
                let _ = writeln!(out, "warning: {problem}");
            }
        }
        if let Some(error) = &self.error {
            let _ = writeln!(out, "error: {error}");
        }
        let _ = writeln!(out, "manifest: {}", self.manifest_uri);
        out
    }
}

fn state_word(state: RunState) -> &'static str {
    match state {
        RunState::Running => "running",
        RunState::Succeeded => "succeeded",
        RunState::Failed => "FAILED",
        RunState::Cancelled => "CANCELLED",
        RunState::TimedOut => "TIMED OUT",
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> RunManifest {
        let start = DateTime::parse_from_rfc3339("2021-11-01T02:00:00Z").unwrap().with_timezone(&Utc);
        RunManifest {
            run_id: "2021-10-31-abcdef012345".into(),
            run_date: "2021-10-31".into(),
            target: "local".into(),
            config_hash: "c0ffee".into(),
            state: RunState::Succeeded,
            started_at: start,
            ended_at: Some(start + chrono::Duration::seconds(125)),
            artifacts: vec![],
            cluster: None,
            steps: vec![StepRecord {
                key: "parse_logs".into(),
                kind: "local-spark".into(),
                step_id: Some("s-1".into()),
                state: RecordState::Completed,
                started_at: Some(start),
                ended_at: Some(start + chrono::Duration::seconds(40)),
                logs: None,
                reused: false,
                metrics: None,
                failure: None,
                usage: None,
                outputs: None,
            }],
            sources: BTreeMap::new(),
            manifest_uri: "s3://staging/_runs/2021-10-31-abcdef012345.json".into(),
            error: None,
            usage: None,
            analysts: None,
            published: None,
        }
    }

    #[test]
    fn collects_job_metrics_and_checks_the_balance() {
        let mut m = manifest();
        m.add_job_metrics(&json!({"job": "parse_logs", "sources": {"log_reviews": {
            "rows_in": 10, "rows_out": 7, "rows_rejected": 3,
            "rejected_by_reason": {"bad_xml": 1, "bad_date": 2}}}}));
        let counts = &m.sources["log_reviews"];
        assert_eq!((counts.rows_in, counts.rows_out, counts.rows_rejected), (10, 7, 3));
        assert!(counts.balances());
        let broken = SourceCounts { rows_in: 10, rows_out: 7, rows_rejected: 2, ..Default::default() };
        assert!(!broken.balances());
    }

    #[test]
    fn summary_names_the_run_its_steps_and_its_sources() {
        let mut m = manifest();
        m.add_job_metrics(&json!({"sources": {"log_reviews": {"rows_in": 10, "rows_out": 9,
            "rows_rejected": 1, "rejected_by_reason": {"bad_xml": 1}}}}));
        let text = m.summary();
        assert!(text.contains("run 2021-10-31-abcdef012345 (2021-10-31, target local): succeeded in 2m05s"), "{text}");
        assert!(text.contains("parse_logs") && text.contains("COMPLETED") && text.contains("40.0s"), "{text}");
        assert!(text.contains("bad_xml=1"), "{text}");
        assert!(!text.contains("fact_movie_analytics"), "{text}");
        m.analysts = Some(AnalystsSummary {
            warehouse_kind: "sqlite".into(),
            warehouse: "the embedded SQLite warehouse .lake/warehouse/movie_analytics.sqlite".into(),
            fact_rows: Some(42),
            answers: vec!["1. How many? 25 reviews.".into()],
            report_uri: Some("s3://staging/reports/dt=2021-10-31/report.html".into()),
            report_path: Some(".lake/staging/reports/dt=2021-10-31/report.html".into()),
            error: None,
        });
        let text = m.summary();
        assert!(
            text.contains(
                "fact_movie_analytics: 42 rows for 2021-10-31 in the embedded SQLite warehouse .lake/warehouse/movie_analytics.sqlite\n\
                 the five questions:\n  1. How many? 25 reviews.\nreport: .lake/staging/reports/dt=2021-10-31/report.html\n"
            ),
            "{text}"
        );
    }

    /// A manifest written when the step states were strings (before `RecordState`) parses, and
    /// writes the same strings back.
    #[test]
    fn an_old_manifest_parses() {
        let old = r#"{
          "run_id": "2021-10-31-abcdef012345", "run_date": "2021-10-31", "target": "local",
          "config_hash": "c0ffee", "state": "failed", "started_at": "2021-11-01T02:00:00Z",
          "ended_at": "2021-11-01T02:05:00Z", "artifacts": [], "cluster": null,
          "steps": [
            {"key": "deploy", "kind": "driver", "step_id": null, "state": "COMPLETED", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null},
            {"key": "user_purchase", "kind": "driver", "step_id": null, "state": "FAILED", "started_at": null,
             "ended_at": null, "logs": null, "metrics": null, "failure": "bad rows"},
            {"key": "classify_reviews", "kind": "emr", "step_id": "s-1", "state": "CANCELLED", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null},
            {"key": "parse_logs", "kind": "emr", "step_id": "s-2", "state": "INTERRUPTED", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null},
            {"key": "build_dimensions", "kind": "emr", "step_id": "s-3", "state": "CANCEL_PENDING",
             "started_at": null, "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null},
            {"key": "build_fact", "kind": "spark", "step_id": null, "state": "PENDING", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null},
            {"key": "load_warehouse", "kind": "driver", "step_id": null, "state": "SKIPPED", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": {"skipped": "no warehouse database given"},
             "failure": null},
            {"key": "other", "kind": "emr", "step_id": "s-4", "state": "RUNNING", "started_at": null,
             "ended_at": null, "logs": null, "reused": false, "metrics": null, "failure": null}
          ],
          "sources": {}, "manifest_uri": "s3://staging/_runs/2021-10-31-abcdef012345.json", "error": "boom"
        }"#;
        let m: RunManifest = serde_json::from_str(old).unwrap();
        let states: Vec<RecordState> = m.steps.iter().map(|s| s.state).collect();
        use RecordState::*;
        assert_eq!(states, vec![Completed, Failed, Cancelled, Interrupted, CancelPending, Pending, Skipped, Running]);
        let written = serde_json::to_value(&m).unwrap();
        let again: Vec<&str> =
            written["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
        let was: Value = serde_json::from_str(old).unwrap();
        let before: Vec<&str> = was["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
        assert_eq!(again, before);
        for (state, text) in states.iter().zip(before) {
            assert_eq!(state.as_str(), text);
            assert_eq!(format!("{state:<10}|"), format!("{text:<10}|"));
        }
        let every = [
            StepState::Pending,
            StepState::CancelPending,
            StepState::Running,
            StepState::Completed,
            StepState::Cancelled,
            StepState::Failed,
            StepState::Interrupted,
        ];
        for step in every {
            assert_eq!(RecordState::from(step).as_str(), step.as_str());
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = manifest();
        let back: RunManifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
