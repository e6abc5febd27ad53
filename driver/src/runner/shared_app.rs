//! The local runner's shared Spark application: ONE long-lived `spark-submit
//! pyspark_jobs/step_server.py` per run, into which [`super::local::LocalRunner`] submits the
//! `run_job.py` steps (instead of paying a JVM start-up, JIT warm-up and planning per step).
//!
//! * The driver listens on a Unix socket in a private folder (mode 0700) under the temporary
//!   folder; the server connects to it once its SparkSession is up. JSON lines both ways (the
//!   protocol is described in `pyspark_jobs/step_server.py`). Requests sent before the server
//!   connected wait in a queue, so a step can be submitted while the JVM still starts.
//! * The application runs as a step process does: its own process group, the parent-death
//!   signal and the group sentinel ([`super::local`]), the step environment allowlist. Its own
//!   stdout / stderr (Spark's log4j lines) go to `<log prefix>/<application id>/stdout.gz` and
//!   `stderr.gz` when it ends.
//! * When the application ends (stopped, or crashed: the JVM or the Python server died), every
//!   step still running in it ends with [`StepEnd::ApplicationEnded`], which carries the last
//!   lines of the application's stderr for the diagnosis; the runner starts a new application
//!   for the next step.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::RunnerError;
use crate::clock::Clock;

/// How a step submitted to the application ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// run_job.py's exit code, as the server reported it.
    Exited(i32),
    /// The application ended before the step did; why, for the step's stderr.
    ApplicationEnded(String),
}

/// What starting an application needs.
#[derive(Debug, Clone)]
pub struct Launch {
    pub spark_submit: PathBuf,
    pub master: String,
    pub driver_memory: String,
    /// `pyspark_jobs/step_server.py` of the project.
    pub step_server: PathBuf,
    /// Where the application's own stdout / stderr go while it runs.
    pub log_dir: PathBuf,
    /// The application's environment (the step allowlist and the Spark settings).
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    /// After the process ended, how long to wait for the socket to close.
    pub drain: Duration,
}

/// One running (or ended) shared application.
pub struct SparkApp {
    /// Ours: `a-L` + 12 characters, the name of its log folder.
    pub id: String,
    pgid: i32,
    requests: mpsc::UnboundedSender<String>,
    state: Mutex<AppState>,
    /// True once the application has ended, its group is gone and its logs are written.
    ended: tokio::sync::watch::Sender<bool>,
}

struct AppState {
    alive: bool,
    /// Spark's application id, once the server said it is ready.
    spark_id: Option<String>,
    /// The `--py-files` of the first step: a Python process cannot reload other versions of
    /// the same modules, so steps naming other files do not run in this application.
    py_files: Option<Vec<String>>,
    steps: HashMap<String, oneshot::Sender<StepEnd>>,
    /// The write end of the group sentinel's pipe: held while the application lives.
    sentinel: Option<OwnedFd>,
}

impl std::fmt::Debug for SparkApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparkApp").field("id", &self.id).field("pgid", &self.pgid).finish()
    }
}

impl SparkApp {
    fn lock(&self) -> std::sync::MutexGuard<'_, AppState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the application (the JVM starts in the background) and its supervisor task,
    /// which calls `on_end` with the application's log folder once it has ended and every
    /// process of its group is gone.
    pub fn start(
        id: String,
        launch: &Launch,
        clock: Arc<dyn Clock>,
        on_end: impl FnOnce(PathBuf) + Send + 'static,
    ) -> Result<Arc<SparkApp>, RunnerError> {
        let io = |op: &str| {
            let op = format!("{op} for the shared Spark application {id}");
            move |source| RunnerError::LocalIo { op, source }
        };
        let socket_dir = private_socket_dir().map_err(io("create its socket folder"))?;
        let socket_path = socket_dir.join("app.sock");
        let listener = tokio::net::UnixListener::bind(&socket_path).map_err(io("listen on its socket"))?;
        std::fs::create_dir_all(&launch.log_dir).map_err(io("create its log folder"))?;
        let stdout = std::fs::File::create(launch.log_dir.join("stdout")).map_err(io("create its stdout"))?;
        let stderr = std::fs::File::create(launch.log_dir.join("stderr")).map_err(io("create its stderr"))?;
        let mut command = tokio::process::Command::new(&launch.spark_submit);
        command
            .env_clear()
            .envs(launch.env.iter().cloned())
            .arg("--master")
            .arg(&launch.master)
            .arg("--driver-memory")
            .arg(&launch.driver_memory)
            // The console progress bar would only fill the application's stderr log.
            .args(["--conf", "spark.ui.showConsoleProgress=false"])
            .arg(&launch.step_server)
            .arg("--socket")
            .arg(&socket_path)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        super::local::die_with_the_driver(&mut command);
        let mut child = command.spawn().map_err(|source| RunnerError::Spawn {
            step_id: id.clone(),
            program: launch.spark_submit.display().to_string(),
            source,
        })?;
        let pgid = child.id().map(|pid| pid as i32).unwrap_or(0);
        let sentinel = super::local::group_sentinel(pgid, &id);
        let (requests, queued) = mpsc::unbounded_channel();
        let app = Arc::new(SparkApp {
            id,
            pgid,
            requests,
            state: Mutex::new(AppState {
                alive: true,
                spark_id: None,
                py_files: None,
                steps: HashMap::new(),
                sentinel,
            }),
            ended: tokio::sync::watch::channel(false).0,
        });
        let supervised = Arc::clone(&app);
        let log_dir = launch.log_dir.clone();
        let drain = launch.drain;
        tokio::spawn(async move {
            let status = supervised.supervise(&mut child, listener, queued, clock, drain).await;
            let _ = std::fs::remove_dir_all(&socket_dir);
            super::local::reap_group(supervised.pgid).await;
            let tail = log_tail(&log_dir.join("stderr"), 40);
            let why = format!(
                "the shared Spark application {} ({}) ended while the step ran: {status}; \
                 the last lines of its stderr (all of it in {}/stderr.gz):\n{tail}",
                supervised.id,
                supervised.spark_id().unwrap_or_else(|| "not started".into()),
                supervised.id,
            );
            let waiting: Vec<oneshot::Sender<StepEnd>> = {
                let mut state = supervised.lock();
                state.alive = false;
                state.sentinel = None;
                state.steps.drain().map(|(_, tx)| tx).collect()
            };
            for tx in waiting {
                let _ = tx.send(StepEnd::ApplicationEnded(why.clone()));
            }
            on_end(log_dir);
            supervised.ended.send_replace(true);
        });
        Ok(app)
    }

    /// Until the application has ended: the socket's events, the process's exit. Returns the
    /// exit status for people.
    async fn supervise(
        &self,
        child: &mut tokio::process::Child,
        listener: tokio::net::UnixListener,
        mut queued: mpsc::UnboundedReceiver<String>,
        clock: Arc<dyn Clock>,
        drain: Duration,
    ) -> String {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    self.kill();
                    return format!("its connection failed: {e}");
                }
            },
            status = child.wait() => return describe_exit(status),
        };
        drop(listener);
        let (read, mut write) = stream.into_split();
        let writer = tokio::spawn(async move {
            while let Some(line) = queued.recv().await {
                if write.write_all(line.as_bytes()).await.is_err() || write.write_all(b"\n").await.is_err() {
                    break;
                }
            }
        });
        let mut lines = BufReader::new(read).lines();
        let mut exited: Option<String> = None;
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => self.handle(&line),
                    // End of file: the server stopped or died.
                    _ => break,
                },
                status = child.wait(), if exited.is_none() => {
                    exited = Some(describe_exit(status));
                    // The JVM is gone: its Python server must go too (it then closes the
                    // socket, after the events it had sent, which are still read).
                    self.kill();
                }
                _ = clock.sleep(drain), if exited.is_some() => break,
            }
        }
        writer.abort();
        match exited {
            Some(status) => status,
            None => {
                // The server closed the socket: the JVM follows it (bounded).
                tokio::select! {
                    status = child.wait() => describe_exit(status),
                    _ = clock.sleep(drain) => {
                        self.kill();
                        describe_exit(child.wait().await)
                    }
                }
            }
        }
    }

    fn handle(&self, line: &str) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            tracing::warn!("shared Spark application {}: unreadable event {line:?}", self.id);
            return;
        };
        match event["event"].as_str() {
            Some("ready") => {
                let spark_id = event["application_id"].as_str().unwrap_or("?").to_string();
                tracing::info!("shared Spark application {} is ready ({spark_id})", self.id);
                self.lock().spark_id = Some(spark_id);
            }
            Some("ended") => {
                let (Some(step), Some(code)) = (event["step_id"].as_str(), event["exit_code"].as_i64()) else {
                    tracing::warn!("shared Spark application {}: bad event {line:?}", self.id);
                    return;
                };
                if let Some(tx) = self.lock().steps.remove(step) {
                    let _ = tx.send(StepEnd::Exited(code as i32));
                }
            }
            Some("started") => {}
            Some("lost") => {
                // The step failed because the JVM is gone: the application's end. Killing the
                // group makes sure it ends; the step then learns it with the application's
                // exit and stderr (StepEnd::ApplicationEnded), not as a crash of its own.
                tracing::warn!(
                    "shared Spark application {}: step {} lost its JVM; ending the application",
                    self.id,
                    event["step_id"].as_str().unwrap_or("?")
                );
                self.kill();
            }
            _ => tracing::warn!("shared Spark application {}: {line}", self.id),
        }
    }

    pub fn is_alive(&self) -> bool {
        self.lock().alive
    }

    /// Until the application has ended and its logs are written (at once if it has).
    pub async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        // The sender lives as long as `self`: this only returns once it says true.
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Spark's application id, once the application is ready.
    pub fn spark_id(&self) -> Option<String> {
        self.lock().spark_id.clone()
    }

    /// The process group of the application (spark-submit's JVM, its Python server).
    pub fn process_group(&self) -> i32 {
        self.pgid
    }

    /// True when a step with these `--py-files` can run here: the first step decides.
    pub fn accepts(&self, py_files: &[String]) -> bool {
        let mut state = self.lock();
        match &state.py_files {
            Some(loaded) => loaded.as_slice() == py_files,
            None => {
                state.py_files = Some(py_files.to_vec());
                true
            }
        }
    }

    /// Sends one step (`request` is the server's `run` message) at once; the returned future
    /// resolves with how it ended.
    pub fn submit(&self, step_id: &str, request: Value) -> impl std::future::Future<Output = StepEnd> {
        let (tx, rx) = oneshot::channel();
        let ended = {
            let mut state = self.lock();
            if state.alive {
                state.steps.insert(step_id.to_string(), tx);
                None
            } else {
                Some(format!("the shared Spark application {} had ended", self.id))
            }
        };
        if ended.is_none() {
            self.send(&request);
        }
        let gone = format!("the shared Spark application {} ended", self.id);
        async move {
            match ended {
                Some(why) => StepEnd::ApplicationEnded(why),
                None => rx.await.unwrap_or(StepEnd::ApplicationEnded(gone)),
            }
        }
    }

    /// Asks the server to cancel a step (its job group, then its Python code).
    pub fn cancel(&self, step_id: &str) {
        self.send(&serde_json::json!({"op": "cancel", "step_id": step_id}));
    }

    /// Asks the server to stop (it cancels what still runs and stops the SparkContext).
    pub fn stop(&self) {
        self.send(&serde_json::json!({"op": "stop"}));
    }

    /// SIGKILL to the application's whole group.
    pub fn kill(&self) {
        if self.pgid > 0 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
    }

    /// True while `step_id` runs here.
    pub fn runs(&self, step_id: &str) -> bool {
        self.lock().steps.contains_key(step_id)
    }

    fn send(&self, message: &Value) {
        // A closed queue means the application ended: the step learns it from `run`.
        let _ = self.requests.send(message.to_string());
    }
}

/// A new folder only this user can enter, for the socket (a Unix socket path is at most 107
/// bytes, hence the short name in the temporary folder, not in the lake).
fn private_socket_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("emr-driver-{}", &uuid[..12]));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended".to_string(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// The last `n` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else { return String::new() };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `spark-submit` step that can run in the shared application: `--py-files`, `--conf` and
/// the arguments after `run_job.py`, with their URIs mapped to the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStep {
    pub py_files: Vec<String>,
    pub conf: Vec<(String, String)>,
    /// `<job> --run-date ...`: what follows run_job.py.
    pub argv: Vec<String>,
}

/// spark-submit options that take a value.
const VALUED: &[&str] = &[
    "--master",
    "--deploy-mode",
    "--class",
    "--name",
    "--jars",
    "--packages",
    "--exclude-packages",
    "--repositories",
    "--py-files",
    "--files",
    "--archives",
    "--conf",
    "-c",
    "--properties-file",
    "--driver-memory",
    "--driver-java-options",
    "--driver-library-path",
    "--driver-class-path",
    "--driver-cores",
    "--executor-memory",
    "--executor-cores",
    "--num-executors",
    "--total-executor-cores",
    "--queue",
    "--principal",
    "--keytab",
    "--proxy-user",
];

/// Options whose value the shared application honours or, as the per-step runner does,
/// replaces (master, deploy mode, driver memory come from the configuration). Any other
/// option (jars, packages, files, driver class path...) shapes a JVM of its own: such a step
/// runs as its own spark-submit.
const SHAREABLE: &[&str] = &["--master", "--deploy-mode", "--driver-memory", "--py-files", "--conf", "-c", "--name"];

/// The shared-application form of a step (pure), when it is a `spark-submit ... run_job.py
/// <job> ...` whose options the application can honour; `None`: it runs as its own process.
pub fn shared_step(args: &[String], lake_root: &Path) -> Option<SharedStep> {
    let program = args.first()?;
    if program != "spark-submit" && !program.ends_with("/spark-submit") {
        return None;
    }
    let map = |a: &str| super::local::map_uris(a, lake_root);
    let mut step = SharedStep { py_files: Vec::new(), conf: Vec::new(), argv: Vec::new() };
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if option == "--verbose" || option == "-v" {
            continue;
        }
        if !option.starts_with('-') {
            // The primary resource: the step's own run_job.py (the application runs the
            // package's, from the same deployed zip).
            if Path::new(arg).file_name()? != "run_job.py" {
                return None;
            }
            step.argv = rest.by_ref().map(|a| map(a)).collect();
            return Some(step);
        }
        if !VALUED.contains(&option) || !SHAREABLE.contains(&option) {
            return None;
        }
        let value = match inline {
            Some(v) => v,
            None => rest.next()?.clone(),
        };
        match option {
            "--py-files" => {
                step.py_files = map(&value).split(',').filter(|p| !p.is_empty()).map(str::to_string).collect()
            }
            "--conf" | "-c" => {
                let (key, v) = value.split_once('=')?;
                step.conf.push((key.to_string(), map(v)));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_run_job_spark_submit_becomes_a_shared_step_with_lake_paths() {
        let args = s(&[
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "--py-files",
            "s3://raw/artifacts/abc/pyspark_jobs.zip",
            "--conf",
            "spark.sql.shuffle.partitions=16",
            "--conf=spark.sql.session.timeZone=UTC",
            "s3://raw/artifacts/abc/run_job.py",
            "parse_logs",
            "--run-date",
            "2021-10-31",
            "--output",
            "s3://staging/review_logs/dt=2021-10-31/",
        ]);
        let step = shared_step(&args, Path::new("/lake")).unwrap();
        assert_eq!(step.py_files, s(&["/lake/raw/artifacts/abc/pyspark_jobs.zip"]));
        assert_eq!(
            step.conf,
            vec![
                ("spark.sql.shuffle.partitions".to_string(), "16".to_string()),
                ("spark.sql.session.timeZone".to_string(), "UTC".to_string())
            ]
        );
        assert_eq!(
            step.argv,
            s(&["parse_logs", "--run-date", "2021-10-31", "--output", "/lake/staging/review_logs/dt=2021-10-31/"])
        );
    }

    #[test]
    fn other_steps_run_as_their_own_process() {
        let root = Path::new("/l");
        assert_eq!(shared_step(&s(&["bash", "-c", "spark-submit run_job.py x"]), root), None);
        assert_eq!(shared_step(&s(&["spark-submit", "s3://raw/job.py", "a"]), root), None, "not run_job.py");
        assert_eq!(
            shared_step(&s(&["spark-submit", "--jars", "x.jar", "run_job.py", "parse_logs"]), root),
            None,
            "a jar needs a JVM of its own"
        );
        assert_eq!(shared_step(&s(&["spark-submit", "--packages=a:b:1", "run_job.py"]), root), None);
        assert_eq!(shared_step(&s(&["spark-submit", "--py-files"]), root), None, "a missing value");
        assert_eq!(shared_step(&s(&["spark-submit", "--conf", "novalue", "run_job.py"]), root), None);
        assert_eq!(shared_step(&s(&["spark-submit", "--py-files", "a.zip"]), root), None, "no primary resource");
        assert!(shared_step(&s(&["/venv/bin/spark-submit", "--verbose", "/x/run_job.py", "build_fact"]), root)
            .is_some_and(|step| step.argv == s(&["build_fact"]) && step.py_files.is_empty()));
    }

    #[test]
    fn the_tail_of_a_log_is_its_last_lines() {
        let dir = std::env::temp_dir().join(format!("shared-app-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stderr");
        std::fs::write(&file, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&file, 2), "c\nd");
        assert_eq!(log_tail(&file, 10), "a\nb\nc\nd");
        assert_eq!(log_tail(&dir.join("missing"), 3), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
