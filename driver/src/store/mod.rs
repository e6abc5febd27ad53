//! The object store: one trait, an S3 implementation and a local-folder one.
//!
//! Locally, `s3://<bucket>/<key>` is the file `<lake_dir>/<bucket>/<key>`, so every URI the
//! pipeline renders means the same thing on both backends.

/// The user metadata key holding an object's sha256 (`x-amz-meta-sha256` on S3): written by
/// `deploy` for artifacts and by `ingest` for vendor files, read to skip unchanged uploads.
pub const SHA256_METADATA: &str = "sha256";

pub mod local;
pub mod s3;

use std::fmt;
use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::{ExitCode, ExitStatus};

/// A streaming reader over an object's bytes.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// `s3://bucket/key`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectUri {
    pub bucket: String,
    pub key: String,
}

impl ObjectUri {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        ObjectUri { bucket: bucket.into(), key: key.into() }
    }

    /// Parses `s3://bucket/key` (also `s3a://` and `s3n://`, as Spark and EMR write them).
    pub fn parse(uri: &str) -> Result<Self, StoreError> {
        let rest = ["s3://", "s3a://", "s3n://"]
            .iter()
            .find_map(|scheme| uri.strip_prefix(scheme))
            .ok_or_else(|| StoreError::BadUri { uri: uri.to_string() })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::BadUri { uri: uri.to_string() });
        }
        Ok(ObjectUri::new(bucket, key))
    }

    /// The URI of `name` under this one, as a folder.
    pub fn join(&self, name: &str) -> Self {
        let key = if self.key.is_empty() || self.key.ends_with('/') {
            format!("{}{}", self.key, name)
        } else {
            format!("{}/{}", self.key, name)
        };
        ObjectUri::new(self.bucket.clone(), key)
    }

    /// The folder holding this object: the key up to its last `/` (the bucket root for a key
    /// without one).
    pub fn parent(&self) -> Self {
        let key = self.key.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        ObjectUri::new(self.bucket.clone(), key)
    }

    /// The last path segment of the key.
    pub fn file_name(&self) -> &str {
        self.key.trim_end_matches('/').rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for ObjectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What a listing or a `head` tells about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub uri: ObjectUri,
    pub size: u64,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// User metadata stored with the object (`x-amz-meta-*`), where the store keeps it.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// An object's bytes and its version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub body: Bytes,
    pub etag: String,
}

/// The error of a store that cannot do conditional writes (test doubles that do not need them).
fn unsupported(op: &'static str, uri: &ObjectUri) -> StoreError {
    StoreError::Local {
        op,
        uri: uri.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::Unsupported, "this store has no conditional writes"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{uri}` is not an object URI; write it as s3://<bucket>/<key>")]
    BadUri { uri: String },
    #[error("{uri} does not exist; check the bucket name, the key and the run date")]
    NotFound { uri: String },
    #[error("{uri} already exists")]
    AlreadyExists { uri: String },
    #[error("{uri} would leave the local lake ({why}); bucket names are S3 names and keys have no `..` parts")]
    OutsideLake { uri: String, why: &'static str },
    #[error("could not {op} {uri} in the local lake: {source}")]
    Local {
        op: &'static str,
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("S3 refused to {op} {uri}: {message}{hint}")]
    S3 {
        op: &'static str,
        uri: String,
        message: String,
        /// How to fix it, when the error code tells (credentials, permissions, endpoint).
        hint: String,
        /// True for throttling, 5xx and timeouts: worth retrying.
        transient: bool,
    },
}

impl ExitStatus for StoreError {
    fn exit_code(&self) -> ExitCode {
        match self {
            StoreError::BadUri { .. } | StoreError::NotFound { .. } | StoreError::OutsideLake { .. } => {
                ExitCode::BadInput
            }
            StoreError::AlreadyExists { .. } => ExitCode::Internal,
            StoreError::Local { .. } => ExitCode::BadInput,
            StoreError::S3 { .. } => ExitCode::Aws,
        }
    }
}

/// The object store the pipeline reads and writes. One S3 implementation, one local folder.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Metadata of one object, or `None` when it does not exist.
    async fn head(&self, uri: &ObjectUri) -> Result<Option<ObjectMeta>, StoreError>;

    /// Every object whose key starts with `prefix.key`, in key order.
    async fn list(&self, prefix: &ObjectUri) -> Result<Vec<ObjectMeta>, StoreError>;

    /// The whole object in memory: for small objects only (manifests, metrics, locks, logs).
    async fn get_bytes(&self, uri: &ObjectUri) -> Result<Bytes, StoreError>;

    /// A streaming reader over the object.
    async fn reader(&self, uri: &ObjectUri) -> Result<ObjectReader, StoreError>;

    /// Writes a small object, replacing any previous one.
    async fn put_bytes(&self, uri: &ObjectUri, body: Bytes) -> Result<(), StoreError>;

    /// Writes a small object only if none exists at `uri`; `Ok(false)` when one does.
    /// Used for the run lock.
    async fn put_if_absent(&self, uri: &ObjectUri, body: Bytes) -> Result<bool, StoreError>;

    /// The whole small object with its version tag (the S3 ETag; locally a digest of the
    /// content), or `None` when it does not exist. The tag is what [`ObjectStore::put_if_match`]
    /// and [`ObjectStore::delete_if_match`] compare against.
    async fn get_versioned(&self, uri: &ObjectUri) -> Result<Option<Versioned>, StoreError> {
        Err(unsupported("read with a version tag", uri))
    }

    /// Compare-and-swap: replaces the object only if its version tag is still `etag`, returning
    /// the new tag; `Ok(None)` when it changed or is gone (someone else wrote it first). On S3
    /// this is a `PutObject` with `If-Match`. Used for the run locks (heartbeat, takeover).
    async fn put_if_match(&self, uri: &ObjectUri, _body: Bytes, _etag: &str) -> Result<Option<String>, StoreError> {
        Err(unsupported("replace conditionally", uri))
    }

    /// Deletes the object only if its version tag is still `etag`; `Ok(false)` when it changed
    /// or is gone. On S3 a `DeleteObject` with `If-Match`.
    async fn delete_if_match(&self, uri: &ObjectUri, _etag: &str) -> Result<bool, StoreError> {
        Err(unsupported("delete conditionally", uri))
    }

    /// Uploads a local file (multipart with bounded concurrency when large), with user
    /// metadata.
    async fn put_file(
        &self,
        uri: &ObjectUri,
        path: &Path,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError>;

    /// Streams `body` to the object without holding it in memory; returns the bytes written.
    async fn put_stream(&self, uri: &ObjectUri, body: ObjectReader) -> Result<u64, StoreError>;

    /// Deletes one object; deleting a missing object is not an error.
    async fn delete(&self, uri: &ObjectUri) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_uris() {
        let uri = ObjectUri::parse("s3://raw/artifacts/abc/run_job.py").unwrap();
        assert_eq!(uri.bucket, "raw");
        assert_eq!(uri.key, "artifacts/abc/run_job.py");
        assert_eq!(uri.to_string(), "s3://raw/artifacts/abc/run_job.py");
        assert_eq!(uri.file_name(), "run_job.py");
        assert_eq!(uri.parent().to_string(), "s3://raw/artifacts/abc");
        assert_eq!(ObjectUri::new("b", "k").parent().to_string(), "s3://b/");
        assert_eq!(ObjectUri::parse("s3a://b/k").unwrap(), ObjectUri::new("b", "k"));
        assert_eq!(ObjectUri::parse("s3://b").unwrap(), ObjectUri::new("b", ""));
    }

    #[test]
    fn rejects_what_is_not_an_object_uri() {
        for bad in ["/tmp/x", "s3:///key", "http://b/k", ""] {
            assert!(matches!(ObjectUri::parse(bad), Err(StoreError::BadUri { .. })), "{bad}");
        }
    }

    #[test]
    fn joins_keys_as_folders() {
        let root = ObjectUri::parse("s3://staging/dims").unwrap();
        assert_eq!(root.join("dim_os").to_string(), "s3://staging/dims/dim_os");
        assert_eq!(ObjectUri::new("b", "").join("x").to_string(), "s3://b/x");
        assert_eq!(ObjectUri::new("b", "p/").join("x").to_string(), "s3://b/p/x");
    }
}
