//! The backfill orchestration (`emr_driver::backfill::run_dates` over real `Pipeline`s) against
//! a stateful fake runner whose fake jobs hand out dimension ids as build_dimensions does
//! (union of every existing snapshot, new values numbered from max+1 in order of value) and
//! whose fake build_fact reads its own date's snapshot. No Spark, no real sleeps.
//!
//! The fake runner is scheduled so that the first date's classify/parse wave ends long after
//! the second date's: without the dimension turns the second date would build its dimensions
//! first (the control below shows it does, and that the ids then differ).

use emr_driver::inputs::BoundInputs;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use emr_driver::backfill::{
    run_dates, worst_exit_code, BackfillObserver, BackfillOptions, DateOutcome, DateState, RunTurns, SharedProvider,
    Tally,
};
use emr_driver::clock::{Clock, FakeClock};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::ArtifactSet;
use emr_driver::diagnose::DiagnoseOptions;
use emr_driver::error::ExitCode;
use emr_driver::pipeline::{Databases, Pipeline, Progress, ProvidedRunner, RunOptions, RunnerProvider};
use emr_driver::plan::Plan;
use emr_driver::poll::{PollOptions, Quiet};
use emr_driver::runner::{CancelOutcome, RunnerError, StepRunner, Termination};
use emr_driver::step::{StepConfig, StepState, StepStatus};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};
use tokio::sync::watch;

const DATES: [&str; 3] = ["2021-01-01", "2021-01-02", "2021-01-03"];

/// The locations each date's logs hold: later dates bring new ones.
fn locations(date: &str) -> Vec<&'static str> {
    match date {
        "2021-01-01" => vec!["Texas", "Ohio"],
        "2021-01-02" => vec!["Texas", "Alaska", "Maine"],
        _ => vec!["Utah", "Alaska", "Kansas"],
    }
}

/// How a fake step ends.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// COMPLETED once the runner has been listed this many times (0: at once).
    CompleteAfterLists(usize),
    /// RUNNING until cancelled.
    Hang,
    /// COMPLETED once a step of this (date, job) has been submitted: a barrier that makes an
    /// interleaving of dates certain instead of likely. Until then, listing the step waits
    /// (rather than answering RUNNING): a poller answered RUNNING sleeps on the shared fake
    /// clock, which returns at once, so it could pass its run's deadline in fake time while
    /// the other date does its real I/O.
    CompleteAfterSubmitted(&'static str, &'static str),
}

struct FakeRunner {
    store: LocalStore,
    staging: String,
    steps: Mutex<Vec<(StepStatus, Behaviour)>>, // (status, when it completes)
    behaviour: HashMap<(String, &'static str), Behaviour>, // (date, job)
    lists: AtomicUsize,
    submitted: Mutex<Vec<String>>,              // step names, in submission order
    submits: tokio::sync::watch::Sender<usize>, // bumped on every submit: wakes barrier waits
    cancelled: Mutex<Vec<String>>,
    terminated: AtomicUsize,
}

impl FakeRunner {
    fn new(store: LocalStore, staging: &str, behaviour: &[(&str, &'static str, Behaviour)]) -> Arc<Self> {
        Arc::new(FakeRunner {
            store,
            staging: staging.to_string(),
            steps: Mutex::new(Vec::new()),
            behaviour: behaviour.iter().map(|(d, j, b)| ((d.to_string(), *j), *b)).collect(),
            lists: AtomicUsize::new(0),
            submitted: Mutex::new(Vec::new()),
            submits: tokio::sync::watch::channel(0).0,
            cancelled: Mutex::new(Vec::new()),
            terminated: AtomicUsize::new(0),
        })
    }

    fn submitted(&self) -> Vec<String> {
        self.submitted.lock().unwrap().clone()
    }

    fn was_submitted(&self, date: &str, job: &str) -> bool {
        self.submitted().iter().any(|n| n.starts_with(date) && n.ends_with(&format!(" {job}")))
    }

    /// Whether one of `ids` (none: a listing of every step, never held back) is RUNNING behind
    /// a barrier that has not opened yet.
    fn behind_a_barrier(&self, ids: &[String]) -> bool {
        let table = self.steps.lock().unwrap();
        table.iter().any(|(status, behaviour)| match *behaviour {
            Behaviour::CompleteAfterSubmitted(date, job) => {
                ids.contains(&status.id) && status.state == StepState::Running && !self.was_submitted(date, job)
            }
            _ => false,
        })
    }

    fn uri(&self, key: &str) -> ObjectUri {
        ObjectUri::new(self.staging.clone(), key)
    }

    /// The fake job's work, done when the step is submitted (its outputs exist before it is
    /// seen COMPLETED, as with a real job).
    async fn work(&self, config: &StepConfig) {
        let (date, job) = date_and_job(config);
        let args = &config.hadoop_jar_step.args;
        let metrics = args.iter().position(|a| a == "--metrics").map(|i| args[i + 1].clone()).unwrap();
        // The folders the real job writes, each complete (`_SUCCESS`), so the run can publish.
        crate::support::write_job_outputs(&self.store, args, &config.name).await;
        let mut doc = serde_json::json!({"job": job, "run_date": date, "sources": {}, "outputs": {}});
        match job {
            "classify_reviews" | "parse_logs" => {
                let source = if job == "parse_logs" { "log_reviews" } else { "movie_review" };
                doc["sources"][source] =
                    serde_json::json!({"rows_in": 3, "rows_out": 3, "rows_rejected": 0, "rejected_by_reason": {}});
            }
            "build_dimensions" => {
                // The registry: every existing snapshot (of any date), as build_dimensions reads it.
                let mut registry: BTreeMap<String, u64> = BTreeMap::new();
                let listing = self.store.list(&self.uri("dims/dim_location/")).await.unwrap();
                // Only this fake's own registry files (the outputs written above are not JSON).
                for meta in listing.into_iter().filter(|m| m.uri.key.ends_with(".json")) {
                    let body = self.store.get_bytes(&meta.uri).await.unwrap();
                    let snapshot: BTreeMap<String, u64> = serde_json::from_slice(&body).unwrap();
                    registry.extend(snapshot);
                }
                let mut new: Vec<&str> = locations(&date).into_iter().filter(|v| !registry.contains_key(*v)).collect();
                new.sort();
                let next = registry.values().max().copied().unwrap_or(0) + 1;
                for (offset, value) in new.into_iter().enumerate() {
                    registry.insert(value.to_string(), next + offset as u64);
                }
                let body = serde_json::to_vec(&registry).unwrap();
                let key = format!("dims/dim_location/dt={date}/part-0.json");
                self.store.put_bytes(&self.uri(&key), Bytes::from(body)).await.unwrap();
            }
            "build_fact" => {
                // Its own date's snapshot only.
                let key = format!("dims/dim_location/dt={date}/part-0.json");
                let body = self.store.get_bytes(&self.uri(&key)).await.unwrap();
                let registry: BTreeMap<String, u64> = serde_json::from_slice(&body).unwrap();
                let rows: Vec<(String, u64)> =
                    locations(&date).into_iter().map(|v| (v.to_string(), registry[v])).collect();
                doc["outputs"]["fact_movie_analytics"] = rows.len().into();
                let key = format!("fact/dt={date}/part-0.json");
                self.store.put_bytes(&self.uri(&key), Bytes::from(serde_json::to_vec(&rows).unwrap())).await.unwrap();
            }
            other => panic!("unknown job {other}"),
        }
        let uri = ObjectUri::parse(&format!("{metrics}/part-00000.txt")).unwrap();
        self.store.put_bytes(&uri, Bytes::from(format!("{doc}\n"))).await.unwrap();
    }
}

/// `"<date>-<hash> <job>"` → (date, job).
fn date_and_job(config: &StepConfig) -> (String, &'static str) {
    let (run_id, job) = config.name.rsplit_once(' ').unwrap();
    let job =
        ["classify_reviews", "parse_logs", "build_dimensions", "build_fact"].into_iter().find(|j| *j == job).unwrap();
    (run_id[..10].to_string(), job)
}

#[async_trait]
impl StepRunner for FakeRunner {
    fn describe(&self) -> String {
        "fake cluster".into()
    }

    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        let mut ids = Vec::new();
        for config in steps {
            let (date, job) = date_and_job(config);
            let behaviour = self.behaviour.get(&(date, job)).copied().unwrap_or(Behaviour::CompleteAfterLists(0));
            if behaviour != Behaviour::Hang {
                self.work(config).await;
            }
            let mut table = self.steps.lock().unwrap();
            let id = format!("s-FAKE{}", table.len());
            let status = StepStatus {
                id: id.clone(),
                name: config.name.clone(),
                state: StepState::Running,
                failure: None,
                started_at: None,
                ended_at: None,
            };
            table.push((status, behaviour));
            self.submitted.lock().unwrap().push(config.name.clone());
            self.submits.send_modify(|n| *n += 1);
            ids.push(id);
        }
        Ok(ids)
    }

    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        // A listing of a step behind a barrier waits for the barrier (see the Behaviour).
        let mut submits = self.submits.subscribe();
        while self.behind_a_barrier(ids) {
            submits.changed().await.expect("the runner outlives its listings");
        }
        let calls = self.lists.fetch_add(1, Ordering::SeqCst) + 1;
        let submitted = self.submitted();
        let mut table = self.steps.lock().unwrap();
        for (status, behaviour) in table.iter_mut() {
            let done = match *behaviour {
                Behaviour::CompleteAfterLists(n) => calls >= n,
                Behaviour::Hang => false,
                Behaviour::CompleteAfterSubmitted(date, job) => {
                    submitted.iter().any(|n| n.starts_with(date) && n.ends_with(&format!(" {job}")))
                }
            };
            if status.state == StepState::Running && done {
                status.state = StepState::Completed;
            }
        }
        Ok(table.iter().map(|(s, _)| s.clone()).filter(|s| ids.is_empty() || ids.contains(&s.id)).collect())
    }

    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        let mut table = self.steps.lock().unwrap();
        let mut out = Vec::new();
        for (status, _) in table.iter_mut().filter(|(s, _)| ids.contains(&s.id) && !s.state.is_terminal()) {
            status.state = StepState::Cancelled;
            self.cancelled.lock().unwrap().push(status.name.clone());
            out.push(CancelOutcome { step_id: status.id.clone(), accepted: true, reason: None });
        }
        Ok(out)
    }

    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        Some(ObjectUri::parse(&format!("s3://logs/steps/{step_id}/")).unwrap())
    }

    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        None
    }

    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        self.terminated.fetch_add(1, Ordering::SeqCst);
        Ok(Termination::Terminated)
    }
}

/// Counts how often a runner was provided.
struct CountingProvider {
    runner: Arc<FakeRunner>,
    provided: AtomicUsize,
}

struct Counting(Arc<CountingProvider>);

#[async_trait]
impl RunnerProvider for Counting {
    async fn provide(&self, _plan: &Plan) -> emr_driver::error::Result<ProvidedRunner> {
        self.0.provided.fetch_add(1, Ordering::SeqCst);
        Ok(ProvidedRunner { runner: self.0.runner.clone(), kind: "emr", cluster: None })
    }
}

struct NoLines;
impl Progress for NoLines {
    fn line(&self, _text: &str) {}
}

#[derive(Default)]
struct Events(Mutex<Vec<(NaiveDate, DateState)>>);
impl BackfillObserver for Events {
    fn date_changed(&self, outcome: &DateOutcome, _tally: &Tally) {
        self.0.lock().unwrap().push((outcome.date, outcome.state));
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: LocalStore,
    config: Config,
    artifacts: ArtifactSet,
    clock: Arc<FakeClock>,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(repo.join("config/pipeline.toml")).unwrap();
        let lake = dir.path().join("lake").display().to_string();
        let overrides = Overrides::default().set("local.lake_dir", lake);
        let config = Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &overrides).unwrap();
        let artifacts = ArtifactSet::build(&repo).unwrap();
        for date in DATES {
            let incoming = format!("s3://{}/incoming/dt={date}", config.buckets.raw);
            for (name, body) in [
                ("movie_review.csv", format!("cid,review_str,id_review\n1,good {date},1\n")),
                ("log_reviews.csv", "id_review,log\n1,<reviewlog/>\n".to_string()),
                (
                    "user_purchase.csv",
                    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n536365,85123A,X,6,12/1/2010 8:26,2.55,1,United Kingdom\r\n".to_string(),
                ),
            ] {
                let uri = ObjectUri::parse(&format!("{incoming}/{name}")).unwrap();
                store.put_bytes(&uri, Bytes::from(body)).await.unwrap();
            }
        }
        World { _dir: dir, store, config, artifacts, clock: Arc::new(FakeClock::new()) }
    }

    fn runner(&self, behaviour: &[(&str, &'static str, Behaviour)]) -> Arc<FakeRunner> {
        FakeRunner::new(self.store.clone(), &self.config.buckets.staging, behaviour)
    }

    fn pipeline(
        &self,
        date: NaiveDate,
        provider: Box<dyn RunnerProvider>,
        turns: Option<RunTurns>,
        shutdown: watch::Receiver<Option<String>>,
    ) -> Pipeline {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Pipeline {
            plan: Plan::resolve(
                &self.config,
                &Overrides::default(),
                &date.to_string(),
                &self.artifacts,
                &BoundInputs::not_yet("not looked for"),
            )
            .unwrap(),
            store: Arc::new(self.store.clone()),
            provider,
            clock,
            observer: Arc::new(Quiet),
            progress: Arc::new(NoLines),
            options: RunOptions {
                databases: Databases::default(),
                owner: "test".into(),
                break_stale_lock: false,
                force: false,
                skip_bad_purchase_rows: false,
                keep_cluster: false,
                poll: PollOptions { interval: Duration::from_secs(1), jitter_seed: Some(7), ..PollOptions::default() },
                diagnose: DiagnoseOptions { wait_for_logs: Duration::from_secs(5), ..Default::default() },
                settle: Duration::from_secs(10),
                lock_heartbeat: None,
                raw_dir: None,
                turns,
            },
            shutdown,
        }
    }

    /// A backfill of every date; `use_turns: false` is the control (turns thrown away).
    async fn backfill(
        &self,
        runner: &Arc<FakeRunner>,
        parallel: usize,
        use_turns: bool,
        shutdown: watch::Receiver<Option<String>>,
    ) -> (Vec<DateOutcome>, Arc<CountingProvider>) {
        let counting = Arc::new(CountingProvider { runner: runner.clone(), provided: AtomicUsize::new(0) });
        let shared = SharedProvider::new(Box::new(Counting(counting.clone())), None);
        let dates: Vec<(NaiveDate, Option<DateOutcome>)> = DATES.iter().map(|d| (d.parse().unwrap(), None)).collect();
        let options = BackfillOptions { parallel, continue_on_failure: false };
        let events = Events::default();
        let outcomes = run_dates(dates, &options, self.clock.clone(), shutdown.clone(), &events, |date, turns| {
            self.pipeline(date, shared.for_date(), use_turns.then_some(turns), shutdown.clone())
        })
        .await;
        shared.finish(false).await;
        (outcomes, counting)
    }

    /// One-by-one runs in date order, each with a runner of its own.
    async fn one_by_one(&self) {
        for date in DATES {
            let runner = self.runner(&[]);
            let provider = Box::new(Counting(Arc::new(CountingProvider { runner, provided: AtomicUsize::new(0) })));
            let (_tx, rx) = watch::channel(None);
            let (manifest, result) = self.pipeline(date.parse().unwrap(), provider, None, rx).run().await;
            result.unwrap_or_else(|e| panic!("{date}: {e:?} {manifest:?}"));
        }
    }

    /// Per date: the fact rows (location, id) build_fact wrote.
    async fn facts(&self) -> BTreeMap<String, Vec<(String, u64)>> {
        let mut out = BTreeMap::new();
        for date in DATES {
            let uri = ObjectUri::new(self.config.buckets.staging.clone(), format!("fact/dt={date}/part-0.json"));
            let body = self.store.get_bytes(&uri).await.unwrap();
            out.insert(date.to_string(), serde_json::from_slice(&body).unwrap());
        }
        out
    }
}

fn no_signal() -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
    std::mem::forget(tx); // never fires
    rx
}

/// The first date's classify/parse steps end only once the second date's first step was
/// submitted; the others' at once. A barrier, not a count of polls: under load, the second
/// date's ingest can take longer than any number of the first date's fake-clock polls.
fn slow_first_date() -> Vec<(&'static str, &'static str, Behaviour)> {
    vec![
        ("2021-01-01", "classify_reviews", Behaviour::CompleteAfterSubmitted("2021-01-02", "classify_reviews")),
        ("2021-01-01", "parse_logs", Behaviour::CompleteAfterSubmitted("2021-01-02", "classify_reviews")),
    ]
}

fn dims_order(runner: &FakeRunner) -> Vec<String> {
    runner.submitted().iter().filter(|n| n.ends_with(" build_dimensions")).map(|n| n[..10].to_string()).collect()
}

#[tokio::test]
async fn parallel_backfill_gives_the_ids_and_fact_rows_of_one_by_one_runs_in_date_order() {
    let reference = World::new().await;
    reference.one_by_one().await;
    let expected = reference.facts().await;
    // The data really has new members on later dates (otherwise order could not matter).
    assert_eq!(expected["2021-01-03"], vec![("Utah".into(), 6), ("Alaska".into(), 3), ("Kansas".into(), 5)]);

    let world = World::new().await;
    let runner = world.runner(&slow_first_date());
    let (outcomes, provider) = world.backfill(&runner, 2, true, no_signal()).await;
    let states: Vec<DateState> = outcomes.iter().map(|o| o.state).collect();
    assert_eq!(states, vec![DateState::Succeeded; 3], "{outcomes:?}");
    assert_eq!(worst_exit_code(outcomes.iter().map(|o| o.exit_code)), ExitCode::Success);
    assert_eq!(outcomes.iter().map(|o| o.rows).collect::<Vec<_>>(), vec![Some(2), Some(3), Some(3)]);
    assert_eq!(world.facts().await, expected);
    assert_eq!(dims_order(&runner), DATES.to_vec(), "build_dimensions in date order");
    // The dates ran concurrently: the second date's classify/parse were submitted before the
    // first date's build_dimensions.
    let submitted = runner.submitted();
    let pos = |suffix: &str| submitted.iter().position(|n| n.starts_with(suffix)).unwrap();
    assert!(pos("2021-01-02") < submitted.iter().position(|n| n.ends_with(" build_dimensions")).unwrap());
    assert!(pos("2021-01-02") < pos("2021-01-01") + 4, "{submitted:?}");
    // One runner for the whole backfill, terminated once, at the end, by the backfill.
    assert_eq!(provider.provided.load(Ordering::SeqCst), 1);
    assert_eq!(runner.terminated.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_the_turns_the_same_schedule_gives_other_ids() {
    // The control: it shows the schedule above does race, so the test above can fail. The
    // first date's first wave completes only once the second date's build_dimensions was
    // submitted, so without the turns the second date certainly takes its ids first (a count
    // of list calls makes that only likely: the dates' pollers share the counter).
    let reference = World::new().await;
    reference.one_by_one().await;
    let world = World::new().await;
    let runner = world.runner(&[
        ("2021-01-01", "classify_reviews", Behaviour::CompleteAfterSubmitted("2021-01-02", "build_dimensions")),
        ("2021-01-01", "parse_logs", Behaviour::CompleteAfterSubmitted("2021-01-02", "build_dimensions")),
    ]);
    let (outcomes, _) = world.backfill(&runner, 2, false, no_signal()).await;
    assert!(outcomes.iter().all(|o| o.state == DateState::Succeeded), "{outcomes:?}");
    assert_ne!(dims_order(&runner), DATES.to_vec());
    assert_ne!(world.facts().await, reference.facts().await);
}

#[tokio::test]
async fn the_same_backfill_again_skips_every_date_and_submits_nothing() {
    let world = World::new().await;
    let first = world.runner(&[]);
    let (outcomes, _) = world.backfill(&first, 2, true, no_signal()).await;
    assert!(outcomes.iter().all(|o| o.state == DateState::Succeeded), "{outcomes:?}");

    let again = world.runner(&[]);
    let (outcomes, provider) = world.backfill(&again, 2, true, no_signal()).await;
    assert!(outcomes.iter().all(|o| o.state == DateState::Skipped), "{outcomes:?}");
    assert!(again.submitted().is_empty());
    assert_eq!(provider.provided.load(Ordering::SeqCst), 0, "no runner was even provided");
    // The dates start side by side: the first date's run id is that of its own first step.
    let first_date_step = first.submitted().into_iter().find(|n| n.starts_with("2021-01-01")).unwrap();
    assert_eq!(outcomes[0].run_id, Some(first_date_step[..23].to_string()));
    assert_eq!(outcomes[0].rows, Some(2));
}

#[tokio::test]
async fn a_signal_cancels_the_running_dates_starts_no_new_one_and_the_rerun_completes() {
    let world = World::new().await;
    let runner = world.runner(&[("2021-01-01", "classify_reviews", Behaviour::Hang)]);
    let (tx, rx) = watch::channel(None);
    let signal = async {
        // Once the first date's step runs (as the e2e test sees it in the JSON events).
        while runner.submitted().is_empty() {
            tokio::task::yield_now().await;
        }
        tx.send(Some("SIGTERM".into())).unwrap();
    };
    let ((outcomes, _), ()) = tokio::join!(world.backfill(&runner, 1, true, rx), signal);
    let states: Vec<DateState> = outcomes.iter().map(|o| o.state).collect();
    assert_eq!(states, vec![DateState::Cancelled, DateState::NotStarted, DateState::NotStarted], "{outcomes:?}");
    assert_eq!(worst_exit_code(outcomes.iter().map(|o| o.exit_code)), ExitCode::Cancelled);
    assert!(runner.cancelled.lock().unwrap().iter().any(|n| n.ends_with("classify_reviews")));
    assert!(outcomes[1].cause.as_deref().unwrap().contains("cancelled (SIGTERM)"), "{outcomes:?}");
    assert!(runner.submitted().iter().all(|n| n.starts_with("2021-01-01")), "no other date started");

    let rerun = world.runner(&[]);
    let (outcomes, _) = world.backfill(&rerun, 2, true, no_signal()).await;
    assert!(outcomes.iter().all(|o| o.state == DateState::Succeeded), "{outcomes:?}");
    let reference = World::new().await;
    reference.one_by_one().await;
    assert_eq!(world.facts().await, reference.facts().await);
}

#[tokio::test]
async fn a_failed_date_stops_new_dates_unless_continue_on_failure() {
    // The second date's input is unusable: the run fails in its preflight.
    for continue_on_failure in [false, true] {
        let world = World::new().await;
        let bad =
            ObjectUri::parse(&format!("s3://{}/incoming/dt=2021-01-02/log_reviews.csv", world.config.buckets.raw))
                .unwrap();
        world.store.put_bytes(&bad, Bytes::from("nonsense\n")).await.unwrap();
        let runner = world.runner(&[]);
        let counting = Arc::new(CountingProvider { runner: runner.clone(), provided: AtomicUsize::new(0) });
        let shared = SharedProvider::new(Box::new(Counting(counting)), None);
        let dates: Vec<(NaiveDate, Option<DateOutcome>)> = DATES.iter().map(|d| (d.parse().unwrap(), None)).collect();
        let options = BackfillOptions { parallel: 1, continue_on_failure };
        let events = Events::default();
        let outcomes = run_dates(dates, &options, world.clock.clone(), no_signal(), &events, |date, turns| {
            world.pipeline(date, shared.for_date(), Some(turns), no_signal())
        })
        .await;
        let states: Vec<DateState> = outcomes.iter().map(|o| o.state).collect();
        let third = if continue_on_failure { DateState::Succeeded } else { DateState::NotStarted };
        assert_eq!(states, vec![DateState::Succeeded, DateState::Failed, third], "{outcomes:?}");
        assert_eq!(outcomes[1].exit_code, ExitCode::BadInput, "{outcomes:?}");
        assert!(outcomes[1].cause.as_deref().unwrap().contains("log_reviews"), "{outcomes:?}");
        assert_eq!(worst_exit_code(outcomes.iter().map(|o| o.exit_code)), ExitCode::BadInput);
        // One event when each date started and one when it ended (none started for a date not run).
        let events = events.0.lock().unwrap().clone();
        assert_eq!(
            events.iter().filter(|(_, s)| *s == DateState::Running).count(),
            if continue_on_failure { 3 } else { 2 }
        );
    }
}
