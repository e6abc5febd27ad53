//! Failure diagnosis on literal log files (tests/fixtures/logs/), and the bounded wait for
//! late or missing logs with a FakeClock and a real LocalStore.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::diagnose::{diagnose, log_lines, parse, CauseKind, DiagnoseOptions};
use emr_driver::step::FailureDetails;
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectMeta, ObjectReader, ObjectStore, ObjectUri, StoreError};

fn fixture(name: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs").join(name);
    log_lines(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn fixture_gz(name: &str) -> Bytes {
    let raw = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs").join(name)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    Bytes::from(gz.finish().unwrap())
}

#[test]
fn a_python_traceback_through_py4j_gives_the_frames_the_java_error_and_the_worker_error() {
    let cause = parse(&fixture("container_stderr_python_traceback_py4j.txt"), &[]);
    assert_eq!(cause.kind, CauseKind::PythonTraceback);
    let lines: Vec<&str> = cause.summary.lines().collect();
    assert_eq!(lines[0], "Traceback (most recent call last):");
    assert!(lines.iter().any(|l| l.contains("py4j/protocol.py\", line 326")), "{}", cause.summary);
    assert!(lines.contains(&"py4j.protocol.Py4JJavaError: An error occurred while calling o112.parquet."));
    assert!(lines.iter().any(|l| l.starts_with(": org.apache.spark.SparkException: Job aborted")));
    assert_eq!(*lines.last().unwrap(), "ValueError: time data '31-10-2021' does not match format '%m-%d-%Y'");
    // The job's own frames higher up are left out: a few lines, not the whole traceback.
    assert!(!cause.summary.contains("parse_logs.py"), "{}", cause.summary);
    assert!(lines.len() <= 10, "{}", cause.summary);
}

#[test]
fn a_spark_exception_gives_its_root_cause() {
    let cause = parse(&fixture("step_stderr_spark_exception_caused_by.txt"), &[]);
    assert_eq!(cause.kind, CauseKind::SparkException);
    let lines: Vec<&str> = cause.summary.lines().collect();
    assert!(lines[0].starts_with("org.apache.spark.SparkException: Job aborted due to stage failure"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "Caused by: java.nio.file.AccessDeniedException: s3://movie-analytics-dev-staging/dims/dim_location/dt=2021-10-31/part-00000.parquet: Access Denied"
    );
}

#[test]
fn an_oom_killed_container_is_reported_as_out_of_memory_even_with_a_traceback() {
    let cause = parse(&fixture("container_stderr_oom_killed.txt"), &[]);
    assert_eq!(cause.kind, CauseKind::OutOfMemory);
    assert!(
        cause.summary.contains("Exit code is 137") || cause.summary.contains("exit status: 137"),
        "{}",
        cause.summary
    );
    assert!(cause.summary.contains("spark.executor.memoryOverhead"), "{}", cause.summary);
    assert!(cause.summary.lines().count() <= 4);
}

#[test]
fn a_sigkilled_local_step_counts_as_out_of_memory() {
    let extra = vec!["Unknown Error.".to_string(), "Step was killed by signal 9".to_string()];
    assert_eq!(parse(&["starting".to_string()], &extra).kind, CauseKind::OutOfMemory);
}

#[test]
fn an_unusable_input_names_the_file() {
    let extra = vec!["Step exited with code 3".to_string()];
    let cause = parse(&fixture("step_stderr_unusable_input.txt"), &extra);
    assert_eq!(cause.kind, CauseKind::InputUnusable);
    assert!(cause
        .summary
        .starts_with("run_job: unusable input s3://movie-analytics-dev-raw/incoming/dt=2021-10-31/log_reviews.csv.gz"));
    assert!(cause.summary.contains("exited with code 3"));
}

#[test]
fn the_generic_spark_submit_failure_is_only_a_fallback() {
    let cause = parse(&fixture("step_stderr_cluster_mode_failed.txt"), &[]);
    assert_eq!(cause.kind, CauseKind::SparkException);
    assert!(cause.summary.contains("application_1635638400000_0004 finished with failed status"));
}

const STEP: &str = "s-2AB3CD4EF5GH6";

fn options() -> DiagnoseOptions {
    DiagnoseOptions {
        wait_for_logs: Duration::from_secs(300),
        first_backoff: Duration::from_secs(5),
        max_backoff: Duration::from_secs(60),
        jitter_seed: Some(3),
    }
}

fn failure() -> FailureDetails {
    FailureDetails {
        reason: Some("Unknown Error.".into()),
        message: None,
        log_file: Some(format!("s3://raw/emr-logs/j-1/steps/{STEP}/stderr.gz")),
    }
}

#[tokio::test]
async fn cluster_mode_follows_the_application_to_the_driver_container() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let cluster = ObjectUri::parse("s3://raw/emr-logs/j-1/").unwrap();
    let step_prefix = cluster.join("steps").join(STEP).join("");
    store.put_bytes(&step_prefix.join("stderr.gz"), fixture_gz("step_stderr_cluster_mode_failed.txt")).await.unwrap();
    store
        .put_bytes(&step_prefix.join("controller.gz"), fixture_gz("step_stderr_unusable_input.txt").slice(0..0))
        .await
        .unwrap();
    let am = cluster.join("containers/application_1635638400000_0004/container_1635638400000_0004_01_000001/stderr.gz");
    store.put_bytes(&am, fixture_gz("container_stderr_python_traceback_py4j.txt")).await.unwrap();
    let clock = FakeClock::new();
    let diagnosis =
        diagnose(&store, STEP, &step_prefix, Some(&cluster), Some(&failure()), &clock, &options()).await.unwrap();
    assert_eq!(diagnosis.cause.kind, CauseKind::PythonTraceback, "{}", diagnosis.render_text());
    assert_eq!(diagnosis.cause_log.as_deref(), Some(am.to_string().as_str()));
    assert!(diagnosis.logs.contains(&format!("s3://raw/emr-logs/j-1/steps/{STEP}/stderr.gz")));
    assert!(diagnosis.logs.contains(&am.to_string()));
    assert!(clock.sleeps().is_empty(), "the logs were there: no wait");
    let text = diagnosis.render_text();
    assert!(text.contains("ValueError: time data"), "{text}");
    assert!(text.contains(&am.to_string()), "{text}");
}

/// A store whose objects become visible only once the fake clock passes their arrival time:
/// EMR copies step logs to S3 minutes after the step ended.
struct LateStore {
    inner: LocalStore,
    clock: FakeClock,
    arrives_after: Duration,
}

#[async_trait]
impl ObjectStore for LateStore {
    async fn head(&self, uri: &ObjectUri) -> Result<Option<ObjectMeta>, StoreError> {
        if self.clock.monotonic() < self.arrives_after {
            return Ok(None);
        }
        self.inner.head(uri).await
    }
    async fn list(&self, prefix: &ObjectUri) -> Result<Vec<ObjectMeta>, StoreError> {
        if self.clock.monotonic() < self.arrives_after {
            return Ok(Vec::new());
        }
        self.inner.list(prefix).await
    }
    async fn get_bytes(&self, uri: &ObjectUri) -> Result<Bytes, StoreError> {
        self.inner.get_bytes(uri).await
    }
    async fn reader(&self, uri: &ObjectUri) -> Result<ObjectReader, StoreError> {
        self.inner.reader(uri).await
    }
    async fn put_bytes(&self, uri: &ObjectUri, body: Bytes) -> Result<(), StoreError> {
        self.inner.put_bytes(uri, body).await
    }
    async fn put_if_absent(&self, uri: &ObjectUri, body: Bytes) -> Result<bool, StoreError> {
        self.inner.put_if_absent(uri, body).await
    }
    async fn put_file(
        &self,
        uri: &ObjectUri,
        path: &std::path::Path,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.inner.put_file(uri, path, metadata).await
    }
    async fn put_stream(&self, uri: &ObjectUri, body: ObjectReader) -> Result<u64, StoreError> {
        self.inner.put_stream(uri, body).await
    }
    async fn delete(&self, uri: &ObjectUri) -> Result<(), StoreError> {
        self.inner.delete(uri).await
    }
}

#[tokio::test]
async fn late_logs_are_waited_for_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let store =
        LateStore { inner: LocalStore::new(dir.path()), clock: clock.clone(), arrives_after: Duration::from_secs(90) };
    let step_prefix = ObjectUri::parse(&format!("s3://raw/emr-logs/j-1/steps/{STEP}/")).unwrap();
    store
        .put_bytes(&step_prefix.join("stderr.gz"), fixture_gz("step_stderr_spark_exception_caused_by.txt"))
        .await
        .unwrap();

    let diagnosis = diagnose(&store, STEP, &step_prefix, None, Some(&failure()), &clock, &options()).await.unwrap();
    assert_eq!(diagnosis.cause.kind, CauseKind::SparkException);
    assert!(diagnosis.logs_missing_under.is_none());
    let sleeps = clock.sleeps();
    assert!(sleeps.len() >= 2, "waited in several steps: {sleeps:?}");
    assert!(clock.slept() >= Duration::from_secs(90), "waited until the logs arrived: {sleeps:?}");
    assert!(clock.slept() < Duration::from_secs(300), "and not up to the bound: {sleeps:?}");
    // Backoff: the ceilings double, so later waits may be longer than the first one allows.
    assert!(sleeps.iter().all(|d| *d <= Duration::from_secs(60)), "{sleeps:?}");
}

#[tokio::test]
async fn logs_that_never_arrive_end_the_wait_at_the_bound_with_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path()));
    let clock = FakeClock::new();
    let step_prefix = ObjectUri::parse(&format!("s3://raw/emr-logs/j-1/steps/{STEP}/")).unwrap();
    let diagnosis =
        diagnose(store.as_ref(), STEP, &step_prefix, None, Some(&failure()), &clock, &options()).await.unwrap();
    assert_eq!(clock.slept(), Duration::from_secs(300), "exactly the bound: {:?}", clock.sleeps());
    assert_eq!(diagnosis.logs_missing_under.as_deref(), Some(step_prefix.to_string().as_str()));
    assert_eq!(diagnosis.logs, vec![format!("s3://raw/emr-logs/j-1/steps/{STEP}/stderr.gz")]);
    let text = diagnosis.render_text();
    assert!(text.contains("no log file arrived in time"), "{text}");
    assert!(text.contains(&step_prefix.to_string()), "{text}");
    assert!(text.contains("Unknown Error."), "{text}");
}
