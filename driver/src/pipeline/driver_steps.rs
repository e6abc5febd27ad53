//! The driver's own steps, recorded in the manifest beside the Spark steps: deploy, the
//! user_purchase staging (load, export or conversion), the warehouse load (PostgreSQL, Redshift
//! with Spectrum, or the embedded SQLite warehouse).

use super::*;

impl Pipeline {
    pub(super) async fn deploy(&self, manifest: &mut RunManifest) -> Result<()> {
        self.driver_step(manifest, DEPLOY, async {
            let progress = Arc::clone(&self.progress);
            let mut lines = move |line: &str| progress.line(line);
            let report = crate::deploy::deploy(self.store.as_ref(), &self.plan.artifacts.all(), &mut lines).await?;
            Ok(serde_json::json!({"uploaded": report.uploaded.len(), "skipped": report.skipped.len()}))
        })
        .await
    }

    /// Runs one of the driver's own steps, recording it in the manifest (state, times, figures
    /// or failure); gives up on a signal.
    pub(super) async fn driver_step<F>(&self, manifest: &mut RunManifest, key: &str, work: F) -> Result<()>
    where
        F: std::future::Future<Output = Result<Value>>,
    {
        let started = self.clock.now();
        self.progress.stage(key, RecordState::Running);
        let result = self.with_shutdown(work).await;
        let record = manifest.step_mut(key).expect("every driver step is in the manifest");
        record.started_at = Some(started);
        record.ended_at = Some(self.clock.now());
        match result {
            Ok(metrics) => {
                record.state = RecordState::Completed;
                record.metrics = Some(metrics);
                self.progress.stage(key, RecordState::Completed);
                Ok(())
            }
            Err(e) => {
                record.state = RecordState::Failed;
                record.failure = Some(e.to_string());
                self.progress.stage(key, RecordState::Failed);
                Err(e)
            }
        }
    }

    /// user_purchase → `s3://<staging>/user_purchase/dt=D/run=R/part-*.csv.gz` (parts of
    /// `ingest.part_size_mb`, so `build_fact` reads them with every core): loaded into
    /// the source database first when a file came with the vendor files and a database is
    /// given, exported from the database when there is one, converted straight from the file
    /// otherwise.
    pub(super) async fn stage_user_purchase(
        &self,
        manifest: &mut RunManifest,
        previous: &Option<RunManifest>,
        file: Option<ObjectUri>,
    ) -> Result<()> {
        if self.done_before(previous, manifest, USER_PURCHASE).await? == Done::Yes {
            return self.reuse_previous(manifest, previous, USER_PURCHASE);
        }
        let _turn = match self.options.databases.source {
            Some(_) => self.database_turn().await,
            None => None,
        };
        self.driver_step(manifest, USER_PURCHASE, self.stage_user_purchase_inner(file)).await?;
        self.record_outputs(manifest, USER_PURCHASE).await
    }

    pub(super) async fn stage_user_purchase_inner(&self, file: Option<ObjectUri>) -> Result<Value> {
        use crate::db::user_purchase::{self, LoadOptions};
        let export_uri = crate::db::export::ExportTarget::Parts {
            folder: ObjectUri::parse(&self.plan.uris.user_purchase_export)?,
            part_size: self.export_part_size(file.as_ref()).await?,
        };
        let opts = LoadOptions { skip_bad_rows: self.options.skip_bad_purchase_rows };
        let mut metrics = serde_json::Map::new();
        match (&self.options.databases.source, file) {
            (Some(login), file) => {
                let mut client = login.connect().await?;
                let report = if let Some(file) = file {
                    // Loaded and exported in one transaction from a table of this run's own:
                    // another date loading at the same time never changes this export.
                    self.progress.line(&format!("loading {file} into user_purchase and exporting it to {export_uri}"));
                    let reader = self.store.reader(&file).await?;
                    let (loaded, exported) = user_purchase::load_and_export(
                        &mut client,
                        reader,
                        &file.to_string(),
                        opts,
                        self.store.as_ref(),
                        &export_uri,
                    )
                    .await?;
                    self.note_bad_purchase_rows(&loaded);
                    metrics.insert("loaded".into(), serde_json::to_value(&loaded).unwrap_or_default());
                    exported
                } else {
                    self.progress.line(&format!("exporting user_purchase to {export_uri}"));
                    crate::db::export::export_user_purchase(&client, self.store.as_ref(), &export_uri).await?
                };
                metrics.insert("exported_rows".into(), report.rows.into());
                metrics.insert("exported_bytes".into(), report.bytes.into());
            }
            (None, Some(file)) => {
                self.progress.line(&format!("converting {file} to {export_uri} (no database given)"));
                let reader = self.store.reader(&file).await?;
                let report = user_purchase::uci_to_export_object(
                    reader,
                    &file.to_string(),
                    self.store.as_ref(),
                    &export_uri,
                    opts,
                )
                .await?;
                self.note_bad_purchase_rows(&report);
                metrics.insert("exported_rows".into(), report.rows_loaded.into());
                metrics.insert("bad_rows".into(), report.bad_row_count.into());
            }
            (None, None) => return Err(PipelineError::NoPurchaseSource.into()),
        }
        Ok(Value::Object(metrics))
    }

    /// The part size of the user_purchase export: `ingest.part_size_mb`, balanced
    /// ([`crate::split::balanced_part_size`]) for the size of the file it comes from when
    /// ingest recorded it, so that build_fact's tasks get equal shares. The export holds the
    /// same rows in a few percent more bytes (ISO timestamps: 48.3 MB for the 45.6 MB UCI
    /// file), so the estimate allows a tenth more, or a last sliver of a part would be a task
    /// of its own. An export of the database as it is: the part size.
    pub(super) async fn export_part_size(&self, file: Option<&ObjectUri>) -> Result<u64> {
        let part_size = self.plan.config.ingest.part_size_bytes();
        let Some(file) = file else { return Ok(part_size) };
        let estimate = self
            .store
            .head(file)
            .await?
            .and_then(|meta| meta.metadata.get(crate::ingest::CSV_BYTES_METADATA)?.parse::<u64>().ok());
        Ok(estimate.map_or(part_size, |bytes| crate::split::balanced_part_size(part_size, bytes + bytes / 10)))
    }

    pub(super) fn note_bad_purchase_rows(&self, report: &crate::db::user_purchase::LoadReport) {
        if report.bad_row_count > 0 {
            self.progress.line(&format!("user_purchase: {} bad row(s) skipped", report.bad_row_count));
            for bad in &report.bad_rows {
                self.progress.line(&format!("  line {}: {}", bad.line, bad.reason));
            }
        }
    }

    pub(super) async fn load_warehouse(&self, manifest: &mut RunManifest) -> Result<()> {
        let Some(login) = self.options.databases.warehouse.clone() else {
            // A local run without a database: the embedded warehouse file under the lake.
            if let Some(path) = self.options.databases.embedded_warehouse.clone() {
                return self.driver_step(manifest, LOAD_WAREHOUSE, self.load_embedded(path)).await;
            }
            let record = manifest.step_mut(LOAD_WAREHOUSE).expect("load_warehouse is in every manifest");
            record.state = RecordState::Skipped;
            record.metrics = Some(
                serde_json::json!({"skipped": "no warehouse database given", "tables_under": self.plan.uris.load_root}),
            );
            self.progress.line(&format!("no warehouse database: dims and fact are in {}", self.plan.uris.load_root));
            return Ok(());
        };
        let _turn = self.database_turn().await;
        self.driver_step(manifest, LOAD_WAREHOUSE, self.load_warehouse_inner(&login)).await
    }

    pub(super) async fn load_embedded(&self, path: std::path::PathBuf) -> Result<Value> {
        let load_root = ObjectUri::parse(&self.published().await?.load_root)?;
        self.progress.line(&format!("loading {load_root} into the embedded warehouse {}", path.display()));
        let report =
            crate::db::embedded::load_run(&path, Arc::clone(&self.store), &load_root, self.plan.run_date).await?;
        let mut metrics = serde_json::to_value(&report).unwrap_or_default();
        metrics["warehouse"] = serde_json::json!({"kind": "sqlite", "location": path.display().to_string()});
        Ok(metrics)
    }

    pub(super) async fn load_warehouse_inner(&self, login: &crate::db::login::DbLogin) -> Result<Value> {
        let published = self.published().await?;
        let load_root = ObjectUri::parse(&published.load_root)?;
        let schema = self.plan.config.warehouse.schema.clone();
        let mut client = login.connect().await?;
        match self.plan.config.warehouse.kind {
            WarehouseKind::Postgres => {
                self.progress.line(&format!("loading {load_root} into the warehouse (schema {schema})"));
                let report = crate::db::warehouse::load_run(
                    &mut client,
                    self.store.as_ref(),
                    &schema,
                    &load_root,
                    self.plan.run_date,
                )
                .await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            }
            WarehouseKind::Redshift => {
                // Redshift reads the files itself: check first that every write completed.
                crate::db::warehouse::check_complete(self.store.as_ref(), &load_root).await?;
                let role = self.plan.config.warehouse.redshift_copy_role_arn.clone();
                let statements = crate::db::redshift::render_load_sql(&schema, &load_root, &role, self.plan.run_date)?;
                self.progress.line(&format!("loading {load_root} into Redshift (schema {schema}) with COPY"));
                let executed = crate::db::redshift::execute(&mut client, &statements).await?;
                let spectrum = self.register_spectrum(&mut client, &published).await?;
                Ok(serde_json::json!({"statements": executed, "spectrum_statements": spectrum}))
            }
        }
    }

    /// Redshift Spectrum over staging (when `warehouse.glue_database` is set): the external
    /// schema and tables created when absent, and this run's dt= partitions registered, after
    /// the load committed (Redshift runs these only outside a transaction).
    pub(super) async fn register_spectrum(
        &self,
        client: &mut tokio_postgres::Client,
        published: &crate::publish::Published,
    ) -> Result<Option<usize>> {
        let warehouse = &self.plan.config.warehouse;
        let Some(glue) = crate::config::non_empty(&warehouse.glue_database) else { return Ok(None) };
        let settings = crate::db::redshift::SpectrumSettings {
            schema: warehouse.spectrum_schema.clone(),
            glue_database: glue.to_string(),
            role_arn: warehouse.redshift_copy_role_arn.clone(),
            staging_bucket: self.plan.config.buckets.staging.clone(),
        };
        // The published run's folders (the pointer's), each date's partition set to them.
        let mut folders = Vec::new();
        for table in ["classified_movie_review", "review_logs", "fact_movie_analytics", "user_purchase"] {
            let uri = published.uri_of(table).ok_or_else(|| crate::publish::PublishError::Unrecorded {
                step: format!("{table} (in the date's pointer)"),
            })?;
            folders.push((table, ObjectUri::parse(uri)?));
        }
        let partitions: Vec<(&str, &ObjectUri)> = folders.iter().map(|(t, u)| (*t, u)).collect();
        let statements = crate::db::redshift::render_spectrum_sql(&settings, self.plan.run_date, &partitions)?;
        self.progress.line(&format!(
            "registering the {} partitions in Spectrum (schema {})",
            self.plan.date(),
            settings.schema
        ));
        Ok(Some(crate::db::redshift::execute_spectrum(client, &statements).await?))
    }
}
