//! The per-date run lock against a real LocalStore, with a FakeClock for expiry.

use std::time::Duration;

use bytes::Bytes;
use emr_driver::clock::FakeClock;
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::lock::{lock_uri, LockError, LockRecord, LockRequest, RunLock};
use emr_driver::store::local::LocalStore;
use emr_driver::store::ObjectStore;

fn request(run_id: &str, break_stale: bool) -> LockRequest {
    LockRequest { owner: "nightly".into(), run_id: run_id.into(), ttl: Duration::from_secs(4 * 3600), break_stale }
}

#[tokio::test]
async fn a_second_run_of_the_same_date_is_refused_with_the_holder_and_exit_code_8() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    assert_eq!(uri.to_string(), "s3://staging/_locks/dt=2021-10-31.json");

    let first = RunLock::acquire(&store, &uri, &request("run-a", false), &clock).await.unwrap();
    let on_disk: LockRecord = serde_json::from_slice(&store.get_bytes(&uri).await.unwrap()).unwrap();
    assert_eq!(&on_disk, first.record());
    assert_eq!(on_disk.pid, std::process::id());
    assert_eq!((on_disk.expires_at - on_disk.acquired_at).num_hours(), 4);

    clock.advance(Duration::from_secs(3600));
    // Even asking to break a stale lock does not take a live one.
    let err = RunLock::acquire(&store, &uri, &request("run-b", true), &clock).await.unwrap_err();
    assert!(matches!(&err, LockError::Held { held, .. } if held.run_id == "run-a"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    let message = err.to_string();
    assert!(message.contains("run-a") && message.contains("--break-stale-lock"), "{message}");

    // Another date is a different lock.
    RunLock::acquire(&store, &lock_uri("staging", "2021-11-01"), &request("run-c", false), &clock).await.unwrap();

    first.release(&store).await.unwrap();
    assert!(store.head(&uri).await.unwrap().is_none());
    RunLock::acquire(&store, &uri, &request("run-b", false), &clock).await.unwrap();
}

#[tokio::test]
async fn an_expired_lock_is_refused_unless_breaking_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let dead = RunLock::acquire(&store, &uri, &request("run-dead", false), &clock).await.unwrap();
    clock.advance(Duration::from_secs(5 * 3600));

    let err = RunLock::acquire(&store, &uri, &request("run-new", false), &clock).await.unwrap_err();
    assert!(matches!(&err, LockError::Stale { held, .. } if held.run_id == "run-dead"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    assert!(err.to_string().contains("expired"), "{err}");

    let new = RunLock::acquire(&store, &uri, &request("run-new", true), &clock).await.unwrap();
    let on_disk: LockRecord = serde_json::from_slice(&store.get_bytes(&uri).await.unwrap()).unwrap();
    assert_eq!(on_disk.run_id, "run-new");

    // The dead run, coming back, must not release the new run's lock.
    let err = dead.release(&store).await.unwrap_err();
    assert!(matches!(&err, LockError::Lost { now_held_by, .. } if now_held_by == "run-new"), "{err}");
    assert!(store.head(&uri).await.unwrap().is_some());
    new.release(&store).await.unwrap();
}

#[tokio::test]
async fn refresh_pushes_the_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let mut lock = RunLock::acquire(&store, &uri, &request("run-a", false), &clock).await.unwrap();
    clock.advance(Duration::from_secs(3 * 3600));
    lock.refresh(&store, Duration::from_secs(4 * 3600), &clock).await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    let err = RunLock::acquire(&store, &uri, &request("run-b", false), &clock).await.unwrap_err();
    assert!(matches!(err, LockError::Held { .. }), "{err}");
}

#[tokio::test]
async fn an_unreadable_lock_is_reported_and_can_be_broken() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    store.put_bytes(&uri, Bytes::from_static(b"not json")).await.unwrap();
    let err = RunLock::acquire(&store, &uri, &request("run-a", false), &clock).await.unwrap_err();
    assert!(matches!(err, LockError::Corrupt { .. }), "{err}");
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    RunLock::acquire(&store, &uri, &request("run-a", true), &clock).await.unwrap();
}
