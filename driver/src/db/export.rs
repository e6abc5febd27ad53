//! `user_purchase` → staging: `COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER true)`,
//! gzip-compressed on the fly and streamed into the object store. The rows are counted from
//! the stream itself (records, not raw newlines: descriptions may hold quoted newlines).
//!
//! The pipeline stages the export as record-aligned gzip parts ([`ExportTarget::Parts`]): one
//! gzip file is one Spark task whatever the cluster, and `build_fact` waited on that task
//! (issue #14). `export-user-purchase --to` still writes the one file it is given.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;

use super::csv_out::RecordCounter;
use super::user_purchase::COLUMNS;
use super::{query_err, DbError};
use crate::store::{ObjectReader, ObjectStore, ObjectUri};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    /// Data rows exported (the header is not counted).
    pub rows: u64,
    /// Compressed bytes written to the store.
    pub bytes: u64,
}

/// The COPY statement of the export format (docs/architecture.md).
pub fn export_sql() -> String {
    export_sql_from("user_purchase")
}

/// The export format's COPY of `table` (a table with the columns of `user_purchase`).
pub fn export_sql_from(table: &str) -> String {
    format!("COPY (SELECT {} FROM {table}) TO STDOUT WITH (FORMAT csv, HEADER true)", COLUMNS.join(", "))
}

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// One gzip CSV object (`export-user-purchase --to`).
    File(ObjectUri),
    /// A folder of record-aligned gzip parts of about `part_size` bytes of CSV each
    /// (`part-00000.csv.gz`..., the header in every part: [`crate::split`]), then `_SUCCESS`;
    /// whatever the folder held before is replaced. What a run stages for `build_fact`.
    Parts { folder: ObjectUri, part_size: u64 },
}

impl std::fmt::Display for ExportTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportTarget::File(uri) => write!(f, "{uri}"),
            ExportTarget::Parts { folder, .. } => write!(f, "{folder}/"),
        }
    }
}

/// Writes the CSV read from `csv` (the export format, uncompressed) to `target`; returns the
/// gzip bytes written. A read error fails it before anything is published: the one object is
/// written atomically by the stores (the local lake, S3 multipart), and parts are cut into a
/// scratch folder first and uploaded only once the whole stream was read, `_SUCCESS` last.
pub async fn put_export(store: &dyn ObjectStore, target: &ExportTarget, csv: ObjectReader) -> Result<u64, DbError> {
    match target {
        ExportTarget::File(uri) => {
            let body = tokio::io::BufReader::with_capacity(1 << 16, csv);
            let gzip: ObjectReader = Box::pin(async_compression::tokio::bufread::GzipEncoder::new(body));
            Ok(store.put_stream(uri, gzip).await?)
        }
        ExportTarget::Parts { folder, part_size } => put_parts(store, folder, csv, *part_size).await,
    }
}

async fn put_parts(
    store: &dyn ObjectStore,
    folder: &ObjectUri,
    csv: ObjectReader,
    part_size: u64,
) -> Result<u64, DbError> {
    let write_err = |source| DbError::Write { target: format!("the parts of {folder}/"), source };
    let scratch = crate::ingest::ScratchDir::new().map_err(write_err)?;
    let dir = scratch.path().to_path_buf();
    let handle = tokio::runtime::Handle::current();
    let summary = tokio::task::spawn_blocking(move || {
        let reader = super::user_purchase::BlockingReader { handle, inner: csv };
        crate::split::split(reader, false, part_size, &mut crate::split::GzFiles::new(&dir))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r)
    .map_err(write_err)?;
    // Only now, with every part cut: a failed export leaves the folder as it was. What an
    // earlier attempt left (more parts, or the one file of the old layout) would be read too.
    for meta in store.list(&folder.join("")).await? {
        store.delete(&meta.uri).await?;
    }
    let mut bytes = 0;
    for part in &summary.parts {
        let name = crate::split::part_name(part.index);
        store.put_file(&folder.join(&name), &part.done.path, &BTreeMap::new()).await?;
        bytes += part.done.gz_bytes;
    }
    store.put_bytes(&folder.join(crate::publish::SUCCESS), bytes::Bytes::new()).await?;
    tracing::info!(%folder, parts = summary.parts.len(), records = summary.records, "user_purchase export cut into parts");
    Ok(bytes)
}

/// Exports `user_purchase` to `target` (gzip CSV with a header). Nothing is held in memory but
/// the chunks in flight (and, for parts, the scratch files); a database error mid-stream fails
/// the export before anything is published.
pub async fn export_user_purchase(
    client: &tokio_postgres::Client,
    store: &dyn ObjectStore,
    target: &ExportTarget,
) -> Result<ExportReport, DbError> {
    // One statement reads one snapshot; TRUNCATE's lock makes it wait for a reload in progress.
    let sql = export_sql();
    let stream = client.copy_out(sql.as_str()).await.map_err(query_err("export user_purchase (COPY TO STDOUT)"))?;
    export_stream(stream, store, target).await
}

/// Streams a `COPY ... TO STDOUT` of the export format into `target`, gzip, counting the rows.
pub async fn export_stream(
    stream: tokio_postgres::CopyOutStream,
    store: &dyn ObjectStore,
    target: &ExportTarget,
) -> Result<ExportReport, DbError> {
    let counter = Arc::new(Mutex::new(RecordCounter::default()));
    let server_error: Arc<Mutex<Option<tokio_postgres::Error>>> = Arc::default();
    let counting = {
        let counter = Arc::clone(&counter);
        let server_error = Arc::clone(&server_error);
        stream.inspect_ok(move |chunk| counter.lock().expect("counter lock").feed(chunk)).map_err(move |e| {
            let message = e.to_string();
            *server_error.lock().expect("error slot lock") = Some(e);
            std::io::Error::other(message)
        })
    };
    let body: ObjectReader = Box::pin(tokio_util::io::StreamReader::new(Box::pin(counting)));
    let put = put_export(store, target, body).await;
    if let Some(source) = server_error.lock().expect("error slot lock").take() {
        return Err(query_err("stream user_purchase out (COPY TO STDOUT)")(source));
    }
    let bytes = put?;
    let records = counter.lock().expect("counter lock").records();
    // The first record is the header.
    let rows = records.saturating_sub(1);
    tracing::info!(%target, rows, bytes, "user_purchase exported");
    Ok(ExportReport { rows, bytes })
}
