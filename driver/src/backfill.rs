//! `backfill`: a range of run dates in one command, each date an ordinary [`Pipeline::run`]
//! (its own lock, run id, manifest and warehouse transaction), up to `--parallel N` at once.
//!
//! What is shared between the dates, and why:
//!
//! * **One runner.** [`SharedProvider`] provides the runner (EMR cluster, local Spark) once for
//!   the whole backfill; the dates' runs cannot terminate it ([`SharedRunner`]); the backfill
//!   terminates it at the end ([`SharedProvider::finish`]).
//! * **Dimension ids in date order.** New dimension ids are handed out by build_dimensions
//!   over every earlier snapshot, so the order in which dates run that step decides the ids.
//!   [`DimensionTurns`] makes the build_dimensions wave of date `i` wait until every earlier
//!   date of the backfill has passed it (done, failed, skipped, or never reaching it): the ids
//!   are exactly those of one-by-one runs in date order, whatever `N`. The classify/parse
//!   waves of the dates still run concurrently.
//! * **Database work one date at a time.** The user_purchase load / export (one table,
//!   truncated and reloaded per run) and the warehouse load of the dates take turns
//!   ([`RunTurns::database`]): a date never exports another date's purchases, and two
//!   warehouse transactions never race on creating the tables.
//!
//! The rest of this module is pure: the date range, which dates to start, the exit code of
//! the whole, the estimate of the time left, the summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::{watch, Mutex, OnceCell};

use crate::clock::format_duration;
use crate::clock::Clock;
use crate::error::{ExitCode, ExitStatus, Result};
use crate::manifest::{ClusterRef, RunManifest};
use crate::pipeline::{Pipeline, ProvidedRunner, RunnerProvider};
use crate::plan::{parse_run_date, Plan, PlanError};
use crate::runner::{CancelOutcome, RunnerError, StepRunner, Termination};
use crate::step::{StepConfig, StepStatus};
use crate::store::ObjectUri;

/// A backfill longer than this is refused (ten years of nights): a typo in a year should not
/// start thousands of runs.
pub const MAX_DATES: usize = 3660;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("bad backfill date: {0}")]
    BadDate(#[from] PlanError),
    #[error("--from {from} is after --to {to}: give the earlier date first")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("--from {from} --to {to} is {days} dates, more than {max}: split the backfill into smaller ranges")]
    TooLong { from: NaiveDate, to: NaiveDate, days: usize, max: usize },
    #[error("--parallel must be at least 1")]
    BadParallel,
    #[error(
        "{} date(s) have no dt=YYYY-MM-DD folder in {dir}: {}; add them, narrow --from/--to, or give --continue-on-failure to run the other dates",
        dates.len(), dates.join(", ")
    )]
    MissingRawDirs { dir: String, dates: Vec<String> },
}

impl ExitStatus for BackfillError {
    fn exit_code(&self) -> ExitCode {
        match self {
            BackfillError::BadDate(e) => e.exit_code(),
            _ => ExitCode::BadInput,
        }
    }
}

/// Every date from `from` to `to`, both included, in order.
pub fn date_range(from: &str, to: &str) -> Result<Vec<NaiveDate>, BackfillError> {
    let from = parse_run_date(from)?;
    let to = parse_run_date(to)?;
    if from > to {
        return Err(BackfillError::Reversed { from, to });
    }
    let days = (to - from).num_days() as usize + 1;
    if days > MAX_DATES {
        return Err(BackfillError::TooLong { from, to, days, max: MAX_DATES });
    }
    Ok(from.iter_days().take(days).collect())
}

/// `dt=YYYY-MM-DD`: the folder of a date under `--raw-dir`.
pub fn raw_dir_name(date: NaiveDate) -> String {
    format!("dt={}", date.format("%Y-%m-%d"))
}

/// Where a date of the backfill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateState {
    Pending,
    Running,
    /// Ran to the end now.
    Succeeded,
    /// An earlier run of the same inputs, code and configuration succeeded: not run again.
    Skipped,
    Failed,
    Cancelled,
    TimedOut,
    /// The backfill stopped (a signal, or a failure without --continue-on-failure) first.
    NotStarted,
}

impl DateState {
    pub fn as_str(self) -> &'static str {
        match self {
            DateState::Pending => "pending",
            DateState::Running => "running",
            DateState::Succeeded => "succeeded",
            DateState::Skipped => "skipped",
            DateState::Failed => "failed",
            DateState::Cancelled => "cancelled",
            DateState::TimedOut => "timed_out",
            DateState::NotStarted => "not_started",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, DateState::Pending | DateState::Running)
    }

    fn from_exit_code(code: ExitCode) -> DateState {
        match code {
            ExitCode::Success => DateState::Succeeded,
            ExitCode::Cancelled => DateState::Cancelled,
            ExitCode::TimedOut => DateState::TimedOut,
            _ => DateState::Failed,
        }
    }
}

/// The indices of the dates to start now: the earliest pending ones (dates are in date
/// order), while fewer than `parallel` run; none once the backfill is stopping. Starting in
/// date order is what keeps [`DimensionTurns`] free of deadlock: a date only ever waits for
/// earlier dates, which have all started.
pub fn to_start(states: &[DateState], parallel: usize, stopping: bool) -> Vec<usize> {
    if stopping {
        return Vec::new();
    }
    let running = states.iter().filter(|s| **s == DateState::Running).count();
    let free = parallel.max(1).saturating_sub(running);
    states.iter().enumerate().filter(|(_, s)| **s == DateState::Pending).map(|(i, _)| i).take(free).collect()
}

/// How bad an exit code is, for "the worst of the dates'": from "nothing to do", through
/// "run the same command again" (another run holds the date, cancelled, timed out), to
/// "something must be fixed first" (a step failed, bad input, the database, AWS), to "a bug".
///
/// 0 success < 8 lock held < 4 cancelled < 5 timed out < 3 step failed (11 / 12, which a run
/// never returns, rank with it) < 10 cluster failed < 6 bad input < 9 database < 7 AWS
/// < 2 usage < 1 internal.
pub fn severity(code: ExitCode) -> u8 {
    match code {
        ExitCode::Success => 0,
        ExitCode::LockHeld => 1,
        ExitCode::Cancelled => 2,
        ExitCode::TimedOut => 3,
        ExitCode::StepFailed | ExitCode::Stale | ExitCode::RunFailed => 4,
        ExitCode::ClusterFailed => 5,
        ExitCode::BadInput => 6,
        ExitCode::Database => 7,
        ExitCode::Aws => 8,
        ExitCode::Usage => 9,
        ExitCode::Internal => 10,
    }
}

/// The exit code of the backfill: the worst ([`severity`]) of the dates', success when empty.
pub fn worst_exit_code(codes: impl IntoIterator<Item = ExitCode>) -> ExitCode {
    codes.into_iter().max_by_key(|c| severity(*c)).unwrap_or(ExitCode::Success)
}

/// The time left: the mean time of the dates run so far (skipped ones excluded: they say
/// nothing about the cost of a run) times the work left (the rest of each running date, each
/// pending date), spread over the `parallel` slots. `None` until one date has run.
pub fn estimate_left(
    run_times: &[Duration],
    running_elapsed: &[Duration],
    pending: usize,
    parallel: usize,
) -> Option<Duration> {
    if running_elapsed.is_empty() && pending == 0 {
        return Some(Duration::ZERO);
    }
    if run_times.is_empty() {
        return None;
    }
    let mean = run_times.iter().sum::<Duration>() / run_times.len() as u32;
    let rest_of_running: Duration = running_elapsed.iter().map(|e| mean.saturating_sub(*e)).sum();
    let work = rest_of_running + mean * pending as u32;
    let slots = parallel.max(1).min(running_elapsed.len() + pending).max(1);
    Some(work / slots as u32)
}

/// What became of one date.
#[derive(Debug, Clone, Serialize)]
pub struct DateOutcome {
    pub date: NaiveDate,
    pub state: DateState,
    pub run_id: Option<String>,
    /// Fact rows the run built (from build_fact's metrics).
    pub rows: Option<u64>,
    #[serde(rename = "seconds", serialize_with = "seconds")]
    pub elapsed: Option<Duration>,
    #[serde(serialize_with = "code_number")]
    pub exit_code: ExitCode,
    pub cause: Option<String>,
}

fn code_number<S: serde::Serializer>(code: &ExitCode, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u8(code.code())
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&((d.as_secs_f64() * 10.0).round() / 10.0)),
        None => s.serialize_none(),
    }
}

impl DateOutcome {
    pub fn new(date: NaiveDate, state: DateState) -> Self {
        DateOutcome { date, state, run_id: None, rows: None, elapsed: None, exit_code: ExitCode::Success, cause: None }
    }

    fn failed(date: NaiveDate, code: ExitCode, cause: String) -> Self {
        DateOutcome { exit_code: code, cause: Some(cause), ..DateOutcome::new(date, DateState::from_exit_code(code)) }
    }

    /// From the run's manifest and how it ended.
    pub fn from_run(date: NaiveDate, manifest: &RunManifest, result: &Result<()>, elapsed: Duration) -> Self {
        let exit_code = result.as_ref().err().map_or(ExitCode::Success, |e| e.exit_code());
        DateOutcome {
            date,
            state: DateState::from_exit_code(exit_code),
            run_id: Some(manifest.run_id.clone()),
            rows: fact_rows(manifest),
            elapsed: Some(elapsed),
            exit_code,
            cause: result.as_ref().err().map(|e| e.chain().join(": ")),
        }
    }
}

/// The fact rows of a run, as build_fact reported them.
pub fn fact_rows(manifest: &RunManifest) -> Option<u64> {
    let step = manifest.steps.iter().find(|s| s.key == "build_fact")?;
    step.metrics.as_ref()?.get("outputs")?.get("fact_movie_analytics")?.as_u64()
}

/// Counts for the progress line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub total: usize,
    pub done: usize,
    pub skipped: usize,
    pub running: usize,
    pub failed: usize,
    pub pending: usize,
}

pub fn tally(states: &[DateState]) -> Tally {
    let mut t = Tally { total: states.len(), ..Tally::default() };
    for s in states {
        match s {
            DateState::Succeeded => t.done += 1,
            DateState::Skipped => {
                t.done += 1;
                t.skipped += 1
            }
            DateState::Running => t.running += 1,
            DateState::Pending => t.pending += 1,
            _ => t.failed += 1,
        }
    }
    t
}

/// `backfill: 3/7 done (1 skipped), 2 running, 0 failed; elapsed 4m10s, about 5m00s left`.
pub fn progress_line(t: &Tally, elapsed: Duration, left: Option<Duration>) -> String {
    let skipped = if t.skipped > 0 { format!(" ({} skipped)", t.skipped) } else { String::new() };
    let left = match left {
        Some(d) => format!("about {} left", format_duration(d)),
        None => "time left unknown until a date has run".to_string(),
    };
    format!(
        "backfill: {}/{} done{skipped}, {} running, {} failed; elapsed {}, {left}",
        t.done,
        t.total,
        t.running,
        t.failed,
        format_duration(elapsed)
    )
}

/// The table printed at the end: date, state, run id, rows, time, cause of failure.
pub fn summary_table(outcomes: &[DateOutcome], exit_code: ExitCode) -> String {
    let header = ["date", "state", "run id", "rows", "time", "cause"];
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .map(|o| {
            [
                o.date.to_string(),
                o.state.as_str().to_string(),
                o.run_id.clone().unwrap_or_else(|| "-".into()),
                o.rows.map_or_else(|| "-".into(), |r| r.to_string()),
                o.elapsed.map_or_else(|| "-".into(), format_duration),
                o.cause.as_deref().map_or_else(|| "".into(), |c| first_line(c, 100)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let t = tally(&outcomes.iter().map(|o| o.state).collect::<Vec<_>>());
    let _ = writeln!(
        out,
        "backfill: {} date(s): {} succeeded, {} skipped, {} not succeeded; exit code {}",
        t.total,
        t.done - t.skipped,
        t.skipped,
        t.total - t.done,
        exit_code.code()
    );
    out
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > max {
        format!("{}...", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

// --- turns ---------------------------------------------------------------------------------

/// The build_dimensions turns of a backfill's dates (index = position in date order).
pub struct DimensionTurns {
    passed: Arc<watch::Sender<Vec<bool>>>,
}

impl DimensionTurns {
    pub fn new(dates: usize) -> Self {
        DimensionTurns { passed: Arc::new(watch::Sender::new(vec![false; dates])) }
    }

    /// The turn of date `index`: passed when [`DimensionTurn::pass`] is called or the turn is
    /// dropped (the run ended, whichever way), so a date that fails early never blocks the
    /// later ones.
    pub fn turn(&self, index: usize) -> DimensionTurn {
        DimensionTurn { index, passed: Arc::clone(&self.passed) }
    }
}

/// One date's turn at building the dimensions.
pub struct DimensionTurn {
    index: usize,
    passed: Arc<watch::Sender<Vec<bool>>>,
}

impl std::fmt::Debug for DimensionTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DimensionTurn({})", self.index)
    }
}

impl DimensionTurn {
    /// Resolves when every earlier date has passed its turn.
    pub async fn wait(&self) {
        let mut rx = self.passed.subscribe();
        let index = self.index;
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = rx.wait_for(|passed| passed[..index].iter().all(|p| *p)).await;
    }

    /// This date is done with the dimensions (built them, or never will in this run).
    pub fn pass(&self) {
        let index = self.index;
        self.passed.send_modify(|passed| passed[index] = true);
    }

    /// True when every earlier date has passed (for tests and progress lines).
    pub fn is_my_turn(&self) -> bool {
        self.passed.borrow()[..self.index].iter().all(|p| *p)
    }
}

impl Drop for DimensionTurn {
    fn drop(&mut self) {
        self.pass();
    }
}

/// What a run of a backfill shares with the other dates' runs (`RunOptions::turns`).
#[derive(Debug, Clone)]
pub struct RunTurns {
    /// Awaited before the build_dimensions wave, passed after it.
    pub dimensions: Arc<DimensionTurn>,
    /// Held while the run loads / exports user_purchase with a database and while it loads
    /// the warehouse.
    pub database: Arc<Mutex<()>>,
}

// --- one runner for the whole backfill ------------------------------------------------------

/// Provides the runner once, for the first date that asks, and the same one to every other
/// date. The dates' runs get a [`SharedRunner`], which never terminates the cluster; call
/// [`SharedProvider::finish`] at the end.
pub struct SharedProvider {
    inner: Box<dyn RunnerProvider>,
    provided: OnceCell<(Arc<dyn StepRunner>, &'static str, Option<ClusterRef>)>,
    /// The vendor records of every date of the range (None: a date's are not known), which
    /// a local runner sizes its JVM's JIT by.
    records: Option<u64>,
}

impl SharedProvider {
    pub fn new(inner: Box<dyn RunnerProvider>, records: Option<u64>) -> Arc<Self> {
        Arc::new(SharedProvider { inner, provided: OnceCell::new(), records })
    }

    /// A provider for one date's run.
    pub fn for_date(self: &Arc<Self>) -> Box<dyn RunnerProvider> {
        Box::new(ShareOf(Arc::clone(self)))
    }

    /// The runner, if a date asked for one.
    pub fn runner(&self) -> Option<Arc<dyn StepRunner>> {
        self.provided.get().map(|(runner, _, _)| Arc::clone(runner))
    }

    /// Terminates the cluster if it was created for this backfill (unless `keep`); returns a
    /// line for people, if anything was done.
    pub async fn finish(&self, keep: bool) -> Option<String> {
        let runner = self.runner()?;
        if keep {
            return Some(format!("{} left running (--keep-cluster)", runner.describe()));
        }
        let said = match runner.terminate_if_created().await {
            Ok(Termination::Terminated) => {
                Some(format!("terminating {} (created by this backfill)", runner.describe()))
            }
            Ok(_) => None,
            Err(e) => Some(format!("warning: could not terminate {}: {e}", runner.describe())),
        };
        runner.wait_terminated().await;
        said
    }
}

struct ShareOf(Arc<SharedProvider>);

#[async_trait]
impl RunnerProvider for ShareOf {
    /// The runner serves every date of the range: it is sized for all of them, not for the
    /// date that happens to start first.
    async fn warm_up(&self, plan: &Plan, _records: Option<u64>) {
        if self.0.provided.get().is_none() {
            self.0.inner.warm_up(plan, self.0.records).await;
        }
    }

    async fn provide(&self, plan: &Plan) -> Result<ProvidedRunner> {
        let shared = &self.0;
        let (runner, kind, cluster) = shared
            .provided
            .get_or_try_init(|| async {
                let p = shared.inner.provide(plan).await?;
                Ok::<_, crate::error::Error>((p.runner, p.kind, p.cluster))
            })
            .await?;
        Ok(ProvidedRunner {
            runner: Arc::new(SharedRunner(Arc::clone(runner))),
            kind,
            cluster: cluster.clone().map(|c| ClusterRef { created_by_run: false, ..c }),
        })
    }
}

/// A runner shared by the dates of a backfill: everything but termination goes through.
pub struct SharedRunner(pub Arc<dyn StepRunner>);

#[async_trait]
impl StepRunner for SharedRunner {
    fn describe(&self) -> String {
        format!("{} (shared by the backfill)", self.0.describe())
    }
    async fn submit(&self, steps: &[StepConfig]) -> Result<Vec<String>, RunnerError> {
        self.0.submit(steps).await
    }
    async fn list_steps(&self, ids: &[String]) -> Result<Vec<StepStatus>, RunnerError> {
        self.0.list_steps(ids).await
    }
    async fn cancel(&self, ids: &[String]) -> Result<Vec<CancelOutcome>, RunnerError> {
        self.0.cancel(ids).await
    }
    fn log_prefix(&self, step_id: &str) -> Option<ObjectUri> {
        self.0.log_prefix(step_id)
    }
    fn cluster_log_prefix(&self) -> Option<ObjectUri> {
        self.0.cluster_log_prefix()
    }
    /// The backfill terminates the runner once, at the end.
    async fn terminate_if_created(&self) -> Result<Termination, RunnerError> {
        Ok(Termination::NotApplicable)
    }
}

// --- the orchestration ----------------------------------------------------------------------

/// Told about every change, for people and machines.
pub trait BackfillObserver: Send + Sync {
    /// A date started, or ended (`outcome.state` is final).
    fn date_changed(&self, outcome: &DateOutcome, tally: &Tally);
    /// After every change: the counts, the time so far and the estimate of the time left.
    fn progress(&self, _tally: &Tally, _elapsed: Duration, _left: Option<Duration>) {}
}

pub struct BackfillOptions {
    pub parallel: usize,
    pub continue_on_failure: bool,
}

/// Runs the dates of `dates` (in date order; a date whose outcome is already given, e.g. a
/// missing raw folder, is not run) through `make`, which builds each date's pipeline with the
/// turns it is given. A date whose run with the same inputs, code and configuration already
/// succeeded is skipped (see [`Pipeline::succeeded_before`]). Stops starting dates on a
/// signal, and after a failure unless `continue_on_failure`; the dates not started then are
/// `not_started`. Returns one outcome per date, in date order.
pub async fn run_dates<F>(
    dates: Vec<(NaiveDate, Option<DateOutcome>)>,
    options: &BackfillOptions,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<Option<String>>,
    observer: &dyn BackfillObserver,
    mut make: F,
) -> Vec<DateOutcome>
where
    F: FnMut(NaiveDate, RunTurns) -> Pipeline,
{
    let started_at = clock.monotonic();
    let turns = DimensionTurns::new(dates.len());
    let database = Arc::new(Mutex::new(()));
    let mut states: Vec<DateState> =
        dates.iter().map(|(_, o)| o.as_ref().map_or(DateState::Pending, |o| o.state)).collect();
    let mut outcomes: BTreeMap<usize, DateOutcome> = BTreeMap::new();
    for (i, (_, given)) in dates.iter().enumerate() {
        if let Some(given) = given {
            turns.turn(i).pass();
            outcomes.insert(i, given.clone());
        }
    }
    let mut date_started: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut run_times: Vec<Duration> = Vec::new();
    let mut stop: Option<String> = None;
    let mut signals_open = true;
    let mut running = FuturesUnordered::new();
    let report = |states: &[DateState], date_started: &BTreeMap<usize, Duration>, run_times: &[Duration]| {
        let t = tally(states);
        let now = clock.monotonic();
        let elapsed: Vec<Duration> = date_started.values().map(|s| now.saturating_sub(*s)).collect();
        observer.progress(
            &t,
            now.saturating_sub(started_at),
            estimate_left(run_times, &elapsed, t.pending, options.parallel),
        );
        t
    };
    loop {
        if stop.is_none() {
            if let Some(signal) = shutdown.borrow().clone() {
                stop = Some(format!("the backfill was cancelled ({signal})"));
            }
        }
        for i in to_start(&states, options.parallel, stop.is_some()) {
            let date = dates[i].0;
            states[i] = DateState::Running;
            date_started.insert(i, clock.monotonic());
            let t = tally(&states);
            observer.date_changed(&DateOutcome::new(date, DateState::Running), &t);
            let pipeline =
                make(date, RunTurns { dimensions: Arc::new(turns.turn(i)), database: Arc::clone(&database) });
            let clock = Arc::clone(&clock);
            running.push(async move { (i, run_one(date, pipeline, clock).await) });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, outcome)) = running.next() => {
                states[i] = outcome.state;
                if let Some(start) = date_started.remove(&i) {
                    if outcome.state != DateState::Skipped {
                        run_times.push(clock.monotonic().saturating_sub(start));
                    }
                }
                let failed = !matches!(outcome.state, DateState::Succeeded | DateState::Skipped);
                if failed && !options.continue_on_failure && stop.is_none() {
                    stop = Some(format!("{} did not succeed (--continue-on-failure runs the other dates)", outcome.date));
                }
                let t = tally(&states);
                observer.date_changed(&outcome, &t);
                outcomes.insert(i, outcome);
                report(&states, &date_started, &run_times);
            }
            changed = shutdown.changed(), if signals_open && stop.is_none() => {
                if changed.is_err() {
                    signals_open = false;
                }
            }
        }
    }
    let cause = stop.unwrap_or_default();
    let code = if shutdown.borrow().is_some() { ExitCode::Cancelled } else { ExitCode::Success };
    for (i, state) in states.iter_mut().enumerate() {
        if *state == DateState::Pending {
            *state = DateState::NotStarted;
            let outcome = DateOutcome {
                exit_code: code,
                cause: Some(format!("not started: {cause}")),
                ..DateOutcome::new(dates[i].0, DateState::NotStarted)
            };
            observer.date_changed(&outcome, &tally(&[]));
            outcomes.insert(i, outcome);
        }
    }
    outcomes.into_values().collect()
}

/// One date: skipped when its run already succeeded, else run.
async fn run_one(date: NaiveDate, mut pipeline: Pipeline, clock: Arc<dyn Clock>) -> DateOutcome {
    let started = clock.monotonic();
    match pipeline.succeeded_before().await {
        Ok(Some(manifest)) => DateOutcome {
            run_id: Some(manifest.run_id.clone()),
            rows: fact_rows(&manifest),
            elapsed: Some(clock.monotonic().saturating_sub(started)),
            cause: None,
            ..DateOutcome::new(date, DateState::Skipped)
        },
        Ok(None) => {
            let (manifest, result) = pipeline.run().await;
            DateOutcome::from_run(date, &manifest, &result, clock.monotonic().saturating_sub(started))
        }
        Err(e) => DateOutcome::failed(date, e.exit_code(), e.chain().join(": ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_range_is_every_date_from_the_first_to_the_last_included() {
        let dates = date_range("2021-02-27", "2021-03-02").unwrap();
        assert_eq!(dates, vec![d("2021-02-27"), d("2021-02-28"), d("2021-03-01"), d("2021-03-02")]);
        assert_eq!(date_range("2020-02-28", "2020-03-01").unwrap().len(), 3, "2020 is a leap year");
        assert_eq!(date_range("2021-10-31", "2021-10-31").unwrap(), vec![d("2021-10-31")]);
    }

    #[test]
    fn a_bad_range_is_refused_with_what_to_fix() {
        let e = date_range("2021-03-02", "2021-03-01").unwrap_err();
        assert!(e.to_string().contains("--from 2021-03-02 is after --to 2021-03-01"), "{e}");
        assert_eq!(e.exit_code(), ExitCode::BadInput);
        assert!(matches!(date_range("2021-02-30", "2021-03-01"), Err(BackfillError::BadDate(_))));
        assert!(matches!(date_range("2021-3-1", "2021-03-01"), Err(BackfillError::BadDate(_))));
        let e = date_range("2001-01-01", "2021-01-01").unwrap_err();
        assert!(matches!(e, BackfillError::TooLong { days: 7306, .. }), "{e}");
        assert!(e.to_string().contains("split the backfill"), "{e}");
        assert_eq!(date_range("2011-01-01", "2021-01-07").unwrap().len(), MAX_DATES);
        assert!(matches!(date_range("2011-01-01", "2021-01-08"), Err(BackfillError::TooLong { days: 3661, .. })));
    }

    #[test]
    fn dates_start_earliest_first_up_to_the_parallelism() {
        use DateState::*;
        assert_eq!(to_start(&[Pending, Pending, Pending], 2, false), vec![0, 1]);
        assert_eq!(to_start(&[Running, Pending, Pending], 2, false), vec![1]);
        assert_eq!(to_start(&[Succeeded, Running, Running, Pending], 2, false), Vec::<usize>::new());
        assert_eq!(to_start(&[Succeeded, Failed, Running, Pending, Pending], 2, false), vec![3]);
        assert_eq!(to_start(&[Skipped, Pending, Pending], 1, false), vec![1]);
        assert_eq!(to_start(&[Pending, Pending], 0, false), vec![0], "parallel 0 still runs one date");
        assert_eq!(to_start(&[Pending, Pending], 4, true), Vec::<usize>::new(), "nothing new once stopping");
        // Dates already decided (a missing raw folder) are passed over.
        assert_eq!(to_start(&[Failed, Pending, Pending], 1, false), vec![1]);
    }

    #[test]
    fn the_exit_code_is_the_worst_of_the_dates() {
        use ExitCode::*;
        assert_eq!(worst_exit_code([]), Success);
        assert_eq!(worst_exit_code([Success, Success]), Success);
        assert_eq!(worst_exit_code([Success, LockHeld]), LockHeld);
        assert_eq!(worst_exit_code([LockHeld, Cancelled, Success]), Cancelled);
        assert_eq!(worst_exit_code([Cancelled, TimedOut]), TimedOut);
        assert_eq!(worst_exit_code([Cancelled, StepFailed, TimedOut]), StepFailed);
        assert_eq!(worst_exit_code([StepFailed, BadInput]), BadInput);
        assert_eq!(worst_exit_code([BadInput, Database, StepFailed]), Database);
        assert_eq!(worst_exit_code([Aws, Database]), Aws);
        assert_eq!(worst_exit_code([Aws, Internal, Success]), Internal);
        // Every code has its own rank.
        let all = [Success, Internal, Usage, StepFailed, Cancelled, TimedOut, BadInput, Aws, LockHeld, Database];
        let mut ranks: Vec<u8> = all.iter().map(|c| severity(*c)).collect();
        ranks.sort();
        ranks.dedup();
        assert_eq!(ranks.len(), all.len());
    }

    #[test]
    fn the_estimate_spreads_the_work_left_over_the_slots() {
        let m = Duration::from_secs;
        assert_eq!(estimate_left(&[], &[m(5)], 3, 2), None, "nothing ran yet");
        assert_eq!(estimate_left(&[], &[], 0, 2), Some(Duration::ZERO), "nothing left");
        // Mean 60 s; 4 pending on 1 slot.
        assert_eq!(estimate_left(&[m(50), m(70)], &[], 4, 1), Some(m(240)));
        // Mean 60 s; one running for 20 s (40 s left) + 3 pending = 220 s over 2 slots.
        assert_eq!(estimate_left(&[m(60)], &[m(20)], 3, 2), Some(m(110)));
        // A running date past the mean counts as about to end; fewer dates than slots use fewer slots.
        assert_eq!(estimate_left(&[m(60)], &[m(90)], 1, 4), Some(m(30)));
    }

    #[test]
    fn progress_and_summary_say_what_happened() {
        use DateState::*;
        let t = tally(&[Succeeded, Skipped, Running, Failed, Pending]);
        assert_eq!(t, Tally { total: 5, done: 2, skipped: 1, running: 1, failed: 1, pending: 1 });
        let line = progress_line(&t, Duration::from_secs(250), Some(Duration::from_secs(300)));
        assert_eq!(line, "backfill: 2/5 done (1 skipped), 1 running, 1 failed; elapsed 4m10s, about 5m00s left");
        assert!(progress_line(&t, Duration::ZERO, None).ends_with("time left unknown until a date has run"));

        let outcomes = vec![
            DateOutcome {
                run_id: Some("2021-01-01-aaaaaaaaaaaa".into()),
                rows: Some(120),
                elapsed: Some(Duration::from_secs(65)),
                ..DateOutcome::new(d("2021-01-01"), Succeeded)
            },
            DateOutcome::failed(d("2021-01-02"), ExitCode::StepFailed, "step parse_logs FAILED: boom\ndetail".into()),
            DateOutcome { cause: Some("not started: x".into()), ..DateOutcome::new(d("2021-01-03"), NotStarted) },
        ];
        let table = summary_table(&outcomes, ExitCode::StepFailed);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "date        state        run id                   rows  time   cause");
        assert_eq!(lines[1], "2021-01-01  succeeded    2021-01-01-aaaaaaaaaaaa  120   1m05s");
        assert_eq!(
            lines[2],
            "2021-01-02  failed       -                        -     -      step parse_logs FAILED: boom"
        );
        assert_eq!(lines[3], "2021-01-03  not_started  -                        -     -      not started: x");
        assert_eq!(lines[4], "backfill: 3 date(s): 1 succeeded, 0 skipped, 2 not succeeded; exit code 3");
    }

    #[tokio::test]
    async fn a_date_gets_its_dimension_turn_after_every_earlier_date_passed() {
        let turns = DimensionTurns::new(3);
        let (first, second, third) = (turns.turn(0), turns.turn(1), turns.turn(2));
        assert!(first.is_my_turn());
        assert!(!second.is_my_turn() && !third.is_my_turn());
        // The third date passing early (it failed before its build_dimensions) opens nothing.
        drop(third);
        assert!(!second.is_my_turn());
        let waiter = tokio::spawn(async move {
            second.wait().await;
            second
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        first.pass();
        let second = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(second.is_my_turn());
        // A later date waits for every earlier one, the skipped third included.
        let fourth_of_four = DimensionTurns::new(4);
        let late = fourth_of_four.turn(3);
        fourth_of_four.turn(0).pass();
        fourth_of_four.turn(1).pass();
        assert!(!late.is_my_turn());
        drop(fourth_of_four.turn(2));
        assert!(late.is_my_turn());
    }
}
