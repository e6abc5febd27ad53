//! Content-addressed artifacts: the job package, the entry script and the bootstrap script.
//!
//! Each file is stored at `s3://<raw>/artifacts/<sha256>/<file name>`, so a run references the
//! exact code it uses and two runs never overwrite each other's code. A file already there
//! with the same digest and size is not uploaded again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ExitCode, ExitStatus};
use crate::store::{ObjectStore, ObjectUri, StoreError};

pub const PYSPARK_JOBS_ZIP: &str = "pyspark_jobs.zip";
pub const RUN_JOB_PY: &str = "run_job.py";
pub const PACKAGES_SH: &str = "packages.sh";
pub use crate::store::SHA256_METADATA;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{what} is missing (looked for {path}); run emr-driver from the repository root or pass --project-root")]
    Missing { what: &'static str, path: String },
    #[error("could not read {path} while building the artifacts: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "could not write the job package to {path}: {source}; check that the temporary folder is writable (TMPDIR)"
    )]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is too large for the job package (zip64 is not supported); keep data out of pyspark_jobs/")]
    TooLarge { path: String },
    #[error("could not write the job package {PYSPARK_JOBS_ZIP} ({entry}): {reason}")]
    Package { entry: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExitStatus for DeployError {
    fn exit_code(&self) -> ExitCode {
        match self {
            DeployError::Store(e) => e.exit_code(),
            DeployError::Write { .. } | DeployError::Package { .. } => ExitCode::Internal,
            _ => ExitCode::BadInput,
        }
    }
}

/// One local file to deploy, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Artifact {
    /// Hashes a local file.
    pub fn from_file(name: &str, path: &Path) -> Result<Self, DeployError> {
        let bytes =
            std::fs::read(path).map_err(|source| DeployError::Read { path: path.display().to_string(), source })?;
        Ok(Artifact {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
        })
    }

    /// `s3://<raw>/artifacts/<sha256>/<name>`.
    pub fn uri(&self, raw_bucket: &str) -> ObjectUri {
        ObjectUri::new(raw_bucket, format!("artifacts/{}/{}", self.sha256, self.name))
    }
}

/// The three files a run needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactSet {
    pub pyspark_jobs_zip: Artifact,
    pub run_job_py: Artifact,
    pub packages_sh: Artifact,
}

impl ArtifactSet {
    /// Builds the set from a project root: zips `pyspark_jobs/` deterministically (into the
    /// temporary folder, named by digest), hashes `pyspark_jobs/run_job.py` and
    /// `bootstrap/packages.sh`.
    pub fn build(project_root: &Path) -> Result<Self, DeployError> {
        let package_dir = project_root.join("pyspark_jobs");
        let run_job = package_dir.join(RUN_JOB_PY);
        let packages = project_root.join("bootstrap").join(PACKAGES_SH);
        for (what, path) in [
            ("the pyspark_jobs/ folder", &package_dir),
            ("the entry script", &run_job),
            ("the bootstrap script", &packages),
        ] {
            if !path.exists() {
                return Err(DeployError::Missing { what, path: path.display().to_string() });
            }
        }
        let zip = build_package_zip(&package_dir)?;
        let digest = sha256_hex(&zip);
        let zip_path = std::env::temp_dir().join("emr-driver-artifacts").join(&digest).join(PYSPARK_JOBS_ZIP);
        write_once(&zip_path, &zip)?;
        Ok(ArtifactSet {
            pyspark_jobs_zip: Artifact {
                name: PYSPARK_JOBS_ZIP.to_string(),
                path: zip_path,
                sha256: digest,
                size: zip.len() as u64,
            },
            run_job_py: Artifact::from_file(RUN_JOB_PY, &run_job)?,
            packages_sh: Artifact::from_file(PACKAGES_SH, &packages)?,
        })
    }

    pub fn all(&self) -> [&Artifact; 3] {
        [&self.pyspark_jobs_zip, &self.run_job_py, &self.packages_sh]
    }
}

/// Writes a content-addressed file unless it is already there (same content by construction).
fn write_once(path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
    let write_err = |source| DeployError::Write { path: path.display().to_string(), source };
    if std::fs::metadata(path).map(|m| m.len() == bytes.len() as u64).unwrap_or(false) {
        return Ok(());
    }
    let dir = path.parent().expect("artifact path has a folder");
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The files of the job package: `.py` files and READMEs, without tests and caches, as
/// `(name in the zip, local path)` sorted by name. Names start with `pyspark_jobs/` so that
/// `import pyspark_jobs.x` works with the zip on `--py-files`.
pub fn package_files(package_dir: &Path) -> Result<Vec<(String, PathBuf)>, DeployError> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(package_dir).into_iter().filter_entry(|entry| {
        let name = entry.file_name().to_string_lossy();
        !(entry.file_type().is_dir()
            && entry.depth() > 0
            && (name == "tests" || name == "__pycache__" || name.starts_with('.')))
    });
    for entry in walker {
        let entry =
            entry.map_err(|e| DeployError::Read { path: package_dir.display().to_string(), source: e.into() })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        let is_test = name.starts_with("test_") || name.ends_with("_test.py") || name == "conftest.py";
        let wanted = (name.ends_with(".py") && !is_test) || name.starts_with("README");
        if !wanted {
            continue;
        }
        let rel = entry.path().strip_prefix(package_dir).expect("walk stays under the root");
        let rel = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
        files.push((format!("pyspark_jobs/{rel}"), entry.path().to_path_buf()));
    }
    files.sort();
    Ok(files)
}

/// A stored (uncompressed) zip of the package with sorted entries and a fixed timestamp, so
/// the same source always gives the same bytes and digest.
pub fn build_package_zip(package_dir: &Path) -> Result<Vec<u8>, DeployError> {
    let files = package_files(package_dir)?;
    // Explicit folder entries: Python 3.9's zipimport finds a package folder without an
    // __init__.py (a namespace package) only through its entry.
    let mut folders = std::collections::BTreeSet::new();
    for (name, _) in &files {
        let mut end = 0;
        while let Some(i) = name[end..].find('/') {
            end += i + 1;
            folders.insert(name[..end].to_string());
        }
    }
    let mut entries: Vec<(String, Vec<u8>)> = folders.into_iter().map(|f| (f, Vec::new())).collect();
    for (name, path) in files {
        let data =
            std::fs::read(&path).map_err(|source| DeployError::Read { path: path.display().to_string(), source })?;
        entries.push((name, data));
    }
    entries.sort();
    write_stored_zip(&entries)
}

/// Writes a zip archive of `(name, bytes)` entries, stored without compression, every entry
/// dated 1980-01-01 00:00 (the zip format's epoch) with fixed permissions, so the bytes depend
/// on the names and contents alone. Names ending in `/` are folder entries.
pub fn write_stored_zip(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, DeployError> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        // No zip64 extra fields: Python 3.9's zipimport reads plain archives only.
        .large_file(false);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let failed = |entry: &str, reason: String| DeployError::Package { entry: entry.to_string(), reason };
    for (name, data) in entries {
        if u32::try_from(data.len()).is_err() {
            return Err(DeployError::TooLarge { path: name.clone() });
        }
        if let Some(folder) = name.strip_suffix('/') {
            writer.add_directory(folder, options.unix_permissions(0o755)).map_err(|e| failed(name, e.to_string()))?;
        } else {
            writer
                .start_file(name.as_str(), options.unix_permissions(0o644))
                .map_err(|e| failed(name, e.to_string()))?;
            writer.write_all(data).map_err(|e| failed(name, e.to_string()))?;
        }
    }
    let cursor = writer.finish().map_err(|e| failed("central directory", e.to_string()))?;
    Ok(cursor.into_inner())
}

/// An artifact with the URI it has (or will have) in the raw bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedArtifact {
    pub name: String,
    pub local_path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub uri: String,
}

impl PlannedArtifact {
    pub fn new(artifact: &Artifact, raw_bucket: &str) -> Self {
        PlannedArtifact {
            name: artifact.name.clone(),
            local_path: artifact.path.clone(),
            sha256: artifact.sha256.clone(),
            size: artifact.size,
            uri: artifact.uri(raw_bucket).to_string(),
        }
    }

    pub fn object_uri(&self) -> ObjectUri {
        ObjectUri::parse(&self.uri).expect("planned URIs are s3:// URIs")
    }
}

/// What a deploy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeployReport {
    pub uploaded: Vec<String>,
    pub skipped: Vec<String>,
    /// Artifact name → URI, for every artifact (uploaded or already there).
    pub uris: BTreeMap<String, String>,
}

/// Whether the object already holds this artifact: same digest in its metadata and same size.
fn already_deployed(meta: &crate::store::ObjectMeta, artifact: &PlannedArtifact) -> bool {
    meta.size == artifact.size && meta.metadata.get(SHA256_METADATA) == Some(&artifact.sha256)
}

/// Uploads every artifact not already in the store; `progress` receives one line per file.
pub async fn deploy(
    store: &dyn ObjectStore,
    artifacts: &[PlannedArtifact],
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<DeployReport, DeployError> {
    let mut report = DeployReport::default();
    for artifact in artifacts {
        let uri = artifact.object_uri();
        report.uris.insert(artifact.name.clone(), artifact.uri.clone());
        if let Some(meta) = store.head(&uri).await? {
            if already_deployed(&meta, artifact) {
                progress(&format!("unchanged {} ({})", artifact.name, artifact.uri));
                report.skipped.push(artifact.uri.clone());
                continue;
            }
        }
        progress(&format!("uploading {} ({} bytes) to {}", artifact.name, artifact.size, artifact.uri));
        let metadata = BTreeMap::from([(SHA256_METADATA.to_string(), artifact.sha256.clone())]);
        store.put_file(&uri, &artifact.local_path, &metadata).await?;
        report.uploaded.push(artifact.uri.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_zip_is_just_the_end_record() {
        let zip = write_stored_zip(&[]).unwrap();
        assert_eq!(zip.len(), 22);
        assert_eq!(&zip[..4], &[0x50, 0x4b, 0x05, 0x06]);
    }
}
