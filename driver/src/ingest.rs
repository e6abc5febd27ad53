//! Puts a date's vendor files into the raw bucket, under `incoming/dt=<date>/`, after checking
//! each one (preflight): a vendor file that is unusable as a whole is refused at the door.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{ExitCode, ExitStatus};
use crate::preflight::{self, InputSpec, PreflightError, Problem};
use crate::store::{ObjectStore, ObjectUri, StoreError};

// The sha256 of an ingested file is kept in the same metadata key as an artifact's: the run id
// covers it, and ingesting the same content again uploads nothing.
pub use crate::store::SHA256_METADATA;

/// The object metadata key holding the number of CSV records (after the header) the driver
/// counted in an ingested file, with the `csv` crate (RFC 4180: a quoted field may hold
/// commas, doubled quotes and newlines, so records, not lines). A reader independent of the
/// jobs' Spark CSV reader: the run compares it with the jobs' `rows_in`.
pub const RECORDS_METADATA: &str = "records";

/// The CSV records (after the header line) of a file, gzipped or not; blank lines are not
/// records (as for Spark's reader).
pub fn count_records(read: impl std::io::Read, gz: bool) -> std::io::Result<u64> {
    let read: Box<dyn std::io::Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(read)) } else { Box::new(read) };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .quote(b'"')
        .double_quote(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 16, read));
    let mut record = csv::ByteRecord::new();
    let mut count = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => count += 1,
            Ok(false) => return Ok(count),
            Err(e) => match e.into_kind() {
                csv::ErrorKind::Io(io) => return Err(io),
                other => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{other:?}"))),
            },
        }
    }
}

async fn file_records(path: &Path, gz: bool) -> Result<u64, IngestError> {
    let shown = path.display().to_string();
    let owned = path.to_path_buf();
    let counted = tokio::task::spawn_blocking(move || count_records(std::fs::File::open(owned)?, gz))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
    counted.map_err(|source| StoreError::Local { op: "count the records of", uri: shown, source }.into())
}

/// The vendor files a run reads, in the order they are listed to people.
pub const INPUTS: [InputSpec; 3] = [preflight::MOVIE_REVIEW, preflight::LOG_REVIEWS, preflight::USER_PURCHASE];

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: not a vendor file name; expected one of movie_review.csv, log_reviews.csv, user_purchase.csv (optionally .gz)")]
    UnknownFile { path: String },
    #[error("{path} is given twice; pass each vendor file once")]
    Duplicate { path: String },
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExitStatus for IngestError {
    fn exit_code(&self) -> ExitCode {
        match self {
            IngestError::UnknownFile { .. } | IngestError::Duplicate { .. } => ExitCode::BadInput,
            IngestError::Preflight(e) => e.exit_code(),
            IngestError::Store(e) => e.exit_code(),
        }
    }
}

/// The vendor input a file name stands for, and whether it is gzipped.
pub fn input_for(path: &Path) -> Option<(InputSpec, bool)> {
    let name = path.file_name()?.to_str()?;
    let (base, gz) = match name.strip_suffix(".gz") {
        Some(base) => (base, true),
        None => (name, false),
    };
    INPUTS.iter().find(|spec| spec.name == base).map(|spec| (*spec, gz))
}

/// The vendor files present in a local folder (`DIR/movie_review.csv` or `.csv.gz`, ...).
/// Missing ones are simply absent: the caller decides which are required.
pub fn files_in_dir(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut found = Vec::new();
    for spec in INPUTS {
        let plain = dir.join(spec.name);
        let gz = dir.join(format!("{}.gz", spec.name));
        match (plain.exists(), gz.exists()) {
            (true, true) => {
                return Err(PreflightError::Unusable {
                    uri: plain.display().to_string(),
                    problem: Problem::Ambiguous(spec.name.trim_end_matches(".csv").to_string()),
                }
                .into())
            }
            (true, false) => found.push(plain),
            (false, true) => found.push(gz),
            (false, false) => {}
        }
    }
    Ok(found)
}

/// Checks and uploads `files` to `<incoming>/`, replacing the date's earlier copy of each (and
/// its twin with the other compression, so a date never holds both). Every file is checked
/// before the first upload, so a bad file leaves the bucket untouched. Returns the URIs.
pub async fn ingest(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    files: &[PathBuf],
) -> Result<BTreeMap<&'static str, ObjectUri>, IngestError> {
    let mut planned: BTreeMap<&'static str, (PathBuf, ObjectUri, ObjectUri, bool)> = BTreeMap::new();
    for path in files {
        let (spec, gz) =
            input_for(path).ok_or_else(|| IngestError::UnknownFile { path: path.display().to_string() })?;
        let (name, twin) = if gz {
            (format!("{}.gz", spec.name), spec.name.to_string())
        } else {
            (spec.name.to_string(), format!("{}.gz", spec.name))
        };
        if planned.insert(spec.name, (path.clone(), incoming.join(&name), incoming.join(&twin), gz)).is_some() {
            return Err(IngestError::Duplicate { path: path.display().to_string() });
        }
        check_local_file(path, &spec, gz).await?;
    }
    let mut uploaded = BTreeMap::new();
    for (input, (path, target, twin, gz)) in planned {
        store.delete(&twin).await?;
        let sha256 = file_sha256(&path).await?;
        let same = store.head(&target).await?.is_some_and(|m| {
            m.metadata.get(SHA256_METADATA) == Some(&sha256) && m.metadata.contains_key(RECORDS_METADATA)
        });
        if same {
            tracing::info!("{} is already in {} (same sha256)", path.display(), target);
        } else {
            let records = file_records(&path, gz).await?;
            let metadata = BTreeMap::from([
                (SHA256_METADATA.to_string(), sha256),
                (RECORDS_METADATA.to_string(), records.to_string()),
            ]);
            store.put_file(&target, &path, &metadata).await?;
            tracing::info!("ingested {} as {}", path.display(), target);
        }
        uploaded.insert(input, target);
    }
    Ok(uploaded)
}

/// Whether `<incoming>/` holds exactly what [`ingest`] of `files` would leave there, and no
/// input that is not among them: every file under its name with the same sha256 (and a record
/// count), neither its twin of the other compression nor any other input present. Read-only:
/// a backfill asks it before deciding that a date's earlier run used these same files.
pub async fn already_ingested(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    files: &[PathBuf],
) -> Result<bool, IngestError> {
    let mut expected = BTreeMap::new();
    for path in files {
        let Some((spec, gz)) = input_for(path) else { return Ok(false) };
        let name = if gz { format!("{}.gz", spec.name) } else { spec.name.to_string() };
        expected.insert(name, path.clone());
    }
    for spec in INPUTS {
        for name in [spec.name.to_string(), format!("{}.gz", spec.name)] {
            let meta = store.head(&incoming.join(&name)).await?;
            match (expected.get(&name), meta) {
                (None, None) => {}
                (Some(path), Some(meta)) => {
                    let sha256 = file_sha256(path).await?;
                    if meta.metadata.get(SHA256_METADATA) != Some(&sha256)
                        || !meta.metadata.contains_key(RECORDS_METADATA)
                    {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
        }
    }
    Ok(true)
}

/// The sha256 of a local file, read in chunks.
async fn file_sha256(path: &Path) -> Result<String, IngestError> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;
    let io_err = |e| StoreError::Local { op: "read", uri: path.display().to_string(), source: e };
    let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runs the preflight on a local file.
async fn check_local_file(path: &Path, spec: &InputSpec, gz: bool) -> Result<(), IngestError> {
    let shown = path.display().to_string();
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PreflightError::Unusable { uri: shown, problem: Problem::Missing }.into())
        }
        Err(e) => return Err(StoreError::Local { op: "open", uri: shown, source: e }.into()),
    };
    preflight::check_reader(file, gz, spec)
        .await
        .map_err(|problem| PreflightError::Unusable { uri: shown, problem }.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;

    #[test]
    fn recognises_vendor_file_names() {
        assert_eq!(input_for(Path::new("/x/movie_review.csv")), Some((preflight::MOVIE_REVIEW, false)));
        assert_eq!(input_for(Path::new("log_reviews.csv.gz")), Some((preflight::LOG_REVIEWS, true)));
        assert_eq!(input_for(Path::new("reviews.csv")), None);
    }

    #[tokio::test]
    async fn uploads_checked_files_and_replaces_the_other_compression() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("drop");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("log_reviews.csv"), "id_review,log\n1,<reviewlog/>\n").unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let incoming = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();
        let stale = incoming.join("log_reviews.csv.gz");
        store.put_bytes(&stale, bytes::Bytes::from_static(b"old")).await.unwrap();

        let files = files_in_dir(&src).unwrap();
        let done = ingest(&store, &incoming, &files).await.unwrap();
        assert_eq!(done["log_reviews.csv"], incoming.join("log_reviews.csv"));
        assert!(store.head(&stale).await.unwrap().is_none());
        assert_eq!(
            preflight::locate(&store, &incoming, &preflight::LOG_REVIEWS).await.unwrap(),
            incoming.join("log_reviews.csv")
        );
    }

    #[test]
    fn counts_records_not_lines() {
        // 4 physical lines after the header, 2 records: a quoted review holds a newline and a
        // doubled quote; a blank line is no record.
        let text = "cid,review_str,id_review\n1,\"good\nreally \"\"good\"\"\",1\n\n2,\"bad, sadly\",2\n";
        assert_eq!(text.lines().count() - 1, 4);
        assert_eq!(count_records(text.as_bytes(), false).unwrap(), 2);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        assert_eq!(count_records(&gz.finish().unwrap()[..], true).unwrap(), 2);
        assert_eq!(count_records("cid,review_str,id_review\n".as_bytes(), false).unwrap(), 0);
    }

    #[tokio::test]
    async fn ingest_records_the_record_count_with_the_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("movie_review.csv");
        std::fs::write(&file, "cid,review_str,id_review\n1,\"a\nb\",1\n2,c,2\n").unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let incoming = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();
        let done = ingest(&store, &incoming, &[file]).await.unwrap();
        let meta = store.head(&done["movie_review.csv"]).await.unwrap().unwrap().metadata;
        assert_eq!(meta.get(RECORDS_METADATA).map(String::as_str), Some("2"));
        assert_eq!(meta.get(SHA256_METADATA).map(String::len), Some(64));
    }

    #[tokio::test]
    async fn refuses_a_bad_file_before_uploading_anything() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("log_reviews.csv");
        let bad = dir.path().join("movie_review.csv");
        std::fs::write(&good, "id_review,log\n1,<reviewlog/>\n").unwrap();
        std::fs::write(&bad, "cid,text\n1,x\n").unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let incoming = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();
        let err = ingest(&store, &incoming, &[good, bad.clone()]).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&bad.display().to_string()) && message.contains("review_str"), "{message}");
        assert_eq!(err.exit_code(), ExitCode::BadInput);
        assert!(store.list(&ObjectUri::parse("s3://raw/").unwrap()).await.unwrap().is_empty());
    }
}
