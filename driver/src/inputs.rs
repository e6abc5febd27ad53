//! A run's inputs, found before the plan is resolved (issue #13), so that `render` and
//! `run --dry-run` show the run id, step names and URIs the run will use.
//!
//! The vendor files movie_review and log_reviews are in the raw bucket as folders of
//! record-aligned gzipped parts with a manifest (`incoming/dt=D/movie_review/part-00000.csv.gz`,
//! ..., `_manifest.json`; see [`crate::ingest`]); what identifies them is their parts' digests.
//! A vendor file put there by other means than `emr-driver ingest` (`aws s3 cp movie_review.csv
//! incoming/dt=D/`) is still read, as one file (one Spark task), identified by its sha256
//! metadata or its size and modification time. user_purchase is one file (the driver reads it)
//! or the source database.
//!
//! [`from_store`] reads the bucket (read-only: a manifest and a few HEADs); [`from_dir`] computes
//! what `ingest` of a local folder would write, without writing anything (the parts' digests
//! come from the same splitter).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::preflight::{self, InputSpec, PreflightError, Problem};
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// The manifest of an input's parts, beside them. Starts with `_`: Spark and the jobs' reader
/// skip it as they skip `_SUCCESS`.
pub const MANIFEST_NAME: &str = "_manifest.json";

/// The inputs Spark reads, cut into parts at ingest.
pub const SPLIT_INPUTS: [InputSpec; 2] = [preflight::MOVIE_REVIEW, preflight::LOG_REVIEWS];

/// `movie_review` for `movie_review.csv`: the folder of the input's parts.
pub fn folder_name(spec: &InputSpec) -> &'static str {
    spec.name.trim_end_matches(".csv")
}

/// `_manifest.json` of an input's parts: what ingest cut, from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsManifest {
    /// The vendor input, e.g. `movie_review.csv`.
    pub input: String,
    /// The file as delivered.
    pub source: SourceFile,
    /// `ingest.part_size_mb` in bytes when it was cut.
    pub part_size_bytes: u64,
    /// Records after the header over all parts (the driver's own count: the run compares it
    /// with the jobs' `rows_in`).
    pub records: u64,
    pub parts: Vec<PartEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The file name as delivered (`movie_review.csv.gz`).
    pub name: String,
    /// sha256 of the file as delivered (compressed, if it was).
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// `part-00000.csv.gz`.
    pub name: String,
    /// Records after the part's header.
    pub rows: u64,
    /// sha256 of the part's CSV (uncompressed, header included): what identifies its content.
    pub sha256: String,
    /// Uncompressed bytes, header included.
    pub bytes: u64,
    /// sha256 and size of the gzipped object as stored.
    pub gz_sha256: String,
    pub gz_bytes: u64,
}

/// One input as the run will read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundInput {
    /// What the job reads: the folder of parts, or one file put in the bucket by other means.
    pub uri: String,
    /// Records counted by the driver at ingest (none for a file not ingested by it).
    pub records: Option<u64>,
    /// What identifies the content, one line per part (or for the one file).
    pub digests: Vec<String>,
}

/// Everything that identifies a run's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inputs {
    pub movie_review: BoundInput,
    pub log_reviews: BoundInput,
    /// The user_purchase file among the vendor files, if there is one.
    pub user_purchase: Option<BoundInput>,
    /// The source database (URL without credentials), when the run is given one.
    pub database: Option<String>,
}

impl Inputs {
    /// The text folded into the run id.
    pub fn fingerprint(&self) -> String {
        let mut lines = Vec::new();
        for (name, input) in [
            ("movie_review", Some(&self.movie_review)),
            ("log_reviews", Some(&self.log_reviews)),
            ("user_purchase", self.user_purchase.as_ref()),
        ] {
            if let Some(input) = input {
                for digest in &input.digests {
                    lines.push(format!("{name} {} {digest}", input.uri));
                }
            }
        }
        if let Some(url) = &self.database {
            lines.push(format!("user_purchase=database {url}"));
        }
        lines.join("\n")
    }
}

/// The inputs a plan is resolved with: found, or not there yet (with why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BoundInputs {
    Bound(Inputs),
    /// Not found (not ingested yet, or unreadable): the run id is of the configuration and
    /// code alone; the run binds the inputs once it has ingested them.
    NotYet {
        reason: String,
    },
}

impl BoundInputs {
    pub fn not_yet(reason: impl Into<String>) -> Self {
        BoundInputs::NotYet { reason: reason.into() }
    }

    pub fn bound(&self) -> Option<&Inputs> {
        match self {
            BoundInputs::Bound(inputs) => Some(inputs),
            BoundInputs::NotYet { .. } => None,
        }
    }
}

/// Where an input is in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Cut into parts by `ingest`: the folder and its manifest.
    Parts { folder: ObjectUri, manifest: PartsManifest },
    /// One file put there by other means.
    File(ObjectUri),
}

impl Located {
    /// The URI the job reads.
    pub fn uri(&self) -> String {
        match self {
            Located::Parts { folder, .. } => folder.to_string(),
            Located::File(uri) => uri.to_string(),
        }
    }
}

fn unusable(uri: &ObjectUri, problem: Problem) -> PreflightError {
    PreflightError::Unusable { uri: uri.to_string(), problem }
}

/// Finds a split input under `incoming`: its parts folder (with a manifest), or one vendor file
/// (`.csv` or `.csv.gz`); both at once is ambiguous.
pub async fn locate(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    spec: &InputSpec,
) -> Result<Located, PreflightError> {
    let folder = incoming.join(folder_name(spec));
    let manifest_uri = folder.join(MANIFEST_NAME);
    let manifest = match store.get_bytes(&manifest_uri).await {
        Ok(bytes) => Some(serde_json::from_slice::<PartsManifest>(&bytes).map_err(|e| {
            unusable(
                &manifest_uri,
                Problem::Parts(format!("the manifest of the parts is unreadable ({e}); ingest the file again")),
            )
        })?),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let file = match preflight::locate(store, incoming, spec).await {
        Ok(uri) => Some(uri),
        Err(PreflightError::Unusable { problem: Problem::Missing, .. }) => None,
        Err(e) => return Err(e),
    };
    match (manifest, file) {
        (Some(manifest), None) => Ok(Located::Parts { folder, manifest }),
        (None, Some(file)) => Ok(Located::File(file)),
        (Some(_), Some(file)) => Err(unusable(
            &file,
            Problem::Parts(format!(
                "both {file} and the parts folder {folder}/ exist; ingest the file again (that removes the single \
                 file) or delete one of them"
            )),
        )),
        (None, None) => Err(unusable(&incoming.join(spec.name), Problem::Missing)),
    }
}

/// Checks that a parts folder holds exactly its manifest's parts (none missing, none stale,
/// each of the recorded size).
pub async fn check_parts(
    store: &dyn ObjectStore,
    folder: &ObjectUri,
    manifest: &PartsManifest,
) -> Result<(), PreflightError> {
    let listed = store.list(&ObjectUri::new(folder.bucket.clone(), format!("{}/", folder.key))).await?;
    for part in &manifest.parts {
        match listed.iter().find(|m| m.uri.file_name() == part.name) {
            None => {
                return Err(unusable(
                    &folder.join(&part.name),
                    Problem::Parts("the part is in the manifest but not in the bucket; ingest the file again".into()),
                ))
            }
            Some(meta) if meta.size != part.gz_bytes => {
                return Err(unusable(
                    &meta.uri,
                    Problem::Parts(format!(
                        "the part is {} bytes, its manifest says {}; ingest the file again",
                        meta.size, part.gz_bytes
                    )),
                ))
            }
            Some(_) => {}
        }
    }
    for meta in &listed {
        let name = meta.uri.file_name();
        let data = !name.starts_with('_') && !name.starts_with('.');
        if data && !manifest.parts.iter().any(|p| p.name == name) {
            return Err(unusable(
                &meta.uri,
                Problem::Parts(
                    "this file is not in the folder's manifest (a stale part?) and the job would read it; ingest \
                     the file again"
                        .into(),
                ),
            ));
        }
    }
    if manifest.parts.is_empty() {
        return Err(unusable(folder, Problem::Empty));
    }
    Ok(())
}

/// What identifies an input in the bucket.
pub async fn bound_input(store: &dyn ObjectStore, located: &Located) -> Result<BoundInput, PreflightError> {
    Ok(match located {
        Located::Parts { folder, manifest } => parts_input(folder, manifest),
        Located::File(uri) => file_input(store, uri).await?,
    })
}

fn parts_input(folder: &ObjectUri, manifest: &PartsManifest) -> BoundInput {
    BoundInput {
        uri: folder.to_string(),
        records: Some(manifest.records),
        digests: manifest.parts.iter().map(|p| part_digest(&p.name, p.rows, &p.sha256)).collect(),
    }
}

fn part_digest(name: &str, rows: u64, sha256: &str) -> String {
    format!("{name} rows:{rows} sha256:{sha256}")
}

/// A single file: its sha256 (recorded by `ingest`), else its size and modification time.
async fn file_input(store: &dyn ObjectStore, uri: &ObjectUri) -> Result<BoundInput, PreflightError> {
    let meta = store.head(uri).await?.ok_or_else(|| unusable(uri, Problem::Missing))?;
    let digest = match meta.metadata.get(crate::ingest::SHA256_METADATA) {
        Some(sha) => format!("{} sha256:{sha}", uri.file_name()),
        None => format!(
            "{} size:{} modified:{}",
            uri.file_name(),
            meta.size,
            meta.last_modified.map(|t| t.to_rfc3339()).unwrap_or_default()
        ),
    };
    let records = meta.metadata.get(crate::ingest::RECORDS_METADATA).and_then(|n| n.parse().ok());
    Ok(BoundInput { uri: uri.to_string(), records, digests: vec![digest] })
}

/// The inputs in the bucket under `incoming` (read-only), with what was located (for the
/// preflight's checks) and the user_purchase file, if any.
pub async fn read_store(
    store: &dyn ObjectStore,
    incoming: &ObjectUri,
    database: Option<&str>,
) -> Result<(Inputs, [Located; 2], Option<ObjectUri>), PreflightError> {
    let movie_review = locate(store, incoming, &preflight::MOVIE_REVIEW).await?;
    let log_reviews = locate(store, incoming, &preflight::LOG_REVIEWS).await?;
    let purchases = match preflight::locate(store, incoming, &preflight::USER_PURCHASE).await {
        Ok(uri) => Some(uri),
        Err(PreflightError::Unusable { problem: Problem::Missing, .. }) => None,
        Err(e) => return Err(e),
    };
    let user_purchase = match &purchases {
        Some(uri) => Some(BoundInput { records: None, ..file_input(store, uri).await? }),
        None => None,
    };
    let inputs = Inputs {
        movie_review: bound_input(store, &movie_review).await?,
        log_reviews: bound_input(store, &log_reviews).await?,
        user_purchase,
        database: database.map(crate::db::redact_url),
    };
    Ok((inputs, [movie_review, log_reviews], purchases))
}

/// The inputs in the bucket, or why they are not there (for `render`: never an error).
pub async fn from_store(store: &dyn ObjectStore, incoming: &ObjectUri, database: Option<&str>) -> BoundInputs {
    match read_store(store, incoming, database).await {
        Ok((inputs, _, _)) => BoundInputs::Bound(inputs),
        Err(e) => BoundInputs::not_yet(e.to_string()),
    }
}

/// What the bucket will hold once `ingest` has put the vendor files of `dir` under
/// `incoming`: the same parts' digests, computed without writing (or uploading) anything. Any
/// problem (a missing or unreadable file) is "not yet": the run's ingest reports it.
pub async fn from_dir(dir: &Path, incoming: &ObjectUri, part_size: u64, database: Option<&str>) -> BoundInputs {
    let dir = dir.to_path_buf();
    let incoming = incoming.clone();
    let database = database.map(crate::db::redact_url);
    let computed = tokio::task::spawn_blocking(move || dir_inputs(&dir, &incoming, part_size, database)).await;
    match computed {
        Ok(Ok(inputs)) => BoundInputs::Bound(inputs),
        Ok(Err(reason)) => BoundInputs::not_yet(reason),
        Err(e) => BoundInputs::not_yet(e.to_string()),
    }
}

fn dir_inputs(dir: &Path, incoming: &ObjectUri, part_size: u64, database: Option<String>) -> Result<Inputs, String> {
    let files = crate::ingest::files_in_dir(dir).map_err(|e| e.to_string())?;
    let find =
        |spec: &InputSpec| files.iter().find(|f| crate::ingest::input_for(f).is_some_and(|(s, _)| s.name == spec.name));
    let mut paths = Vec::new();
    for spec in SPLIT_INPUTS {
        paths.push(find(&spec).ok_or_else(|| format!("{} is not in {}", spec.name, dir.display()))?);
    }
    let purchases = find(&preflight::USER_PURCHASE);
    // Each file on a thread of its own: every one is a read, gunzip and hash on one core, and
    // this pass comes before the run starts anything else (1M reviews and logs: 2.3 s one after
    // the other).
    let (split, user_purchase) = std::thread::scope(|scope| {
        let split: Vec<_> = SPLIT_INPUTS
            .iter()
            .zip(&paths)
            .map(|(spec, path)| scope.spawn(move || split_input(spec, path, incoming, part_size)))
            .collect();
        let user_purchase = purchases.map(|path| scope.spawn(move || whole_file_input(path, incoming)));
        let split: Result<Vec<BoundInput>, String> = split.into_iter().map(joined).collect();
        (split, user_purchase.map(joined).transpose())
    });
    let (mut split, user_purchase) = (split?, user_purchase?);
    let log_reviews = split.pop().expect("two split inputs");
    let movie_review = split.pop().expect("two split inputs");
    Ok(Inputs { movie_review, log_reviews, user_purchase, database })
}

/// A thread's result; a panic becomes an error (it is a bug, said as one).
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    handle.join().unwrap_or_else(|_| Err("the thread reading an input panicked (a bug: please report it)".into()))
}

/// What ingesting a vendor file will put in the bucket: its parts' digests and its records.
fn split_input(spec: &InputSpec, path: &Path, incoming: &ObjectUri, part_size: u64) -> Result<BoundInput, String> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let part_size =
        crate::ingest::part_size_for(path, gz, part_size).map_err(|e| format!("{}: {e}", path.display()))?;
    let summary = crate::split::split(file, gz, part_size, &mut crate::split::Discard)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(BoundInput {
        uri: incoming.join(folder_name(spec)).to_string(),
        records: Some(summary.records),
        digests: summary
            .parts
            .iter()
            .map(|p| part_digest(&crate::split::part_name(p.index), p.rows, &p.sha256))
            .collect(),
    })
}

/// The user_purchase file as ingest copies it: one object, its digest.
fn whole_file_input(path: &Path, incoming: &ObjectUri) -> Result<BoundInput, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let sha = crate::ingest::sha256_of_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(BoundInput {
        uri: incoming.join(&name).to_string(),
        records: None,
        digests: vec![format!("{name} sha256:{sha}")],
    })
}

/// The inputs a run of `date` will read, found before its plan is resolved: with `raw_dir`,
/// what ingesting that folder will put in the bucket (the parts' digests, computed without
/// writing anything); otherwise what the raw bucket's incoming folder holds (read-only). Not
/// being able to tell (not ingested yet, the bucket unreachable) is "not yet", with why.
pub async fn find(
    config: &crate::config::Config,
    date: &str,
    raw_dir: Option<&Path>,
    database_url: Option<&str>,
    project_root: &Path,
) -> Result<BoundInputs, crate::plan::PlanError> {
    let date = crate::plan::parse_run_date(date)?.format("%Y-%m-%d").to_string();
    let incoming = ObjectUri::parse(&crate::plan::LakeUris::new(config, &date, "").incoming)
        .map_err(|e| crate::plan::PlanError::Inputs(e.to_string()))?;
    let database_url = database_url.filter(|u| !u.trim().is_empty());
    Ok(match raw_dir {
        Some(dir) => from_dir(dir, &incoming, config.ingest.part_size_bytes(), database_url).await,
        None => {
            let store = crate::backend::Backend::for_config(config, project_root).await.store;
            from_store(store.as_ref(), &incoming, database_url).await
        }
    })
}
