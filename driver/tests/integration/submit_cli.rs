//! `emr-driver submit --dry-run`: an ad-hoc step rendered from any template with the plan's
//! variables and `--var` overrides, exactly (no HTML escaping), calling nothing.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn renders_an_adhoc_step_exactly() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_emr-driver"))
        .current_dir(&repo)
        .args(["submit", "driver/templates/steps/parse_logs.json.hbs", "--date", "2021-10-31", "--dry-run"])
        .args(["--var", "uris.log_reviews_input=s3://raw/in/dt=2021-10-31/logs.csv?a==b&c=<d>"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let step: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let args: Vec<&str> =
        step["HadoopJarStep"]["Args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let input = args.iter().position(|a| *a == "--input").unwrap();
    assert_eq!(args[input + 1], "s3://raw/in/dt=2021-10-31/logs.csv?a==b&c=<d>");
    assert!(step["Name"].as_str().unwrap().ends_with(" adhoc parse_logs"), "{step}");
    assert_eq!(args[0], "spark-submit");
}

#[test]
fn an_unset_template_variable_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("t.json.hbs");
    std::fs::write(&template, r#"{"Name": "{{step_name}}", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["{{not_set}}"]}}"#).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_emr-driver"))
        .current_dir(&repo)
        .args(["submit", template.to_str().unwrap(), "--date", "2021-10-31", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not_set") && stderr.contains("--var"), "{stderr}");
}
