//! What the steps wrote: recorded with write ids when a step completes, reused by a rerun of
//! the same run id while the store still holds exactly that, published in the date's pointer,
//! and the date's other runs' folders removed after the load (crate::publish).

use super::*;

/// Whether an earlier attempt's step can be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    /// Recorded COMPLETED, and its outputs are exactly what it recorded.
    Yes,
    /// Recorded COMPLETED, but its outputs changed or were never recorded: run it again.
    Redo,
    /// Not recorded as completed.
    No,
}

impl Pipeline {
    pub(super) fn completed_before(&self, previous: &Option<RunManifest>, key: &str) -> bool {
        !self.options.force
            && previous
                .as_ref()
                .and_then(|m| m.steps.iter().find(|s| s.key == key))
                .is_some_and(|s| s.state == RecordState::Completed)
    }

    /// Whether step `key` is done: the earlier attempt of this run id recorded it COMPLETED
    /// (and not `force`) and the store still holds exactly the outputs it recorded. A step
    /// whose outputs were removed or rewritten since is run again, and so is one recorded
    /// without outputs (a manifest from before the outputs were recorded).
    ///
    /// A step one of whose inputs was written again in this attempt runs again too: its output
    /// was built from a write that is gone.
    pub(super) async fn done_before(
        &self,
        previous: &Option<RunManifest>,
        manifest: &RunManifest,
        key: &str,
    ) -> Result<Done> {
        if !self.completed_before(previous, key) {
            return Ok(Done::No);
        }
        // What it waits for, and the driver's work it reads (build_fact: the user_purchase export).
        for dep in steps::upstream(key) {
            if manifest.steps.iter().any(|s| s.key == dep && !s.reused) {
                self.progress.line(&format!("{key}: {dep} was written again in this attempt; running {key} again"));
                return Ok(Done::Redo);
            }
        }
        let recorded =
            previous.as_ref().and_then(|m| m.steps.iter().find(|s| s.key == key)).and_then(|s| s.outputs.clone());
        let Some(recorded) = recorded else {
            self.progress.line(&format!("{key}: the earlier attempt recorded no outputs for it; running it again"));
            return Ok(Done::Redo);
        };
        match crate::publish::differs(self.store.as_ref(), &recorded).await? {
            None => Ok(Done::Yes),
            Some(why) => {
                self.progress.line(&format!("{key}: completed by an earlier attempt, but {why}; running it again"));
                Ok(Done::Redo)
            }
        }
    }

    /// Records the outputs of step `key`, which just completed, with their write ids.
    pub(super) async fn record_outputs(&self, manifest: &mut RunManifest, key: &str) -> Result<()> {
        let outputs = crate::publish::record(self.store.as_ref(), &self.plan.uris, key).await?;
        manifest.step_mut(key).expect("every step is in the manifest").outputs = Some(outputs);
        Ok(())
    }

    /// Publishes the run's outputs: one atomic write of the date's pointer, naming the run and
    /// every output with its write id, once every step succeeded and the counts were checked.
    pub(super) async fn publish(&self, manifest: &mut RunManifest) -> Result<()> {
        let mut outputs = crate::publish::StepOutputs::new();
        for step in &manifest.steps {
            if crate::publish::step_outputs(&self.plan.uris, &step.key)?.is_empty() {
                continue;
            }
            let recorded = step
                .outputs
                .as_ref()
                .ok_or_else(|| crate::publish::PublishError::Unrecorded { step: step.key.clone() })?;
            outputs.extend(recorded.clone());
        }
        let pointer = ObjectUri::parse(&self.plan.uris.published)?;
        let published = crate::publish::Published {
            run_date: self.plan.date(),
            run_id: self.plan.run_id.clone(),
            manifest: self.plan.uris.manifest.clone(),
            published_at: self.clock.now(),
            load_root: self.plan.uris.load_root.clone(),
            outputs,
        };
        let previous = self
            .with_shutdown(async { Ok(crate::publish::publish(self.store.as_ref(), &pointer, &published).await?) })
            .await?;
        let replaced = match previous {
            Some(p) if p.run_id != published.run_id => format!(" (it named run {})", p.run_id),
            _ => String::new(),
        };
        self.progress.line(&format!("published run {} at {pointer}{replaced}", published.run_id));
        manifest.published = Some(pointer.to_string());
        Ok(())
    }

    /// The date's pointer, which must name this run with every output unchanged: what the
    /// warehouse load and Spectrum read, never a bare date folder.
    pub(super) async fn published(&self) -> Result<crate::publish::Published> {
        let pointer = ObjectUri::parse(&self.plan.uris.published)?;
        Ok(crate::publish::published_run(self.store.as_ref(), &pointer, &self.plan.run_id).await?)
    }

    /// After the load: the date's folders of every other run go (docs/driver-operations.md,
    /// "Old run folders"); a problem there is only a warning.
    pub(super) async fn remove_superseded(&self) {
        let removed = match self.published().await {
            Ok(published) => {
                crate::publish::remove_superseded(self.store.as_ref(), &published).await.map_err(Error::from)
            }
            Err(e) => Err(e),
        };
        match removed {
            Ok(folders) => {
                for folder in folders {
                    self.progress.line(&format!("removed {folder}: a run of the date the pointer does not name"));
                }
            }
            Err(e) => self.progress.line(&format!("warning: could not remove the date's other run folders: {e}")),
        }
    }

    pub(super) fn reuse_previous(
        &self,
        manifest: &mut RunManifest,
        previous: &Option<RunManifest>,
        key: &str,
    ) -> Result<()> {
        let before = previous.as_ref().and_then(|m| m.steps.iter().find(|s| s.key == key)).cloned();
        if let Some(before) = before {
            if let Some(metrics) = &before.metrics {
                manifest.add_job_metrics(metrics);
            }
            *manifest.step_mut(key).expect("every step is in the manifest") = StepRecord { reused: true, ..before };
        }
        self.progress.line(&format!("{key}: already completed by an earlier attempt of this run, skipped"));
        Ok(())
    }
}
