//! The run locks: an object in the staging bucket (`s3://<staging>/_locks/dt=D.json` per date,
//! `_locks/dimension-registry.json` around `build_dimensions`) with an owner, a heartbeat and an
//! expiry, so two runs never own the same lock and a dead run's lock recovers by itself.
//!
//! * Creation is atomic (`If-None-Match: *` on S3, a hard link locally): one of two creators wins.
//! * While the run lives a background task ([`RunLock::keep_alive`]) refreshes the heartbeat and
//!   pushes the expiry `ttl` ahead.
//! * A lock whose holder is provably dead is taken over by the next attempt, without any flag:
//!   its expiry passed (no heartbeat for `ttl`), or it was taken on this host by a process that
//!   is gone (`kill(pid, 0)` answers ESRCH, the pid is a zombie, or it now belongs to a process
//!   started later than the holder).
//! * Every change of an existing lock (heartbeat, takeover, release) is a compare-and-swap on
//!   the version read (`If-Match` on the ETag on S3, a digest compared under `flock` locally), so
//!   of two takers of one dead lock exactly one wins, and a run whose lock was taken over can
//!   neither refresh nor release the new holder's lock.
//! * `--break-stale-lock` is only needed for a lock object that is not a lock record.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::{ExitCode, ExitStatus};
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// How often a running driver refreshes its locks.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
/// How long a lock holds without a heartbeat: after that its holder is taken for dead.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10 * 60);

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who runs it (the nightly trigger, a user name...).
    pub owner: String,
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    /// When the holder process started (Linux clock ticks since boot, `/proc/<pid>/stat`), so a
    /// pid reused by another process is not taken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_started: Option<u64>,
    pub acquired_at: DateTime<Utc>,
    /// The last heartbeat (the acquisition for a fresh lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Without a heartbeat by then, the holder is dead.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "run {} of {} (host {}, pid {}) holds the lock {uri} (last heartbeat {}); wait for it to \
         finish (emr-driver status). If that run is dead, the next attempt takes the lock over by \
         itself once its process is gone on that host or its heartbeat stopped (at the latest {})",
        held.run_id, held.owner, held.host, held.pid,
        held.heartbeat_at.unwrap_or(held.acquired_at).to_rfc3339(), held.expires_at.to_rfc3339()
    )]
    Held { uri: String, held: LockRecord },
    #[error("the lock {uri} is not a lock record ({reason}); if no run of that date is running, rerun with --break-stale-lock to replace it")]
    Corrupt { uri: String, reason: String },
    #[error("the lock {uri} is no longer ours (now held by run {}); another run took it over, so this run stopped: check both runs", now_held_by)]
    Lost { uri: String, now_held_by: String },
    #[error("could not use the run lock {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: StoreError,
    },
}

impl ExitStatus for LockError {
    fn exit_code(&self) -> ExitCode {
        match self {
            LockError::Held { .. } | LockError::Corrupt { .. } | LockError::Lost { .. } => ExitCode::LockHeld,
            LockError::Store { source, .. } => source.exit_code(),
        }
    }
}

/// Who asks for the lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub owner: String,
    pub run_id: String,
    /// How long the lock holds without a heartbeat.
    pub ttl: Duration,
    /// Also replace a lock object that is not a lock record (a dead holder's lock is taken
    /// over without it).
    pub break_stale: bool,
}

/// A lock this process holds: its record and the version of the object it wrote last.
#[derive(Debug, Clone)]
pub struct RunLock {
    uri: ObjectUri,
    record: LockRecord,
    etag: String,
}

/// The lock object of run date `run_date` under the staging bucket.
pub fn lock_uri(staging_bucket: &str, run_date: &str) -> ObjectUri {
    ObjectUri::new(staging_bucket, format!("_locks/dt={run_date}.json"))
}

/// The name of this host, as lock records hold it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// What `/proc/<pid>/stat` says of a process: whether it is a zombie, and when it started.
fn proc_stat(pid: u32) -> Option<(bool, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split(' ').collect();
    let zombie = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
    // Field 22 of the whole line (starttime) is the 20th after the name.
    Some((zombie, fields.get(19).and_then(|s| s.parse().ok())))
}

/// When process `pid` started (clock ticks since boot), where `/proc` tells.
pub fn process_start(pid: u32) -> Option<u64> {
    proc_stat(pid).and_then(|(_, started)| started)
}

/// Whether process `pid` of this host still runs: `kill(pid, 0)` (ESRCH: gone), not a zombie,
/// and, when the record knows when the holder started, not a later process given the same pid.
pub fn process_alive(pid: u32, started: Option<u64>) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    // ESRCH: no such process. EPERM would mean it exists, under another user.
    if let Err(nix::errno::Errno::ESRCH) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        return false;
    }
    match proc_stat(pid) {
        Some((true, _)) => false,
        Some((false, now_started)) => match (started, now_started) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        },
        None => true,
    }
}

/// Why the holder of `held` is dead, or `None` while it may be alive. Pure but for the
/// process check of a holder on this host.
pub fn holder_is_dead(held: &LockRecord, now: DateTime<Utc>, this_host: &str) -> Option<String> {
    if held.expires_at <= now {
        return Some(format!(
            "no heartbeat since {} (expired at {})",
            held.heartbeat_at.unwrap_or(held.acquired_at).to_rfc3339(),
            held.expires_at.to_rfc3339()
        ));
    }
    if held.host == this_host && !process_alive(held.pid, held.pid_started) {
        return Some(format!("its process {} on {this_host} is gone", held.pid));
    }
    None
}

fn to_chrono(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1))
}

fn encode(record: &LockRecord) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(record).expect("lock record serialises"))
}

impl RunLock {
    /// Takes the lock at `uri`: creates it, or takes it over from a dead holder, or says who
    /// holds it.
    pub async fn acquire(
        store: &dyn ObjectStore,
        uri: &ObjectUri,
        request: &LockRequest,
        clock: &dyn Clock,
    ) -> Result<RunLock, LockError> {
        let store_err = |source| LockError::Store { uri: uri.to_string(), source };
        let now = clock.now();
        let pid = std::process::id();
        let record = LockRecord {
            owner: request.owner.clone(),
            run_id: request.run_id.clone(),
            host: host_name(),
            pid,
            pid_started: process_start(pid),
            acquired_at: now,
            heartbeat_at: Some(now),
            expires_at: now + to_chrono(request.ttl),
        };
        let body = encode(&record);
        // A few rounds: the lock may be released between our create and our read.
        for _ in 0..5 {
            if store.put_if_absent(uri, body.clone()).await.map_err(store_err)? {
                return match store.get_versioned(uri).await.map_err(store_err)? {
                    Some(v) if v.body == body => Ok(RunLock { uri: uri.clone(), record, etag: v.etag }),
                    Some(v) => Err(Self::describe_holder(uri, &v.body)),
                    None => Err(LockError::Lost { uri: uri.to_string(), now_held_by: "(deleted)".into() }),
                };
            }
            let Some(existing) = store.get_versioned(uri).await.map_err(store_err)? else { continue };
            let reason = match serde_json::from_slice::<LockRecord>(&existing.body) {
                Ok(held) => match holder_is_dead(&held, now, &record.host) {
                    Some(why) => format!("run {} of {} is dead: {why}", held.run_id, held.owner),
                    None => return Err(LockError::Held { uri: uri.to_string(), held }),
                },
                Err(e) if !request.break_stale => {
                    return Err(LockError::Corrupt { uri: uri.to_string(), reason: e.to_string() })
                }
                Err(e) => format!("it is not a lock record ({e}) and --break-stale-lock was given"),
            };
            // Take it over only if it is still the version judged: of two takers one wins.
            return match store.put_if_match(uri, body.clone(), &existing.etag).await.map_err(store_err)? {
                Some(etag) => {
                    tracing::warn!(lock = %uri, "took the lock over: {reason}");
                    Ok(RunLock { uri: uri.clone(), record, etag })
                }
                None => match store.get_versioned(uri).await.map_err(store_err)? {
                    Some(v) => Err(Self::describe_holder(uri, &v.body)),
                    None => Err(LockError::Lost { uri: uri.to_string(), now_held_by: "(deleted)".into() }),
                },
            };
        }
        Err(LockError::Lost { uri: uri.to_string(), now_held_by: "(created and deleted repeatedly)".into() })
    }

    fn describe_holder(uri: &ObjectUri, raw: &[u8]) -> LockError {
        match serde_json::from_slice::<LockRecord>(raw) {
            Ok(held) => LockError::Held { uri: uri.to_string(), held },
            Err(e) => LockError::Corrupt { uri: uri.to_string(), reason: e.to_string() },
        }
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    pub fn uri(&self) -> &ObjectUri {
        &self.uri
    }

    async fn lost(&self, store: &dyn ObjectStore) -> LockError {
        let now_held_by = match store.get_versioned(&self.uri).await {
            Ok(Some(v)) => serde_json::from_slice::<LockRecord>(&v.body)
                .map(|r| r.run_id)
                .unwrap_or_else(|_| "(unreadable)".into()),
            Ok(None) => "(nobody: it was deleted)".into(),
            Err(e) => format!("(unknown: {e})"),
        };
        LockError::Lost { uri: self.uri.to_string(), now_held_by }
    }

    /// The heartbeat: pushes the expiry `ttl` from now, only if the lock is still the version
    /// this process wrote.
    pub async fn refresh(
        &mut self,
        store: &dyn ObjectStore,
        ttl: Duration,
        clock: &dyn Clock,
    ) -> Result<(), LockError> {
        let mut record = self.record.clone();
        let now = clock.now();
        record.heartbeat_at = Some(now);
        record.expires_at = now + to_chrono(ttl);
        let swapped = store
            .put_if_match(&self.uri, encode(&record), &self.etag)
            .await
            .map_err(|source| LockError::Store { uri: self.uri.to_string(), source })?;
        match swapped {
            Some(etag) => {
                self.record = record;
                self.etag = etag;
                Ok(())
            }
            None => Err(self.lost(store).await),
        }
    }

    /// Releases the lock, only if it is still ours (a lock someone took over is left to them).
    pub async fn release(self, store: &dyn ObjectStore) -> Result<(), LockError> {
        let deleted = store
            .delete_if_match(&self.uri, &self.etag)
            .await
            .map_err(|source| LockError::Store { uri: self.uri.to_string(), source })?;
        if deleted {
            return Ok(());
        }
        match self.lost(store).await {
            LockError::Lost { now_held_by, .. } if now_held_by.starts_with("(nobody") => Ok(()),
            lost => Err(lost),
        }
    }

    /// Refreshes the lock every `every` in a background task until [`HeldLock::stop`].
    pub fn keep_alive(
        self,
        store: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        every: Duration,
        ttl: Duration,
    ) -> HeldLock {
        let lock = Arc::new(tokio::sync::Mutex::new(self));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (lost_tx, lost_rx) = watch::channel(None);
        let task_lock = Arc::clone(&lock);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = clock.sleep(every) => {}
                    _ = stop_rx.changed() => return,
                }
                let mut held = task_lock.lock().await;
                match held.refresh(store.as_ref(), ttl, clock.as_ref()).await {
                    Ok(()) => {}
                    Err(e @ LockError::Lost { .. }) => {
                        tracing::error!("{e}");
                        let _ = lost_tx.send(Some(e.to_string()));
                        return;
                    }
                    // A store hiccup: the next beat tries again (the ttl spans several beats).
                    Err(e) => tracing::warn!("could not refresh the lock heartbeat: {e}"),
                }
            }
        });
        HeldLock { lock, stop: stop_tx, task, lost: lost_rx }
    }
}

/// A lock whose heartbeat runs in the background.
pub struct HeldLock {
    lock: Arc<tokio::sync::Mutex<RunLock>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<Option<String>>,
}

impl HeldLock {
    /// Changes to `Some(reason)` when a heartbeat found the lock taken over.
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.lost.clone()
    }

    /// Stops the heartbeat and hands the lock back (to release it).
    pub async fn stop(self) -> RunLock {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        match Arc::try_unwrap(self.lock) {
            Ok(mutex) => mutex.into_inner(),
            Err(shared) => shared.lock().await.clone(),
        }
    }
}
