//! Issues #14 and #13 end to end: `ingest` cuts the vendor files into record-aligned gzipped
//! parts with a manifest (and a re-delivery replaces every old part), the run reads them and
//! checks the driver's count, and `render` prints the run id the run then uses (from a
//! `--raw-dir` before anything is ingested, and from the bucket after).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use async_trait::async_trait;
use bytes::Bytes;
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::ArtifactSet;
use emr_driver::diagnose::DiagnoseOptions;
use emr_driver::error::ExitCode;
use emr_driver::inputs::{BoundInputs, PartsManifest};
use emr_driver::manifest::{RunManifest, RunState};
use emr_driver::pipeline::{Databases, Pipeline, Progress, ProvidedRunner, RunOptions, RunnerProvider};
use emr_driver::plan::Plan;
use emr_driver::poll::{PollOptions, Quiet};
use emr_driver::runner::{CancelOutcome, RunnerError, StepRunner, Termination};
use emr_driver::step::{StepConfig, StepState, StepStatus};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};
use tokio::sync::watch;

const DATE: &str = "2021-10-31";
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/pipeline.toml");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `n` reviews whose texts hold quoted newlines, commas and doubled quotes (CRLF line ends).
fn reviews(n: usize) -> String {
    let mut text = "cid,review_str,id_review\r\n".to_string();
    for i in 0..n {
        text.push_str(&format!("{i},\"a \"\"good\"\" film,\r\nsaid {i}; {}\",{i}\r\n", "x".repeat(i % 700)));
    }
    text
}

fn logs(n: usize) -> String {
    let mut text = "id_review,log\n".to_string();
    for i in 0..n {
        text.push_str(&format!("{i},<reviewlog><log><logDate>04-25-2021</logDate></log></reviewlog>\n"));
    }
    text
}

const PURCHASES: &str = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n536365,85123A,X,6,12/1/2010 8:26,2.55,1,United Kingdom\r\n";

/// A folder of vendor files as `--raw-dir` takes them.
fn raw_dir(movies: &str, logs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("movie_review.csv"), movies).unwrap();
    std::fs::write(dir.path().join("log_reviews.csv"), logs).unwrap();
    std::fs::write(dir.path().join("user_purchase.csv"), PURCHASES).unwrap();
    dir
}

fn driver(lake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("emr-driver").unwrap();
    cmd.arg("--config").arg(CONFIG).env_remove("DATABASE_URL").env_remove("WAREHOUSE_URL");
    cmd.env("EMR_DRIVER_LOCAL_LAKE_DIR", lake).env("EMR_DRIVER_INGEST_PART_SIZE_MB", "1");
    cmd
}

fn folder_of(lake: &Path, input: &str) -> PathBuf {
    lake.join("movie-analytics-dev-raw").join(format!("incoming/dt={DATE}/{input}"))
}

fn manifest_of(lake: &Path, input: &str) -> PartsManifest {
    serde_json::from_slice(&std::fs::read(folder_of(lake, input).join("_manifest.json")).unwrap()).unwrap()
}

/// The part files of an input's folder, decompressed, in name order.
fn parts_of(lake: &Path, input: &str) -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(folder_of(lake, input))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(folder_of(lake, input).join(&name)).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut text).unwrap();
            (name, text)
        })
        .collect()
}

fn render(lake: &Path, raw_dir: Option<&Path>) -> serde_json::Value {
    let mut cmd = driver(lake);
    cmd.args(["--output", "json", "render", "--date", DATE, "--target", "local", "--project-root"]).arg(repo());
    if let Some(dir) = raw_dir {
        cmd.arg("--raw-dir").arg(dir);
    }
    serde_json::from_slice(&cmd.assert().success().get_output().stdout).unwrap()
}

#[test]
fn ingest_cuts_record_aligned_parts_and_a_redelivery_replaces_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let movies = reviews(6000); // about 2.2 MiB: 4 parts of 0.55 MiB at 1 MiB (an even count)
    let files = raw_dir(&movies, &logs(10));
    driver(&lake)
        .args(["ingest", "--date", DATE, "--target", "local"])
        .arg(files.path().join("movie_review.csv"))
        .arg(files.path().join("log_reviews.csv"))
        .assert()
        .success();

    let manifest = manifest_of(&lake, "movie_review");
    let parts = parts_of(&lake, "movie_review");
    assert!(parts.len() >= 3, "{} parts", parts.len());
    // Spark reads the whole folder: nothing in it but the parts and the `_` manifest.
    for entry in std::fs::read_dir(folder_of(&lake, "movie_review")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name == "_manifest.json" || (name.starts_with("part-") && name.ends_with(".csv.gz")), "{name}");
    }
    assert_eq!(manifest.records, 6000);
    // The size it was cut at: 1 MiB balanced for the file (an even number of equal parts).
    assert_eq!(manifest.part_size_bytes, emr_driver::split::balanced_part_size(1 << 20, movies.len() as u64));
    assert!(manifest.part_size_bytes < 1 << 20);
    assert_eq!(parts.len() % 2, 0, "{} parts", parts.len());
    assert_eq!(manifest.source.bytes, movies.len() as u64);
    assert_eq!(
        manifest.source.sha256,
        emr_driver::ingest::sha256_of_path(&files.path().join("movie_review.csv")).unwrap()
    );
    assert_eq!(
        manifest.parts.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        parts.iter().map(|p| p.0.clone()).collect::<Vec<_>>()
    );
    let header = "cid,review_str,id_review\r\n";
    let mut rejoined = String::new();
    for ((name, text), entry) in parts.iter().zip(&manifest.parts) {
        assert!(text.starts_with(header), "{name} lacks the header");
        assert!(text.ends_with("\r\n"), "{name} ends inside a record");
        // Each part counts as its manifest says, with an independent reader.
        assert_eq!(emr_driver::ingest::count_records(text.as_bytes(), false).unwrap(), entry.rows, "{name}");
        let cut_at = manifest.part_size_bytes;
        assert!(entry.bytes >= cut_at || name == &parts.last().unwrap().0, "{name} is short of the part size");
        rejoined.push_str(&text[header.len()..]);
    }
    assert_eq!(format!("{header}{rejoined}"), movies, "the parts without their headers are the file");
    assert_eq!(parts_of(&lake, "log_reviews").len(), 1);

    // The same files again upload nothing (the parts keep their modification times).
    let first = folder_of(&lake, "movie_review").join("part-00000.csv.gz");
    let modified = std::fs::metadata(&first).unwrap().modified().unwrap();
    driver(&lake)
        .args(["ingest", "--date", DATE, "--target", "local"])
        .arg(files.path().join("movie_review.csv"))
        .assert()
        .success();
    assert_eq!(std::fs::metadata(&first).unwrap().modified().unwrap(), modified);

    // Re-delivered, smaller and gzipped: one part, none of the old ones left behind.
    let smaller = reviews(10);
    let gz_path = files.path().join("movie_review.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, smaller.as_bytes()).unwrap();
    std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
    driver(&lake).args(["ingest", "--date", DATE, "--target", "local"]).arg(&gz_path).assert().success();
    let parts = parts_of(&lake, "movie_review");
    assert_eq!(parts.len(), 1, "stale parts left: {:?}", parts.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert_eq!(parts[0].1, smaller);
    let manifest = manifest_of(&lake, "movie_review");
    assert_eq!((manifest.records, manifest.source.name.as_str()), (10, "movie_review.csv.gz"));
}

// --- the run against a fake step runner --------------------------------------------------

/// Completes every step at once, writing the job's metrics with `rows_in` as given.
struct FakeRunner {
    store: LocalStore,
    rows_in: HashMap<&'static str, u64>,
    steps: Mutex<Vec<StepStatus>>,
    submitted: AtomicUsize,
    /// The `--input` of each job it was given.
    inputs: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl StepRunner for FakeRunner {
    fn describe(&self) -> String {
        "fake cluster".into()
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        let mut ids = Vec::new();
        for config in steps {
            let n = self.submitted.fetch_add(1, Ordering::SeqCst);
            let job = config.name.rsplit(' ').next().unwrap().to_string();
            let args = &config.hadoop_jar_step.args;
            let arg = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].clone());
            if let Some(input) = arg("--input") {
                self.inputs.lock().unwrap().insert(job.clone(), input);
            }
            let source = match job.as_str() {
                "classify_reviews" => Some("movie_review"),
                "parse_logs" => Some("log_reviews"),
                _ => None,
            };
            let mut doc = serde_json::json!({"job": job, "run_date": DATE, "sources": {}});
            if let Some(source) = source {
                let rows = self.rows_in[source];
                doc["sources"][source] = serde_json::json!({"rows_in": rows, "rows_out": rows, "rows_rejected": 0});
            }
            // The folders the real job writes, each complete (`_SUCCESS`), so the run can publish.
            crate::support::write_job_outputs(&self.store, args, &config.name).await;
            let metrics = ObjectUri::parse(&format!("{}/part-00000.txt", arg("--metrics").unwrap())).unwrap();
            self.store.put_bytes(&metrics, Bytes::from(format!("{doc}\n"))).await.unwrap();
            let id = format!("s-FAKE{n}");
            self.steps.lock().unwrap().push(StepStatus {
                id: id.clone(),
                name: config.name.clone(),
                state: StepState::Completed,
                failure: None,
                started_at: None,
                ended_at: None,
            });
            ids.push(id);
        }
        Ok(ids)
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        let steps = self.steps.lock().unwrap();
        Ok(steps.iter().filter(|s| ids.is_empty() || ids.contains(&s.id)).cloned().collect())
    }

    async fn cancel(&self, _ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        Ok(Vec::new())
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        Some(ObjectUri::parse(&format!("s3://logs/steps/{step_id}/")).unwrap())
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        None
    }

    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        Ok(Termination::NotApplicable)
    }
}

struct FakeProvider(Arc<FakeRunner>);

#[async_trait]
impl RunnerProvider for FakeProvider {
    async fn provide(&self, _plan: &Plan) -> emr_driver::error::Result<ProvidedRunner> {
        Ok(ProvidedRunner { runner: self.0.clone(), kind: "emr", cluster: None })
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Progress for Lines {
    fn line(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

/// The configuration `driver(lake)` resolves, in process.
fn config(lake: &Path) -> Config {
    let text = std::fs::read_to_string(CONFIG).unwrap();
    let overrides = Overrides::default()
        .set("local.lake_dir", lake.display().to_string())
        .set("ingest.part_size_mb", "1")
        .set("pipeline.target", "local");
    Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &overrides).unwrap()
}

fn runner(lake: &Path, movie_rows: u64, log_rows: u64) -> Arc<FakeRunner> {
    Arc::new(FakeRunner {
        store: LocalStore::new(lake),
        rows_in: HashMap::from([("movie_review", movie_rows), ("log_reviews", log_rows)]),
        steps: Mutex::new(Vec::new()),
        submitted: AtomicUsize::new(0),
        inputs: Mutex::new(HashMap::new()),
    })
}

async fn run(
    lake: &Path,
    plan: Plan,
    raw_dir: Option<&Path>,
    runner: Arc<FakeRunner>,
) -> (RunManifest, emr_driver::error::Result<()>, Vec<String>) {
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::new());
    let progress = Arc::new(Lines::default());
    let pipeline = Pipeline {
        plan,
        store: Arc::new(LocalStore::new(lake)),
        provider: Box::new(FakeProvider(runner)),
        clock,
        observer: Arc::new(Quiet),
        progress: progress.clone(),
        options: RunOptions {
            databases: Databases::default(),
            owner: "test".into(),
            break_stale_lock: false,
            force: false,
            skip_bad_purchase_rows: false,
            keep_cluster: false,
            poll: PollOptions { interval: Duration::from_secs(1), jitter_seed: Some(7), ..PollOptions::default() },
            diagnose: DiagnoseOptions { jitter_seed: Some(7), ..Default::default() },
            settle: Duration::from_secs(10),
            lock_heartbeat: None,
            raw_dir: raw_dir.map(Path::to_path_buf),
            turns: None,
        },
        shutdown: watch::channel(None).1,
    };
    let (manifest, result) = pipeline.run().await;
    let lines = progress.0.lock().unwrap().clone();
    (manifest, result, lines)
}

async fn plan_for(lake: &Path, raw_dir: Option<&Path>) -> Plan {
    let config = config(lake);
    let inputs = emr_driver::inputs::find(&config, DATE, raw_dir, None, &repo()).await.unwrap();
    Plan::resolve(&config, &Overrides::default(), DATE, &ArtifactSet::build(&repo()).unwrap(), &inputs).unwrap()
}

#[tokio::test]
async fn render_shows_the_run_id_step_names_and_uris_the_run_uses() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files = raw_dir(&reviews(6000), &logs(10));

    // Nothing ingested: the plan says so and labels its run id.
    let empty = render(&lake, None);
    assert_eq!(empty["inputs"]["state"], "not_yet");
    assert!(empty["run_id_of"].as_str().unwrap().starts_with("configuration and code alone"), "{}", empty["run_id_of"]);

    // `render --raw-dir` before anything is ingested: the run id of `run --raw-dir`.
    let planned = render(&lake, Some(files.path()));
    assert_eq!(planned["inputs"]["state"], "bound");
    let run_id = planned["run_id"].as_str().unwrap().to_string();
    assert_ne!(run_id, empty["run_id"].as_str().unwrap());
    assert!(std::fs::read_dir(&lake).map(|mut d| d.next().is_none()).unwrap_or(true), "render wrote to the lake");

    let plan = plan_for(&lake, Some(files.path())).await;
    assert_eq!(plan.run_id, run_id, "the CLI and the library resolve the same plan");
    let fake = runner(&lake, 6000, 10);
    let (manifest, result, _) = run(&lake, plan, Some(files.path()), fake.clone()).await;
    result.unwrap();
    assert_eq!(manifest.state, RunState::Succeeded);
    assert_eq!(manifest.run_id, run_id);
    let step_names: Vec<String> = fake.steps.lock().unwrap().iter().map(|s| s.name.clone()).collect();
    let rendered_names: Vec<String> = planned["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["config"]["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(step_names, rendered_names);
    // The jobs read the parts folders the plan shows.
    let movie_folder = planned["uris"]["movie_review_input"].as_str().unwrap();
    assert!(movie_folder.ends_with(&format!("incoming/dt={DATE}/movie_review")), "{movie_folder}");
    assert_eq!(fake.inputs.lock().unwrap()["classify_reviews"], movie_folder);
    assert_eq!(fake.inputs.lock().unwrap()["parse_logs"], planned["uris"]["log_reviews_input"].as_str().unwrap());

    // After the ingest, `render` from the bucket shows the same run id.
    assert_eq!(render(&lake, None)["run_id"], planned["run_id"]);
}

#[tokio::test]
async fn a_run_resolved_before_its_inputs_were_there_binds_them_after_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files = raw_dir(&reviews(50), &logs(10));
    let early = plan_for(&lake, None).await;
    assert!(matches!(early.inputs, BoundInputs::NotYet { .. }));
    let (manifest, result, lines) = run(&lake, early.clone(), Some(files.path()), runner(&lake, 50, 10)).await;
    result.unwrap();
    assert_ne!(manifest.run_id, early.run_id);
    assert_eq!(manifest.run_id, render(&lake, None)["run_id"].as_str().unwrap());
    assert!(lines.iter().any(|l| l.contains("inputs bound") && l.contains(&manifest.run_id)), "{lines:?}");
}

#[tokio::test]
async fn a_plan_for_other_inputs_than_those_ingested_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files = raw_dir(&reviews(50), &logs(10));
    let plan = plan_for(&lake, Some(files.path())).await;
    // Another delivery between the plan and the run.
    std::fs::write(files.path().join("movie_review.csv"), reviews(49)).unwrap();
    let fake = runner(&lake, 49, 10);
    let (_, result, _) = run(&lake, plan, Some(files.path()), fake.clone()).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(err.to_string().contains("changed between resolving the plan and taking the run lock"), "{err}");
    assert_eq!(fake.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_driver_count_over_the_parts_is_checked_against_rows_in() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files = raw_dir(&reviews(6000), &logs(10));
    let plan = plan_for(&lake, Some(files.path())).await;
    let (manifest, result, _) = run(&lake, plan, Some(files.path()), runner(&lake, 5999, 10)).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Internal);
    assert!(err.to_string().contains("has 6000 CSV records") && err.to_string().contains("rows_in 5999"), "{err}");
    assert_eq!(manifest.state, RunState::Failed);
}

#[tokio::test]
async fn a_stale_part_in_the_folder_fails_the_run_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files = raw_dir(&reviews(50), &logs(10));
    let store = LocalStore::new(&lake);
    let incoming = ObjectUri::parse(&format!("s3://movie-analytics-dev-raw/incoming/dt={DATE}")).unwrap();
    let all: Vec<PathBuf> =
        ["movie_review.csv", "log_reviews.csv", "user_purchase.csv"].iter().map(|n| files.path().join(n)).collect();
    emr_driver::ingest::ingest(&store, &incoming, &all, 1 << 20).await.unwrap();
    let stale = incoming.join("movie_review/part-00007.csv.gz");
    store.put_bytes(&stale, Bytes::from_static(b"old")).await.unwrap();
    let plan = plan_for(&lake, None).await;
    let fake = runner(&lake, 50, 10);
    let (_, result, _) = run(&lake, plan, None, fake.clone()).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(
        err.to_string().contains("part-00007.csv.gz") && err.to_string().contains("not in the folder's manifest"),
        "{err}"
    );
    assert_eq!(fake.submitted.load(Ordering::SeqCst), 0);
    // Ingesting again cleans the folder.
    emr_driver::ingest::ingest(&store, &incoming, &all, 1 << 20).await.unwrap();
    assert!(store.head(&stale).await.unwrap().is_none());
}
