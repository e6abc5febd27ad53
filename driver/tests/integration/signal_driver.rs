//! Ctrl-C on a running driver (issue 4): the `emr-driver` binary runs a long real step on the
//! local runner; SIGINT must cancel the step, leave no process of its group behind, and exit
//! with the cancelled code (4).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &str = r#"{
  "Name": "{{step_name}}",
  "ActionOnFailure": "CONTINUE",
  "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", "sleep 300 & sleep 300; wait"]}
}"#;

/// Every process whose parent chain leads to `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name is in parentheses and may hold spaces: split after the last ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let current = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == current).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn sigint_cancels_the_running_step_and_its_process_group() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("sleep.json.hbs");
    std::fs::write(&template, TEMPLATE).unwrap();
    let lake = dir.path().join("lake");

    let mut driver = Command::new(env!("CARGO_BIN_EXE_emr-driver"))
        .args(["--config", repo.join("config/pipeline.toml").to_str().unwrap()])
        .args(["submit", template.to_str().unwrap(), "--local", "--date", "2021-10-31"])
        .args(["--set", &format!("local.lake_dir={}", lake.display())])
        .args(["--project-root", repo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = driver.id();

    // A real process has to start: wait (bounded) until both sleeps run under the driver.
    let started = Instant::now();
    let step_processes = loop {
        let sleeps: Vec<u32> = descendants(pid)
            .into_iter()
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep"))
            .collect();
        if sleeps.len() == 2 {
            break descendants(pid);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the step did not start");
        assert!(driver.try_wait().unwrap().is_none(), "the driver exited early");
        std::thread::sleep(Duration::from_millis(50));
    };

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let output = wait_with_deadline(driver, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "stderr:\n{stderr}");
    assert!(stderr.contains("SIGINT: cancelled s-L"), "stderr:\n{stderr}");
    assert!(stderr.contains("CANCELLED"), "stderr:\n{stderr}");
    for process in step_processes {
        assert!(!alive(process), "process {process} of the step is still running");
    }
}

fn wait_with_deadline(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the driver did not exit within {limit:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
