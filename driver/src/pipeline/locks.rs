//! The run's locks while it runs: the date's lock kept alive by a heartbeat, the dimension
//! registry's lock shared by every date, and a backfill's turns.

use super::*;

impl Pipeline {
    /// How long the locks hold without a heartbeat, and how often the heartbeat beats (none:
    /// the lock holds for the whole deadline and half an hour more).
    pub(super) fn lock_timing(&self) -> (Duration, Option<Duration>) {
        match self.options.lock_heartbeat {
            Some(every) => (crate::lock::HEARTBEAT_TTL.max(every * 3), Some(every)),
            None => {
                (self.options.poll.deadline.unwrap_or(Duration::from_secs(6 * 3600)) + Duration::from_secs(1800), None)
            }
        }
    }

    /// Starts the lock's heartbeat; a heartbeat that finds the lock taken over stops the run
    /// as a signal would (its steps are cancelled).
    pub(super) fn keep_alive(&mut self, lock: RunLock, heartbeat: Option<Duration>) -> Held {
        let Some(every) = heartbeat else { return Held::Still(lock) };
        let (ttl, _) = self.lock_timing();
        let held = lock.keep_alive(Arc::clone(&self.store), Arc::clone(&self.clock), every, ttl);
        let mut lost = held.lost();
        let signals = self.shutdown.clone();
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let reason = tokio::select! {
                signal = shutdown_requested(signals) => signal,
                reason = async {
                    loop {
                        if let Some(reason) = lost.borrow().clone() {
                            return format!("lock lost: {reason}");
                        }
                        if lost.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                } => reason,
            };
            let _ = tx.send(Some(reason));
        });
        self.shutdown = rx;
        Held::Beating(held)
    }

    /// In a backfill, waits until every earlier date of it is done with build_dimensions.
    pub(super) async fn await_dimension_turn(&self) -> Result<()> {
        let Some(turns) = &self.options.turns else { return Ok(()) };
        if !turns.dimensions.is_my_turn() {
            self.progress.line("waiting for the earlier dates of the backfill to build their dimensions");
        }
        tokio::select! {
            _ = turns.dimensions.wait() => Ok(()),
            signal = shutdown_requested(self.shutdown.clone()) => {
                Err(PipelineError::Cancelled { signal, cancelled: "nothing (waiting for the earlier dates' dimensions)".into() }.into())
            }
        }
    }

    /// In a backfill, the turn of this run at the databases (held while it is kept).
    pub(super) async fn database_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let turns = self.options.turns.as_ref()?;
        Some(std::sync::Arc::clone(&turns.database).lock_owned().await)
    }

    /// The lock around the dimension registry, shared by every run date: waits (polling) while
    /// another date's build_dimensions holds it, up to the run's deadline.
    pub(super) async fn acquire_dimension_registry(&self, deadline_at: Option<Duration>) -> Result<Held> {
        let uri = ObjectUri::new(self.plan.config.buckets.staging.clone(), "_locks/dimension-registry.json");
        let (ttl, heartbeat) = match self.options.lock_heartbeat {
            Some(every) => (crate::lock::HEARTBEAT_TTL.max(every * 3), Some(every)),
            None => (Duration::from_secs(3 * 3600), None),
        };
        let request = LockRequest {
            owner: self.options.owner.clone(),
            run_id: self.plan.run_id.clone(),
            ttl,
            break_stale: self.options.break_stale_lock,
        };
        let deadline_at = deadline_at.unwrap_or(self.clock.monotonic() + Duration::from_secs(6 * 3600));
        let mut told = false;
        loop {
            match RunLock::acquire(self.store.as_ref(), &uri, &request, self.clock.as_ref()).await {
                Ok(lock) => {
                    return Ok(match heartbeat {
                        Some(every) => {
                            Held::Beating(lock.keep_alive(Arc::clone(&self.store), Arc::clone(&self.clock), every, ttl))
                        }
                        None => Held::Still(lock),
                    })
                }
                Err(crate::lock::LockError::Held { held, .. }) if self.clock.monotonic() < deadline_at => {
                    if !told {
                        self.progress
                            .line(&format!("waiting for run {} to finish building the dimensions", held.run_id));
                        told = true;
                    }
                    tokio::select! {
                        _ = self.clock.sleep(self.options.poll.interval) => {}
                        signal = shutdown_requested(self.shutdown.clone()) => {
                            return Err(PipelineError::Cancelled { signal, cancelled: "nothing (waiting for the dimension registry)".into() }.into());
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
