//! A real SIGINT delivered to this test process while the local runner runs a real
//! long-running step whose command starts a process GROUP (`sleep 300 & sleep 300; wait`):
//! the step ends CANCELLED, its process group is gone, and the outcome maps to exit code 4.
//!
//! Why a test and not the `emr-driver` binary: the commands that submit steps (`run`,
//! `submit`) are written elsewhere; this exercises the same building blocks they call
//! (`ShutdownSignals` + `wait_or_cancel` + the local runner), in a test binary of its own (this
//! file holds ONE test) so the signal handler it installs affects no other test.

use std::path::PathBuf;
use std::time::Duration;

use emr_driver::clock::SystemClock;
use emr_driver::error::ExitCode;
use emr_driver::poll::{PollOptions, Quiet};
use emr_driver::runner::cancel::{wait_or_cancel, RunOutcome, ShutdownSignals};
use emr_driver::runner::local::{LocalRunner, LocalRunnerOptions, SparkApplication};
use emr_driver::runner::{StepRunner, Termination};
use emr_driver::step::{ActionOnFailure, HadoopJarStep, StepConfig, StepState};
use emr_driver::store::local::LocalStore;
use emr_driver::store::ObjectUri;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpid, Pid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_cancels_the_running_step_and_kills_its_process_group() {
    let lake = tempfile::tempdir().unwrap();
    let runner = LocalRunner::new(
        LocalRunnerOptions {
            lake: LocalStore::new(lake.path()),
            spark_submit: PathBuf::from("spark-submit"),
            master: "local[1]".into(),
            driver_memory: "1g".into(),
            concurrency: 1,
            log_prefix: ObjectUri::parse("s3://raw/emr-logs/local/").unwrap(),
            kill_grace: Duration::from_secs(5),
            // Shared (the default): the commands that are not run_job.py steps still run as
            // processes of their own, which these tests check.
            spark_application: SparkApplication::Shared,
            step_server: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pyspark_jobs/step_server.py"),
            class_data_archive: None,
            jit: Default::default(),
            shuffle_partitions: None,
        },
        SystemClock::shared(),
    );
    let step = |name: &str, script: &str| StepConfig {
        name: name.into(),
        action_on_failure: ActionOnFailure::CancelAndWait,
        hadoop_jar_step: HadoopJarStep {
            jar: "command-runner.jar".into(),
            args: vec!["bash".into(), "-c".into(), script.into()],
            main_class: None,
        },
    };
    let ids =
        runner.submit(&[step("r1 long", "sleep 300 & sleep 300; wait"), step("r1 after", "echo never")]).await.unwrap();
    let mut signals = ShutdownSignals::install().unwrap();

    // Once the step runs, deliver a real SIGINT to this process (as Ctrl-C would).
    let mut pgid = None;
    for _ in 0..400 {
        if let Some(group) = runner.process_group(&ids[0]) {
            pgid = Some(group);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pgid = pgid.expect("the step started");
    assert!(killpg(Pid::from_raw(pgid), None).is_ok(), "the step's group is alive");
    let sender = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        kill(getpid(), Signal::SIGINT).unwrap();
    });

    let options = PollOptions {
        interval: Duration::from_millis(50),
        deadline: Some(Duration::from_secs(120)),
        jitter_seed: Some(1),
        ..PollOptions::default()
    };
    let outcome =
        wait_or_cancel(&runner, &ids, &SystemClock::new(), &options, &Quiet, signals.recv(), Duration::from_secs(30))
            .await
            .unwrap();
    sender.await.unwrap();

    let RunOutcome::Cancelled { signal, steps, report } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(signal, "SIGINT");
    assert_eq!(steps.iter().map(|s| s.state).collect::<Vec<_>>(), vec![StepState::Cancelled, StepState::Cancelled]);
    assert_eq!(report.termination, Termination::NotApplicable);
    assert!(killpg(Pid::from_raw(pgid), None).is_err(), "the step's process group is gone");
    assert_eq!(outcome.exit_code(), ExitCode::Cancelled);
    assert_eq!(outcome.exit_code().code(), 4);
    assert_eq!(runner.list_steps(&ids).await.unwrap().len(), 2);
}
