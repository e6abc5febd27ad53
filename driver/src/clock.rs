//! The injected clock and the backoff schedule.
//!
//! Everything that waits (the poller, the diagnosis waiting for late logs, the lock's expiry,
//! the local runner's kill grace period) goes through [`Clock`], so tests use [`FakeClock`]
//! and never sleep for real. Jitter comes from a seeded generator ([`Backoff::seeded`]) so a
//! test can predict every delay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Wall time, monotonic time and sleeping, injectable.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Wall-clock time, for timestamps people read (step start / end, lock expiry).
    fn now(&self) -> DateTime<Utc>;
    /// Time since an arbitrary fixed origin; never goes backwards. Used for deadlines.
    fn monotonic(&self) -> Duration;
    /// Waits `duration`.
    async fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { origin: std::time::Instant::now() }
    }

    /// A shareable real clock.
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

/// A clock for tests: `sleep` returns at once after moving time forward, and every sleep is
/// recorded so a test can check the backoff schedule. Public (not `cfg(test)`) because the
/// integration tests and other modules' tests use it.
#[derive(Debug, Clone)]
pub struct FakeClock {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
struct FakeState {
    wall: DateTime<Utc>,
    elapsed: Duration,
    sleeps: Vec<Duration>,
}

impl FakeClock {
    /// A fake clock whose wall time starts at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        FakeClock {
            inner: Arc::new(Mutex::new(FakeState { wall: start, elapsed: Duration::ZERO, sleeps: Vec::new() })),
        }
    }

    /// A fake clock starting at 2021-10-31T00:00:00Z.
    pub fn new() -> Self {
        FakeClock::at(DateTime::parse_from_rfc3339("2021-10-31T00:00:00Z").expect("valid date").with_timezone(&Utc))
    }

    /// Moves time forward without recording a sleep (time passing elsewhere).
    pub fn advance(&self, duration: Duration) {
        let mut state = self.inner.lock().expect("fake clock lock");
        state.elapsed += duration;
        state.wall += chrono::Duration::from_std(duration).expect("duration in range");
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.lock().expect("fake clock lock").sleeps.clone()
    }

    /// The total time slept so far.
    pub fn slept(&self) -> Duration {
        self.sleeps().iter().sum()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.lock().expect("fake clock lock").wall
    }

    fn monotonic(&self) -> Duration {
        self.inner.lock().expect("fake clock lock").elapsed
    }

    async fn sleep(&self, duration: Duration) {
        self.inner.lock().expect("fake clock lock").sleeps.push(duration);
        self.advance(duration);
        // Let other tasks run, as a real sleep would.
        tokio::task::yield_now().await;
    }
}

/// Exponential backoff with full jitter: attempt `n` (from 0) waits a uniformly random time
/// in `[0, min(max, base * 2^n)]`. Full jitter spreads retries of many clients apart, which is
/// what AWS recommends against throttling.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    rng: StdRng,
}

impl Backoff {
    /// Jitter from the operating system's entropy.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max, rng: StdRng::from_entropy() }
    }

    /// Jitter from a fixed seed: the same seed gives the same delays (tests).
    pub fn seeded(base: Duration, max: Duration, seed: u64) -> Self {
        Backoff { base, max, rng: StdRng::seed_from_u64(seed) }
    }

    /// The ceiling of attempt `attempt` before jitter: `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry `attempt` (0 for the first retry).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        let millis = ceiling.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(self.rng.gen_range(0..=millis))
    }
}

/// `1h02m`, `3m05s`, `12.4s`: the one way the driver writes a duration (progress lines, run
/// summaries, the backfill table).
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fake_clock_sleeps_instantly_and_records() {
        let clock = FakeClock::new();
        let start = clock.now();
        clock.sleep(Duration::from_secs(15)).await;
        clock.sleep(Duration::from_secs(30)).await;
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(15), Duration::from_secs(30)]);
        assert_eq!(clock.monotonic(), Duration::from_secs(45));
        assert_eq!(clock.now() - start, chrono::Duration::seconds(45));
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.monotonic(), Duration::from_secs(50));
        assert_eq!(clock.slept(), Duration::from_secs(45));
    }

    #[test]
    fn backoff_ceiling_doubles_then_caps() {
        let backoff = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(20), 7);
        let ceilings: Vec<u64> = (0..7).map(|a| backoff.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 20, 20]);
        assert_eq!(backoff.ceiling(1000), Duration::from_secs(20));
    }

    #[test]
    fn backoff_delays_stay_under_the_ceiling_and_repeat_with_the_seed() {
        let mut a = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(20), 42);
        let mut b = Backoff::seeded(Duration::from_secs(1), Duration::from_secs(20), 42);
        for attempt in 0..10 {
            let delay = a.delay(attempt);
            assert!(delay <= a.ceiling(attempt), "attempt {attempt}: {delay:?}");
            assert_eq!(delay, b.delay(attempt));
        }
    }
}
