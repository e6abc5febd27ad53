//! `user_purchase` → staging: `COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER true)`,
//! gzip-compressed on the fly and streamed into the object store. The rows are counted from
//! the stream itself (records, not raw newlines: descriptions may hold quoted newlines).

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

/// Exports `user_purchase` to `uri` (gzip CSV with a header). Nothing is held in memory but
/// the chunks in flight; a database error mid-stream fails the upload, so no partial object is
/// published by stores that write atomically (the local lake, S3 multipart).
pub async fn export_user_purchase(
    client: &tokio_postgres::Client,
    store: &dyn ObjectStore,
    uri: &ObjectUri,
) -> Result<ExportReport, DbError> {
    // One statement reads one snapshot; TRUNCATE's lock makes it wait for a reload in progress.
    let sql = export_sql();
    let stream = client.copy_out(sql.as_str()).await.map_err(query_err("export user_purchase (COPY TO STDOUT)"))?;
    export_stream(stream, store, uri).await
}

/// Streams a `COPY ... TO STDOUT` of the export format into `uri`, gzip, counting the rows.
pub async fn export_stream(
    stream: tokio_postgres::CopyOutStream,
    store: &dyn ObjectStore,
    uri: &ObjectUri,
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
    let body = tokio_util::io::StreamReader::new(Box::pin(counting));
    let gzip: ObjectReader = Box::pin(async_compression::tokio::bufread::GzipEncoder::new(body));
    let put = store.put_stream(uri, gzip).await;
    if let Some(source) = server_error.lock().expect("error slot lock").take() {
        return Err(query_err("stream user_purchase out (COPY TO STDOUT)")(source));
    }
    let bytes = put?;
    let records = counter.lock().expect("counter lock").records();
    // The first record is the header.
    let rows = records.saturating_sub(1);
    tracing::info!(%uri, rows, bytes, "user_purchase exported");
    Ok(ExportReport { rows, bytes })
}
