//! The per-date run lock: an object in the staging bucket (`s3://<staging>/_locks/dt=D.json`)
//! with an owner and an expiry, created only if absent, so two runs of the same date never run
//! at once. An expired lock (its run died) is not taken over silently: it is broken only when
//! asked (`--break-stale-lock`).
//!
//! Limitation: breaking a stale lock is "check it is still the same stale record, delete, then
//! create if absent"; two runs breaking the same stale lock at the same instant could both pass
//! the check. Creation itself is atomic (one of two creators wins).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{ExitCode, ExitStatus};
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who runs it (the nightly trigger, a user name...).
    pub owner: String,
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "run {} of {} (host {}, pid {}) holds the lock {uri} until {}; wait for it to finish \
         (emr-driver status), or if that run is dead, wait for the lock to expire and rerun with \
         --break-stale-lock",
        held.run_id, held.owner, held.host, held.pid, held.expires_at.to_rfc3339()
    )]
    Held { uri: String, held: LockRecord },
    #[error(
        "the lock {uri} of run {} ({}) expired at {}: that run probably died; check that it is not \
         running, then rerun with --break-stale-lock to take the lock over",
        held.run_id, held.owner, held.expires_at.to_rfc3339()
    )]
    Stale { uri: String, held: LockRecord },
    #[error("the lock {uri} is not a lock record ({reason}); if no run of that date is running, rerun with --break-stale-lock to replace it")]
    Corrupt { uri: String, reason: String },
    #[error("the lock {uri} is no longer ours (now held by run {}); another run broke it, so this run's results may be overwritten: check both runs", now_held_by)]
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
            LockError::Held { .. } | LockError::Stale { .. } | LockError::Corrupt { .. } | LockError::Lost { .. } => {
                ExitCode::LockHeld
            }
            LockError::Store { source, .. } => source.exit_code(),
        }
    }
}

/// Who asks for the lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub owner: String,
    pub run_id: String,
    /// How long the lock holds without a refresh: longer than the run's deadline.
    pub ttl: Duration,
    /// Replace an expired (or unreadable) lock instead of refusing.
    pub break_stale: bool,
}

/// A lock this process holds.
#[derive(Debug, Clone)]
pub struct RunLock {
    uri: ObjectUri,
    record: LockRecord,
}

/// The lock object of run date `run_date` under the staging bucket.
pub fn lock_uri(staging_bucket: &str, run_date: &str) -> ObjectUri {
    ObjectUri::new(staging_bucket, format!("_locks/dt={run_date}.json"))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

impl RunLock {
    /// Takes the lock at `uri`, or says who holds it.
    pub async fn acquire(
        store: &dyn ObjectStore,
        uri: &ObjectUri,
        request: &LockRequest,
        clock: &dyn Clock,
    ) -> Result<RunLock, LockError> {
        let store_err = |source| LockError::Store { uri: uri.to_string(), source };
        let now = clock.now();
        let record = LockRecord {
            owner: request.owner.clone(),
            run_id: request.run_id.clone(),
            host: host_name(),
            pid: std::process::id(),
            acquired_at: now,
            expires_at: now + chrono::Duration::from_std(request.ttl).unwrap_or(chrono::Duration::days(1)),
        };
        let body = Bytes::from(serde_json::to_vec_pretty(&record).expect("lock record serialises"));
        if store.put_if_absent(uri, body.clone()).await.map_err(store_err)? {
            return Ok(RunLock { uri: uri.clone(), record });
        }
        let existing = store.get_bytes(uri).await.map_err(store_err)?;
        match serde_json::from_slice::<LockRecord>(&existing) {
            Ok(held) if held.expires_at > now => Err(LockError::Held { uri: uri.to_string(), held }),
            Ok(held) if !request.break_stale => Err(LockError::Stale { uri: uri.to_string(), held }),
            Err(e) if !request.break_stale => Err(LockError::Corrupt { uri: uri.to_string(), reason: e.to_string() }),
            _ => {
                // Break it: only if it is still the record we judged stale.
                let again = store.get_bytes(uri).await.map_err(store_err)?;
                if again != existing {
                    return Err(Self::describe_holder(uri, &again));
                }
                tracing::warn!(lock = %uri, "breaking a stale run lock as asked (--break-stale-lock)");
                store.delete(uri).await.map_err(store_err)?;
                if store.put_if_absent(uri, body).await.map_err(store_err)? {
                    Ok(RunLock { uri: uri.clone(), record })
                } else {
                    let now_there = store.get_bytes(uri).await.map_err(store_err)?;
                    Err(Self::describe_holder(uri, &now_there))
                }
            }
        }
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

    async fn check_ours(&self, store: &dyn ObjectStore) -> Result<bool, LockError> {
        let store_err = |source| LockError::Store { uri: self.uri.to_string(), source };
        match store.get_bytes(&self.uri).await {
            Ok(raw) => match serde_json::from_slice::<LockRecord>(&raw) {
                Ok(held) if held == self.record => Ok(true),
                Ok(held) => Err(LockError::Lost { uri: self.uri.to_string(), now_held_by: held.run_id }),
                Err(_) => Err(LockError::Lost { uri: self.uri.to_string(), now_held_by: "(unreadable)".into() }),
            },
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Pushes the expiry `ttl` from now (long runs call it between steps).
    pub async fn refresh(
        &mut self,
        store: &dyn ObjectStore,
        ttl: Duration,
        clock: &dyn Clock,
    ) -> Result<(), LockError> {
        self.check_ours(store).await?;
        let mut record = self.record.clone();
        record.expires_at = clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
        let body = Bytes::from(serde_json::to_vec_pretty(&record).expect("lock record serialises"));
        store
            .put_bytes(&self.uri, body)
            .await
            .map_err(|source| LockError::Store { uri: self.uri.to_string(), source })?;
        self.record = record;
        Ok(())
    }

    /// Releases the lock, only if it is still ours (a lock someone broke is left to them).
    pub async fn release(self, store: &dyn ObjectStore) -> Result<(), LockError> {
        if self.check_ours(store).await? {
            store.delete(&self.uri).await.map_err(|source| LockError::Store { uri: self.uri.to_string(), source })?;
        }
        Ok(())
    }
}
