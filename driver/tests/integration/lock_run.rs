//! The run locks against a real LocalStore, with a FakeClock for expiry: refusal of a live
//! holder, takeover of a dead one without any flag (expired heartbeat, or a process of this host
//! that is gone), compare-and-swap so that of two racing takers exactly one wins, the heartbeat.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use bytes::Bytes;
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::lock::{host_name, lock_uri, LockError, LockRecord, LockRequest, RunLock};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};

fn request(run_id: &str, break_stale: bool) -> LockRequest {
    LockRequest { owner: "nightly".into(), run_id: run_id.into(), ttl: Duration::from_secs(4 * 3600), break_stale }
}

async fn on_disk(store: &LocalStore, uri: &ObjectUri) -> LockRecord {
    serde_json::from_slice(&store.get_bytes(uri).await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_second_run_of_the_same_date_is_refused_with_the_holder_and_exit_code_8() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    assert_eq!(uri.to_string(), "s3://staging/_locks/dt=2021-10-31.json");

    let first = RunLock::acquire(&store, &uri, &request("run-a", false), &clock).await.unwrap();
    let record = on_disk(&store, &uri).await;
    assert_eq!(&record, first.record());
    assert_eq!(record.pid, std::process::id());
    assert_eq!(record.host, host_name());
    assert_eq!(record.heartbeat_at, Some(record.acquired_at));
    assert_eq!((record.expires_at - record.acquired_at).num_hours(), 4);

    clock.advance(Duration::from_secs(3600));
    // The holder lives (this very process) and its lock has not expired: refused, even with
    // the old flag.
    let err = RunLock::acquire(&store, &uri, &request("run-b", true), &clock).await.unwrap_err();
    assert!(matches!(&err, LockError::Held { held, .. } if held.run_id == "run-a"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    let message = err.to_string();
    assert!(message.contains("run-a") && message.contains("takes the lock over by itself"), "{message}");

    // Another date is a different lock.
    RunLock::acquire(&store, &lock_uri("staging", "2021-11-01"), &request("run-c", false), &clock).await.unwrap();

    first.release(&store).await.unwrap();
    assert!(store.head(&uri).await.unwrap().is_none());
    RunLock::acquire(&store, &uri, &request("run-b", false), &clock).await.unwrap();
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_without_any_flag_and_its_old_holder_cannot_touch_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let mut dead = RunLock::acquire(&store, &uri, &request("run-dead", false), &clock).await.unwrap();
    clock.advance(Duration::from_secs(5 * 3600));

    let new = RunLock::acquire(&store, &uri, &request("run-new", false), &clock).await.unwrap();
    assert_eq!(on_disk(&store, &uri).await.run_id, "run-new");

    // The dead run, coming back, can neither refresh nor release the new run's lock.
    let err = dead.refresh(&store, Duration::from_secs(3600), &clock).await.unwrap_err();
    assert!(matches!(&err, LockError::Lost { now_held_by, .. } if now_held_by == "run-new"), "{err}");
    let err = dead.release(&store).await.unwrap_err();
    assert!(matches!(&err, LockError::Lost { now_held_by, .. } if now_held_by == "run-new"), "{err}");
    assert_eq!(err.exit_code(), ExitCode::LockHeld);
    assert_eq!(on_disk(&store, &uri).await.run_id, "run-new");
    new.release(&store).await.unwrap();
    assert!(store.head(&uri).await.unwrap().is_none());
}

/// The pid of a process that ran and was reaped: gone.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[tokio::test]
async fn a_lock_of_a_process_of_this_host_that_is_gone_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let now = clock.now();
    let mut record = LockRecord {
        owner: "nightly".into(),
        run_id: "run-killed".into(),
        host: host_name(),
        pid: dead_pid(),
        pid_started: None,
        acquired_at: now,
        heartbeat_at: Some(now),
        // Far from expired: only the process check can tell it is dead.
        expires_at: now + chrono::Duration::hours(4),
    };
    store.put_bytes(&uri, Bytes::from(serde_json::to_vec(&record).unwrap())).await.unwrap();
    let taken = RunLock::acquire(&store, &uri, &request("run-retry", false), &clock).await.unwrap();
    assert_eq!(on_disk(&store, &uri).await.run_id, "run-retry");
    taken.release(&store).await.unwrap();

    // A live process with that pid but started at another time (the pid was reused) is not
    // the holder either.
    record.pid = std::process::id();
    record.pid_started = Some(emr_driver::lock::process_start(record.pid).unwrap() + 1);
    store.put_bytes(&uri, Bytes::from(serde_json::to_vec(&record).unwrap())).await.unwrap();
    RunLock::acquire(&store, &uri, &request("run-retry", false), &clock).await.unwrap().release(&store).await.unwrap();

    // The same pid on another host is not judged from here: refused until its heartbeat stops.
    record.host = "another-host".into();
    record.pid_started = None;
    store.put_bytes(&uri, Bytes::from(serde_json::to_vec(&record).unwrap())).await.unwrap();
    let err = RunLock::acquire(&store, &uri, &request("run-retry", false), &clock).await.unwrap_err();
    assert!(matches!(&err, LockError::Held { held, .. } if held.run_id == "run-killed"), "{err}");
}

#[test]
fn two_takers_of_one_dead_lock_never_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let uri = lock_uri("staging", "2021-10-31");
    for round in 0..20 {
        let store = LocalStore::new(dir.path());
        let clock = FakeClock::new();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dead = runtime.block_on(RunLock::acquire(&store, &uri, &request("run-dead", false), &clock)).unwrap();
        drop(dead);
        clock.advance(Duration::from_secs(5 * 3600));
        // Two threads, each with its own store and runtime, released together by a barrier.
        let barrier = Arc::new(Barrier::new(2));
        let takers: Vec<_> = ["taker-1", "taker-2"]
            .into_iter()
            .map(|name| {
                let (barrier, clock, root) = (Arc::clone(&barrier), clock.clone(), dir.path().to_path_buf());
                let uri = uri.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    let store = LocalStore::new(root);
                    barrier.wait();
                    runtime.block_on(RunLock::acquire(&store, &uri, &request(name, false), &clock)).map_err(Box::new)
                })
            })
            .collect();
        let results: Vec<_> = takers.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(matches!(**loser, LockError::Held { .. }), "round {round}: {loser}");
        let holder = runtime.block_on(on_disk(&store, &uri));
        assert_eq!(holder.run_id, winners[0].record().run_id, "round {round}");
        runtime.block_on(winners[0].clone().release(&store)).unwrap();
    }
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
    assert_eq!(on_disk(&store, &uri).await.heartbeat_at, Some(clock.now()));
    clock.advance(Duration::from_secs(2 * 3600));
    let err = RunLock::acquire(&store, &uri, &request("run-b", false), &clock).await.unwrap_err();
    assert!(matches!(err, LockError::Held { .. }), "{err}");
    lock.release(&store).await.unwrap();
}

#[tokio::test]
async fn the_background_heartbeat_keeps_the_lock_alive_past_its_first_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let ttl = Duration::from_secs(600);
    let lock =
        RunLock::acquire(store.as_ref(), &uri, &LockRequest { ttl, ..request("run-a", false) }, &clock).await.unwrap();
    let first_expiry = lock.record().expires_at;
    let held = lock.keep_alive(Arc::clone(&store), Arc::new(clock.clone()), Duration::from_secs(60), ttl);
    // The fake clock moves as the heartbeat sleeps: wait (bounded) for beats past the expiry.
    let mut beaten = None;
    for _ in 0..10_000 {
        let record: LockRecord = serde_json::from_slice(&store.get_bytes(&uri).await.unwrap()).unwrap();
        if record.heartbeat_at.is_some_and(|h| h > first_expiry) {
            beaten = Some(record);
            break;
        }
        tokio::task::yield_now().await;
    }
    let record = beaten.expect("the heartbeat never refreshed the lock");
    assert!(record.expires_at > first_expiry);
    assert_eq!(record.expires_at - record.heartbeat_at.unwrap(), chrono::Duration::seconds(600));
    assert!(held.lost().borrow().is_none());
    let lock = held.stop().await;
    lock.release(store.as_ref()).await.unwrap();
    assert!(store.head(&uri).await.unwrap().is_none());
}

#[tokio::test]
async fn a_heartbeat_that_finds_its_lock_taken_over_reports_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    let clock = FakeClock::new();
    let uri = lock_uri("staging", "2021-10-31");
    let lock = RunLock::acquire(store.as_ref(), &uri, &request("run-a", false), &clock).await.unwrap();
    // Someone replaced the object behind the holder's back.
    store.put_bytes(&uri, Bytes::from_static(b"{}")).await.unwrap();
    let held =
        lock.keep_alive(Arc::clone(&store), Arc::new(clock.clone()), Duration::from_secs(60), Duration::from_secs(600));
    let mut lost = held.lost();
    let reason = loop {
        if let Some(reason) = lost.borrow_and_update().clone() {
            break reason;
        }
        lost.changed().await.unwrap();
    };
    assert!(reason.contains("no longer ours"), "{reason}");
    let lock = held.stop().await;
    assert!(matches!(lock.release(store.as_ref()).await, Err(LockError::Lost { .. })));
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
