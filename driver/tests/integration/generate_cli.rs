//! `emr-driver generate` on the command line: files, the stderr report, `--output json`,
//! and a refused option's exit code.

use assert_cmd::Command;

#[test]
fn writes_the_files_and_prints_the_summary_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/sample");
    let output = Command::cargo_bin("emr-driver")
        .unwrap()
        .args(["generate", "--out", out.to_str().unwrap(), "--reviews", "120", "--purchases", "700"])
        .args(["--seed", "7", "--malformed-rate", "0.1", "--gzip", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_generated.json")).unwrap()).unwrap();
    assert_eq!(printed, on_disk);
    assert_eq!(printed["seed"], 7);
    assert_eq!(printed["files"]["user_purchase"]["rows"], 700);
    for file in ["movie_review.csv.gz", "log_reviews.csv.gz", "user_purchase.csv.gz"] {
        let bytes = std::fs::metadata(out.join(file)).unwrap().len();
        assert!(stderr.contains(&format!("{file}: ")) && stderr.contains(&format!("{bytes} bytes")), "{stderr}");
    }
    assert!(stderr.contains(" s\n"), "seconds in the report: {stderr}");
}

#[test]
fn a_bad_option_exits_with_the_bad_input_code_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("emr-driver")
        .unwrap()
        .args(["generate", "--out", dir.path().to_str().unwrap(), "--review-length", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--review-length") && stderr.contains("between 100 and 100000"), "{stderr}");
}
