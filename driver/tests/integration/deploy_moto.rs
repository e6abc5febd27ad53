//! `deploy` against a moto S3 server: the first deploy uploads every artifact, a second one
//! sends no upload at all (counted on the wire), a changed file uploads only itself.

use crate::support;
use emr_driver::inputs::BoundInputs;

use std::path::Path;

use emr_driver::aws::{s3_config_builder, sdk_config, AwsSettings};
use emr_driver::config::{Config, Overrides};
use emr_driver::deploy::{deploy, ArtifactSet};
use emr_driver::plan::Plan;
use emr_driver::store::s3::S3Store;
use emr_driver::store::ObjectStore;
use support::moto::MotoServer;
use support::requests::RequestLog;

/// PUT and POST requests (single and multipart uploads) among the recorded methods.
fn uploads(methods: &[String]) -> usize {
    methods.iter().filter(|m| *m == "PUT" || *m == "POST").count()
}

fn project(root: &Path) {
    for (rel, text) in [
        ("pyspark_jobs/__init__.py", ""),
        ("pyspark_jobs/run_job.py", "import sys\n"),
        ("pyspark_jobs/jobs/parse_logs.py", "def main(argv): pass\n"),
        ("bootstrap/packages.sh", "#!/bin/bash\nset -euo pipefail\n"),
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn plan_for(endpoint: &str, root: &Path) -> Plan {
    let overrides = Overrides::default()
        .set("pipeline.target", "emr")
        .set("buckets.raw", "raw-bucket")
        .set("emr.subnet_id", "subnet-0abc")
        .set("aws.endpoint_url", endpoint);
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/pipeline.toml")).unwrap();
    let config = Config::from_toml_str(&file, "pipeline.toml", &Default::default(), &Overrides::default()).unwrap();
    Plan::resolve(
        &config,
        &overrides,
        "2021-10-31",
        &ArtifactSet::build(root).unwrap(),
        &BoundInputs::not_yet("not looked for"),
    )
    .unwrap()
}

#[tokio::test]
async fn a_second_deploy_uploads_nothing() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let plan = plan_for(&moto.endpoint, dir.path());

    let methods = RequestLog::methods();
    let sdk = sdk_config(&emr_driver::aws::AwsSettings::from_config(&plan.config)).await;
    let client = aws_sdk_s3::Client::from_conf(s3_config_builder(&sdk).interceptor(methods.clone()).build());
    client.create_bucket().bucket("raw-bucket").send().await.unwrap();
    methods.take();
    let store = S3Store::new(client);

    let first = deploy(&store, &plan.artifacts.all(), &mut |_: &str| {}).await.unwrap();
    assert_eq!(first.uploaded.len(), 3);
    assert_eq!(uploads(&methods.take()), 3);
    for artifact in plan.artifacts.all() {
        let head = store.head(&artifact.object_uri()).await.unwrap().expect("uploaded");
        assert_eq!(head.metadata.get("sha256"), Some(&artifact.sha256));
        assert_eq!(head.size, artifact.size);
        assert!(artifact.uri.starts_with(&format!("s3://raw-bucket/artifacts/{}/", artifact.sha256)));
    }
    methods.take();

    let second = deploy(&store, &plan.artifacts.all(), &mut |_: &str| {}).await.unwrap();
    let requests = methods.take();
    assert_eq!(uploads(&requests), 0, "{requests:?}");
    assert_eq!(requests, vec!["HEAD", "HEAD", "HEAD"]);
    assert!(second.uploaded.is_empty());
    assert_eq!(second.skipped.len(), 3);
    assert_eq!(second.uris, first.uris);

    // A new bootstrap script: only it is uploaded, under its new digest; the old one stays
    // for the runs that reference it.
    std::fs::write(dir.path().join("bootstrap/packages.sh"), "#!/bin/bash\necho v2\n").unwrap();
    let changed = plan_for(&moto.endpoint, dir.path());
    let third = deploy(&store, &changed.artifacts.all(), &mut |_: &str| {}).await.unwrap();
    assert_eq!(third.uploaded, vec![changed.artifacts.packages_sh.uri.clone()]);
    assert_eq!(uploads(&methods.take()), 1);
    assert_ne!(changed.run_id, plan.run_id);
    assert!(store.head(&plan.artifacts.packages_sh.object_uri()).await.unwrap().is_some());
}

#[tokio::test]
async fn the_endpoint_override_comes_from_the_config_key() {
    let moto = MotoServer::start();
    let settings =
        AwsSettings { region: Some("us-east-1".into()), profile: None, endpoint_url: Some(moto.endpoint.clone()) };
    let sdk = sdk_config(&settings).await;
    assert_eq!(sdk.endpoint_url(), Some(moto.endpoint.as_str()));
    assert!(emr_driver::aws::endpoint_overridden(&sdk));
    // Path-style addressing reaches moto: a bucket created and listed through the client.
    let client = emr_driver::aws::s3_client(&sdk);
    client.create_bucket().bucket("checked").send().await.unwrap();
    let buckets = client.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().iter().any(|b| b.name() == Some("checked")));
}
