//! The run's inputs under the lock: `--raw-dir` ingested exactly, the incoming folder checked
//! before anything is loaded, and the plan bound to (or checked against) what is there.

use super::*;

impl Pipeline {
    /// `--raw-dir`: the run reads exactly the files of that folder. They are ingested under
    /// the lock, and the date's incoming files of inputs the folder does not hold are removed,
    /// so that nothing of an earlier ingest (a stale user_purchase.csv) is used.
    pub(super) async fn ingest_exactly(&self, dir: &std::path::Path) -> Result<()> {
        let incoming = ObjectUri::parse(&self.plan.uris.incoming)?;
        let files = crate::ingest::files_in_dir(dir)?;
        for spec in [&preflight::MOVIE_REVIEW, &preflight::LOG_REVIEWS] {
            if !files.iter().any(|f| crate::ingest::input_for(f).is_some_and(|(s, _)| s.name == spec.name)) {
                return Err(preflight::PreflightError::Unusable {
                    uri: dir.join(spec.name).display().to_string(),
                    problem: preflight::Problem::Missing,
                }
                .into());
            }
        }
        self.progress.line(&format!("ingesting {} file(s) from {} into {incoming}", files.len(), dir.display()));
        let part_size = self.plan.config.ingest.part_size_bytes();
        let ingested = crate::ingest::ingest(self.store.as_ref(), &incoming, &files, part_size).await?;
        for spec in crate::ingest::INPUTS {
            if !ingested.contains_key(spec.name) {
                for stale in crate::ingest::remove_input(self.store.as_ref(), &incoming, &spec).await? {
                    self.progress.line(&format!("removed {stale}: not among the files of {}", dir.display()));
                }
            }
        }
        Ok(())
    }

    /// The inputs in the incoming folder, checked as a run checks them before loading anything:
    /// each split input's parts all there and alone (and the first one's header), a single file's
    /// head, the user_purchase file's head. Also returns the user_purchase file, if any.
    pub(super) async fn checked_inputs(&self) -> Result<(Inputs, Option<ObjectUri>)> {
        let incoming = ObjectUri::parse(&self.plan.uris.incoming)?;
        // The source database as the run id knows it: its URL without credentials.
        let database = self.options.databases.source.as_ref().map(|login| login.shown());
        let (inputs, located, purchases) =
            crate::inputs::read_store(self.store.as_ref(), &incoming, database.as_deref()).await?;
        let specs: [&InputSpec; 2] = [&preflight::MOVIE_REVIEW, &preflight::LOG_REVIEWS];
        for (spec, located) in specs.into_iter().zip(&located) {
            match located {
                Located::Parts { folder, manifest } => {
                    crate::inputs::check_parts(self.store.as_ref(), folder, manifest).await?;
                    let first = folder.join(&manifest.parts[0].name);
                    preflight::check(self.store.as_ref(), &first, spec).await?;
                }
                Located::File(uri) => {
                    preflight::check(self.store.as_ref(), uri, spec).await?;
                    self.progress.line(&format!(
                        "{uri} was put in the bucket without `emr-driver ingest`: it is read as one file (one Spark \
                         task); ingest it to cut it into parts"
                    ));
                }
            }
        }
        if let Some(uri) = &purchases {
            preflight::check(self.store.as_ref(), uri, &preflight::USER_PURCHASE).await?;
        }
        Ok((inputs, purchases))
    }

    /// Checks the vendor files before anything is loaded, and that the plan is the one of these
    /// inputs: a plan resolved before they were there is resolved again now (the run id then
    /// covers them); a plan resolved for other inputs fails the run. Returns the raw
    /// user_purchase file to stage, when that is the source (no database given).
    pub(super) async fn preflight(&mut self) -> Result<Option<ObjectUri>> {
        let (found, purchases) = self.checked_inputs().await?;
        if purchases.is_none() && self.options.databases.source.is_none() {
            return Err(PipelineError::NoPurchaseSource.into());
        }
        // What the plan was resolved for: these inputs, others, or none yet.
        let (same, bound) = match &self.plan.inputs {
            BoundInputs::Bound(bound) => (*bound == found, true),
            BoundInputs::NotYet { .. } => (false, false),
        };
        if bound && !same {
            let found = self.plan.for_inputs(found)?;
            return Err(PipelineError::InputsChanged {
                date: self.plan.date(),
                planned: self.plan.run_id.clone(),
                found: found.run_id,
            }
            .into());
        }
        if !bound {
            let unbound = self.plan.run_id.clone();
            self.plan = self.plan.for_inputs(found)?;
            self.progress.line(&format!(
                "inputs bound: run {} (the plan was resolved before they were there, as {unbound})",
                self.plan.run_id
            ));
        }
        self.progress.line(&format!(
            "inputs checked: {}, {}{}",
            self.plan.uris.movie_review_input,
            self.plan.uris.log_reviews_input,
            purchases.as_ref().map(|p| format!(", {p}")).unwrap_or_default()
        ));
        Ok(purchases)
    }
}
