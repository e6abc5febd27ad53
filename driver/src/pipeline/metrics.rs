//! Metrics reading beside the manifest: each job's metrics file (one JSON line in the first
//! `part-*` file of `_metrics/dt=D/run=R/<job>/`, written by the job through Hadoop's FileSystem
//! API) into the manifest, the balance of every source, and rows_in against ingest's counts.

use super::*;

impl Pipeline {
    /// Reads the job's metrics file into the manifest.
    pub(super) async fn collect_metrics(&self, manifest: &mut RunManifest, key: &str) -> Result<()> {
        let Some(folder) = self.plan.uris.metrics.get(key) else { return Ok(()) };
        let folder_uri = ObjectUri::parse(&format!("{folder}/"))?;
        let bad = |reason: String| PipelineError::BadMetrics { job: key.to_string(), uri: folder.clone(), reason };
        let listing = self.store.list(&folder_uri).await?;
        let part = listing
            .iter()
            .find(|m| m.uri.file_name().starts_with("part-") && m.size > 0)
            .ok_or_else(|| bad("no part file".into()))?;
        let bytes = self.store.get_bytes(&part.uri).await?;
        let text = String::from_utf8_lossy(&bytes);
        let line = text.lines().find(|l| !l.trim().is_empty()).ok_or_else(|| bad("empty".into()))?;
        let metrics: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        manifest.add_job_metrics(&metrics);
        manifest.step_mut(key).expect("every step is in the manifest").metrics = Some(metrics);
        Ok(())
    }

    pub(super) fn check_balances(&self, manifest: &RunManifest) -> Result<()> {
        for (source, counts) in &manifest.sources {
            if !counts.balances() {
                return Err(PipelineError::Unbalanced {
                    input: source.clone(),
                    rows_in: counts.rows_in,
                    rows_out: counts.rows_out,
                    rows_rejected: counts.rows_rejected,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Compares each job's `rows_in` with the record count the driver made at ingest (an
    /// independent reader: `csv_core`, the parser of the `csv` crate, not Spark), summed over the
    /// parts in their manifest. Inputs put in the bucket by something else than `ingest` carry
    /// no count and are not compared (said on the progress lines).
    pub(super) async fn check_counts(&self, manifest: &RunManifest) -> Result<()> {
        let Some(bound) = self.plan.inputs.bound() else { return Ok(()) };
        let inputs = [
            (preflight::MOVIE_REVIEW.name, "movie_review", &bound.movie_review),
            (preflight::LOG_REVIEWS.name, "log_reviews", &bound.log_reviews),
        ];
        for (file, source, input) in inputs {
            let Some(counts) = manifest.sources.get(source) else { continue };
            match input.records {
                Some(counted) if counted != counts.rows_in => {
                    return Err(PipelineError::Miscounted {
                        input: file.to_string(),
                        uri: input.uri.clone(),
                        counted,
                        rows_in: counts.rows_in,
                    }
                    .into())
                }
                Some(_) => {}
                None => self.progress.line(&format!(
                    "{file}: no record count from ingest at {}; rows_in {} is not checked independently",
                    input.uri, counts.rows_in
                )),
            }
        }
        Ok(())
    }
}
