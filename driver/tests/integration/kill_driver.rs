//! SIGKILL of a running `emr-driver run --local` (an OOM kill, a lost node), with real
//! processes and the real local Spark on the bundled sample:
//! * every process the driver started (spark-submit's JVM, the job's Python driver) dies with
//!   it, although SIGKILL gives the driver no chance to clean up;
//! * the killed run's lock stays behind, and the same command run again, with no flag, takes it
//!   over (its holder's process is gone) and finishes with exit 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `(pid, parent pid, command name)` of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let ppid: u32 = stat[close + 2..].split(' ').nth(1).unwrap().parse().unwrap();
        out.push((pid, ppid, name));
    }
    out
}

/// Every process whose parent chain leads to `root`, with its name.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, name) in &all {
            if *ppid == parent {
                found.push((*pid, name.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_command(lake: &Path) -> Command {
    let repo = repo();
    let mut command = Command::new(env!("CARGO_BIN_EXE_emr-driver"));
    command
        .args(["--config", repo.join("config/pipeline.toml").to_str().unwrap()])
        .args(["run", "--local", "--date", "2021-10-31"])
        .args(["--set", &format!("local.lake_dir={}", lake.display())])
        .args(["--set", &format!("local.spark_submit={}", repo.join(".venv/bin/spark-submit").display())])
        .args(["--set", "local.driver_memory=1g"])
        .args(["--project-root", repo.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .env_remove("WAREHOUSE_URL")
        .stdin(Stdio::null());
    command
}

#[test]
fn a_sigkilled_run_leaves_no_spark_behind_and_the_same_command_takes_its_lock_over() {
    if !repo().join(".venv/bin/spark-submit").exists() {
        panic!("no .venv/bin/spark-submit: run scripts/setup.sh first");
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut driver = run_command(&lake).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = driver.id();

    // Wait (bounded) until a Spark job really runs under the driver: its JVM and the job's
    // Python driver (started by the JVM).
    let started = Instant::now();
    let tree = loop {
        let tree = descendants(pid);
        let has_java = tree.iter().any(|(_, name)| name == "java");
        let has_python_under_java = tree.iter().any(|(p, name)| {
            name.starts_with("python")
                && processes().iter().any(|(q, _, n)| n == "java" && descendants(*q).iter().any(|(d, _)| d == p))
        });
        if has_java && has_python_under_java {
            break tree;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no Spark job started; processes: {tree:?}");
        assert!(driver.try_wait().unwrap().is_none(), "the driver exited before Spark started");
        std::thread::sleep(Duration::from_millis(100));
    };

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    driver.wait().unwrap();

    // Nothing of the run survives it (bounded wait: the kernel delivers the signals at once,
    // a JVM takes a moment to go).
    let killed = Instant::now();
    loop {
        let left: Vec<_> = tree.iter().filter(|(p, _)| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "still running after the driver's SIGKILL: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The killed run's lock is still there.
    let locks = lake.join("movie-analytics-dev-staging/_locks/dt=2021-10-31.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&locks).unwrap()).unwrap();
    assert_eq!(record["pid"], pid);

    // The same command, no flag: takes the dead run's lock over and finishes.
    let output = run_command(&lake).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!locks.exists(), "the lock was not released at the end");
}
