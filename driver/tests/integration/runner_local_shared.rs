//! The local runner's shared Spark application, with a real spark-submit of
//! `pyspark_jobs/step_server.py`: EMR's life cycle and ActionOnFailure through it, run_job.py's
//! exit codes and error line in the step's own stderr.gz, cancel through the job group, a
//! crash of the application (its JVM killed) and the next step in a new one, two steps at once
//! in one application with logs that do not mix.
//!
//! The steps run a test package: the real `pyspark_jobs` with a `run_job.py` that adds a few
//! test jobs (`exit N`, `spin`, `rendezvous`) in front of the real dispatcher, zipped as
//! `emr-driver deploy` zips it. Real processes, so the real clock with short poll intervals:
//! the waits are for Spark to do things, each bounded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use emr_driver::clock::SystemClock;
use emr_driver::deploy::ArtifactSet;
use emr_driver::diagnose::{diagnose, log_lines, CauseKind, DiagnoseOptions};
use emr_driver::poll::{wait_for_steps, PollOptions, Quiet};
use emr_driver::runner::local::{LocalRunner, LocalRunnerOptions, SparkApplication};
use emr_driver::runner::{StepRunner, Termination};
use emr_driver::step::{ActionOnFailure, HadoopJarStep, StepConfig, StepState, StepStatus};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};

const TEST_RUN_JOB: &str = r#"# run_job.py of the tests: a few test jobs, else the real dispatcher.
import os
import sys
import time

from pyspark_jobs import real_run_job
from pyspark_jobs.spark_session import job_session


def run(argv):
    job = argv[0] if argv else ""
    if job == "exit":
        print(f"exit job: {argv[1]}", file=sys.stderr)
        return int(argv[1])
    if job == "spin":
        spark = job_session("spin")
        print("spin started", flush=True)
        # Hours of Spark work: only a cancel (or a crash) ends it.
        spark.range(0, 10**13, numPartitions=1).selectExpr("sum(id)").collect()
        return 0
    if job == "rendezvous":
        me, other, folder = argv[1], argv[2], argv[3]
        spark = job_session(me)
        open(os.path.join(folder, me), "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(folder, other)):
            if time.monotonic() > deadline:
                print(f"{me}: {other} never ran beside me", file=sys.stderr)
                return 5
            time.sleep(0.05)
        for i in range(200):
            print(f"{me} out {i}")
            print(f"{me} err {i}", file=sys.stderr)
        print(f"{me} counted {spark.range(0, 11).count()}")
        return 0
    return real_run_job.run(argv)
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test package, zipped as deploy zips it: the real modules, `run_job.py` replaced.
fn test_package(dir: &Path) -> PathBuf {
    let package = dir.join("project/pyspark_jobs");
    std::fs::create_dir_all(&package).unwrap();
    for entry in std::fs::read_dir(repo_root().join("pyspark_jobs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let target = if name == "run_job.py" { "real_run_job.py".to_string() } else { name };
            std::fs::copy(&path, package.join(target)).unwrap();
        }
    }
    std::fs::write(package.join("run_job.py"), TEST_RUN_JOB).unwrap();
    std::fs::create_dir_all(dir.join("project/bootstrap")).unwrap();
    std::fs::write(dir.join("project/bootstrap/packages.sh"), "#!/bin/sh\n").unwrap();
    ArtifactSet::build(&dir.join("project")).unwrap().pyspark_jobs_zip.path
}

struct Setup {
    _dir: tempfile::TempDir,
    lake: PathBuf,
    store: LocalStore,
    zip: PathBuf,
}

fn setup() -> Setup {
    if !repo_root().join(".venv/bin/spark-submit").exists() {
        panic!("no .venv/bin/spark-submit: run scripts/setup.sh first");
    }
    let dir = tempfile::tempdir().unwrap();
    let zip = test_package(dir.path());
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    Setup { store: LocalStore::new(&lake), lake, zip, _dir: dir }
}

fn runner(setup: &Setup, concurrency: usize) -> LocalRunner {
    LocalRunner::new(
        LocalRunnerOptions {
            lake: LocalStore::new(&setup.lake),
            spark_submit: repo_root().join(".venv/bin/spark-submit"),
            master: "local[2]".into(),
            driver_memory: "1g".into(),
            concurrency,
            log_prefix: ObjectUri::parse("s3://raw/emr-logs/local/").unwrap(),
            // Long: a cancel that works ends the step through its job group, well before the
            // application would be killed.
            kill_grace: Duration::from_secs(60),
            spark_application: SparkApplication::Shared,
            step_server: repo_root().join("pyspark_jobs/step_server.py"),
            // The real archive when scripts/setup.sh made it: the JVMs these tests start use it as runs do.
            class_data_archive: Some(repo_root().join(emr_driver::config::DEFAULT_CLASS_DATA_ARCHIVE)),
            jit: Default::default(),
            shuffle_partitions: None,
        },
        SystemClock::shared(),
    )
}

/// A `spark-submit ... run_job.py <args>` step as the templates render it (s3:// URIs,
/// cluster deploy mode).
fn job_step(setup: &Setup, name: &str, args: &[&str], action: ActionOnFailure) -> StepConfig {
    let mut argv: Vec<String> = vec![
        "spark-submit".into(),
        "--deploy-mode".into(),
        "cluster".into(),
        "--py-files".into(),
        setup.zip.display().to_string(),
        "--conf".into(),
        "spark.sql.shuffle.partitions=2".into(),
        "s3://raw/artifacts/t/run_job.py".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    StepConfig {
        name: name.into(),
        action_on_failure: action,
        hadoop_jar_step: HadoopJarStep { jar: "command-runner.jar".into(), args: argv, main_class: None },
    }
}

fn poll_options() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        deadline: Some(Duration::from_secs(300)),
        max_transient_errors: 3,
        missing_polls_allowed: 0,
        jitter_seed: Some(1),
    }
}

async fn wait(runner: &LocalRunner, ids: &[String]) -> Vec<StepStatus> {
    wait_for_steps(runner, ids, &SystemClock::new(), &poll_options(), &Quiet).await.unwrap()
}

async fn log(setup: &Setup, runner: &LocalRunner, id: &str, name: &str) -> Vec<String> {
    let uri = runner.log_prefix(id).unwrap().join(name);
    log_lines(&setup.store.get_bytes(&uri).await.unwrap())
}

/// The Spark application id the server named in the step's stderr.
fn spark_app_of(stderr: &[String]) -> String {
    let line = stderr.iter().find(|l| l.contains("in the shared Spark application")).expect("the server's line");
    line.split("in the shared Spark application ").nth(1).unwrap().split(' ').next().unwrap().to_string()
}

/// Waits (bounded) until the raw stdout of a running step contains `text`.
async fn wait_for_output(setup: &Setup, runner: &LocalRunner, id: &str, text: &str) {
    let path = setup.store.path_of(&runner.log_prefix(id).unwrap().join("stdout"));
    let started = Instant::now();
    while !std::fs::read_to_string(&path).is_ok_and(|t| t.contains(text)) {
        if started.elapsed() > Duration::from_secs(240) || path.with_file_name("stdout.gz").exists() {
            let status = runner.list_steps(&[id.to_string()]).await.unwrap();
            let stderr = std::fs::read(path.with_file_name("stderr.gz"))
                .map(|b| log_lines(&b).join("\n"))
                .or_else(|_| std::fs::read_to_string(path.with_file_name("stderr")))
                .unwrap_or_default();
            panic!("step {id} never printed {text:?}: {status:?}\nits stderr:\n{stderr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The pids of the `java` processes of a process group.
fn java_in_group(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if &stat[open + 1..close] == "java" && fields[2].parse::<i32>() == Ok(pgid) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_follow_the_emr_life_cycle_in_one_shared_application() {
    let setup = setup();
    let incoming = "s3://raw/incoming/dt=2021-10-31";
    let sample = std::fs::read_to_string(repo_root().join("sample/log_reviews.csv")).unwrap();
    let head: String = sample.lines().take(4).map(|l| format!("{l}\n")).collect();
    setup
        .store
        .put_bytes(&ObjectUri::parse(&format!("{incoming}/log_reviews.csv")).unwrap(), Bytes::from(head))
        .await
        .unwrap();
    let parse_logs = |input: &str| -> Vec<String> {
        [
            "parse_logs",
            "--run-date",
            "2021-10-31",
            "--input",
            input,
            "--output",
            "s3://staging/review_logs/dt=2021-10-31/",
            "--rejects",
            "s3://staging/rejects/log_reviews/dt=2021-10-31/",
            "--metrics",
            "s3://staging/metrics/parse_logs/dt=2021-10-31",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let ok_args = parse_logs(&format!("{incoming}/log_reviews.csv"));
    let missing_args = parse_logs(&format!("{incoming}/missing.csv"));
    let ok_refs: Vec<&str> = ok_args.iter().map(String::as_str).collect();
    let missing_refs: Vec<&str> = missing_args.iter().map(String::as_str).collect();
    let runner = runner(&setup, 1);
    runner.warm_up(None);
    let app = runner.shared_application().expect("warm_up started the application");
    let ids = runner
        .submit(&[
            job_step(&setup, "r1 parse_logs", &ok_refs, ActionOnFailure::CancelAndWait),
            job_step(&setup, "r1 unusable", &missing_refs, ActionOnFailure::CancelAndWait),
            job_step(&setup, "r1 never", &["exit", "0"], ActionOnFailure::CancelAndWait),
        ])
        .await
        .unwrap();
    let first = runner.list_steps(&ids).await.unwrap();
    let state_of = |listed: &[StepStatus], id: &str| listed.iter().find(|s| s.id == id).unwrap().state;
    assert_eq!(state_of(&first, &ids[0]), StepState::Running);
    assert_eq!(state_of(&first, &ids[1]), StepState::Pending);
    assert_eq!(state_of(&first, &ids[2]), StepState::Pending);

    let done = wait(&runner, &ids).await;
    let by_id = |id: &str| done.iter().find(|s| s.id == id).unwrap().clone();
    let ok_err = log(&setup, &runner, &ids[0], "stderr.gz").await;
    assert_eq!(by_id(&ids[0]).state, StepState::Completed, "stderr: {ok_err:?}");
    let failed = by_id(&ids[1]);
    assert_eq!(failed.state, StepState::Failed);
    assert_eq!(by_id(&ids[2]).state, StepState::Cancelled, "CANCEL_AND_WAIT cancels the steps behind a failure");
    assert!(by_id(&ids[2]).started_at.is_none(), "the cancelled step never ran");

    // The job really ran in the lake, through the s3:// mapping.
    let out = setup.store.list(&ObjectUri::parse("s3://staging/review_logs/dt=2021-10-31/").unwrap()).await.unwrap();
    assert!(out.iter().any(|m| m.uri.file_name().starts_with("part-")), "{out:?}");

    // run_job.py's exit code 3 and its error line, in the step's own stderr.gz.
    let failure = failed.failure.clone().unwrap();
    assert_eq!(failure.message.as_deref(), Some("Step exited with code 3"));
    let prefix = runner.log_prefix(&ids[1]).unwrap();
    assert_eq!(failure.log_file.as_deref(), Some(prefix.join("stderr.gz").to_string().as_str()));
    let bad_err = log(&setup, &runner, &ids[1], "stderr.gz").await;
    assert!(bad_err.iter().any(|l| l.starts_with("run_job.py parse_logs: error: input file")), "{bad_err:?}");
    let diagnosis = diagnose(
        &setup.store,
        &ids[1],
        &prefix,
        None,
        Some(&failure),
        &SystemClock::new(),
        &DiagnoseOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(diagnosis.cause.kind, CauseKind::InputUnusable, "{}", diagnosis.render_text());
    assert!(diagnosis.cause.summary.contains("missing.csv"), "{}", diagnosis.cause.summary);

    // Both ran in the application the warm-up started, which still runs.
    assert_eq!(spark_app_of(&ok_err), spark_app_of(&bad_err));
    assert!(Arc::ptr_eq(&app, &runner.shared_application().unwrap()));
    assert!(process_alive(app.process_group()));
    assert_eq!(app.spark_id().as_deref(), Some(spark_app_of(&ok_err).as_str()));

    // The run is over: terminate_if_created asks the application to stop and returns at once;
    // wait_terminated returns once it has ended, every process of its group gone and its own
    // logs gzipped beside the steps' (a command that returned earlier would leave its JVM to be
    // killed half-way through its shut-down).
    assert_eq!(runner.terminate_if_created().await.unwrap(), Termination::NotApplicable);
    runner.wait_terminated().await;
    assert!(!app.is_alive());
    assert!(java_in_group(app.process_group()).is_empty());
    let app_logs = runner.log_prefix(&app.id).unwrap();
    for name in ["stdout", "stderr"] {
        assert!(setup.store.head(&app_logs.join(&format!("{name}.gz"))).await.unwrap().is_some(), "{name}.gz");
        assert!(setup.store.head(&app_logs.join(name)).await.unwrap().is_none(), "{name} left unzipped");
    }
    let app_err = log(&setup, &runner, &app.id, "stderr.gz").await;
    assert!(app_err.iter().any(|l| l.contains("Successfully stopped SparkContext")), "{app_err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_the_steps_job_group_and_the_application_runs_on() {
    let setup = setup();
    let runner = runner(&setup, 1);
    let ids = runner
        .submit(&[
            job_step(&setup, "r1 spin", &["spin"], ActionOnFailure::Continue),
            job_step(&setup, "r1 after", &["exit", "0"], ActionOnFailure::Continue),
        ])
        .await
        .unwrap();
    wait_for_output(&setup, &runner, &ids[0], "spin started").await;
    let app = runner.application_of(&ids[0]).expect("the step runs in the shared application");
    let outcome = runner.cancel(&ids[..1]).await.unwrap();
    assert!(outcome[0].accepted);
    assert_eq!(runner.list_steps(&ids[..1]).await.unwrap()[0].state, StepState::CancelPending);
    let done = wait(&runner, &ids).await;
    let state_of = |id: &str| done.iter().find(|s| s.id == id).unwrap().state;
    assert_eq!(state_of(&ids[0]), StepState::Cancelled);
    assert_eq!(state_of(&ids[1]), StepState::Completed);
    // Not by killing the application (the grace period is a minute): the next step ran in
    // the same one.
    assert!(app.is_alive() && process_alive(app.process_group()));
    let spin_err = log(&setup, &runner, &ids[0], "stderr.gz").await;
    let after_err = log(&setup, &runner, &ids[1], "stderr.gz").await;
    assert_eq!(spark_app_of(&spin_err), spark_app_of(&after_err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_jvm_fails_its_running_step_and_the_next_step_gets_a_new_application() {
    let setup = setup();
    let runner = runner(&setup, 1);
    let ids = runner
        .submit(&[
            job_step(&setup, "r1 spin", &["spin"], ActionOnFailure::Continue),
            job_step(&setup, "r1 next", &["exit", "0"], ActionOnFailure::Continue),
        ])
        .await
        .unwrap();
    wait_for_output(&setup, &runner, &ids[0], "spin started").await;
    let app = runner.application_of(&ids[0]).unwrap();
    let jvms = java_in_group(app.process_group());
    assert_eq!(jvms.len(), 1, "one JVM in the application's group");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(jvms[0]), nix::sys::signal::Signal::SIGKILL).unwrap();

    let done = wait(&runner, &ids).await;
    let by_id = |id: &str| done.iter().find(|s| s.id == id).unwrap().clone();
    let crashed = by_id(&ids[0]);
    assert_eq!(crashed.state, StepState::Failed);
    assert!(
        crashed.failure.unwrap().message.unwrap().contains("shared Spark application ended"),
        "the failure says the application ended"
    );
    let crashed_err = log(&setup, &runner, &ids[0], "stderr.gz").await;
    assert!(
        crashed_err.iter().any(|l| l.contains(&format!("{} (", app.id)) && l.contains("ended while the step ran")),
        "{crashed_err:?}"
    );
    assert_eq!(by_id(&ids[1]).state, StepState::Completed);
    let next_err = log(&setup, &runner, &ids[1], "stderr.gz").await;
    assert_ne!(spark_app_of(&crashed_err), spark_app_of(&next_err), "a new application");
    assert!(!app.is_alive());
    assert!(!process_alive(app.process_group()), "nothing of the crashed application is left");
    // The crashed application's own log, gzipped beside the steps'.
    let app_log = ObjectUri::parse(&format!("s3://raw/emr-logs/local/{}/stderr.gz", app.id)).unwrap();
    assert!(setup.store.head(&app_log).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_steps_run_at_once_in_one_application_with_logs_of_their_own() {
    let setup = setup();
    let meeting = setup.lake.join("meeting");
    std::fs::create_dir_all(&meeting).unwrap();
    let folder = meeting.display().to_string();
    let runner = runner(&setup, 2);
    let ids = runner
        .submit(&[
            job_step(&setup, "r1 alpha", &["rendezvous", "alpha", "beta", &folder], ActionOnFailure::Continue),
            job_step(&setup, "r1 beta", &["rendezvous", "beta", "alpha", &folder], ActionOnFailure::Continue),
        ])
        .await
        .unwrap();
    let done = wait(&runner, &ids).await;
    // Each waited for the other to be running: only possible at once.
    assert!(done.iter().all(|s| s.state == StepState::Completed), "{done:?}");
    let (a_out, a_err) =
        (log(&setup, &runner, &ids[0], "stdout.gz").await, log(&setup, &runner, &ids[0], "stderr.gz").await);
    let (b_out, b_err) =
        (log(&setup, &runner, &ids[1], "stdout.gz").await, log(&setup, &runner, &ids[1], "stderr.gz").await);
    assert_eq!(spark_app_of(&a_err), spark_app_of(&b_err), "one application");
    assert_eq!(a_out.iter().filter(|l| l.starts_with("alpha out")).count(), 200);
    assert_eq!(b_out.iter().filter(|l| l.starts_with("beta out")).count(), 200);
    assert!(a_out.contains(&"alpha counted 11".to_string()) && b_out.contains(&"beta counted 11".to_string()));
    // (The server's first line names the step's arguments, the other step's name among them.)
    let job_lines = |lines: Vec<String>| -> Vec<String> {
        lines.into_iter().filter(|l| !l.contains("in the shared Spark application")).collect()
    };
    let (a_err, b_err) = (job_lines(a_err), job_lines(b_err));
    assert!(!a_out.iter().chain(&a_err).any(|l| l.contains("beta")), "{a_out:?} {a_err:?}");
    assert!(!b_out.iter().chain(&b_err).any(|l| l.contains("alpha")), "{b_out:?} {b_err:?}");
    assert_eq!(a_err.iter().filter(|l| l.starts_with("alpha err")).count(), 200);
}
