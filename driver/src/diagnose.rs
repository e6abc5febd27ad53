//! Failure diagnosis: from a FAILED step to its probable cause and the URIs of its full logs.
//!
//! The parsing is small pure functions over log listings and log lines, tested on literal log
//! files (`driver/tests/fixtures/logs/`). [`diagnose`] does the I/O: it waits (bounded, with
//! backoff) for the step's logs to appear — EMR copies them to S3 some minutes after the step
//! ends — decompresses them and follows the YARN application id from the step's stderr to the
//! container logs, where cluster deploy mode puts the Python traceback.

use std::io::Read;
use std::time::Duration;

use regex::Regex;
use serde::Serialize;

use crate::clock::{Backoff, Clock};
use crate::error::{ExitCode, ExitStatus};
use crate::step::FailureDetails;
use crate::store::{ObjectMeta, ObjectStore, ObjectUri, StoreError};

/// What kind of failure the logs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// A container or the JVM ran out of memory (YARN kill, OutOfMemoryError, exit 137).
    OutOfMemory,
    /// One of our jobs refused an input file as unusable (exit 3, one line naming the file).
    InputUnusable,
    /// A Python exception, with its traceback.
    PythonTraceback,
    /// A JVM / Spark exception, with its `Caused by` chain.
    SparkException,
    /// Nothing recognisable: the last lines of the log.
    Unknown,
}

/// The probable cause of a failure: its kind and a few lines for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbableCause {
    pub kind: CauseKind,
    pub summary: String,
}

/// The result of a diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub step_id: String,
    pub failure: Option<FailureDetails>,
    pub cause: ProbableCause,
    /// The log the cause was read from.
    pub cause_log: Option<String>,
    /// Every log file found for the step (and its application's containers).
    pub logs: Vec<String>,
    /// Set when no log arrived within the wait bound: where they will be.
    pub logs_missing_under: Option<String>,
}

impl Diagnosis {
    /// For people: the cause, then where the full logs are.
    pub fn render_text(&self) -> String {
        let mut out = format!("step {} failed", self.step_id);
        if let Some(f) = &self.failure {
            let parts: Vec<&str> =
                [f.reason.as_deref(), f.message.as_deref()].into_iter().flatten().filter(|s| !s.is_empty()).collect();
            if !parts.is_empty() {
                out.push_str(&format!(": {}", parts.join(" — ")));
            }
        }
        out.push_str(&format!("\nprobable cause ({}):\n", kind_label(self.cause.kind)));
        for line in self.cause.summary.lines() {
            out.push_str(&format!("    {line}\n"));
        }
        if let Some(prefix) = &self.logs_missing_under {
            out.push_str(&format!("no log file arrived in time; they will appear under {prefix}\n"));
        }
        if !self.logs.is_empty() {
            out.push_str("full logs:\n");
            for log in &self.logs {
                out.push_str(&format!("    {log}\n"));
            }
        }
        out
    }
}

fn kind_label(kind: CauseKind) -> &'static str {
    match kind {
        CauseKind::OutOfMemory => "out of memory",
        CauseKind::InputUnusable => "unusable input file",
        CauseKind::PythonTraceback => "Python exception",
        CauseKind::SparkException => "Spark / JVM exception",
        CauseKind::Unknown => "unknown; last lines of the log",
    }
}

/// The rank of a log file by its base name (`stderr.gz` → `stderr`): lower is read first.
fn log_rank(file_name: &str) -> Option<u8> {
    let base = file_name.trim_end_matches(".gz").trim_end_matches(".txt");
    match base {
        "stderr" => Some(0),
        "controller" => Some(1),
        "syslog" => Some(2),
        "stdout" => Some(3),
        _ => None,
    }
}

/// The step's log files directly under `step_prefix` (`…/steps/<step id>/`), best first:
/// stderr (`stderr`, `stderr.gz`, `stderr.txt.gz`), controller, syslog, stdout. Other files
/// and sub-folders are left out.
pub fn candidate_logs(listing: &[ObjectMeta], step_prefix: &ObjectUri) -> Vec<ObjectUri> {
    let mut found: Vec<(u8, bool, &ObjectUri)> = listing
        .iter()
        .filter(|m| m.uri.bucket == step_prefix.bucket)
        .filter_map(|m| {
            let rest = m.uri.key.strip_prefix(&step_prefix.key)?.trim_start_matches('/');
            if rest.contains('/') {
                return None;
            }
            // Prefer the finished (gzipped) copy over the one being written.
            log_rank(rest).map(|rank| (rank, !rest.ends_with(".gz"), &m.uri))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, _, uri)| uri.clone()).collect()
}

/// The YARN application id a step's stderr names: the one in "Application application_…
/// finished with failed status" if present, else the last one mentioned.
pub fn application_id(lines: &[String]) -> Option<String> {
    let re = Regex::new(r"application_\d+_\d+").expect("valid regex");
    let failed = lines.iter().filter(|l| l.contains("finished with failed status")).find_map(|l| re.find(l));
    failed.or_else(|| lines.iter().rev().find_map(|l| re.find(l))).map(|m| m.as_str().to_string())
}

/// The container logs of application `app_id` under the cluster's log prefix, best first: the
/// application master's (`container_…_000001`, where cluster mode runs the Spark driver and so
/// the Python traceback) stderr, then the other containers' stderr.
pub fn container_logs(listing: &[ObjectMeta], cluster_prefix: &ObjectUri, app_id: &str) -> Vec<ObjectUri> {
    let folder = cluster_prefix.join("containers").join(app_id);
    let mut found: Vec<(bool, &ObjectUri)> = listing
        .iter()
        .filter(|m| m.uri.key.starts_with(&folder.key))
        .filter(|m| log_rank(m.uri.file_name()) == Some(0))
        .map(|m| {
            let container = m.uri.key.rsplit('/').nth(1).unwrap_or("");
            (!container.ends_with("_000001"), &m.uri)
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, uri)| uri.clone()).collect()
}

const OOM_PATTERNS: &[&str] = &[
    r"Container killed by YARN for exceeding (physical |virtual )?memory limits",
    r"java\.lang\.OutOfMemoryError",
    r"(?i)exit (code|status)( is|:|=)? ?137\b",
    r"(?i)killed by signal 9\b",
    r"(?i)\bout of memory\b",
    r"(?i)MemoryError",
];

/// The probable cause in one log (pure). `extra` are lines from outside the log, such as the
/// FailureDetails message ("Step exited with code 3").
pub fn parse(lines: &[String], extra: &[String]) -> ProbableCause {
    let all: Vec<&str> = lines.iter().chain(extra.iter()).map(String::as_str).collect();
    if let Some(cause) = out_of_memory(&all) {
        return cause;
    }
    if let Some(cause) = unusable_input(lines, extra) {
        return cause;
    }
    if let Some(cause) = python_traceback(lines) {
        return cause;
    }
    if let Some(cause) = spark_exception(lines) {
        return cause;
    }
    let tail: Vec<&str> = lines.iter().map(|l| l.trim_end()).filter(|l| !l.is_empty()).collect();
    let tail = &tail[tail.len().saturating_sub(5)..];
    ProbableCause {
        kind: CauseKind::Unknown,
        summary: if tail.is_empty() { "(the log is empty)".to_string() } else { tail.join("\n") },
    }
}

fn out_of_memory(lines: &[&str]) -> Option<ProbableCause> {
    let patterns: Vec<Regex> = OOM_PATTERNS.iter().map(|p| Regex::new(p).expect("valid regex")).collect();
    let mut hits: Vec<&str> = Vec::new();
    for line in lines {
        if patterns.iter().any(|re| re.is_match(line)) && !hits.contains(&line.trim()) {
            hits.push(line.trim());
        }
    }
    if hits.is_empty() {
        return None;
    }
    hits.truncate(3);
    hits.push("raise the executor / driver memory (spark.executor.memory, spark.executor.memoryOverhead) or the instance type");
    Some(ProbableCause { kind: CauseKind::OutOfMemory, summary: hits.join("\n") })
}

/// Our jobs exit 3 with one line naming the unusable file; the line is recognised by the word
/// "unusable" on a line of its own (not a log4j line, whose text could say anything), or as
/// run_job.py's error line (`run_job.py <job>: error: input file ...`), see
/// docs/architecture.md, exit codes of run_job.py. The exit code 3 is looked for in the
/// FailureDetails, the local runner's message and YARN's "exited with status 3".
fn unusable_input(lines: &[String], extra: &[String]) -> Option<ProbableCause> {
    let exit_3 =
        Regex::new(r"(?i)(exited with (code|status)|exit ?code|exit status)( is|:|=)? ?3\b").expect("valid regex");
    let log_line = Regex::new(r"^\d{2,4}[/-]\d\d[/-]\d\d ").expect("valid regex");
    // run_job.py's own one-line error: `run_job.py <job>: error: input file <uri>: <problem>`.
    let job_error = Regex::new(r"^run_job\.py( \S+)?: error: ").expect("valid regex");
    let exited_3 = extra.iter().chain(lines.iter()).any(|l| exit_3.is_match(l));
    let line = lines.iter().rev().find(|l| {
        !log_line.is_match(l)
            && (l.to_lowercase().contains("unusable")
                || (job_error.is_match(l) && (exited_3 || l.contains(": error: input file"))))
    })?;
    let mut summary = line.trim().to_string();
    if exited_3 {
        summary.push_str("\n(the job exited with code 3: fix or replace the file, then rerun the date)");
    }
    Some(ProbableCause { kind: CauseKind::InputUnusable, summary })
}

/// The last Python traceback: its first line, its last two frames and the exception line(s),
/// including the Java exception py4j wraps (the `: org.apache…` line after `Py4JJavaError`).
fn python_traceback(lines: &[String]) -> Option<ProbableCause> {
    let start = lines.iter().rposition(|l| l.trim_start().starts_with("Traceback (most recent call last):"))?;
    let body = &lines[start + 1..];
    // Frames are indented; the exception line is the first non-indented line after them.
    let exception_at = body.iter().position(|l| !l.starts_with(' ') && !l.starts_with('\t') && !l.trim().is_empty())?;
    let frames: Vec<&str> = body[..exception_at].iter().map(|l| l.trim_end()).collect();
    let frame_starts: Vec<usize> =
        frames.iter().enumerate().filter(|(_, l)| l.trim_start().starts_with("File ")).map(|(i, _)| i).collect();
    let last_frames = match frame_starts.len() {
        0 => &frames[..0],
        n => &frames[frame_starts[n.saturating_sub(2)]..],
    };
    let mut summary = vec![lines[start].trim_end().to_string()];
    summary.extend(last_frames.iter().map(|l| l.to_string()));
    summary.push(body[exception_at].trim_end().to_string());
    // py4j: ": org.apache.spark.SparkException: ..." and its root cause follow.
    let java: Vec<&String> = body[exception_at + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with("Traceback"))
        .filter(|l| l.starts_with(": ") || l.starts_with("Caused by: "))
        .collect();
    if let Some(first) = java.first() {
        summary.push(first.trim_end().to_string());
    }
    if java.len() > 1 {
        summary.push(java[java.len() - 1].trim_end().to_string());
    }
    // A Python worker's exception wrapped inside the Java one (PythonException) is the root.
    let python_exception = Regex::new(r"^[A-Za-z_][\w.]*(Error|Exception|Exit): ").expect("valid regex");
    let log_line = Regex::new(r"^\d{2,4}[/-]\d\d[/-]\d\d ").expect("valid regex");
    let wrapped = body[exception_at + 1..].iter().take_while(|l| !log_line.is_match(l));
    if let Some(root) = wrapped.filter(|l| python_exception.is_match(l)).last() {
        summary.push(root.trim_end().to_string());
    }
    Some(ProbableCause { kind: CauseKind::PythonTraceback, summary: summary.join("\n") })
}

/// The most telling JVM exception: `Exception in thread …` or a `…Exception: ` / `…Error: `
/// line, with its root `Caused by:`. The generic "Application … finished with failed status"
/// of spark-submit is used only when nothing better is there.
fn spark_exception(lines: &[String]) -> Option<ProbableCause> {
    let exception = Regex::new(r"^(Exception in thread .*|([a-z][\w$]*\.)+[A-Z][\w$]*(Exception|Error)(: .*)?)$")
        .expect("valid regex");
    let generic = |l: &str| l.contains("finished with failed status");
    let heads: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| exception.is_match(l.trim_end())).map(|(i, _)| i).collect();
    let head = heads.iter().copied().find(|&i| !generic(&lines[i])).or_else(|| heads.first().copied())?;
    let mut summary = vec![lines[head].trim_end().to_string()];
    let causes: Vec<&String> = lines[head + 1..]
        .iter()
        .take_while(|l| {
            l.starts_with('\t') || l.starts_with(' ') || l.starts_with("Caused by: ") || l.trim().is_empty()
        })
        .filter(|l| l.starts_with("Caused by: "))
        .collect();
    if let Some(root) = causes.last() {
        summary.push(root.trim_end().to_string());
    }
    Some(ProbableCause { kind: CauseKind::SparkException, summary: summary.join("\n") })
}

/// How specific a cause is: the diagnosis keeps the most specific one over all the logs read.
fn specificity(cause: &ProbableCause) -> u8 {
    match cause.kind {
        CauseKind::OutOfMemory => 5,
        CauseKind::InputUnusable => 4,
        CauseKind::PythonTraceback => 3,
        CauseKind::SparkException if cause.summary.contains("finished with failed status") => 1,
        CauseKind::SparkException => 2,
        CauseKind::Unknown => 0,
    }
}

/// The text of a log object: gunzipped when it is gzip (by its magic bytes, since EMR names
/// vary), lossily decoded as UTF-8, split into lines.
pub fn log_lines(raw: &[u8]) -> Vec<String> {
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(raw);
        // A log cut off mid-stream (still being written) still gives what was decoded.
        let _ = decoder.read_to_end(&mut out);
        out
    } else {
        raw.to_vec()
    };
    String::from_utf8_lossy(&text).lines().map(str::to_string).collect()
}

/// Where to look and how long to wait.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// How long to wait for the first log file to appear.
    pub wait_for_logs: Duration,
    /// First wait between two listings (doubles, with jitter, up to `max_backoff`).
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub jitter_seed: Option<u64>,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            // EMR uploads step logs about every five minutes.
            wait_for_logs: Duration::from_secs(6 * 60),
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            jitter_seed: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("could not read the logs of step {step_id}: {source}")]
    Store {
        step_id: String,
        #[source]
        source: StoreError,
    },
    #[error("the runner does not know where the logs of step {step_id} are (the cluster has no LogUri); see the step in the EMR console")]
    NoLogPrefix { step_id: String },
}

impl ExitStatus for DiagnoseError {
    fn exit_code(&self) -> ExitCode {
        match self {
            DiagnoseError::Store { source, .. } => source.exit_code(),
            DiagnoseError::NoLogPrefix { .. } => ExitCode::BadInput,
        }
    }
}

/// Diagnoses a failed step: waits (bounded, with backoff) for its logs under `step_prefix`,
/// reads them best first, follows the application id to the container logs under
/// `cluster_prefix` when given, and returns the most specific cause found with every log URI.
/// When no log arrives in time, the cause comes from the FailureDetails alone and the prefix
/// to look under is given.
pub async fn diagnose(
    store: &dyn ObjectStore,
    step_id: &str,
    step_prefix: &ObjectUri,
    cluster_prefix: Option<&ObjectUri>,
    failure: Option<&FailureDetails>,
    clock: &dyn Clock,
    options: &DiagnoseOptions,
) -> Result<Diagnosis, DiagnoseError> {
    let store_err = |source| DiagnoseError::Store { step_id: step_id.to_string(), source };
    let extra: Vec<String> =
        failure.map(|f| [f.reason.clone(), f.message.clone()].into_iter().flatten().collect()).unwrap_or_default();
    let step_logs = wait_for_logs(store, step_prefix, clock, options).await.map_err(store_err)?;
    if step_logs.is_empty() {
        let cause = parse(&[], &extra);
        return Ok(Diagnosis {
            step_id: step_id.to_string(),
            failure: failure.cloned(),
            cause: if extra.is_empty() {
                ProbableCause { kind: CauseKind::Unknown, summary: "no log file arrived; nothing more is known".into() }
            } else {
                cause
            },
            cause_log: None,
            logs: failure.and_then(|f| f.log_file.clone()).into_iter().collect(),
            logs_missing_under: Some(step_prefix.to_string()),
        });
    }
    let mut read: Vec<(ObjectUri, Vec<String>)> = Vec::new();
    for uri in &step_logs {
        let raw = store.get_bytes(uri).await.map_err(store_err)?;
        read.push((uri.clone(), log_lines(&raw)));
    }
    let mut logs: Vec<String> = step_logs.iter().map(ToString::to_string).collect();
    // Cluster mode: the step's stderr names the YARN application; its driver ran in a container.
    let app = read.iter().find_map(|(_, lines)| application_id(lines));
    if let (Some(app), Some(cluster_prefix)) = (app, cluster_prefix) {
        let listing = store.list(&cluster_prefix.join("containers").join(&app)).await.map_err(store_err)?;
        for uri in container_logs(&listing, cluster_prefix, &app).into_iter().take(3) {
            let raw = store.get_bytes(&uri).await.map_err(store_err)?;
            logs.push(uri.to_string());
            read.push((uri, log_lines(&raw)));
        }
    }
    let (cause_log, cause) = read
        .iter()
        .map(|(uri, lines)| (uri, parse(lines, &extra)))
        // The most specific cause; among equals, the first log read (the best ranked).
        .fold(None::<(&ObjectUri, ProbableCause)>, |best, (uri, cause)| match best {
            Some((_, ref b)) if specificity(b) >= specificity(&cause) => best,
            _ => Some((uri, cause)),
        })
        .expect("at least one log was read");
    Ok(Diagnosis {
        step_id: step_id.to_string(),
        failure: failure.cloned(),
        cause,
        cause_log: Some(cause_log.to_string()),
        logs,
        logs_missing_under: None,
    })
}

/// Lists `prefix` until it holds a step log or the wait bound passes.
async fn wait_for_logs(
    store: &dyn ObjectStore,
    prefix: &ObjectUri,
    clock: &dyn Clock,
    options: &DiagnoseOptions,
) -> Result<Vec<ObjectUri>, StoreError> {
    let start = clock.monotonic();
    let mut backoff = match options.jitter_seed {
        Some(seed) => Backoff::seeded(options.first_backoff, options.max_backoff, seed),
        None => Backoff::new(options.first_backoff, options.max_backoff),
    };
    let mut attempt = 0;
    loop {
        let found = candidate_logs(&store.list(prefix).await?, prefix);
        let waited = clock.monotonic().saturating_sub(start);
        if !found.is_empty() || waited >= options.wait_for_logs {
            return Ok(found);
        }
        // Full jitter can draw ~0: wait at least a second so the bound is reached in few calls.
        let delay = backoff.delay(attempt).max(Duration::from_secs(1)).min(options.wait_for_logs - waited);
        attempt += 1;
        clock.sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn meta(uri: &str) -> ObjectMeta {
        ObjectMeta { uri: ObjectUri::parse(uri).unwrap(), size: 1, last_modified: None, metadata: Default::default() }
    }

    #[test]
    fn ranks_step_logs_whatever_their_names() {
        let prefix = ObjectUri::parse("s3://raw/emr-logs/j-1/steps/s-1/").unwrap();
        let listing = vec![
            meta("s3://raw/emr-logs/j-1/steps/s-1/controller.gz"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/stdout.gz"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/stderr.txt.gz"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/syslog.gz"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/stderr"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/other.json"),
            meta("s3://raw/emr-logs/j-1/steps/s-1/sub/stderr.gz"),
        ];
        let ranked: Vec<String> = candidate_logs(&listing, &prefix).iter().map(|u| u.file_name().to_string()).collect();
        assert_eq!(ranked, vec!["stderr.txt.gz", "stderr", "controller.gz", "syslog.gz", "stdout.gz"]);
    }

    #[test]
    fn finds_the_failed_application() {
        let log = lines(
            "INFO Client: Submitted application application_1635638400000_0007\n\
             Exception in thread \"main\" org.apache.spark.SparkException: Application application_1635638400000_0008 finished with failed status",
        );
        assert_eq!(application_id(&log).as_deref(), Some("application_1635638400000_0008"));
        assert_eq!(application_id(&lines("nothing here")), None);
    }

    #[test]
    fn puts_the_application_master_container_first() {
        let cluster = ObjectUri::parse("s3://raw/emr-logs/j-1/").unwrap();
        let app = "application_1_0001";
        let listing = vec![
            meta("s3://raw/emr-logs/j-1/containers/application_1_0001/container_1_0001_01_000002/stderr.gz"),
            meta("s3://raw/emr-logs/j-1/containers/application_1_0001/container_1_0001_01_000001/stdout.gz"),
            meta("s3://raw/emr-logs/j-1/containers/application_1_0001/container_1_0001_01_000001/stderr.gz"),
        ];
        let found = container_logs(&listing, &cluster, app);
        assert_eq!(found.len(), 2);
        assert!(found[0].key.contains("_000001/stderr.gz"), "{found:?}");
    }

    #[test]
    fn unusable_input_needs_a_line_of_its_own() {
        let log4j = lines("21/10/31 01:00:03 WARN Foo: cache unusable, rebuilding\nall good");
        assert_eq!(parse(&log4j, &[]).kind, CauseKind::Unknown);
        let yarn = lines("unusable input s3://raw/x.csv: empty\n21/10/31 INFO ApplicationMaster: Final app status: FAILED, exitCode: 3");
        let cause = parse(&yarn, &[]);
        assert_eq!(cause.kind, CauseKind::InputUnusable);
        assert!(cause.summary.contains("exited with code 3"), "{}", cause.summary);
        let cause =
            parse(&lines("unusable input s3://raw/x.csv: empty"), &["User application exited with status 3".into()]);
        assert!(cause.summary.contains("exited with code 3"), "{}", cause.summary);
    }

    #[test]
    fn empty_and_unknown_logs_give_their_last_lines() {
        assert_eq!(parse(&[], &[]).kind, CauseKind::Unknown);
        let cause = parse(&lines("a\nb\n\nc"), &[]);
        assert_eq!(cause.kind, CauseKind::Unknown);
        assert_eq!(cause.summary, "a\nb\nc");
    }

    #[test]
    fn reads_gzip_and_plain_text() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(log_lines(&gz.finish().unwrap()), vec!["one", "two"]);
        assert_eq!(log_lines(b"plain\n"), vec!["plain"]);
    }

    #[test]
    fn run_job_error_line_is_the_cause_of_an_exit_3() {
        let lines: Vec<String> = [
            "26/11/28 06:40:11 INFO SparkContext: Successfully stopped SparkContext",
            "run_job.py parse_logs: error: input file s3://raw/incoming/dt=2021-10-31/log_reviews.csv: every one of its 2 records was rejected (bad_xml: 2); the vendor format has probably changed, so nothing is loaded",
            "26/11/28 06:40:11 INFO ShutdownHookManager: Shutdown hook called",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let cause = parse(&lines, &["Step exited with code 3".to_string()]);
        assert_eq!(cause.kind, CauseKind::InputUnusable);
        assert!(cause.summary.contains("every one of its 2 records was rejected"), "{}", cause.summary);
    }
}
