//! The local runner with real processes: EMR's life cycle and ActionOnFailure, logs in the
//! lake, cancellation of a whole process group, diagnosis through the same code, and one real
//! `spark-submit` step end to end.
//!
//! These tests wait for real child processes, so they use the real clock with a short poll
//! interval: the waits are for processes to end, not sleeps standing in for time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use emr_driver::clock::{Clock, SystemClock};
use emr_driver::diagnose::{diagnose, log_lines, CauseKind, DiagnoseOptions};
use emr_driver::poll::{wait_for_steps, PollOptions, Quiet};
use emr_driver::runner::local::{JitMode, JitPolicy, LocalRunner, LocalRunnerOptions, SparkApplication};
use emr_driver::runner::StepRunner;
use emr_driver::step::{ActionOnFailure, HadoopJarStep, StepConfig, StepState};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};
use nix::sys::signal::killpg;
use nix::unistd::Pid;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runner(lake: &std::path::Path, concurrency: usize, clock: Arc<dyn Clock>) -> LocalRunner {
    LocalRunner::new(options(lake, concurrency), clock)
}

fn options(lake: &std::path::Path, concurrency: usize) -> LocalRunnerOptions {
    LocalRunnerOptions {
        lake: LocalStore::new(lake),
        spark_submit: repo_root().join(".venv/bin/spark-submit"),
        master: "local[1]".into(),
        driver_memory: "1g".into(),
        concurrency,
        log_prefix: ObjectUri::parse("s3://raw/emr-logs/local/").unwrap(),
        kill_grace: Duration::from_millis(300),
        // Shared (the default): the commands that are not run_job.py steps still run as
        // processes of their own, which these tests check.
        spark_application: SparkApplication::Shared,
        step_server: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pyspark_jobs/step_server.py"),
        class_data_archive: None,
        jit: Default::default(),
        shuffle_partitions: None,
    }
}

fn bash(name: &str, script: &str, action: ActionOnFailure) -> StepConfig {
    StepConfig {
        name: name.into(),
        action_on_failure: action,
        hadoop_jar_step: HadoopJarStep {
            jar: "command-runner.jar".into(),
            args: vec!["bash".into(), "-c".into(), script.into()],
            main_class: None,
        },
    }
}

fn poll_options() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        deadline: Some(Duration::from_secs(120)),
        max_transient_errors: 3,
        missing_polls_allowed: 0,
        jitter_seed: Some(1),
    }
}

async fn wait(runner: &LocalRunner, ids: &[String]) -> Vec<emr_driver::step::StepStatus> {
    wait_for_steps(runner, ids, &SystemClock::new(), &poll_options(), &Quiet).await.unwrap()
}

async fn wait_until_running(runner: &LocalRunner, id: &str) -> i32 {
    for _ in 0..400 {
        let status = &runner.list_steps(&[id.to_string()]).await.unwrap()[0];
        if status.state == StepState::Running {
            if let Some(pgid) = runner.process_group(id) {
                return pgid;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("step {id} never started");
}

fn group_exists(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

async fn read_log(store: &LocalStore, uri: &ObjectUri) -> Vec<String> {
    log_lines(&store.get_bytes(uri).await.unwrap())
}

#[tokio::test]
async fn cancel_and_wait_cancels_the_steps_behind_a_failure_and_keeps_the_logs() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let ids = runner
        .submit(&[
            bash("r1 ok", "echo to-stdout; echo to-stderr >&2", ActionOnFailure::CancelAndWait),
            bash(
                "r1 bad",
                "echo 'run_job: unusable input s3://raw/x.csv: empty file' >&2; exit 3",
                ActionOnFailure::CancelAndWait,
            ),
            bash("r1 never", "echo should-not-run", ActionOnFailure::CancelAndWait),
        ])
        .await
        .unwrap();
    let done = wait(&runner, &ids).await;
    assert_eq!(
        done.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StepState::Completed, StepState::Failed, StepState::Cancelled]
    );
    assert!(done[0].started_at.unwrap() <= done[0].ended_at.unwrap());
    assert!(done[2].started_at.is_none(), "the cancelled step never ran");

    let store = LocalStore::new(lake.path());
    let prefix = runner.log_prefix(&ids[0]).unwrap();
    assert_eq!(prefix.to_string(), format!("s3://raw/emr-logs/local/{}/", ids[0]));
    assert_eq!(read_log(&store, &prefix.join("stdout.gz")).await, vec!["to-stdout"]);
    assert_eq!(read_log(&store, &prefix.join("stderr.gz")).await, vec!["to-stderr"]);
    assert!(store.head(&prefix.join("stderr")).await.unwrap().is_none(), "the raw log is gone once gzipped");

    let failure = done[1].failure.clone().unwrap();
    assert_eq!(failure.message.as_deref(), Some("Step exited with code 3"));
    let stderr_uri = runner.log_prefix(&ids[1]).unwrap().join("stderr.gz");
    assert_eq!(failure.log_file.as_deref(), Some(stderr_uri.to_string().as_str()));
    assert!(store.head(&runner.log_prefix(&ids[2]).unwrap().join("stdout.gz")).await.unwrap().is_none());

    // The same diagnosis code reads the local logs.
    let diagnosis = diagnose(
        &store,
        &ids[1],
        &runner.log_prefix(&ids[1]).unwrap(),
        runner.cluster_log_prefix().as_ref(),
        Some(&failure),
        &SystemClock::new(),
        &DiagnoseOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(diagnosis.cause.kind, CauseKind::InputUnusable, "{}", diagnosis.render_text());
    assert!(diagnosis.cause.summary.contains("s3://raw/x.csv"));
}

#[tokio::test]
async fn continue_runs_the_next_steps_and_a_python_traceback_is_diagnosed() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 2, SystemClock::shared());
    let python = r#"python3 -c '
def load(x):
    return 1 / x
load(0)
'"#;
    let ids = runner
        .submit(&[
            bash("r1 crash", python, ActionOnFailure::Continue),
            bash("r1 next", "true", ActionOnFailure::Continue),
        ])
        .await
        .unwrap();
    let done = wait(&runner, &ids).await;
    assert_eq!(done[0].state, StepState::Failed);
    assert_eq!(done[1].state, StepState::Completed);
    let store = LocalStore::new(lake.path());
    let diagnosis = diagnose(
        &store,
        &ids[0],
        &runner.log_prefix(&ids[0]).unwrap(),
        None,
        done[0].failure.as_ref(),
        &SystemClock::new(),
        &DiagnoseOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(diagnosis.cause.kind, CauseKind::PythonTraceback, "{}", diagnosis.render_text());
    assert!(diagnosis.cause.summary.ends_with("ZeroDivisionError: division by zero"), "{}", diagnosis.cause.summary);
    assert!(diagnosis.cause.summary.contains("in load"), "{}", diagnosis.cause.summary);
}

#[tokio::test]
async fn a_step_gets_no_database_url_and_no_aws_keys_from_the_driver() {
    // nextest runs each test in its own process: this environment is this test's alone.
    std::env::set_var("DATABASE_URL", "postgres://etl:hunter2@db/movies");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI");
    std::env::set_var("SPARK_LOCAL_IP", "127.0.0.1");
    let lake = tempfile::tempdir().unwrap();
    let out = lake.path().join("env.txt");
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let ids =
        runner.submit(&[bash("env", &format!("env > {}", out.display()), ActionOnFailure::Continue)]).await.unwrap();
    assert_eq!(wait(&runner, &ids).await[0].state, StepState::Completed);
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(!env.contains("hunter2") && !env.contains("DATABASE_URL"), "{env}");
    assert!(!env.contains("wJalrXUtnFEMI") && !env.contains("AWS_"), "{env}");
    assert!(env.lines().any(|l| l == "SPARK_LOCAL_IP=127.0.0.1"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

/// The JVM options a spark-submit step of `runner` was started with (a fake spark-submit
/// writes its SPARK_SUBMIT_OPTS into the file named by its last argument).
async fn submit_opts_of_a_step(runner: &LocalRunner, dir: &std::path::Path, name: &str) -> String {
    let out = dir.join(format!("{name}.txt"));
    let step = StepConfig {
        name: name.into(),
        action_on_failure: ActionOnFailure::Continue,
        hadoop_jar_step: HadoopJarStep {
            jar: "command-runner.jar".into(),
            args: vec!["spark-submit".into(), out.display().to_string()],
            main_class: None,
        },
    };
    let ids = runner.submit(&[step]).await.unwrap();
    assert_eq!(wait(runner, &ids).await[0].state, StepState::Completed);
    std::fs::read_to_string(&out).unwrap()
}

#[tokio::test]
async fn the_run_size_picks_the_jit_of_the_spark_jvms() {
    let lake = tempfile::tempdir().unwrap();
    let bin = lake.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("spark-submit");
    std::fs::write(&fake, "#!/bin/sh\nfor last; do :; done\nprintf '%s' \"$SPARK_SUBMIT_OPTS\" > \"$last\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let runner_with = |mode: JitMode| {
        LocalRunner::new(
            LocalRunnerOptions {
                spark_submit: fake.clone(),
                // Per-step: each step is a spark-submit of its own, whose options the fake shows.
                spark_application: SparkApplication::PerStep,
                jit: JitPolicy { mode, quick_max_records: 1000 },
                ..options(lake.path(), 1)
            },
            SystemClock::shared(),
        )
    };
    const QUICK: &str = "-XX:TieredStopAtLevel=1";
    for (mode, records, quick) in [
        (JitMode::Auto, Some(1000), true),
        (JitMode::Auto, Some(1001), false),
        (JitMode::Auto, None, false),
        (JitMode::Quick, Some(1_000_000), true),
        (JitMode::Full, Some(10), false),
    ] {
        let runner = runner_with(mode);
        let before = submit_opts_of_a_step(&runner, lake.path(), "before").await;
        assert!(!before.contains(QUICK) || mode == JitMode::Quick, "{mode:?} before warm_up: {before}");
        runner.warm_up(records);
        assert_eq!(runner.jit(), if quick { JitMode::Quick } else { JitMode::Full });
        let opts = submit_opts_of_a_step(&runner, lake.path(), "after").await;
        assert_eq!(opts.split_whitespace().any(|o| o == QUICK), quick, "{mode:?} {records:?}: {opts}");
    }
}

#[tokio::test]
async fn spark_submit_steps_map_the_class_data_archive_once_it_is_there() {
    std::env::set_var("SPARK_SUBMIT_OPTS", "-Dfrom.the.caller=1");
    let lake = tempfile::tempdir().unwrap();
    // A spark-submit that writes the JVM options spark-class would give the driver's JVM.
    let bin = lake.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("spark-submit");
    std::fs::write(&fake, "#!/bin/sh\nfor last; do :; done\nprintf '%s' \"$SPARK_SUBMIT_OPTS\" > \"$last\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let archive = lake.path().join("spark classes.jsa");
    let runner = LocalRunner::new(
        LocalRunnerOptions { spark_submit: fake, class_data_archive: Some(archive.clone()), ..options(lake.path(), 1) },
        SystemClock::shared(),
    );
    let opts_of_a_step = |name: &str| {
        let out = lake.path().join(format!("{name}.txt"));
        let step = StepConfig {
            name: name.into(),
            action_on_failure: ActionOnFailure::Continue,
            hadoop_jar_step: HadoopJarStep {
                jar: "command-runner.jar".into(),
                args: vec!["spark-submit".into(), out.display().to_string()],
                main_class: None,
            },
        };
        (step, out)
    };
    let (step, out) = opts_of_a_step("before");
    let ids = runner.submit(&[step]).await.unwrap();
    assert_eq!(wait(&runner, &ids).await[0].state, StepState::Completed);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "-Dfrom.the.caller=1", "no archive yet: nothing added");

    std::fs::write(&archive, b"made by scripts/spark-class-archive.sh").unwrap();
    let (step, out) = opts_of_a_step("after");
    let ids = runner.submit(&[step]).await.unwrap();
    assert_eq!(wait(&runner, &ids).await[0].state, StepState::Completed);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("-Dfrom.the.caller=1 \"-XX:SharedArchiveFile={}\"", archive.display()),
        "the caller's options kept, the archive quoted (its path has a space)"
    );
}

#[tokio::test]
async fn cancelling_a_running_step_kills_its_whole_process_group() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let ids = runner
        .submit(&[
            bash("r1 long", "sleep 300 & sleep 300; wait", ActionOnFailure::CancelAndWait),
            bash("r1 queued", "true", ActionOnFailure::CancelAndWait),
        ])
        .await
        .unwrap();
    let pgid = wait_until_running(&runner, &ids[0]).await;
    assert!(group_exists(pgid));
    let outcomes = runner.cancel(&ids).await.unwrap();
    assert!(outcomes.iter().all(|o| o.accepted), "{outcomes:?}");
    let done = wait(&runner, &ids).await;
    assert_eq!(done[0].state, StepState::Cancelled);
    assert_eq!(done[1].state, StepState::Cancelled);
    assert!(!group_exists(pgid), "no process of the step is left");
    // Cancelling a finished step is refused with a reason, as EMR does.
    let again = runner.cancel(&ids[..1]).await.unwrap();
    assert!(!again[0].accepted);
    assert_eq!(again[0].reason.as_deref(), Some("the step is already CANCELLED"));
}

#[tokio::test]
async fn a_step_ignoring_sigterm_is_killed_after_the_grace_period() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let ids = runner
        .submit(&[bash("r1 stubborn", "trap '' TERM; sleep 300 & sleep 300; wait", ActionOnFailure::Continue)])
        .await
        .unwrap();
    let pgid = wait_until_running(&runner, &ids[0]).await;
    runner.cancel(&ids).await.unwrap();
    let listed = runner.list_steps(&ids).await.unwrap();
    assert_eq!(listed[0].state, StepState::CancelPending, "SIGTERM sent, not yet gone");
    let done = wait(&runner, &ids).await;
    assert_eq!(done[0].state, StepState::Cancelled);
    assert!(!group_exists(pgid));
}

#[tokio::test]
async fn terminate_cluster_on_failure_cancels_the_running_steps_too() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 2, SystemClock::shared());
    let ids = runner
        .submit(&[
            bash("r1 long", "sleep 300 & sleep 300; wait", ActionOnFailure::Continue),
            bash("r1 fails", "sleep 0.2; exit 1", ActionOnFailure::TerminateCluster),
            bash("r1 pending", "true", ActionOnFailure::Continue),
        ])
        .await
        .unwrap();
    let pgid = wait_until_running(&runner, &ids[0]).await;
    let done = wait(&runner, &ids).await;
    assert_eq!(
        done.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StepState::Cancelled, StepState::Failed, StepState::Cancelled]
    );
    assert!(!group_exists(pgid));
}

#[tokio::test]
async fn a_missing_program_fails_the_step_with_the_reason_in_its_stderr() {
    let lake = tempfile::tempdir().unwrap();
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let mut step = bash("r1 x", "", ActionOnFailure::Continue);
    step.hadoop_jar_step.args = vec!["/nonexistent/spark-submit-xyz".into()];
    let ids = runner.submit(&[step]).await.unwrap();
    let done = wait(&runner, &ids).await;
    assert_eq!(done[0].state, StepState::Failed);
    let store = LocalStore::new(lake.path());
    let stderr = read_log(&store, &runner.log_prefix(&ids[0]).unwrap().join("stderr.gz")).await;
    assert!(
        stderr[0].contains("could not start step") && stderr[0].contains("/nonexistent/spark-submit-xyz"),
        "{stderr:?}"
    );

    let empty = bash("r1 empty", "", ActionOnFailure::Continue);
    let empty = StepConfig { hadoop_jar_step: HadoopJarStep { args: vec![], ..empty.hadoop_jar_step }, ..empty };
    assert!(runner.submit(&[empty]).await.is_err());
}

/// One real spark-submit step, rendered as for EMR (cluster deploy mode, s3:// URIs): the
/// local runner rewrites it and Spark reads and writes the lake.
#[tokio::test]
async fn runs_a_real_spark_submit_step_end_to_end() {
    let lake = tempfile::tempdir().unwrap();
    let store = LocalStore::new(lake.path());
    let job = r#"
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("runner-test").getOrCreate()
rows = spark.read.option("header", "true").csv(sys.argv[1])
rows.groupBy("device").count().coalesce(1).write.mode("overwrite").json(sys.argv[2])
spark.stop()
"#;
    store.put_bytes(&ObjectUri::parse("s3://raw/artifacts/t/job.py").unwrap(), Bytes::from(job)).await.unwrap();
    store
        .put_bytes(
            &ObjectUri::parse("s3://raw/incoming/dt=2021-10-31/x.csv").unwrap(),
            Bytes::from("id,device\n1,Mobile\n2,Tablet\n3,Mobile\n"),
        )
        .await
        .unwrap();
    let runner = runner(lake.path(), 1, SystemClock::shared());
    let step = StepConfig {
        name: "r1 count_devices".into(),
        action_on_failure: ActionOnFailure::CancelAndWait,
        hadoop_jar_step: HadoopJarStep {
            jar: "command-runner.jar".into(),
            args: [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                "--conf",
                "spark.sql.shuffle.partitions=2",
                "s3://raw/artifacts/t/job.py",
                "s3://raw/incoming/dt=2021-10-31/x.csv",
                "s3://staging/device_counts/dt=2021-10-31/",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            main_class: None,
        },
    };
    let ids = runner.submit(&[step]).await.unwrap();
    let opts = PollOptions {
        interval: Duration::from_millis(250),
        deadline: Some(Duration::from_secs(300)),
        ..poll_options()
    };
    let done = wait_for_steps(&runner, &ids, &SystemClock::new(), &opts, &Quiet).await.unwrap();
    let stderr = read_log(&store, &runner.log_prefix(&ids[0]).unwrap().join("stderr.gz")).await;
    assert_eq!(done[0].state, StepState::Completed, "stderr tail: {:?}", &stderr[stderr.len().saturating_sub(30)..]);
    let out = store.list(&ObjectUri::parse("s3://staging/device_counts/dt=2021-10-31/").unwrap()).await.unwrap();
    let part = out.iter().find(|m| m.uri.file_name().starts_with("part-")).expect("a part file");
    let mut counts: Vec<serde_json::Value> = log_lines(&store.get_bytes(&part.uri).await.unwrap())
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    counts.sort_by_key(|v| v["device"].as_str().unwrap().to_string());
    assert_eq!(
        counts,
        vec![serde_json::json!({"device": "Mobile", "count": 2}), serde_json::json!({"device": "Tablet", "count": 1})]
    );
    assert!(
        stderr.iter().any(|l| l.contains("local[1]") || l.contains("SparkContext")),
        "Spark logged to the step's stderr"
    );
}
