//! A local folder standing in for S3: `s3://<bucket>/<key>` is `<root>/<bucket>/<key>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{ObjectMeta, ObjectReader, ObjectStore, ObjectUri, StoreError, Versioned};

/// User metadata is kept beside the object in a hidden sidecar file, so `head` returns what
/// `put_file` stored, as S3 does.
const META_SUFFIX: &str = ".emr-driver-meta.json";

/// The compare-and-swap of an object (`put_if_match`, `delete_if_match`) holds an exclusive
/// `flock` on this hidden sidecar while it compares and replaces, so two processes cannot both
/// swap the same version. The sidecar is never deleted: a process holding the lock on a removed
/// file and another locking a new one would both "own" it.
const CAS_SUFFIX: &str = ".emr-driver-cas";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of an object URI, refusing one that would leave the lake: a bucket that
    /// is not one plain folder name (`..`, `.`, empty, with a `/`) or a key with a `..` part.
    pub fn checked_path(&self, uri: &ObjectUri) -> Result<PathBuf, StoreError> {
        let outside = |why| Err(StoreError::OutsideLake { uri: uri.to_string(), why });
        if uri.bucket.is_empty() || uri.bucket == "." || uri.bucket == ".." || uri.bucket.contains(['/', '\\']) {
            return outside("the bucket is not a folder name");
        }
        if uri.key.split('/').any(|part| part == "..") {
            return outside("the key has a `..` part");
        }
        Ok(self.path_of(uri))
    }

    /// The local path of an object URI (`..` parts of the key dropped; use
    /// [`LocalStore::checked_path`] to refuse them instead).
    pub fn path_of(&self, uri: &ObjectUri) -> PathBuf {
        let mut path = self.root.join(&uri.bucket);
        for part in uri.key.split('/').filter(|p| !p.is_empty() && *p != "." && *p != "..") {
            path.push(part);
        }
        path
    }

    fn meta_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(META_SUFFIX);
        path.with_file_name(name)
    }

    fn cas_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(CAS_SUFFIX);
        path.with_file_name(name)
    }

    /// Compares the object's digest with `etag` and, if equal, replaces it with `body` (or
    /// deletes it when `body` is `None`), under the sidecar's exclusive lock.
    async fn swap_if_match(&self, uri: &ObjectUri, etag: &str, body: Option<Bytes>) -> Result<bool, StoreError> {
        let path = self.checked_path(uri)?;
        let etag = etag.to_string();
        let task = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            let guard = match std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(Self::cas_path(&path))
            {
                Ok(file) => file,
                // No folder: no object, so nothing to match.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            // SAFETY: flock on a descriptor `guard` owns; the lock goes when the file closes.
            if unsafe { nix::libc::flock(std::os::fd::AsRawFd::as_raw_fd(&guard), nix::libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let current = match std::fs::read(&path) {
                Ok(current) => current,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            if etag_of(&current) != etag {
                return Ok(false);
            }
            match body {
                Some(body) => {
                    let tmp = temp_path(&path);
                    std::fs::write(&tmp, &body)?;
                    std::fs::rename(&tmp, &path)?;
                }
                None => std::fs::remove_file(&path)?,
            }
            Ok(true)
            // The lock is released when `guard` closes.
        });
        task.await
            .map_err(|e| local_err("compare-and-swap", uri, std::io::Error::other(e)))?
            .map_err(|e| local_err("compare-and-swap", uri, e))
    }

    async fn meta_of(&self, uri: &ObjectUri, path: &Path) -> Result<Option<ObjectMeta>, StoreError> {
        let stat = match tokio::fs::metadata(path).await {
            Ok(stat) if stat.is_file() => stat,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(local_err("stat", uri, e)),
        };
        let metadata = match tokio::fs::read(Self::meta_path(path)).await {
            Ok(raw) => serde_json::from_slice(&raw).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Ok(Some(ObjectMeta {
            uri: uri.clone(),
            size: stat.len(),
            last_modified: stat.modified().ok().map(chrono::DateTime::<chrono::Utc>::from),
            metadata,
        }))
    }

    async fn parent_dir(&self, uri: &ObjectUri, path: &Path) -> Result<(), StoreError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| local_err("create the folder of", uri, e))?;
        }
        Ok(())
    }

    /// Writes through a temporary file and a rename, so a reader never sees half an object.
    async fn write_atomically(&self, uri: &ObjectUri, path: &Path, body: &[u8]) -> Result<(), StoreError> {
        self.parent_dir(uri, path).await?;
        let tmp = temp_path(path);
        tokio::fs::write(&tmp, body).await.map_err(|e| local_err("write", uri, e))?;
        tokio::fs::rename(&tmp, path).await.map_err(|e| local_err("write", uri, e))
    }
}

/// The local version tag of an object: the sha256 of its bytes.
pub fn etag_of(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    path.with_file_name(name)
}

fn local_err(op: &'static str, uri: &ObjectUri, source: std::io::Error) -> StoreError {
    if source.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound { uri: uri.to_string() }
    } else {
        StoreError::Local { op, uri: uri.to_string(), source }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn head(&self, uri: &ObjectUri) -> Result<Option<ObjectMeta>, StoreError> {
        self.meta_of(uri, &self.checked_path(uri)?).await
    }

    async fn list(&self, prefix: &ObjectUri) -> Result<Vec<ObjectMeta>, StoreError> {
        let bucket_dir = self.root.join(&prefix.bucket);
        // Walk from the deepest folder the prefix names, then filter on the full key prefix.
        let folder_part = match prefix.key.rfind('/') {
            Some(i) => &prefix.key[..i],
            None => "",
        };
        let start = self.checked_path(&ObjectUri::new(prefix.bucket.clone(), folder_part))?;
        if !start.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&start).sort_by_file_name() {
            let entry = entry.map_err(|e| local_err("list", prefix, e.into()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name.ends_with(META_SUFFIX)
                || name.ends_with(CAS_SUFFIX)
                || (name.starts_with('.') && name.ends_with(".tmp"))
            {
                continue;
            }
            let rel = entry.path().strip_prefix(&bucket_dir).unwrap_or(entry.path());
            let key = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            if !key.starts_with(&prefix.key) {
                continue;
            }
            let uri = ObjectUri::new(prefix.bucket.clone(), key);
            if let Some(meta) = self.meta_of(&uri, entry.path()).await? {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| a.uri.key.cmp(&b.uri.key));
        Ok(out)
    }

    async fn get_bytes(&self, uri: &ObjectUri) -> Result<Bytes, StoreError> {
        tokio::fs::read(self.checked_path(uri)?).await.map(Bytes::from).map_err(|e| local_err("read", uri, e))
    }

    async fn reader(&self, uri: &ObjectUri) -> Result<ObjectReader, StoreError> {
        let file = tokio::fs::File::open(self.checked_path(uri)?).await.map_err(|e| local_err("open", uri, e))?;
        Ok(Box::pin(tokio::io::BufReader::with_capacity(1 << 16, file)))
    }

    async fn put_bytes(&self, uri: &ObjectUri, body: Bytes) -> Result<(), StoreError> {
        self.write_atomically(uri, &self.checked_path(uri)?, &body).await
    }

    async fn put_if_absent(&self, uri: &ObjectUri, body: Bytes) -> Result<bool, StoreError> {
        let path = self.checked_path(uri)?;
        self.parent_dir(uri, &path).await?;
        // The whole body goes to a temporary file first, then a hard link creates the object:
        // `link` fails if the name exists (atomic, exactly one creator wins) and a reader never
        // sees an empty or half-written object.
        let tmp = temp_path(&path);
        tokio::fs::write(&tmp, &body).await.map_err(|e| local_err("write", uri, e))?;
        let linked = tokio::fs::hard_link(&tmp, &path).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(local_err("create", uri, e)),
        }
    }

    async fn get_versioned(&self, uri: &ObjectUri) -> Result<Option<Versioned>, StoreError> {
        match tokio::fs::read(self.checked_path(uri)?).await {
            Ok(body) => Ok(Some(Versioned { etag: etag_of(&body), body: Bytes::from(body) })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local_err("read", uri, e)),
        }
    }

    async fn put_if_match(&self, uri: &ObjectUri, body: Bytes, etag: &str) -> Result<Option<String>, StoreError> {
        let new_etag = etag_of(&body);
        Ok(self.swap_if_match(uri, etag, Some(body)).await?.then_some(new_etag))
    }

    async fn delete_if_match(&self, uri: &ObjectUri, etag: &str) -> Result<bool, StoreError> {
        self.swap_if_match(uri, etag, None).await
    }

    async fn put_file(
        &self,
        uri: &ObjectUri,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let target = self.checked_path(uri)?;
        self.parent_dir(uri, &target).await?;
        let tmp = temp_path(&target);
        tokio::fs::copy(path, &tmp).await.map_err(|e| local_err("copy a file to", uri, e))?;
        tokio::fs::rename(&tmp, &target).await.map_err(|e| local_err("write", uri, e))?;
        let meta_path = Self::meta_path(&target);
        if metadata.is_empty() {
            let _ = tokio::fs::remove_file(&meta_path).await;
        } else {
            let raw = serde_json::to_vec(metadata).expect("string map serialises");
            tokio::fs::write(&meta_path, raw).await.map_err(|e| local_err("write metadata of", uri, e))?;
        }
        Ok(())
    }

    async fn put_stream(&self, uri: &ObjectUri, mut body: ObjectReader) -> Result<u64, StoreError> {
        let target = self.checked_path(uri)?;
        self.parent_dir(uri, &target).await?;
        let tmp = temp_path(&target);
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| local_err("create", uri, e))?;
        let written = tokio::io::copy(&mut body, &mut file).await.map_err(|e| local_err("write", uri, e))?;
        file.flush().await.map_err(|e| local_err("write", uri, e))?;
        drop(file);
        tokio::fs::rename(&tmp, &target).await.map_err(|e| local_err("write", uri, e))?;
        Ok(written)
    }

    async fn delete(&self, uri: &ObjectUri) -> Result<(), StoreError> {
        let path = self.checked_path(uri)?;
        for p in [Self::meta_path(&path), path] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(local_err("delete", uri, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        (dir, store)
    }

    #[tokio::test]
    async fn put_get_head_list_delete() {
        let (_dir, store) = store();
        let a = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31/a.csv").unwrap();
        let b = ObjectUri::parse("s3://raw/incoming/dt=2021-11-01/b.csv").unwrap();
        store.put_bytes(&a, Bytes::from_static(b"hello")).await.unwrap();
        store.put_bytes(&b, Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(store.get_bytes(&a).await.unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(store.head(&a).await.unwrap().unwrap().size, 5);

        let listed = store.list(&ObjectUri::parse("s3://raw/incoming/dt=2021-10").unwrap()).await.unwrap();
        let keys: Vec<_> = listed.iter().map(|m| m.uri.to_string()).collect();
        assert_eq!(keys, vec![a.to_string()]);
        assert_eq!(store.list(&ObjectUri::parse("s3://raw/").unwrap()).await.unwrap().len(), 2);

        store.delete(&a).await.unwrap();
        assert!(store.head(&a).await.unwrap().is_none());
        store.delete(&a).await.unwrap();
        assert!(matches!(store.get_bytes(&a).await, Err(StoreError::NotFound { .. })));
    }

    #[tokio::test]
    async fn put_if_absent_has_one_winner() {
        let (_dir, store) = store();
        let lock = ObjectUri::parse("s3://staging/_locks/dt=2021-10-31.json").unwrap();
        assert!(store.put_if_absent(&lock, Bytes::from_static(b"1")).await.unwrap());
        assert!(!store.put_if_absent(&lock, Bytes::from_static(b"2")).await.unwrap());
        assert_eq!(store.get_bytes(&lock).await.unwrap(), Bytes::from_static(b"1"));
    }

    #[tokio::test]
    async fn put_and_delete_if_match_compare_the_version() {
        let (dir, store) = store();
        let lock = ObjectUri::parse("s3://staging/_locks/dt=2021-10-31.json").unwrap();
        assert_eq!(store.get_versioned(&lock).await.unwrap(), None);
        assert_eq!(store.put_if_match(&lock, Bytes::from_static(b"x"), "nothing").await.unwrap(), None);
        assert!(store.put_if_absent(&lock, Bytes::from_static(b"1")).await.unwrap());
        let v1 = store.get_versioned(&lock).await.unwrap().unwrap();
        assert_eq!(v1.body, Bytes::from_static(b"1"));
        let tag = store.put_if_match(&lock, Bytes::from_static(b"2"), &v1.etag).await.unwrap();
        // The old version no longer matches: neither a second swap nor a delete with it wins.
        assert_eq!(store.put_if_match(&lock, Bytes::from_static(b"3"), &v1.etag).await.unwrap(), None);
        assert!(!store.delete_if_match(&lock, &v1.etag).await.unwrap());
        let v2 = store.get_versioned(&lock).await.unwrap().unwrap();
        assert_eq!(v2.body, Bytes::from_static(b"2"));
        assert_eq!(tag.as_deref(), Some(v2.etag.as_str()));
        assert!(store.delete_if_match(&lock, &v2.etag).await.unwrap());
        assert_eq!(store.get_versioned(&lock).await.unwrap(), None);
        // The sidecars stay hidden.
        assert!(store.list(&ObjectUri::parse("s3://staging/").unwrap()).await.unwrap().is_empty());
        drop(dir);
    }

    #[tokio::test]
    async fn put_file_keeps_metadata_and_hides_it_from_listings() {
        let (dir, store) = store();
        let src = dir.path().join("src.txt");
        std::fs::write(&src, b"code").unwrap();
        let uri = ObjectUri::parse("s3://raw/artifacts/abc/run_job.py").unwrap();
        let meta = BTreeMap::from([("sha256".to_string(), "abc".to_string())]);
        store.put_file(&uri, &src, &meta).await.unwrap();
        assert_eq!(store.head(&uri).await.unwrap().unwrap().metadata, meta);
        let listed = store.list(&ObjectUri::parse("s3://raw/artifacts/").unwrap()).await.unwrap();
        assert_eq!(listed.len(), 1);
    }

    #[tokio::test]
    async fn streams_into_an_object() {
        let (_dir, store) = store();
        let uri = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz").unwrap();
        let body: ObjectReader = Box::pin(std::io::Cursor::new(vec![7u8; 100_000]));
        assert_eq!(store.put_stream(&uri, body).await.unwrap(), 100_000);
        assert_eq!(store.head(&uri).await.unwrap().unwrap().size, 100_000);
    }

    #[test]
    fn keys_cannot_escape_the_lake() {
        let store = LocalStore::new("/lake");
        let uri = ObjectUri::parse("s3://raw/../../etc/passwd").unwrap();
        assert_eq!(store.path_of(&uri), PathBuf::from("/lake/raw/etc/passwd"));
        assert!(matches!(store.checked_path(&uri), Err(StoreError::OutsideLake { .. })));
    }

    #[tokio::test]
    async fn the_store_refuses_buckets_and_keys_that_leave_the_lake() {
        let (dir, store) = store();
        let outside = dir.path().join("outside.txt");
        for bad in ["s3://../outside.txt", "s3://raw/a/../../../outside.txt", "s3://./x"] {
            let uri = ObjectUri::parse(bad).unwrap();
            let err = store.put_bytes(&uri, Bytes::from_static(b"x")).await.unwrap_err();
            assert!(matches!(err, StoreError::OutsideLake { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("leave the local lake"), "{err}");
            assert!(matches!(store.get_bytes(&uri).await, Err(StoreError::OutsideLake { .. })), "{bad}");
            assert!(matches!(store.head(&uri).await, Err(StoreError::OutsideLake { .. })), "{bad}");
        }
        assert!(!outside.exists());
        assert!(!dir.path().parent().unwrap().join("outside.txt").exists());
    }
}
