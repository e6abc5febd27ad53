//! Run-scoped staging outputs and the one pointer per date that publishes them (issue #11,
//! "state keyed like the data").
//!
//! Every run writes its staging outputs under `<dataset>/dt=D/run=<run id>/` (plan.rs
//! `LakeUris`), so two runs of one date never write the same folder. A step's outputs are
//! recorded in the manifest with a write id (sha256 over the listing: every object's key, size
//! and modification time) once the step completed and every output folder has its completion
//! marker (Spark's `_SUCCESS`); a rerun reuses a step only when the store still holds exactly
//! what was recorded. After every step succeeded and the counts were checked, the driver
//! writes `_published/dt=D.json` (compare-and-swap against the pointer it read), naming the run
//! and every output with its write id. Readers of "the date's data" (the warehouse load,
//! Spectrum) go through that pointer, never a bare date folder.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ExitCode, ExitStatus};
use crate::pipeline::steps;
use crate::plan::LakeUris;
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// Spark's completion marker, written after every part file of the write was committed.
pub const SUCCESS: &str = "_SUCCESS";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{uri} has no {marker}: step {step} ended COMPLETED but its write did not finish (a job killed mid-write, \
         or files removed since); rerun the date (`emr-driver run --force` to redo every step)"
    )]
    Incomplete { step: String, uri: String, marker: String },
    #[error("step {step} has no recorded outputs in the manifest, so nothing can be published for it; rerun the date")]
    Unrecorded { step: String },
    #[error(
        "{uri} changed after run {run_id} recorded it (write id {recorded}, now {now}): another process wrote or \
         removed files in a run's folder; rerun the date to rebuild and publish it again"
    )]
    Changed { run_id: String, uri: String, recorded: String, now: String },
    #[error(
        "the date's pointer {pointer} changed while run {run_id} published it (another run of the date wrote it): \
         nothing was loaded; check `emr-driver status` and rerun the date"
    )]
    Raced { pointer: String, run_id: String },
    #[error("the date's pointer {pointer} {found} instead of run {run_id}: nothing was loaded; rerun the date")]
    NotPublished { pointer: String, run_id: String, found: String },
    #[error("the date's pointer {pointer} is not readable JSON ({reason}); rerun the date to write it again")]
    BadPointer { pointer: String, reason: String },
}

impl ExitStatus for PublishError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PublishError::Store(e) => e.exit_code(),
            PublishError::Raced { .. } => ExitCode::LockHeld,
            _ => ExitCode::Internal,
        }
    }
}

/// One output folder of a step: its name in the manifest and pointer, where it is, and the
/// object whose presence says the write finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub uri: ObjectUri,
    pub marker: String,
}

/// What the manifest and the pointer record of one output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The folder, `s3://<staging>/<dataset>/dt=D/run=<run id>` (no trailing slash).
    pub uri: String,
    /// `sha256:<hex>` over the sorted listing (key below the folder, size, modification time).
    pub write_id: String,
    pub files: usize,
    pub bytes: u64,
}

/// The outputs of one step, by name.
pub type StepOutputs = BTreeMap<String, OutputRecord>;

/// The published pointer of a date: `s3://<staging>/_published/dt=D.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub run_date: String,
    pub run_id: String,
    /// The run's manifest.
    pub manifest: String,
    pub published_at: DateTime<Utc>,
    /// The folder the warehouse load reads (`warehouse_load/dt=D/run=<run id>`).
    pub load_root: String,
    /// Every output of every step of the run, by name (`classified_movie_review`,
    /// `warehouse_load/dim_os`, `dims/dim_os`, `_metrics/parse_logs`...).
    pub outputs: StepOutputs,
}

impl Published {
    /// The folder of one output, by name.
    pub fn uri_of(&self, name: &str) -> Option<&str> {
        self.outputs.get(name).map(|o| o.uri.as_str())
    }
}

fn folder(uri: &str) -> Result<ObjectUri, StoreError> {
    ObjectUri::parse(uri.trim_end_matches('/'))
}

fn output(name: impl Into<String>, uri: &str) -> Result<Output, StoreError> {
    Ok(Output { name: name.into(), uri: folder(uri)?, marker: SUCCESS.to_string() })
}

/// The output folders step `key` writes (empty for a step that writes none, e.g. `deploy`):
/// what the table of steps says it writes (`pipeline::steps`), and a Spark step's metrics.
pub fn step_outputs(uris: &LakeUris, key: &str) -> Result<Vec<Output>, StoreError> {
    let mut out = Vec::new();
    for dataset in steps::writes(key) {
        for (name, uri) in dataset.folders(uris) {
            // The driver's user_purchase export too ends with `_SUCCESS`, after its parts.
            out.push(output(name, &uri)?);
        }
    }
    if let Some(uri) = uris.metrics.get(key) {
        out.push(output(format!("_metrics/{key}"), uri)?);
    }
    Ok(out)
}

/// The write id of what is in `folder` now: `None` when the folder is empty.
async fn current(
    store: &dyn ObjectStore,
    folder: &ObjectUri,
) -> Result<Option<(OutputRecord, Vec<String>)>, StoreError> {
    // The trailing slash keeps a sibling folder whose name starts the same (`run=r1` and
    // `run=r10`) out of the listing.
    let prefix = folder.join("");
    let listing = store.list(&prefix).await?;
    if listing.is_empty() {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    let mut names = Vec::new();
    let mut bytes = 0;
    for meta in &listing {
        let rel = meta.uri.key.strip_prefix(&prefix.key).unwrap_or(&meta.uri.key);
        let modified = meta.last_modified.map(|t| t.to_rfc3339()).unwrap_or_default();
        hasher.update(format!("{rel}\t{}\t{modified}\n", meta.size).as_bytes());
        bytes += meta.size;
        names.push(rel.to_string());
    }
    let record = OutputRecord {
        uri: folder.to_string().trim_end_matches('/').to_string(),
        write_id: format!("sha256:{}", hex::encode(hasher.finalize())),
        files: listing.len(),
        bytes,
    };
    Ok(Some((record, names)))
}

/// Records the outputs of step `key`, which just completed: every folder must hold its
/// completion marker (a write that did not finish is never recorded, so never reused or
/// published).
pub async fn record(store: &dyn ObjectStore, uris: &LakeUris, key: &str) -> Result<StepOutputs, PublishError> {
    let mut recorded = StepOutputs::new();
    for out in step_outputs(uris, key)? {
        let incomplete =
            || PublishError::Incomplete { step: key.to_string(), uri: out.uri.to_string(), marker: out.marker.clone() };
        let (record, names) = current(store, &out.uri).await?.ok_or_else(incomplete)?;
        if !names.contains(&out.marker) {
            return Err(incomplete());
        }
        recorded.insert(out.name.clone(), record);
    }
    Ok(recorded)
}

/// Why the recorded outputs are not what the store holds now (`None`: they are exactly it).
pub async fn differs(store: &dyn ObjectStore, recorded: &StepOutputs) -> Result<Option<String>, StoreError> {
    for (name, before) in recorded {
        let now = current(store, &folder(&before.uri)?).await?;
        match now {
            None => return Ok(Some(format!("{name} ({}) is gone", before.uri))),
            Some((now, _)) if now.write_id != before.write_id => {
                return Ok(Some(format!(
                    "{name} ({}) was rewritten (write id {} recorded, {} now)",
                    before.uri, before.write_id, now.write_id
                )))
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Fails with [`PublishError::Changed`] unless every output is still what `run_id` recorded.
pub async fn check_unchanged(
    store: &dyn ObjectStore,
    run_id: &str,
    recorded: &StepOutputs,
) -> Result<(), PublishError> {
    for before in recorded.values() {
        let now = current(store, &folder(&before.uri)?).await?;
        let now_id = now.map(|(r, _)| r.write_id).unwrap_or_else(|| "nothing (removed)".into());
        if now_id != before.write_id {
            return Err(PublishError::Changed {
                run_id: run_id.to_string(),
                uri: before.uri.clone(),
                recorded: before.write_id.clone(),
                now: now_id,
            });
        }
    }
    Ok(())
}

/// `s3://<staging>/_published/dt=D.json`.
pub fn pointer_uri(staging_bucket: &str, run_date: &str) -> ObjectUri {
    ObjectUri::new(staging_bucket, format!("_published/dt={run_date}.json"))
}

/// The date's pointer, if any.
pub async fn read_pointer(store: &dyn ObjectStore, pointer: &ObjectUri) -> Result<Option<Published>, PublishError> {
    if store.head(pointer).await?.is_none() {
        return Ok(None);
    }
    let bytes = store.get_bytes(pointer).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PublishError::BadPointer { pointer: pointer.to_string(), reason: e.to_string() })
}

/// Writes the pointer in one atomic put, compare-and-swap against the version read just
/// before (create-if-absent when there is none): a second writer of the date (a run whose lock
/// was taken over) fails instead of being silently overwritten. Checks first that every output
/// is still what the run recorded. Returns the pointer it replaced.
pub async fn publish(
    store: &dyn ObjectStore,
    pointer: &ObjectUri,
    published: &Published,
) -> Result<Option<Published>, PublishError> {
    check_unchanged(store, &published.run_id, &published.outputs).await?;
    let body = Bytes::from(serde_json::to_vec_pretty(published).expect("the pointer serialises"));
    let raced = || PublishError::Raced { pointer: pointer.to_string(), run_id: published.run_id.clone() };
    match store.get_versioned(pointer).await? {
        Some(before) => {
            // An unreadable pointer is replaced (under the date's lock, by the compare-and-swap).
            let previous = serde_json::from_slice::<Published>(&before.body).ok();
            store.put_if_match(pointer, body, &before.etag).await?.ok_or_else(raced)?;
            Ok(previous)
        }
        None => {
            if !store.put_if_absent(pointer, body).await? {
                return Err(raced());
            }
            Ok(None)
        }
    }
}

/// The pointer of the date, required to name `run_id`, with every output it names unchanged:
/// what a reader of the run's published data (the warehouse load, Spectrum) calls first.
pub async fn published_run(
    store: &dyn ObjectStore,
    pointer: &ObjectUri,
    run_id: &str,
) -> Result<Published, PublishError> {
    let not =
        |found: String| PublishError::NotPublished { pointer: pointer.to_string(), run_id: run_id.to_string(), found };
    let published = read_pointer(store, pointer).await?.ok_or_else(|| not("does not exist".into()))?;
    if published.run_id != run_id {
        return Err(not(format!("names run {}", published.run_id)));
    }
    check_unchanged(store, run_id, &published.outputs).await?;
    Ok(published)
}

/// The `run=` folder of an output, split: (`<dataset>/dt=D`, run id).
fn run_folder(uri: &ObjectUri) -> Option<(ObjectUri, String)> {
    let (date_folder, rest) = uri.key.split_once("/run=")?;
    let run = rest.split('/').next().unwrap_or("").to_string();
    Some((ObjectUri::new(uri.bucket.clone(), date_folder), run))
}

/// After `published` was published (and loaded): deletes the date's run folders of every
/// other run, in every dataset the pointer names, except the dimension snapshots (they are the
/// id registry every later run extends, and small). Nothing the pointer names is touched: only
/// `run=<other id>/` folders beside the published `run=<id>/`. Returns the folders removed.
pub async fn remove_superseded(store: &dyn ObjectStore, published: &Published) -> Result<Vec<String>, StoreError> {
    let mut date_folders = BTreeSet::new();
    for (name, out) in &published.outputs {
        if name.starts_with("dims/") {
            continue;
        }
        if let Some((date_folder, run)) = run_folder(&folder(&out.uri)?) {
            if run == published.run_id {
                date_folders.insert(date_folder);
            }
        }
    }
    let mut removed = BTreeSet::new();
    for date_folder in date_folders {
        let prefix = ObjectUri::new(date_folder.bucket.clone(), format!("{}/run=", date_folder.key));
        for meta in store.list(&prefix).await? {
            let rest = &meta.uri.key[prefix.key.len()..];
            let run = rest.split('/').next().unwrap_or("");
            if run.is_empty() || run == published.run_id || !rest.contains('/') {
                continue;
            }
            store.delete(&meta.uri).await?;
            removed.insert(format!("s3://{}/{}{run}", meta.uri.bucket, prefix.key));
        }
    }
    Ok(removed.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        (dir, store)
    }

    async fn put(store: &LocalStore, uri: &str, body: &'static str) {
        store.put_bytes(&ObjectUri::parse(uri).unwrap(), Bytes::from_static(body.as_bytes())).await.unwrap();
    }

    fn outputs(uri: &str) -> Vec<Output> {
        vec![output("x", uri).unwrap()]
    }

    #[tokio::test]
    async fn the_write_id_follows_the_files_and_needs_the_marker() {
        let (_dir, store) = store();
        let uri = "s3://st/x/dt=2021-10-31/run=r1";
        put(&store, &format!("{uri}/part-0"), "abc").await;
        let out = &outputs(uri)[0];
        assert!(current(&store, &out.uri).await.unwrap().unwrap().1.iter().all(|n| n != SUCCESS));
        put(&store, &format!("{uri}/_SUCCESS"), "").await;
        let (first, _) = current(&store, &out.uri).await.unwrap().unwrap();
        assert_eq!(first.files, 2);
        assert_eq!(first.bytes, 3);
        // A sibling run's folder whose id shares the prefix is not part of this one.
        put(&store, "s3://st/x/dt=2021-10-31/run=r10/part-0", "zzzz").await;
        assert_eq!(current(&store, &out.uri).await.unwrap().unwrap().0, first);
        let recorded: StepOutputs = [("x".to_string(), first.clone())].into();
        assert_eq!(differs(&store, &recorded).await.unwrap(), None);
        put(&store, &format!("{uri}/part-1"), "d").await;
        let why = differs(&store, &recorded).await.unwrap().unwrap();
        assert!(why.contains("rewritten"), "{why}");
        for key in ["part-0", "part-1", "_SUCCESS"] {
            store.delete(&ObjectUri::parse(&format!("{uri}/{key}")).unwrap()).await.unwrap();
        }
        assert!(differs(&store, &recorded).await.unwrap().unwrap().contains("gone"));
    }

    #[tokio::test]
    async fn the_pointer_is_swapped_only_from_the_version_read_and_cleanup_spares_it() {
        let (_dir, store) = store();
        let make = |run: &str| {
            let uri = format!("s3://st/fact/dt=2021-10-31/run={run}");
            (uri.clone(), format!("{uri}/part-0"), format!("{uri}/_SUCCESS"))
        };
        let mut published = Vec::new();
        for run in ["a", "b"] {
            let (uri, part, marker) = make(run);
            put(&store, &part, "1").await;
            put(&store, &marker, "").await;
            let (record, _) = current(&store, &folder(&uri).unwrap()).await.unwrap().unwrap();
            published.push(Published {
                run_date: "2021-10-31".into(),
                run_id: run.into(),
                manifest: format!("s3://st/_runs/{run}.json"),
                published_at: Utc::now(),
                load_root: String::new(),
                outputs: [("fact".to_string(), record)].into(),
            });
        }
        let pointer = pointer_uri("st", "2021-10-31");
        assert_eq!(publish(&store, &pointer, &published[0]).await.unwrap(), None);
        let previous = publish(&store, &pointer, &published[1]).await.unwrap().unwrap();
        assert_eq!(previous.run_id, "a");
        assert_eq!(published_run(&store, &pointer, "b").await.unwrap().run_id, "b");
        assert!(matches!(published_run(&store, &pointer, "a").await, Err(PublishError::NotPublished { .. })));
        let removed = remove_superseded(&store, &published[1]).await.unwrap();
        assert_eq!(removed, vec!["s3://st/fact/dt=2021-10-31/run=a".to_string()]);
        assert!(store.head(&ObjectUri::parse(&make("b").1).unwrap()).await.unwrap().is_some());
        assert!(store.head(&ObjectUri::parse(&make("a").1).unwrap()).await.unwrap().is_none());
        // What the pointer names is still whole.
        published_run(&store, &pointer, "b").await.unwrap();
        // Publishing a run whose outputs changed since they were recorded is refused.
        put(&store, &make("b").1, "22").await;
        assert!(matches!(publish(&store, &pointer, &published[1]).await, Err(PublishError::Changed { .. })));
    }
}
