//! Configuration resolution: file, then environment, then flags; validation errors name the
//! key, the value, where it came from and the fix.

use std::collections::HashMap;

use emr_driver::config::{Config, ConfigError, Overrides, Target};
use emr_driver::error::{ExitCode, ExitStatus};

const FILE: &str = include_str!("../../../config/pipeline.toml");

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(env_pairs: &[(&str, &str)], sets: &[&str]) -> Result<Config, ConfigError> {
    Config::from_toml_str(FILE, "config/pipeline.toml", &env(env_pairs), &Overrides::parse_sets(sets)?)
}

fn problems_text(err: ConfigError) -> String {
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    err.to_string()
}

#[test]
fn the_checked_in_file_resolves() {
    let config = load(&[], &[]).unwrap();
    assert_eq!(config.pipeline.target, Target::Local);
    assert_eq!(config.buckets.raw, "movie-analytics-dev-raw");
    assert_eq!(config.emr.core_instance_count, 2);
    assert_eq!(config.emr.action_on_failure, "CONTINUE");
    assert_eq!(config.spark.get("spark.sql.shuffle.partitions").map(String::as_str), Some("16"));
    assert_eq!(config.cluster_id(), None);
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let config = load(
        &[
            ("EMR_DRIVER_BUCKETS_RAW", "env-raw"),
            ("EMR_DRIVER_EMR_CLUSTER_ID", "j-ENV123"),
            ("EMR_DRIVER_EMR_CORE_INSTANCE_COUNT", "5"),
            ("EMR_DRIVER_EMR_KEEP_CLUSTER", "true"),
            ("EMR_DRIVER_AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("EMR_DRIVER_SPARK_SPARK_SQL_SHUFFLE_PARTITIONS", "64"),
            ("EMR_DRIVER_CONFIG", "ignored: not a section"),
            ("UNRELATED", "x"),
        ],
        &["emr.cluster_id=j-FLAG456", "pipeline.target=emr", "spark.spark.executor.memory=2g"],
    )
    .unwrap();
    assert_eq!(config.buckets.raw, "env-raw");
    assert_eq!(config.cluster_id(), Some("j-FLAG456"));
    assert_eq!(config.emr.core_instance_count, 5);
    assert!(config.emr.keep_cluster);
    assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    assert_eq!(config.pipeline.target, Target::Emr);
    assert_eq!(config.spark["spark.sql.shuffle.partitions"], "64");
    assert_eq!(config.spark["spark.executor.memory"], "2g");
}

#[test]
fn an_unknown_key_is_named_with_the_known_ones() {
    let text = FILE.replace("cluster_id = \"\"", "cluster_id = \"\"\nclusterid = \"j-1\"");
    let err = Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &Overrides::default()).unwrap_err();
    let message = problems_text(err);
    assert!(message.contains("emr.clusterid"), "{message}");
    assert!(message.contains("unknown key") && message.contains("cluster_id"), "{message}");
}

#[test]
fn an_unknown_environment_key_names_the_variable() {
    let message = problems_text(load(&[("EMR_DRIVER_EMR_CLUSTERID", "j-1")], &[]).unwrap_err());
    assert!(message.contains("emr.clusterid") && message.contains("EMR_DRIVER_EMR_CLUSTERID"), "{message}");
}

#[test]
fn every_bad_key_is_reported_once_with_its_fix() {
    let err = load(
        &[("EMR_DRIVER_BUCKETS_RAW", "Bad_Bucket")],
        &[
            "emr.log_uri=/tmp/logs",
            "emr.release_label=emr-6.15.0",
            "emr.core_instance_count=0",
            "pipeline.target=cloud",
            "emr.step_concurrency=two",
        ],
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    let ConfigError::Invalid { problems } = &err else { panic!("{err}") };
    // Type problems are found (in key order) before the whole-config checks.
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["emr.step_concurrency", "pipeline.target"], "{err}");
    assert!(problems[0].origin.contains("--set emr.step_concurrency"), "{err}");
    assert!(problems[1].fix.contains("local, emr"), "{err}");

    let err = load(
        &[("EMR_DRIVER_BUCKETS_RAW", "Bad_Bucket")],
        &["emr.log_uri=/tmp/logs", "emr.release_label=emr-6.15.0", "emr.core_instance_count=0"],
    )
    .unwrap_err();
    let ConfigError::Invalid { problems } = &err else { panic!("{err}") };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["buckets.raw", "emr.release_label", "emr.log_uri", "emr.core_instance_count"], "{err}");
    assert!(problems[0].origin.contains("EMR_DRIVER_BUCKETS_RAW") && problems[0].value == "Bad_Bucket");
    assert!(problems[1].fix.contains("emr-7"), "{err}");
    assert!(problems[2].fix.contains("s3://"), "{err}");
    assert!(problems[3].fix.contains("positive"), "{err}");
}

#[test]
fn a_malformed_set_flag_says_how_to_write_it() {
    for bad in ["buckets.raw", "raw=x", ".raw=x"] {
        let err = Overrides::parse_sets(&[bad]).unwrap_err();
        assert!(err.to_string().contains("--set section.key=value"), "{err}");
    }
}

#[test]
fn a_wrongly_typed_file_value_is_named() {
    let text = FILE.replace("core_instance_count = 2", "core_instance_count = \"two\"");
    let err = Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &Overrides::default()).unwrap_err();
    let message = problems_text(err);
    assert!(message.contains("emr.core_instance_count") && message.contains("whole number"), "{message}");
}

#[test]
fn a_missing_key_is_named() {
    let text = FILE.replace("staging = \"movie-analytics-dev-staging\"", "");
    let err = Config::from_toml_str(&text, "pipeline.toml", &HashMap::new(), &Overrides::default()).unwrap_err();
    let ConfigError::Invalid { problems } = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].key, "buckets.staging");
    assert!(problems[0].fix.contains("EMR_DRIVER_BUCKETS_STAGING"), "{err}");
    // The environment can supply it.
    let config = Config::from_toml_str(
        &text,
        "pipeline.toml",
        &env(&[("EMR_DRIVER_BUCKETS_STAGING", "from-env")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.buckets.staging, "from-env");
}

#[test]
fn broken_toml_names_the_file() {
    let err = Config::from_toml_str("[buckets\nraw=", "my.toml", &HashMap::new(), &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }) && err.to_string().contains("my.toml"), "{err}");
}

#[test]
fn the_hash_ignores_where_and_how_a_run_executes_but_not_what_it_computes() {
    let base = load(&[], &[]).unwrap();
    let same = load(&[("EMR_DRIVER_EMR_CLUSTER_ID", "j-ABC"), ("EMR_DRIVER_AWS_PROFILE", "dev")], &[]).unwrap();
    let other = load(&[], &["spark.spark.sql.shuffle.partitions=8"]).unwrap();
    assert_eq!(base.hash(), same.hash());
    assert_ne!(base.hash(), other.hash());
    assert_eq!(base.hash().len(), 64);
}

#[test]
fn with_overrides_revalidates() {
    let base = load(&[], &[]).unwrap();
    let emr = base.with_overrides(&Overrides::default().set("pipeline.target", "emr")).unwrap();
    assert_eq!(emr.pipeline.target, Target::Emr);
    assert!(base.with_overrides(&Overrides::default().set("buckets.raw", "x")).is_err());
}

#[test]
fn a_flag_fixes_a_bad_value_from_the_environment() {
    let config = load(&[("EMR_DRIVER_BUCKETS_RAW", "Bad_Bucket")], &["buckets.raw=good-bucket"]).unwrap();
    assert_eq!(config.buckets.raw, "good-bucket");
}

#[test]
fn credentials_in_an_endpoint_never_reach_a_message() {
    let err = load(&[], &["aws.endpoint_url=ftp://key:topsecret@127.0.0.1:5000"]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("aws.endpoint_url") && !message.contains("topsecret"), "{message}");
}

#[test]
fn a_new_spark_property_can_come_from_the_environment() {
    let config = load(&[("EMR_DRIVER_SPARK_SPARK_EXECUTOR_CORES", "4")], &[]).unwrap();
    assert_eq!(config.spark["spark.executor.cores"], "4");
    assert_eq!(config.spark["spark.sql.shuffle.partitions"], "16");
}

#[test]
fn an_unknown_key_is_named_but_its_value_never_shown() {
    let err = load(&[("EMR_DRIVER_AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")], &["emr.db_password=hunter2"]).unwrap_err();
    let message = problems_text(err);
    assert!(message.contains("aws.secret_access_key") && message.contains("emr.db_password"), "{message}");
    assert!(!message.contains("wJalrXUtnFEMI") && !message.contains("hunter2"), "{message}");
    assert!(message.contains("(value not shown)"), "{message}");
}

#[test]
fn a_log_uri_bucket_that_would_leave_the_lake_is_refused() {
    for bad in ["s3://../emr-logs/", "s3://./x/", "s3://UPPER/x/"] {
        let err = load(&[], &[&format!("emr.log_uri={bad}")]).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::BadInput);
        let message = problems_text(err);
        assert!(message.contains("emr.log_uri") && message.contains("S3 bucket names"), "{bad}: {message}");
    }
    for bad in ["..", "a/b", "ab"] {
        let err = load(&[], &[&format!("buckets.raw={bad}")]).unwrap_err();
        assert!(problems_text(err).contains("buckets.raw"), "{bad}");
    }
}
