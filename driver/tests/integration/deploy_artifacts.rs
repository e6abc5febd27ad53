//! The artifact set: a deterministic job package, digests, content-addressed URIs, and a
//! deploy to the local lake that skips what is already there.

use std::path::Path;
use std::process::Command;

use emr_driver::deploy::{build_package_zip, deploy, package_files, ArtifactSet, DeployError, PlannedArtifact};
use emr_driver::store::local::LocalStore;

/// A small project tree: the package with files that must and must not ship.
fn project(root: &Path) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("pyspark_jobs/__init__.py", "");
    write("pyspark_jobs/run_job.py", "import sys\n");
    write("pyspark_jobs/jobs/classify_reviews.py", "def main(argv): pass\n");
    write("pyspark_jobs/README.md", "# jobs\n");
    write("pyspark_jobs/tests/test_classify.py", "def test(): pass\n");
    write("pyspark_jobs/jobs/test_helpers.py", "x = 1\n");
    write("pyspark_jobs/conftest.py", "");
    write("pyspark_jobs/__pycache__/x.cpython-39.pyc", "bytecode");
    write("pyspark_jobs/data/sample.csv", "a,b\n");
    write("bootstrap/packages.sh", "#!/bin/bash\nsudo python3 -m pip install lxml\n");
}

#[test]
fn the_package_ships_code_and_readme_only_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let names: Vec<String> =
        package_files(&dir.path().join("pyspark_jobs")).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            "pyspark_jobs/README.md",
            "pyspark_jobs/__init__.py",
            "pyspark_jobs/jobs/classify_reviews.py",
            "pyspark_jobs/run_job.py",
        ]
    );
}

#[test]
fn the_package_is_a_valid_zip_that_python_can_import_from() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let zip = build_package_zip(&dir.path().join("pyspark_jobs")).unwrap();
    let zip_path = dir.path().join("pyspark_jobs.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    // Python's own integrity check (CRCs, offsets, central directory).
    let check = format!(
        "import zipfile; assert zipfile.ZipFile({:?}).testzip() is None; print('ok')",
        zip_path.display().to_string()
    );
    let test = Command::new("python3").args(["-c", &check]).output().expect("python3 is installed");
    assert_eq!(String::from_utf8_lossy(&test.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&test.stderr));
    // And what --py-files relies on: Python importing the package from the zip.
    let script = format!(
        "import sys; sys.path.insert(0, {:?}); import pyspark_jobs.jobs.classify_reviews as m; print(m.main.__name__)",
        zip_path.display().to_string()
    );
    let run = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "main", "{}", String::from_utf8_lossy(&run.stderr));
}

#[test]
fn the_same_source_gives_the_same_digest_and_a_change_gives_another() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    project(one.path());
    std::thread::sleep(std::time::Duration::from_millis(20)); // different mtimes on purpose
    project(two.path());
    let a = ArtifactSet::build(one.path()).unwrap();
    let b = ArtifactSet::build(two.path()).unwrap();
    assert_eq!(a.pyspark_jobs_zip.sha256, b.pyspark_jobs_zip.sha256);
    assert_eq!(a.run_job_py.sha256, b.run_job_py.sha256);
    assert_eq!(a.packages_sh.sha256, b.packages_sh.sha256);
    assert_eq!(std::fs::read(&a.pyspark_jobs_zip.path).unwrap().len() as u64, a.pyspark_jobs_zip.size);

    std::fs::write(two.path().join("pyspark_jobs/jobs/classify_reviews.py"), "def main(argv): return 1\n").unwrap();
    let c = ArtifactSet::build(two.path()).unwrap();
    assert_ne!(a.pyspark_jobs_zip.sha256, c.pyspark_jobs_zip.sha256);
    assert_eq!(a.packages_sh.sha256, c.packages_sh.sha256);
    // A changed test file does not change the package.
    std::fs::write(one.path().join("pyspark_jobs/tests/test_classify.py"), "def test(): assert 0\n").unwrap();
    assert_eq!(ArtifactSet::build(one.path()).unwrap().pyspark_jobs_zip.sha256, a.pyspark_jobs_zip.sha256);
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    std::fs::remove_file(dir.path().join("bootstrap/packages.sh")).unwrap();
    let err = ArtifactSet::build(dir.path()).unwrap_err();
    assert!(matches!(err, DeployError::Missing { .. }) && err.to_string().contains("bootstrap/packages.sh"), "{err}");
}

#[tokio::test]
async fn deploying_to_the_local_lake_uploads_once() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let set = ArtifactSet::build(dir.path()).unwrap();
    let planned: Vec<PlannedArtifact> = set.all().iter().map(|a| PlannedArtifact::new(a, "raw")).collect();
    let store = LocalStore::new(dir.path().join("lake"));
    let mut lines = Vec::new();

    let first = deploy(&store, &planned, &mut |l: &str| lines.push(l.to_string())).await.unwrap();
    assert_eq!(first.uploaded.len(), 3);
    assert!(first.skipped.is_empty());
    let run_job = &first.uris["run_job.py"];
    assert_eq!(run_job, &format!("s3://raw/artifacts/{}/run_job.py", set.run_job_py.sha256));
    let on_disk = dir.path().join(format!("lake/raw/artifacts/{}/run_job.py", set.run_job_py.sha256));
    assert_eq!(std::fs::read_to_string(on_disk).unwrap(), "import sys\n");

    let second = deploy(&store, &planned, &mut |l: &str| lines.push(l.to_string())).await.unwrap();
    assert!(second.uploaded.is_empty(), "{second:?}");
    assert_eq!(second.skipped.len(), 3);
    assert_eq!(second.uris, first.uris);
    assert_eq!(lines.iter().filter(|l| l.starts_with("unchanged")).count(), 3, "{lines:?}");

    // An object at the key with other content (a partial copy, a tampered file) is replaced.
    let zip_uri = planned[0].object_uri();
    let zip_path = store.path_of(&zip_uri);
    std::fs::write(&zip_path, b"truncated").unwrap();
    let third = deploy(&store, &planned, &mut |_: &str| {}).await.unwrap();
    assert_eq!(third.uploaded, vec![planned[0].uri.clone()]);
    assert_eq!(std::fs::read(&zip_path).unwrap().len() as u64, planned[0].size);
}
