//! Loads the UCI `user_purchase.csv` into the `user_purchase` table, streaming.
//!
//! The file is parsed on a blocking thread with the `csv` crate (it reads through the async
//! reader in small pieces), each row is checked and normalised to the export format
//! (docs/architecture.md, "user_purchase export format") and sent back in ~1 MiB chunks over a
//! bounded channel to `COPY user_purchase FROM STDIN (FORMAT csv)`. Memory stays flat however
//! large the file is: a few chunks in flight, never the file.

use std::io::Read;
use std::pin::Pin;

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::csv_out::push_field;
use super::{query_err, DbError};
use crate::store::{ObjectReader, ObjectStore};

/// The table, as DESIGN.md 2.1 defines it.
pub const CREATE_TABLE_SQL: &str = include_str!("../../../sql/user_purchase.sql");

/// The table's columns, in the order of the table and of the export format.
pub const COLUMNS: [&str; 8] =
    ["invoice_number", "stock_code", "detail", "quantity", "invoice_date", "unit_price", "customer_id", "country"];

/// The UCI header name of each column, same order as [`COLUMNS`].
pub const UCI_HEADER: [&str; 8] =
    ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"];

/// How many bad rows a report keeps in full (the count covers all of them).
pub const MAX_REPORTED_BAD_ROWS: usize = 100;

/// How often (in rows) progress is logged on stderr.
const PROGRESS_EVERY: u64 = 100_000;
/// Size of the chunks handed to COPY: large enough to keep the server busy, small enough
/// that a few in flight cost nothing.
const CHUNK_BYTES: usize = 1 << 20;
const CHANNEL_CHUNKS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Load the good rows and report the bad ones instead of failing.
    pub skip_bad_rows: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRow {
    /// Physical line (1-based) where the record starts.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub rows_loaded: u64,
    /// The first [`MAX_REPORTED_BAD_ROWS`] bad rows.
    pub bad_rows: Vec<BadRow>,
    /// Every bad row, also those not kept in `bad_rows`.
    pub bad_row_count: u64,
}

/// The key of the transaction-scoped advisory lock taken before `CREATE TABLE IF NOT EXISTS
/// user_purchase` and the replacement of its content: two sessions creating the table at once
/// on a fresh database would otherwise race (one fails on the catalog's unique index).
pub const TABLE_LOCK_KEY: i64 = 0x7573_6572_5f70_7572; // "user_pur"

/// The session-private table a run loads its file into (see [`load_and_export`]).
pub const RUN_TABLE: &str = "run_user_purchase";

/// Loads the UCI file into `user_purchase`, replacing its content, in one transaction:
/// create the table if missing, TRUNCATE, COPY, commit. Any bad row rolls everything back
/// unless `opts.skip_bad_rows`. Gzip input is recognised by its magic bytes.
pub async fn load<R>(
    client: &mut tokio_postgres::Client,
    reader: R,
    source_name: &str,
    opts: LoadOptions,
) -> Result<LoadReport, DbError>
where
    R: AsyncRead + Send + 'static,
{
    let reader = maybe_gunzip(Box::pin(reader), source_name).await?;
    let tx = client.transaction().await.map_err(query_err("start a transaction"))?;
    lock_and_create_table(&tx).await?;
    tx.batch_execute("TRUNCATE user_purchase").await.map_err(query_err("empty user_purchase"))?;
    let report = copy_rows(&tx, "user_purchase", reader, source_name, opts).await?;
    tx.commit().await.map_err(query_err("commit the user_purchase load"))?;
    Ok(report)
}

/// What a run does with a delivered `user_purchase.csv`, in one transaction on one session:
/// COPY the file into a session-private temp table ([`RUN_TABLE`], dropped at commit), export
/// that table to `target`, then replace the content of the shared `user_purchase` with it and
/// commit. The export is exactly the rows this run loaded, whatever another run (another date,
/// another session) loads at the same time: no run ever exports a table another run is
/// truncating or reloading. The shared table is touched only at the end, under
/// [`TABLE_LOCK_KEY`] and TRUNCATE's lock, so concurrent runs replace it one after the other
/// (the last to commit wins) and never create it twice. Nothing is committed unless the export
/// was written.
pub async fn load_and_export<R>(
    client: &mut tokio_postgres::Client,
    reader: R,
    source_name: &str,
    opts: LoadOptions,
    store: &dyn ObjectStore,
    target: &super::export::ExportTarget,
) -> Result<(LoadReport, super::export::ExportReport), DbError>
where
    R: AsyncRead + Send + 'static,
{
    let reader = maybe_gunzip(Box::pin(reader), source_name).await?;
    let tx = client.transaction().await.map_err(query_err("start a transaction"))?;
    tx.batch_execute(&run_table_sql()).await.map_err(query_err("create the run's user_purchase table"))?;
    let report = copy_rows(&tx, RUN_TABLE, reader, source_name, opts).await?;
    let sql = super::export::export_sql_from(RUN_TABLE);
    let stream =
        tx.copy_out(sql.as_str()).await.map_err(query_err("export the run's user_purchase (COPY TO STDOUT)"))?;
    let exported = super::export::export_stream(stream, store, target).await?;
    if exported.rows != report.rows_loaded {
        return Err(DbError::Invariant {
            problem: format!(
                "the export of {source_name} holds {} rows but {} were loaded",
                exported.rows, report.rows_loaded
            ),
        });
    }
    lock_and_create_table(&tx).await?;
    let columns = COLUMNS.join(", ");
    tx.batch_execute(&format!(
        "TRUNCATE user_purchase; INSERT INTO user_purchase ({columns}) SELECT {columns} FROM {RUN_TABLE}"
    ))
    .await
    .map_err(query_err("replace user_purchase with the run's rows"))?;
    tx.commit().await.map_err(query_err("commit the user_purchase load"))?;
    Ok((report, exported))
}

/// The DDL of [`RUN_TABLE`]: the columns of `user_purchase`, as a temp table.
fn run_table_sql() -> String {
    let create = "CREATE TABLE IF NOT EXISTS user_purchase (";
    assert!(CREATE_TABLE_SQL.contains(create), "sql/user_purchase.sql creates user_purchase");
    let body = &CREATE_TABLE_SQL[CREATE_TABLE_SQL.find(create).expect("checked") + create.len()..];
    let body = body.trim_end().trim_end_matches(';').trim_end().trim_end_matches(')');
    format!("CREATE TEMP TABLE {RUN_TABLE} ({body}) ON COMMIT DROP")
}

async fn lock_and_create_table(tx: &tokio_postgres::Transaction<'_>) -> Result<(), DbError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TABLE_LOCK_KEY])
        .await
        .map_err(query_err("lock user_purchase for its replacement"))?;
    tx.batch_execute(CREATE_TABLE_SQL).await.map_err(query_err("create the user_purchase table"))
}

/// Parses the file and COPYs its good rows into `table`; checks the count. Nothing commits.
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    reader: ObjectReader,
    source_name: &str,
    opts: LoadOptions,
) -> Result<LoadReport, DbError> {
    let copy = format!("COPY {table} ({}) FROM STDIN (FORMAT csv)", COLUMNS.join(", "));
    let sink = tx.copy_in::<_, Bytes>(copy.as_str()).await.map_err(query_err(format!("start COPY into {table}")))?;
    futures::pin_mut!(sink);

    let (mut chunks, parser) = spawn_parser(reader, source_name, false, !opts.skip_bad_rows);
    let mut stream_failed = false;
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Ok(bytes) => sink.send(bytes).await.map_err(query_err(format!("COPY rows into {table}")))?,
            Err(_) => {
                stream_failed = true;
                break;
            }
        }
    }
    drop(chunks);
    let summary = join_parser(parser).await?;
    if stream_failed {
        // Bad rows and no --skip-bad-rows: dropping the transaction rolls back.
        return Err(bad_rows_error(source_name, &summary));
    }
    let copied = sink.as_mut().finish().await.map_err(query_err(format!("finish COPY into {table}")))?;
    if copied != summary.rows_ok {
        // A bug, never bad input: nothing is committed.
        return Err(DbError::Invariant {
            problem: format!("COPY stored {copied} rows of {source_name} but the parser passed {}", summary.rows_ok),
        });
    }
    Ok(LoadReport { rows_loaded: copied, bad_rows: summary.bad_rows, bad_row_count: summary.bad_row_count })
}

/// Converts the UCI file straight to the export format (header included, not compressed),
/// for local runs without a database. Same parser and checks as [`load`]; with bad rows and
/// no `skip_bad_rows` it fails (what was written is then incomplete and must be discarded).
pub async fn uci_to_export<R, W>(
    reader: R,
    source_name: &str,
    mut writer: W,
    opts: LoadOptions,
) -> Result<LoadReport, DbError>
where
    R: AsyncRead + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let reader = maybe_gunzip(Box::pin(reader), source_name).await?;
    let (mut chunks, parser) = spawn_parser(reader, source_name, true, !opts.skip_bad_rows);
    let write_err = |source| DbError::Write { target: format!("the export of {source_name}"), source };
    let mut stream_failed = false;
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Ok(bytes) => writer.write_all(&bytes).await.map_err(write_err)?,
            Err(_) => {
                stream_failed = true;
                break;
            }
        }
    }
    drop(chunks);
    let summary = join_parser(parser).await?;
    if stream_failed {
        return Err(bad_rows_error(source_name, &summary));
    }
    writer.flush().await.map_err(write_err)?;
    Ok(LoadReport { rows_loaded: summary.rows_ok, bad_rows: summary.bad_rows, bad_row_count: summary.bad_row_count })
}

/// Converts the UCI file to the gzip export at `target` (what `export_user_purchase` would
/// write from the database). Nothing is published when the conversion fails.
pub async fn uci_to_export_object<R>(
    reader: R,
    source_name: &str,
    store: &dyn ObjectStore,
    target: &super::export::ExportTarget,
    opts: LoadOptions,
) -> Result<LoadReport, DbError>
where
    R: AsyncRead + Send + 'static,
{
    let reader = maybe_gunzip(Box::pin(reader), source_name).await?;
    let (chunks, parser) = spawn_parser(reader, source_name, true, !opts.skip_bad_rows);
    let stream = futures::stream::unfold(chunks, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let body: ObjectReader = Box::pin(tokio_util::io::StreamReader::new(stream));
    let put = super::export::put_export(store, target, body).await;
    let summary = join_parser(parser).await?;
    if summary.bad_row_count > 0 && !opts.skip_bad_rows {
        return Err(bad_rows_error(source_name, &summary));
    }
    put?;
    Ok(LoadReport { rows_loaded: summary.rows_ok, bad_rows: summary.bad_rows, bad_row_count: summary.bad_row_count })
}

fn bad_rows_error(source_name: &str, summary: &ParseSummary) -> DbError {
    let first = summary.bad_rows.first().map(|bad| format!("line {}: {}", bad.line, bad.reason)).unwrap_or_default();
    DbError::BadRows { source_name: source_name.to_string(), count: summary.bad_row_count, first }
}

/// Wraps the reader in a gzip decoder when it starts with the gzip magic bytes.
pub async fn maybe_gunzip(reader: ObjectReader, source_name: &str) -> Result<ObjectReader, DbError> {
    let mut buffered = tokio::io::BufReader::with_capacity(1 << 16, reader);
    let head =
        buffered.fill_buf().await.map_err(|source| DbError::Read { source_name: source_name.to_string(), source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(buffered);
        decoder.multiple_members(true);
        Ok(Box::pin(decoder))
    } else {
        Ok(Box::pin(buffered))
    }
}

type Chunk = Result<Bytes, std::io::Error>;

#[derive(Debug, Default)]
struct ParseSummary {
    rows_ok: u64,
    bad_rows: Vec<BadRow>,
    bad_row_count: u64,
}

fn spawn_parser(
    reader: ObjectReader,
    source_name: &str,
    with_header: bool,
    fail_on_bad_rows: bool,
) -> (mpsc::Receiver<Chunk>, tokio::task::JoinHandle<Result<ParseSummary, DbError>>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let name = source_name.to_string();
    let handle = tokio::runtime::Handle::current();
    let parser = tokio::task::spawn_blocking(move || {
        let blocking = BlockingReader { handle, inner: reader };
        let result = parse(blocking, &name, with_header, fail_on_bad_rows, &tx);
        if result.is_err() {
            // Make the stream fail too, so that a consumer (COPY, an upload) never takes a
            // clean end of stream for a complete file.
            let _ = tx.blocking_send(Err(std::io::Error::other("the input could not be parsed")));
        }
        result
    });
    (rx, parser)
}

async fn join_parser(parser: tokio::task::JoinHandle<Result<ParseSummary, DbError>>) -> Result<ParseSummary, DbError> {
    parser.await.unwrap_or_else(|e| {
        Err(DbError::Read {
            source_name: "the input".to_string(),
            source: std::io::Error::other(format!("the parser thread failed: {e}")),
        })
    })
}

/// Reads an async reader from a blocking thread (the `csv` crate reads synchronously).
pub(crate) struct BlockingReader {
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) inner: ObjectReader,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let inner: &mut Pin<Box<dyn AsyncRead + Send>> = &mut self.inner;
        self.handle.block_on(inner.read(buf))
    }
}

/// Physical line numbers from byte offsets. The `csv` crate's own line count misses CRLF
/// inside quoted fields, so the reader notes where every LF is and the parser asks which line
/// a record's first byte is on. Only the LFs between the last record asked about and the read
/// position are kept: bounded by the parser's buffer and one record.
#[derive(Debug, Default)]
struct LineTracker {
    pending_newlines: std::collections::VecDeque<u64>,
    bytes_seen: u64,
    lines_before: u64,
}

impl LineTracker {
    fn note(&mut self, bytes: &[u8]) {
        for (i, byte) in bytes.iter().enumerate() {
            if *byte == b'\n' {
                self.pending_newlines.push_back(self.bytes_seen + i as u64);
            }
        }
        self.bytes_seen += bytes.len() as u64;
    }

    /// The 1-based line of the byte at `offset` (offsets asked in increasing order).
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.pending_newlines.front().is_some_and(|&newline| newline <= offset) {
            self.pending_newlines.pop_front();
            self.lines_before += 1;
        }
        self.lines_before + 1
    }
}

/// Passes bytes through, noting line ends in the shared tracker.
struct LineCountingReader<R> {
    inner: R,
    tracker: std::rc::Rc<std::cell::RefCell<LineTracker>>,
}

impl<R: Read> Read for LineCountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.tracker.borrow_mut().note(&buf[..read]);
        Ok(read)
    }
}

/// Where each column is in the file, found by header name.
struct ColumnIndexes {
    index: [usize; 8],
    field_count: usize,
}

fn find_columns(header: &csv::ByteRecord, source_name: &str) -> Result<ColumnIndexes, DbError> {
    let names: Vec<String> = header
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut index = [0usize; 8];
    for (slot, wanted) in index.iter_mut().zip(UCI_HEADER) {
        *slot =
            names.iter().position(|name| name.eq_ignore_ascii_case(wanted)).ok_or_else(|| DbError::MissingColumn {
                source_name: source_name.to_string(),
                column: wanted.to_string(),
                found: names.join(","),
            })?;
    }
    Ok(ColumnIndexes { index, field_count: names.len() })
}

/// The blocking parse loop: one record at a time, normalised rows appended to a chunk that
/// is sent when full. Stops early when the receiver is gone (the COPY failed).
fn parse(
    reader: impl Read,
    source_name: &str,
    with_header: bool,
    fail_on_bad_rows: bool,
    tx: &mpsc::Sender<Chunk>,
) -> Result<ParseSummary, DbError> {
    let read_err = |e: csv::Error| DbError::Read { source_name: source_name.to_string(), source: csv_to_io(e) };
    let tracker = std::rc::Rc::new(std::cell::RefCell::new(LineTracker::default()));
    let reader = LineCountingReader { inner: reader, tracker: std::rc::Rc::clone(&tracker) };
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(read_err)? {
        return Err(DbError::EmptyFile { source_name: source_name.to_string() });
    }
    let columns = find_columns(&record, source_name)?;
    let mut summary = ParseSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    if with_header {
        for (i, name) in COLUMNS.iter().enumerate() {
            push_field(&mut chunk, Some(name), i == 0);
        }
        chunk.push(b'\n');
    }
    while csv.read_byte_record(&mut record).map_err(read_err)? {
        let line = tracker.borrow_mut().line_of(record.position().map_or(0, |p| p.byte()));
        let mark = chunk.len();
        match normalise_row(&record, &columns, &mut chunk) {
            Ok(()) => {
                summary.rows_ok += 1;
                if summary.rows_ok % PROGRESS_EVERY == 0 {
                    tracing::info!(source = source_name, rows = summary.rows_ok, "rows read so far");
                }
            }
            Err(reason) => {
                chunk.truncate(mark);
                summary.bad_row_count += 1;
                if summary.bad_rows.len() < MAX_REPORTED_BAD_ROWS {
                    tracing::warn!(source = source_name, line, "bad row: {reason}");
                    summary.bad_rows.push(BadRow { line, reason });
                }
            }
        }
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
            // Nothing more to send once there is a bad row and bad rows fail the load.
            if !(fail_on_bad_rows && summary.bad_row_count > 0) && tx.blocking_send(Ok(Bytes::from(full))).is_err() {
                return Ok(summary);
            }
        }
    }
    if summary.rows_ok == 0 {
        return Err(DbError::NoRows { source_name: source_name.to_string(), bad_rows: summary.bad_row_count });
    }
    if fail_on_bad_rows && summary.bad_row_count > 0 {
        let _ = tx.blocking_send(Err(std::io::Error::other("bad rows")));
    } else if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
    }
    tracing::info!(source = source_name, rows = summary.rows_ok, bad_rows = summary.bad_row_count, "file read");
    Ok(summary)
}

fn csv_to_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Checks one record and appends it to `out` as a COPY csv line; on error `out` may hold
/// part of the line (the caller truncates it).
fn normalise_row(record: &csv::ByteRecord, columns: &ColumnIndexes, out: &mut Vec<u8>) -> Result<(), String> {
    if record.len() != columns.field_count {
        return Err(format!("expected {} fields, found {}", columns.field_count, record.len()));
    }
    let field = |i: usize| -> Result<&str, String> {
        let raw = &record[columns.index[i]];
        std::str::from_utf8(raw).map_err(|_| format!("{}: invalid UTF-8", UCI_HEADER[i]))
    };
    let invoice_number = text(field(0)?, 0, 10, true)?;
    let stock_code = text(field(1)?, 1, 20, false)?;
    let detail = text(field(2)?, 2, 1000, false)?;
    let quantity = field(3)?;
    quantity.parse::<i32>().map_err(|_| format!("Quantity `{quantity}` is not a whole number"))?;
    let invoice_date = parse_uci_date(field(4)?)?;
    let unit_price = parse_price(field(5)?)?;
    let customer_id = match field(6)? {
        "" => None,
        id => {
            id.parse::<i32>().map_err(|_| format!("CustomerID `{id}` is not a whole number"))?;
            Some(id)
        }
    };
    let country = text(field(7)?, 7, 20, false)?;
    let values = [
        invoice_number,
        stock_code,
        detail,
        Some(quantity),
        Some(invoice_date.as_str()),
        Some(unit_price.as_str()),
        customer_id,
        country,
    ];
    for (i, value) in values.iter().enumerate() {
        push_field(out, *value, i == 0);
    }
    out.push(b'\n');
    Ok(())
}

/// A text column: empty is NULL (as COPY reads an empty unquoted field); longer than the
/// `varchar(n)` of the DDL (in characters) or holding a NUL byte is a bad row.
fn text(value: &str, column: usize, max_chars: usize, required: bool) -> Result<Option<&str>, String> {
    let name = UCI_HEADER[column];
    if value.is_empty() {
        return if required { Err(format!("{name} is empty")) } else { Ok(None) };
    }
    if value.contains('\0') {
        return Err(format!("{name} contains a NUL byte"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(format!("{name} is {chars} characters long, longer than the {max_chars} the table allows"));
    }
    Ok(Some(value))
}

/// `M/D/YYYY H:MM` (seconds optional) → `YYYY-MM-DD HH:MM:SS`.
pub fn parse_uci_date(value: &str) -> Result<String, String> {
    let bad = || format!("InvoiceDate `{value}` is not a date like 12/1/2010 8:26");
    let (date, time) = value.trim().split_once(' ').ok_or_else(bad)?;
    let mut date_parts = date.split('/').map(|p| p.parse::<u32>().map_err(|_| bad()));
    let (month, day, year) = match (date_parts.next(), date_parts.next(), date_parts.next(), date_parts.next()) {
        (Some(m), Some(d), Some(y), None) => (m?, d?, y?),
        _ => return Err(bad()),
    };
    let mut time_parts = time.trim().split(':').map(|p| p.parse::<u32>().map_err(|_| bad()));
    let (hour, minute, second) = match (time_parts.next(), time_parts.next(), time_parts.next(), time_parts.next()) {
        (Some(h), Some(m), None, None) => (h?, m?, 0),
        (Some(h), Some(m), Some(s), None) => (h?, m?, s?),
        _ => return Err(bad()),
    };
    if !(1000..=9999).contains(&year) || chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_none() {
        return Err(bad());
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    Ok(format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"))
}

/// A price for `numeric(8,3)`: at most 5 integer digits and 3 decimals (more decimals would
/// be rounded by the database: refused rather than silently changed). Returned with exactly
/// three decimals, as PostgreSQL prints it.
pub fn parse_price(value: &str) -> Result<String, String> {
    let bad = |why: &str| format!("UnitPrice `{value}` {why}");
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(bad("is not a number"));
    }
    if frac_part.len() > 3 {
        return Err(bad("has more than 3 decimals (the column is numeric(8,3))"));
    }
    let int_part = int_part.trim_start_matches('0');
    if int_part.len() > 5 {
        return Err(bad("is too large for numeric(8,3) (at most 99999.999)"));
    }
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac = format!("{frac_part:0<3}");
    let is_zero = int_part == "0" && frac == "000";
    let sign = if negative && !is_zero { "-" } else { "" };
    Ok(format!("{sign}{int_part}.{frac}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectUri;

    #[test]
    fn parses_uci_dates() {
        assert_eq!(parse_uci_date("12/1/2010 8:26").unwrap(), "2010-12-01 08:26:00");
        assert_eq!(parse_uci_date("1/31/2011 17:05").unwrap(), "2011-01-31 17:05:00");
        for bad in ["2/30/2011 8:00", "13/1/2010 8:26", "12/1/2010", "12/1/2010 25:00", "x", "2010-12-01 08:26"] {
            assert!(parse_uci_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalises_prices_to_three_decimals() {
        assert_eq!(parse_price("2.55").unwrap(), "2.550");
        assert_eq!(parse_price("-11062.06").unwrap(), "-11062.060");
        assert_eq!(parse_price("0").unwrap(), "0.000");
        assert_eq!(parse_price("-0.0").unwrap(), "0.000");
        assert_eq!(parse_price(".5").unwrap(), "0.500");
        assert_eq!(parse_price("007.125").unwrap(), "7.125");
        assert!(parse_price("1.2345").unwrap_err().contains("more than 3 decimals"));
        assert!(parse_price("123456").unwrap_err().contains("too large"));
        for bad in ["", "-", "1,5", "abc", "1.2.3", "1e3"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }

    async fn convert(input: &str, opts: LoadOptions) -> Result<(String, LoadReport), DbError> {
        let mut out = Vec::new();
        let report = uci_to_export(std::io::Cursor::new(input.as_bytes().to_vec()), "test.csv", &mut out, opts).await?;
        Ok((String::from_utf8(out).unwrap(), report))
    }

    #[tokio::test]
    async fn converts_the_uci_format_to_the_export_format() {
        let input = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n\
                     536365,85123A,\"WHITE \"\"HANGING\"\" HEART, T-LIGHT\",6,12/1/2010 8:26,2.55,17850,United Kingdom\r\n\
                     C536379,D,,-1,12/1/2010 9:41,27.5,,United Kingdom\r\n\
                     536380,22,\"two\r\nlines \u{fffd}\",1,12/1/2010 9:41,1,14000,France\r\n";
        let (out, report) = convert(input, LoadOptions::default()).await.unwrap();
        assert_eq!(
            out,
            "invoice_number,stock_code,detail,quantity,invoice_date,unit_price,customer_id,country\n\
             536365,85123A,\"WHITE \"\"HANGING\"\" HEART, T-LIGHT\",6,2010-12-01 08:26:00,2.550,17850,United Kingdom\n\
             C536379,D,,-1,2010-12-01 09:41:00,27.500,,United Kingdom\n\
             536380,22,\"two\r\nlines \u{fffd}\",1,2010-12-01 09:41:00,1.000,14000,France\n"
        );
        assert_eq!(report.rows_loaded, 3);
        assert_eq!(report.bad_row_count, 0);
    }

    #[tokio::test]
    async fn finds_columns_by_name_and_reports_a_missing_one() {
        let input = "Country,CustomerID,UnitPrice,InvoiceDate,Quantity,Description,StockCode,InvoiceNo\n\
                     France,1,2,1/2/2011 3:04,5,d,s,i\n";
        let (out, _) = convert(input, LoadOptions::default()).await.unwrap();
        assert!(out.ends_with("\ni,s,d,5,2011-01-02 03:04:00,2.000,1,France\n"), "{out}");

        let err = convert("InvoiceNo,StockCode\n1,2\n", LoadOptions::default()).await.unwrap_err();
        assert!(matches!(err, DbError::MissingColumn { ref column, .. } if column == "Description"), "{err}");
        let err = convert("", LoadOptions::default()).await.unwrap_err();
        assert!(matches!(err, DbError::EmptyFile { .. }), "{err}");
    }

    #[tokio::test]
    async fn bad_rows_fail_unless_skipped_and_carry_line_numbers() {
        let input = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                     1,a,\"multi\nline\",1,1/1/2011 1:00,1,1,X\n\
                     2,a,d,one,1/1/2011 1:00,1,1,X\n\
                     3,a,d,1,1/1/2011 1:00,1\n\
                     4,a,d,1,1/1/2011 1:00,1,1,X\n";
        let err = convert(input, LoadOptions::default()).await.unwrap_err();
        assert!(matches!(err, DbError::BadRows { count: 2, .. }), "{err}");
        assert!(err.to_string().contains("line 4: Quantity `one`"), "{err}");
        assert!(err.to_string().contains("--skip-bad-rows"), "{err}");

        let (out, report) = convert(input, LoadOptions { skip_bad_rows: true }).await.unwrap();
        assert_eq!(report.rows_loaded, 2);
        assert_eq!(report.bad_row_count, 2);
        assert_eq!(report.bad_rows[1], BadRow { line: 5, reason: "expected 8 fields, found 6".into() });
        assert_eq!(out.lines().count(), 4, "header + two rows, one of them two lines long");
    }

    #[tokio::test]
    async fn a_file_without_any_good_row_is_refused_even_when_skipping() {
        let header_only = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n";
        let err = convert(header_only, LoadOptions { skip_bad_rows: true }).await.unwrap_err();
        assert!(matches!(err, DbError::NoRows { bad_rows: 0, .. }), "{err}");
        let all_bad = format!("{header_only}1,a,d,x,1/1/2011 1:00,1,1,X\r\n");
        let err = convert(&all_bad, LoadOptions { skip_bad_rows: true }).await.unwrap_err();
        assert!(matches!(err, DbError::NoRows { bad_rows: 1, .. }), "{err}");
    }

    #[tokio::test]
    async fn a_failed_conversion_publishes_nothing() {
        use crate::db::export::ExportTarget;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(dir.path());
        let folder = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/run=r1").unwrap();
        let with_bad_row = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                            1,a,d,1,1/1/2011 1:00,1,1,X\n2,a,d,x,1/1/2011 1:00,1,1,X\n";
        let targets = [
            (ExportTarget::File(folder.join("user_purchase.csv.gz")), folder.join("user_purchase.csv.gz")),
            (ExportTarget::Parts { folder: folder.clone(), part_size: 1 << 20 }, folder.join("_SUCCESS")),
        ];
        for (target, written) in targets {
            let reader = std::io::Cursor::new(with_bad_row.as_bytes().to_vec());
            let err = uci_to_export_object(reader, "x.csv", &store, &target, LoadOptions::default()).await.unwrap_err();
            assert!(matches!(err, DbError::BadRows { count: 1, .. }), "{err}");
            assert!(store.list(&folder.join("")).await.unwrap().is_empty(), "{target}: something was written");
            let header_only = std::io::Cursor::new(with_bad_row.lines().next().unwrap().as_bytes().to_vec());
            let err =
                uci_to_export_object(header_only, "x.csv", &store, &target, LoadOptions::default()).await.unwrap_err();
            assert!(matches!(err, DbError::NoRows { .. }), "{err}");
            assert!(store.list(&folder.join("")).await.unwrap().is_empty(), "{target}: something was written");

            let reader = std::io::Cursor::new(with_bad_row.as_bytes().to_vec());
            let report = uci_to_export_object(reader, "x.csv", &store, &target, LoadOptions { skip_bad_rows: true })
                .await
                .unwrap();
            assert_eq!((report.rows_loaded, report.bad_row_count), (1, 1));
            assert!(store.head(&written).await.unwrap().is_some(), "{target}: {written} missing");
            for meta in store.list(&folder.join("")).await.unwrap() {
                store.delete(&meta.uri).await.unwrap();
            }
        }
    }

    /// A failed export into a folder that holds an earlier complete export leaves it as it
    /// was: the parts are cut into a scratch folder, and the folder is touched only after the
    /// whole stream was read.
    #[tokio::test]
    async fn a_failed_export_as_parts_leaves_the_earlier_export_in_place() {
        use crate::db::export::ExportTarget;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(dir.path());
        let folder = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/run=r1").unwrap();
        for name in ["part-00000.csv.gz", "_SUCCESS"] {
            store.put_bytes(&folder.join(name), bytes::Bytes::from_static(b"earlier")).await.unwrap();
        }
        let before = store.list(&folder.join("")).await.unwrap();
        let with_bad_row = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                            1,a,d,1,1/1/2011 1:00,1,1,X\n2,a,d,x,1/1/2011 1:00,1,1,X\n";
        let target = ExportTarget::Parts { folder: folder.clone(), part_size: 1 << 20 };
        let reader = std::io::Cursor::new(with_bad_row.as_bytes().to_vec());
        let err = uci_to_export_object(reader, "x.csv", &store, &target, LoadOptions::default()).await.unwrap_err();
        assert!(matches!(err, DbError::BadRows { count: 1, .. }), "{err}");
        assert_eq!(store.list(&folder.join("")).await.unwrap(), before);
        assert_eq!(&store.get_bytes(&folder.join("part-00000.csv.gz")).await.unwrap()[..], b"earlier");
    }

    /// The staged export as parts: cut at record boundaries (a quoted newline stays inside
    /// its part), the header in every part, the rows all there once, and whatever the folder
    /// held before (a bigger earlier attempt, the one file of the old layout) gone.
    #[tokio::test]
    async fn the_export_as_parts_replaces_the_folder_and_keeps_every_record_whole() {
        use crate::db::export::ExportTarget;
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(dir.path());
        let folder = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/run=r1").unwrap();
        for stale in ["user_purchase.csv.gz", "part-00099.csv.gz", "_SUCCESS"] {
            store.put_bytes(&folder.join(stale), bytes::Bytes::from_static(b"old")).await.unwrap();
        }
        let mut uci =
            String::from("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
        for i in 0..200 {
            uci.push_str(&format!("{i},S{i},\"two\nlines, {i}\",{i},12/1/2010 8:26,2.55,17850,United Kingdom\n"));
        }
        let target = ExportTarget::Parts { folder: folder.clone(), part_size: 2_000 };
        let report = uci_to_export_object(
            std::io::Cursor::new(uci.into_bytes()),
            "x.csv",
            &store,
            &target,
            LoadOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(report.rows_loaded, 200);
        let names: Vec<String> =
            store.list(&folder.join("")).await.unwrap().iter().map(|m| m.uri.file_name().to_string()).collect();
        assert!(names.contains(&"_SUCCESS".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n == "user_purchase.csv.gz" || n == "part-00099.csv.gz"), "{names:?}");
        let parts: Vec<&String> = names.iter().filter(|n| n.starts_with("part-")).collect();
        assert!(parts.len() > 2, "a 2,000-byte part size cuts 200 rows into several parts: {names:?}");
        let mut rows = 0;
        for name in parts {
            let gz = store.get_bytes(&folder.join(name)).await.unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
            assert!(text.starts_with(&format!("{}\n", COLUMNS.join(","))), "{name}: {text:.80}");
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
            for record in reader.records() {
                let record = record.unwrap();
                assert_eq!(record.len(), COLUMNS.len(), "{name}: {record:?}");
                assert!(record[2].starts_with("two\nlines"), "{name}: {record:?}");
                rows += 1;
            }
        }
        assert_eq!(rows, 200);
    }

    #[tokio::test]
    async fn reads_gzip_input_by_its_magic_bytes() {
        let plain = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n1,a,d,1,1/1/2011 1:00,1,1,X\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, plain.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut out = Vec::new();
        let report =
            uci_to_export(std::io::Cursor::new(gz), "x.csv.gz", &mut out, LoadOptions::default()).await.unwrap();
        assert_eq!(report.rows_loaded, 1);
    }

    #[tokio::test]
    async fn invalid_utf8_and_overlong_fields_are_bad_rows() {
        let mut input = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n".to_vec();
        input.extend_from_slice(b"1,a,\xff\xfe,1,1/1/2011 1:00,1,1,X\n");
        input.extend_from_slice(b"12345678901,a,d,1,1/1/2011 1:00,1,1,X\n");
        input.extend_from_slice(b"1234567890,a,d,1,1/1/2011 1:00,1,1,X\n");
        let mut out = Vec::new();
        let report = uci_to_export(std::io::Cursor::new(input), "x.csv", &mut out, LoadOptions { skip_bad_rows: true })
            .await
            .unwrap();
        let reasons: Vec<_> = report.bad_rows.iter().map(|b| (b.line, b.reason.as_str())).collect();
        assert_eq!(
            reasons,
            vec![
                (2, "Description: invalid UTF-8"),
                (3, "InvoiceNo is 11 characters long, longer than the 10 the table allows"),
            ]
        );
    }
}
