//! Puts a date's vendor files into the raw bucket, under `incoming/dt=<date>/`, after checking
//! each one (preflight): a vendor file that is unusable as a whole is refused at the door.
//! movie_review and log_reviews are cut into record-aligned gzipped parts with a manifest
//! (issue #14: one big gzipped CSV would be one Spark task); user_purchase stays one file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{ExitCode, ExitStatus};
use crate::inputs;
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

/// Object metadata of an ingested user_purchase file: about how many bytes of CSV it holds
/// ([`estimated_csv_bytes`]), which the run's export of it is cut by (balanced parts).
pub const CSV_BYTES_METADATA: &str = "csv-bytes";

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

/// Checks `files`, then puts them under `<incoming>/`. movie_review and log_reviews are cut
/// into record-aligned gzipped parts of about `part_size` bytes ([`crate::split`]) under their
/// folder (`<incoming>/movie_review/part-00000.csv.gz`...) with a manifest
/// ([`crate::inputs::PartsManifest`]) written after the parts; the parts of an earlier
/// delivery that the new one has not (and a single file of the old layout) are removed, so a
/// re-delivered file replaces all of its old parts. user_purchase is uploaded as one file
/// (the driver reads it), replacing its twin of the other compression. Every file is checked
/// before the first upload, so a bad file leaves the bucket untouched; a file already there
/// (same sha256, same part size) is not uploaded again. Returns what the jobs read: the
/// folder of each split input, the user_purchase file.
pub async fn ingest(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    files: &[PathBuf],
    part_size: u64,
) -> Result<BTreeMap<&'static str, ObjectUri>, IngestError> {
    let mut planned: BTreeMap<&'static str, (PathBuf, InputSpec, bool)> = BTreeMap::new();
    for path in files {
        let (spec, gz) =
            input_for(path).ok_or_else(|| IngestError::UnknownFile { path: path.display().to_string() })?;
        if planned.insert(spec.name, (path.clone(), spec, gz)).is_some() {
            return Err(IngestError::Duplicate { path: path.display().to_string() });
        }
        check_local_file(path, &spec, gz).await?;
    }
    // The files at the same time: each is a stream of hashing, cutting and gzip on one core
    // (cutting 1M reviews took about 4 s on its own), and the two vendor files are about as
    // big. Every one runs to its end before the first error is returned, so no upload is left
    // half-done behind an error.
    let uploads = planned.into_iter().map(|(input, (path, spec, gz))| async move {
        let target = if inputs::SPLIT_INPUTS.contains(&spec) {
            ingest_parts(store, incoming, &path, &spec, gz, part_size).await
        } else {
            ingest_file(store, incoming, &path, &spec, gz).await
        };
        target.map(|target| (input, target))
    });
    futures::future::join_all(uploads).await.into_iter().collect()
}

/// One file as it is, replacing its twin of the other compression.
async fn ingest_file(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    path: &Path,
    spec: &InputSpec,
    gz: bool,
) -> Result<ObjectUri, IngestError> {
    let (name, twin) = if gz {
        (format!("{}.gz", spec.name), spec.name.to_string())
    } else {
        (spec.name.to_string(), format!("{}.gz", spec.name))
    };
    let target = incoming.join(&name);
    store.delete(&incoming.join(&twin)).await?;
    let sha256 = file_sha256(path).await?;
    let same = store
        .head(&target)
        .await?
        .is_some_and(|m| m.metadata.get(SHA256_METADATA) == Some(&sha256) && m.metadata.contains_key(RECORDS_METADATA));
    if same {
        tracing::info!("{} is already in {} (same sha256)", path.display(), target);
    } else {
        let records = file_records(path, gz).await?;
        let mut metadata = BTreeMap::from([
            (SHA256_METADATA.to_string(), sha256),
            (RECORDS_METADATA.to_string(), records.to_string()),
        ]);
        if let Ok(bytes) = estimated_csv_bytes(path, gz) {
            metadata.insert(CSV_BYTES_METADATA.to_string(), bytes.to_string());
        }
        store.put_file(&target, path, &metadata).await?;
        tracing::info!("ingested {} as {}", path.display(), target);
    }
    Ok(target)
}

/// A folder of the driver's own under the temporary folder, removed when dropped.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("emr-driver-ingest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the parts folder already holds `path` cut at `part_size`: a manifest of the same
/// source sha256 and part size, whose parts are all there and alone.
async fn parts_current(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    spec: &InputSpec,
    sha256: &str,
    part_size: u64,
) -> Result<bool, IngestError> {
    match inputs::locate(store, incoming, spec).await {
        Ok(inputs::Located::Parts { folder, manifest }) => Ok(manifest.source.sha256 == sha256
            && manifest.part_size_bytes == part_size
            && inputs::check_parts(store, &folder, &manifest).await.is_ok()),
        Ok(inputs::Located::File(_)) => Ok(false),
        Err(PreflightError::Store(e)) => Err(e.into()),
        Err(_) => Ok(false),
    }
}

/// Cuts one vendor file into gzipped parts (in a scratch folder, streaming), uploads them, then
/// their manifest, then removes what the new manifest does not list.
async fn ingest_parts(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    path: &Path,
    spec: &InputSpec,
    gz: bool,
    part_size: u64,
) -> Result<ObjectUri, IngestError> {
    let folder = incoming.join(inputs::folder_name(spec));
    let shown = path.display().to_string();
    let local = |op: &'static str| {
        let shown = shown.clone();
        move |source: std::io::Error| IngestError::Store(StoreError::Local { op, uri: shown, source })
    };
    let sha256 = file_sha256(path).await?;
    let part_size = part_size_for(path, gz, part_size).map_err(local("read the size of"))?;
    if parts_current(store, incoming, spec, &sha256, part_size).await? {
        tracing::info!("{} is already in {}/ (same sha256 and part size)", path.display(), folder);
        remove_single_files(store, incoming, spec).await?;
        return Ok(folder);
    }
    let scratch = ScratchDir::new().map_err(local("make a scratch folder for"))?;
    let (source, scratch_dir) = (path.to_path_buf(), scratch.0.clone());
    let summary = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&source)?;
        let mut sink = crate::split::ParallelGzFiles::for_this_machine(&scratch_dir);
        crate::split::split(file, gz, part_size, &mut sink)?.written()
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r)
    .map_err(local("cut into parts"))?;
    if summary.source_sha256 != sha256 {
        return Err(local("read")(std::io::Error::other("the file changed while it was being ingested")));
    }
    let mut parts = Vec::with_capacity(summary.parts.len());
    for part in &summary.parts {
        let name = crate::split::part_name(part.index);
        // No object metadata: the manifest holds the digests and counts, and the local store
        // would keep metadata in a sidecar file that Spark, reading the folder, would take for data.
        store.put_file(&folder.join(&name), &part.done.path, &BTreeMap::new()).await?;
        parts.push(inputs::PartEntry {
            name,
            rows: part.rows,
            sha256: part.sha256.clone(),
            bytes: part.bytes,
            gz_sha256: part.done.gz_sha256.clone(),
            gz_bytes: part.done.gz_bytes,
        });
    }
    drop(scratch);
    let manifest = inputs::PartsManifest {
        input: spec.name.to_string(),
        source: inputs::SourceFile {
            name: path.file_name().and_then(|n| n.to_str()).unwrap_or(spec.name).to_string(),
            sha256,
            bytes: summary.source_bytes,
        },
        part_size_bytes: part_size,
        records: summary.records,
        parts,
    };
    let body = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    store.put_bytes(&folder.join(inputs::MANIFEST_NAME), bytes::Bytes::from(body)).await?;
    // Only now: until the new manifest is written, the old parts are what it describes.
    let listed = store.list(&ObjectUri::new(folder.bucket.clone(), format!("{}/", folder.key))).await?;
    for meta in listed {
        let name = meta.uri.file_name();
        if name != inputs::MANIFEST_NAME && !manifest.parts.iter().any(|p| p.name == name) {
            tracing::info!("removing {}: not a part of the new delivery", meta.uri);
            store.delete(&meta.uri).await?;
        }
    }
    remove_single_files(store, incoming, spec).await?;
    tracing::info!(
        "ingested {} as {} part(s) of {} record(s) in {}/",
        path.display(),
        manifest.parts.len(),
        manifest.records,
        folder
    );
    Ok(folder)
}

/// Removes the single-file copies of a split input (`<incoming>/movie_review.csv[.gz]`, the
/// layout before parts): the parts folder replaces them.
async fn remove_single_files(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    spec: &InputSpec,
) -> Result<(), IngestError> {
    for name in [spec.name.to_string(), format!("{}.gz", spec.name)] {
        let uri = incoming.join(&name);
        if store.head(&uri).await?.is_some() {
            store.delete(&uri).await?;
        }
    }
    Ok(())
}

/// Removes everything of an input under `<incoming>/` (its parts folder, its single files):
/// `run --raw-dir` with a folder that lacks the input.
pub async fn remove_input(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    spec: &InputSpec,
) -> Result<Vec<ObjectUri>, IngestError> {
    let mut removed = Vec::new();
    if inputs::SPLIT_INPUTS.contains(spec) {
        let folder = incoming.join(inputs::folder_name(spec));
        for meta in store.list(&ObjectUri::new(folder.bucket.clone(), format!("{}/", folder.key))).await? {
            store.delete(&meta.uri).await?;
            removed.push(meta.uri);
        }
    }
    for name in [spec.name.to_string(), format!("{}.gz", spec.name)] {
        let uri = incoming.join(&name);
        if store.head(&uri).await?.is_some() {
            store.delete(&uri).await?;
            removed.push(uri);
        }
    }
    Ok(removed)
}

/// Whether `<incoming>/` holds exactly what [`ingest`] of `files` at `part_size` would leave
/// there, and no input that is not among them: every split input's parts folder cut from a
/// file of the same sha256 at the same part size (all parts there, none stale, no single file
/// beside it), user_purchase under its name with the same sha256 (and a record count), and no
/// other input. Read-only: a backfill asks it before deciding that a date's earlier run used
/// these same files.
pub async fn already_ingested(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    files: &[PathBuf],
    part_size: u64,
) -> Result<bool, IngestError> {
    let mut expected = BTreeMap::new();
    for path in files {
        let Some((spec, gz)) = input_for(path) else { return Ok(false) };
        expected.insert(spec.name, (path.clone(), gz));
    }
    for spec in INPUTS {
        if inputs::SPLIT_INPUTS.contains(&spec) {
            match expected.get(spec.name) {
                Some((path, gz)) => {
                    let sha256 = file_sha256(path).await?;
                    let part_size = part_size_for(path, *gz, part_size).map_err(|source| StoreError::Local {
                        op: "read the size of",
                        uri: path.display().to_string(),
                        source,
                    })?;
                    if !parts_current(store, incoming, &spec, &sha256, part_size).await? {
                        return Ok(false);
                    }
                }
                None => {
                    let folder = incoming.join(inputs::folder_name(&spec));
                    let listed = store.list(&ObjectUri::new(folder.bucket.clone(), format!("{}/", folder.key))).await?;
                    if !listed.is_empty() {
                        return Ok(false);
                    }
                }
            }
            for name in [spec.name.to_string(), format!("{}.gz", spec.name)] {
                if store.head(&incoming.join(&name)).await?.is_some() {
                    return Ok(false);
                }
            }
            continue;
        }
        for name in [spec.name.to_string(), format!("{}.gz", spec.name)] {
            let meta = store.head(&incoming.join(&name)).await?;
            let wanted = expected.get(spec.name).filter(|(_, gz)| *gz == name.ends_with(".gz"));
            match (wanted, meta) {
                (None, None) => {}
                (Some((path, _)), Some(meta)) => {
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

/// About how many bytes of CSV a local vendor file holds, without reading it: its length, or
/// for a gzip file the size its trailer records (ISIZE: the last member's size modulo 2^32),
/// and never less than the compressed length. Only an estimate, for
/// [`crate::split::balanced_part_size`] (blocking).
pub fn estimated_csv_bytes(path: &Path, gz: bool) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    if !gz || length < 18 {
        return Ok(length);
    }
    file.seek(SeekFrom::End(-4))?;
    let mut trailer = [0u8; 4];
    file.read_exact(&mut trailer)?;
    Ok(u64::from(u32::from_le_bytes(trailer)).max(length))
}

/// The part size `ingest` cuts the vendor file `path` at: `part_size`, balanced for the file's
/// estimated size (blocking).
pub fn part_size_for(path: &Path, gz: bool, part_size: u64) -> std::io::Result<u64> {
    Ok(crate::split::balanced_part_size(part_size, estimated_csv_bytes(path, gz)?))
}

/// The sha256 of a local file, read in chunks (blocking).
pub fn sha256_of_path(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The sha256 of a local file, read in chunks.
async fn file_sha256(path: &Path) -> Result<String, IngestError> {
    let owned = path.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || sha256_of_path(&owned))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
    hashed.map_err(|e| StoreError::Local { op: "read", uri: path.display().to_string(), source: e }.into())
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

    const PART: u64 = 1 << 20;

    #[tokio::test]
    async fn uploads_checked_files_and_replaces_the_other_compression() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("drop");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("log_reviews.csv"), "id_review,log\n1,<reviewlog/>\n").unwrap();
        std::fs::write(src.join("user_purchase.csv"), "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n1,2,x,1,12/1/2010 8:26,1.5,17850,UK\n").unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let incoming = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();
        // The single-file layout of before, and user_purchase of the other compression.
        let stale = incoming.join("log_reviews.csv.gz");
        store.put_bytes(&stale, bytes::Bytes::from_static(b"old")).await.unwrap();
        let stale_purchases = incoming.join("user_purchase.csv.gz");
        store.put_bytes(&stale_purchases, bytes::Bytes::from_static(b"old")).await.unwrap();

        let files = files_in_dir(&src).unwrap();
        let done = ingest(&store, &incoming, &files, PART).await.unwrap();
        assert_eq!(done["log_reviews.csv"], incoming.join("log_reviews"));
        assert_eq!(done["user_purchase.csv"], incoming.join("user_purchase.csv"));
        assert!(store.head(&stale).await.unwrap().is_none());
        assert!(store.head(&stale_purchases).await.unwrap().is_none());
        assert_eq!(
            preflight::locate(&store, &incoming, &preflight::USER_PURCHASE).await.unwrap(),
            incoming.join("user_purchase.csv")
        );
        let purchases = store.head(&incoming.join("user_purchase.csv")).await.unwrap().unwrap();
        let csv_bytes = std::fs::metadata(src.join("user_purchase.csv")).unwrap().len().to_string();
        assert_eq!(purchases.metadata.get(CSV_BYTES_METADATA), Some(&csv_bytes), "the export is cut by it");
        match inputs::locate(&store, &incoming, &preflight::LOG_REVIEWS).await.unwrap() {
            inputs::Located::Parts { folder, manifest } => {
                assert_eq!(folder, incoming.join("log_reviews"));
                assert_eq!(manifest.parts.len(), 1);
                inputs::check_parts(&store, &folder, &manifest).await.unwrap();
            }
            other => panic!("{other:?}"),
        }
    }

    /// The parts of a folder, decompressed, in order.
    async fn parts_text(store: &LocalStore, folder: &ObjectUri) -> Vec<String> {
        let mut out = Vec::new();
        for meta in store.list(&ObjectUri::new(folder.bucket.clone(), format!("{}/", folder.key))).await.unwrap() {
            if meta.uri.file_name().starts_with("part-") {
                let bytes = store.get_bytes(&meta.uri).await.unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
                out.push(text);
            }
        }
        out
    }

    #[tokio::test]
    async fn cuts_vendor_files_into_parts_and_a_redelivery_replaces_every_old_part() {
        let dir = tempfile::tempdir().unwrap();
        let header = "cid,review_str,id_review\n";
        let body: String = (0..40).map(|i| format!("{i},\"line one\nsaid \"\"good\"\", {i}\",{i}\n")).collect();
        let file = dir.path().join("movie_review.csv");
        std::fs::write(&file, format!("{header}{body}")).unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        let incoming = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();
        let done = ingest(&store, &incoming, std::slice::from_ref(&file), 300).await.unwrap();
        let folder = &done["movie_review.csv"];
        let parts = parts_text(&store, folder).await;
        assert!(parts.len() >= 5, "{}", parts.len());
        let rejoined: String = parts.iter().map(|p| p.strip_prefix(header).unwrap()).collect();
        assert_eq!(rejoined, body);
        let inputs::Located::Parts { manifest, .. } =
            inputs::locate(&store, &incoming, &preflight::MOVIE_REVIEW).await.unwrap()
        else {
            panic!("parts")
        };
        assert_eq!(manifest.records, 40);
        assert_eq!(manifest.parts.iter().map(|p| p.rows).sum::<u64>(), 40);
        assert_eq!(manifest.source.sha256, sha256_of_path(&file).unwrap());
        assert_eq!(manifest.source.bytes, std::fs::metadata(&file).unwrap().len());
        let before = parts.len();

        // Re-delivered smaller: fewer parts, and none of the old ones left behind.
        std::fs::write(&file, format!("{header}1,short,1\n")).unwrap();
        ingest(&store, &incoming, std::slice::from_ref(&file), 300).await.unwrap();
        let parts = parts_text(&store, folder).await;
        assert_eq!(parts, vec![format!("{header}1,short,1\n")], "{before} parts before");
        assert!(already_ingested(&store, &incoming, std::slice::from_ref(&file), 300).await.unwrap());
        assert!(
            already_ingested(&store, &incoming, std::slice::from_ref(&file), 301).await.unwrap(),
            "another part size that cuts the file the same way (one part of 36 bytes)"
        );
        assert!(
            !already_ingested(&store, &incoming, std::slice::from_ref(&file), 10).await.unwrap(),
            "a part size that cuts it otherwise"
        );
    }

    #[test]
    fn the_csv_size_of_a_gzip_file_comes_from_its_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let text = "cid,review_str,id_review\n".repeat(1000);
        let plain = dir.path().join("a.csv");
        std::fs::write(&plain, &text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let zipped = dir.path().join("a.csv.gz");
        std::fs::write(&zipped, gz.finish().unwrap()).unwrap();
        assert_eq!(estimated_csv_bytes(&plain, false).unwrap(), text.len() as u64);
        assert_eq!(estimated_csv_bytes(&zipped, true).unwrap(), text.len() as u64);
        // Not gzip after all (a trailer of garbage): never less than the bytes on disk.
        let short = dir.path().join("b.csv.gz");
        std::fs::write(&short, [0u8; 40]).unwrap();
        assert_eq!(estimated_csv_bytes(&short, true).unwrap(), 40);
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
        let done = ingest(&store, &incoming, std::slice::from_ref(&file), PART).await.unwrap();
        let folder = &done["movie_review.csv"];
        let manifest: inputs::PartsManifest =
            serde_json::from_slice(&store.get_bytes(&folder.join(inputs::MANIFEST_NAME)).await.unwrap()).unwrap();
        assert_eq!(manifest.records, 2);
        assert_eq!(manifest.parts[0].rows, 2);
        assert_eq!(manifest.source.sha256, sha256_of_path(&file).unwrap());
        // The folder the job reads holds parts only (and the manifest, which Spark skips).
        let names: Vec<String> = std::fs::read_dir(dir.path().join("lake/raw/incoming/dt=2021-10-31/movie_review"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("part-") && n.ends_with(".csv.gz") || n == "_manifest.json"),
            "{names:?}"
        );
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
        let err = ingest(&store, &incoming, &[good, bad.clone()], PART).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&bad.display().to_string()) && message.contains("review_str"), "{message}");
        assert_eq!(err.exit_code(), ExitCode::BadInput);
        assert!(store.list(&ObjectUri::parse("s3://raw/").unwrap()).await.unwrap().is_empty());
    }
}
