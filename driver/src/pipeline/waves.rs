//! The Spark steps in waves (derived from the table of steps, `steps::waves`): submit or attach
//! or reuse, wait (with cancellation and the run's deadline), record, diagnose failures; the
//! user_purchase staging beside the first wave.

use super::*;

impl Pipeline {
    pub(super) async fn execute(
        &mut self,
        manifest: &mut RunManifest,
        purchases_from_file: Option<ObjectUri>,
        deadline_at: Option<Duration>,
    ) -> Result<()> {
        let previous = self.previous_manifest().await;
        self.write_manifest(manifest).await?;

        self.deploy(manifest).await?;
        let provided = self.provider.provide(&self.plan).await?;
        manifest.cluster = provided.cluster.clone();
        self.progress.line(&format!("steps run on {}", provided.runner.describe()));
        self.write_manifest(manifest).await?;
        if let Err(e) = self.wait_for_cluster(&provided).await {
            self.finish_runner(&provided, manifest).await;
            return Err(e);
        }

        let mut purchases_from_file = Some(purchases_from_file);
        for (index, wave) in steps::waves().iter().enumerate() {
            // build_dimensions hands out new dimension ids from the union of every date's
            // snapshots: two dates doing that at once (a parallel backfill) could give two
            // values the same id, so that one wave holds a lock shared by all dates.
            let builds_dimensions =
                wave.iter().filter_map(|key| steps::step(key)).any(|s| s.extends_dimension_registry());
            if builds_dimensions {
                if let Err(e) = self.await_dimension_turn().await {
                    self.finish_runner(&provided, manifest).await;
                    return Err(e);
                }
            }
            let registry_lock = if builds_dimensions {
                match self.acquire_dimension_registry(deadline_at).await {
                    Ok(lock) => Some(lock),
                    Err(e) => {
                        self.finish_runner(&provided, manifest).await;
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let outcome = match purchases_from_file.take().filter(|_| index == 0) {
                // user_purchase is needed by build_fact only: it is staged while the first
                // wave runs.
                Some(file) => {
                    self.first_wave_and_user_purchase(manifest, &provided, &previous, wave, deadline_at, file).await
                }
                None => self.run_wave(manifest, &provided, &previous, wave, deadline_at, self.shutdown.clone()).await,
            };
            if let Some(held) = registry_lock {
                let lock = match held {
                    Held::Beating(held) => held.stop().await,
                    Held::Still(lock) => lock,
                };
                if let Err(e) = lock.release(self.store.as_ref()).await {
                    self.progress.line(&format!("warning: could not release the dimension registry lock: {e}"));
                }
            }
            if let (true, Some(turns)) = (builds_dimensions, &self.options.turns) {
                turns.dimensions.pass();
            }
            self.write_manifest(manifest).await?;
            if let Err(e) = outcome {
                self.finish_runner(&provided, manifest).await;
                return Err(e);
            }
        }
        self.check_balances(manifest)?;
        if let Err(e) = self.check_counts(manifest).await {
            self.finish_runner(&provided, manifest).await;
            return Err(e);
        }
        self.finish_runner(&provided, manifest).await;
        self.publish(manifest).await?;
        self.load_warehouse(manifest).await?;
        self.remove_superseded().await;
        Ok(())
    }

    /// Waits until the cluster (created or reused) is WAITING or RUNNING; a cluster that ends
    /// or never gets there fails the run with its `StateChangeReason` (exit 10).
    pub(super) async fn wait_for_cluster(&self, provided: &ProvidedRunner) -> Result<()> {
        let timeout = Duration::from_secs(self.plan.config.emr.cluster_start_timeout_minutes.max(1) as u64 * 60);
        let wait = crate::cluster::wait_until_ready(
            provided.runner.as_ref(),
            self.clock.as_ref(),
            self.options.poll.interval,
            timeout,
        );
        if let Some(status) = self.with_shutdown(wait).await? {
            self.progress.line(&format!("cluster {} is {}", status.id, status.state.as_str()));
        }
        Ok(())
    }

    /// The first wave and the staging of user_purchase at once. The staging is recorded in the
    /// manifest as before (its own record, its figures); its failure cancels the wave's steps
    /// and fails the run with the staging's error, as it failed the run before the wave did;
    /// a failed wave fails the run once the staging has ended (a rerun reuses it).
    pub(super) async fn first_wave_and_user_purchase(
        &self,
        manifest: &mut RunManifest,
        provided: &ProvidedRunner,
        previous: &Option<RunManifest>,
        wave: &[&str],
        deadline_at: Option<Duration>,
        file: Option<ObjectUri>,
    ) -> Result<()> {
        let mut staging_manifest = manifest.clone();
        let (failed_tx, failed_rx) = watch::channel(None);
        let staging = async {
            let staged = self.stage_user_purchase(&mut staging_manifest, previous, file).await;
            if let Err(e) = &staged {
                let _ = failed_tx.send(Some(format!("user_purchase failed: {e}")));
            }
            staged
        };
        let shutdown = either_fires(self.shutdown.clone(), failed_rx);
        let waved = self.run_wave(manifest, provided, previous, wave, deadline_at, shutdown);
        let (staged, waved) = tokio::join!(staging, waved);
        if let (Some(record), Some(staged_record)) =
            (manifest.step_mut(USER_PURCHASE), staging_manifest.steps.iter().find(|s| s.key == USER_PURCHASE))
        {
            *record = staged_record.clone();
        }
        for (source, counts) in staging_manifest.sources {
            manifest.sources.entry(source).or_insert(counts);
        }
        staged.and(waved)
    }

    /// Submits the wave's steps that are not done yet (attaching to the ones already running on
    /// the cluster), waits for them, and records them in the manifest.
    pub(super) async fn run_wave(
        &self,
        manifest: &mut RunManifest,
        provided: &ProvidedRunner,
        previous: &Option<RunManifest>,
        wave: &[&str],
        deadline_at: Option<Duration>,
        shutdown: watch::Receiver<Option<String>>,
    ) -> Result<()> {
        let runner = provided.runner.as_ref();
        // What is left of the run's one deadline.
        let poll = PollOptions {
            deadline: deadline_at.map(|at| at.saturating_sub(self.clock.monotonic())),
            ..self.options.poll.clone()
        };
        let names: Vec<String> = wave
            .iter()
            .map(|key| self.plan.step(key).map(|s| s.config.name.clone()))
            .collect::<std::result::Result<_, _>>()?;
        let listed = if self.options.force { Vec::new() } else { runner.list_steps(&[]).await.unwrap_or_default() };
        let existing = find_steps_by_name(&listed, &names);

        let mut done = Vec::new();
        for key in wave {
            done.push(self.done_before(previous, manifest, key).await?);
        }

        let mut ids: Vec<(String, String)> = Vec::new(); // (key, step id) to wait for
        let mut to_submit = Vec::new();
        for ((key, (_, found)), done) in wave.iter().zip(existing).zip(done) {
            match found {
                _ if done == Done::Yes => self.reuse_previous(manifest, previous, key)?,
                // Its recorded outputs changed since: what the cluster says it completed then
                // is not what the store holds now.
                ExistingStep::Completed { .. } if done == Done::Redo => to_submit.push(key.to_string()),
                ExistingStep::Completed { id } => {
                    // Found by name only (the manifest of that attempt did not record it): its
                    // outputs count only if every write finished.
                    let outputs = match crate::publish::record(self.store.as_ref(), &self.plan.uris, key).await {
                        Ok(outputs) => outputs,
                        Err(crate::publish::PublishError::Incomplete { uri, marker, .. }) => {
                            self.progress.line(&format!(
                                "{key}: step {id} COMPLETED on {}, but {uri} has no {marker}; submitting it again",
                                runner.describe()
                            ));
                            to_submit.push(key.to_string());
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    self.progress
                        .line(&format!("{key}: step {id} already COMPLETED on {}, skipped", runner.describe()));
                    let record = manifest.step_mut(key).expect("every step is in the manifest");
                    record.step_id = Some(id.clone());
                    record.state = RecordState::Completed;
                    record.reused = true;
                    record.kind = provided.kind.into();
                    record.outputs = Some(outputs);
                    self.collect_metrics(manifest, key).await?;
                }
                ExistingStep::Attach { id, state } => {
                    self.progress.line(&format!(
                        "{key}: step {id} is already {state}, waiting for it instead of submitting again"
                    ));
                    ids.push((key.to_string(), id));
                }
                ExistingStep::Submit => to_submit.push(key.to_string()),
            }
        }
        if !to_submit.is_empty() {
            let configs: Vec<_> = to_submit
                .iter()
                .map(|k| self.plan.step(k).map(|s| s.config.clone()))
                .collect::<std::result::Result<_, _>>()?;
            let submitted = runner.submit(&configs).await?;
            for (key, id) in to_submit.into_iter().zip(submitted) {
                ids.push((key, id));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        for (key, id) in &ids {
            let record = manifest.step_mut(key).expect("every step is in the manifest");
            record.step_id = Some(id.clone());
            record.kind = provided.kind.into();
            record.logs = runner.log_prefix(id).map(|p| p.to_string());
        }
        let step_ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
        let outcome = wait_or_cancel(
            runner,
            &step_ids,
            self.clock.as_ref(),
            &poll,
            self.observer.as_ref(),
            shutdown_requested(shutdown),
            self.options.settle,
        )
        .await?;
        for status in outcome.steps() {
            if let Some((key, _)) = ids.iter().find(|(_, id)| *id == status.id) {
                record_status(manifest.step_mut(key).expect("every step is in the manifest"), status);
            }
        }
        self.record_usage(manifest, runner, &ids, outcome.steps()).await;
        match outcome {
            RunOutcome::Finished { steps } => self.after_wave(manifest, runner, &ids, &steps).await,
            RunOutcome::Cancelled { signal, report, .. } => {
                Err(PipelineError::Cancelled { signal, cancelled: describe_cancel(&report) }.into())
            }
            RunOutcome::TimedOut { waited_seconds, report, .. } => {
                Err(PipelineError::TimedOut { waited_seconds, cancelled: describe_cancel(&report) }.into())
            }
        }
    }

    /// Records what the ended steps used, when the runner reports it (EMR Serverless job runs),
    /// and the run's total so far. Not being able to read it is only a warning.
    pub(super) async fn record_usage(
        &self,
        manifest: &mut RunManifest,
        runner: &dyn StepRunner,
        ids: &[(String, String)],
        steps: &[StepStatus],
    ) {
        let ended: Vec<String> = steps.iter().filter(|s| s.state.is_terminal()).map(|s| s.id.clone()).collect();
        match runner.usage(&ended).await {
            Ok(usage) if !usage.is_empty() => {
                for (key, id) in ids {
                    if let Some(used) = usage.get(id) {
                        manifest.step_mut(key).expect("every step is in the manifest").usage = Some(used.clone());
                    }
                }
                manifest.usage = manifest.steps.iter().filter_map(|s| s.usage.as_ref()).fold(None, |total, used| {
                    Some(total.map_or_else(|| used.clone(), |t: crate::manifest::ResourceUsage| t.add(used)))
                });
            }
            Ok(_) => {}
            Err(e) => self.progress.line(&format!("warning: could not read what the steps used: {e}")),
        }
    }

    /// Collects the metrics of the completed steps; diagnoses the first failed one.
    pub(super) async fn after_wave(
        &self,
        manifest: &mut RunManifest,
        runner: &dyn StepRunner,
        ids: &[(String, String)],
        steps: &[StepStatus],
    ) -> Result<()> {
        let mut first_error: Option<Error> = None;
        for status in steps {
            let Some((key, _)) = ids.iter().find(|(_, id)| *id == status.id) else { continue };
            match status.state {
                StepState::Completed => {
                    self.collect_metrics(manifest, key).await?;
                    self.record_outputs(manifest, key).await?;
                }
                StepState::Failed => {
                    let (report, cause) = self.diagnose(runner, status).await;
                    manifest.step_mut(key).expect("every step is in the manifest").failure =
                        Some(format!("{cause}\n{report}"));
                    self.progress.line(&format!("{key} FAILED:\n{report}"));
                    first_error.get_or_insert_with(|| {
                        PipelineError::StepFailed { key: key.clone(), step_id: status.id.clone(), cause }.into()
                    });
                }
                state => {
                    if first_error.is_none() {
                        // Steps cancelled under the run: a cluster that ended says why.
                        if let Ok(Some(cluster)) = runner.cluster_status().await {
                            if cluster.state.is_ending() {
                                first_error = Some(crate::cluster::ClusterError::Ended { status: cluster }.into());
                            }
                        }
                    }
                    first_error.get_or_insert_with(|| PipelineError::Interrupted { key: key.clone(), state }.into());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The diagnosis for people, and its probable cause in one line.
    pub(super) async fn diagnose(&self, runner: &dyn StepRunner, status: &StepStatus) -> (String, String) {
        let Some(prefix) = runner.log_prefix(&status.id) else {
            let text = "the runner keeps no logs for this step".to_string();
            return (text.clone(), text);
        };
        let cluster_prefix = runner.cluster_log_prefix();
        match diagnose::diagnose(
            self.store.as_ref(),
            &status.id,
            &prefix,
            cluster_prefix.as_ref(),
            status.failure.as_ref(),
            self.clock.as_ref(),
            &self.options.diagnose,
        )
        .await
        {
            Ok(diagnosis) => (diagnosis.render_text(), first_line(&diagnosis.cause.summary)),
            Err(e) => {
                let text = format!("could not read the logs under {prefix}: {e}");
                (text.clone(), text)
            }
        }
    }

    /// Records what the runner used (EMR: the cluster's normalized instance hours), then
    /// terminates the cluster if this run created it (unless it is to be kept).
    pub(super) async fn finish_runner(&self, provided: &ProvidedRunner, manifest: &mut RunManifest) {
        match provided.runner.total_usage().await {
            Ok(Some(total)) => manifest.usage = Some(total),
            Ok(None) => {}
            Err(e) => {
                self.progress.line(&format!("warning: could not read what {} used: {e}", provided.runner.describe()))
            }
        }
        if self.options.keep_cluster {
            return;
        }
        match provided.runner.terminate_if_created().await {
            Ok(crate::runner::Termination::Terminated) => {
                self.progress.line(&format!("terminating {} (created by this run)", provided.runner.describe()))
            }
            Ok(_) => {}
            Err(e) => self.progress.line(&format!("warning: could not terminate {}: {e}", provided.runner.describe())),
        }
    }
}

/// A channel that fires with the first of `a` and `b` (a signal, or a failure beside a wave).
fn either_fires(
    a: watch::Receiver<Option<String>>,
    b: watch::Receiver<Option<String>>,
) -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = tokio::select! {
            reason = shutdown_requested(a) => reason,
            reason = shutdown_requested(b) => reason,
            // Nobody listens any more: the wave is over.
            _ = tx.closed() => return,
        };
        let _ = tx.send(Some(reason));
    });
    rx
}

fn record_status(record: &mut StepRecord, status: &StepStatus) {
    record.state = status.state.into();
    record.started_at = status.started_at;
    record.ended_at = status.ended_at;
}

fn describe_cancel(report: &crate::runner::cancel::CancelReport) -> String {
    let steps: Vec<&str> = report.cancelled.iter().filter(|c| c.accepted).map(|c| c.step_id.as_str()).collect();
    let steps = if steps.is_empty() { "no step".to_string() } else { steps.join(", ") };
    match report.termination {
        crate::runner::Termination::Terminated => format!("{steps}; the cluster this run created is terminating"),
        crate::runner::Termination::LeftRunning => {
            format!("{steps}; the cluster (not created by this run) is left running")
        }
        crate::runner::Termination::NotApplicable => steps,
    }
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
