//! Shared test support for the integration tests (`mod support;` in each test file).
#![allow(dead_code)]

pub mod moto;
pub mod requests;

/// The output folders a pipeline job's arguments name, as the real job writes them, each with
/// whether it holds data files (a metrics folder gets only `_SUCCESS` from here: the fakes
/// write the metrics line themselves). The orchestration fakes write a part file and Spark's
/// `_SUCCESS` marker in each, so the driver can record the step's outputs and publish them.
pub fn job_output_folders(args: &[String]) -> Vec<(String, bool)> {
    let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].clone());
    let job = ["classify_reviews", "parse_logs", "build_dimensions", "build_fact"]
        .into_iter()
        .find(|j| args.iter().any(|a| a == j))
        .expect("a pipeline job");
    let mut out: Vec<(String, bool)> =
        ["--output", "--rejects"].iter().filter_map(|f| value(f)).map(|f| (f, true)).collect();
    out.extend(value("--metrics").map(|f| (f, false)));
    let load_root = value("--load-root");
    match job {
        "build_dimensions" => {
            let (date, run, dims) =
                (value("--run-date").unwrap(), value("--run-id").unwrap(), value("--dims-root").unwrap());
            for dim in emr_driver::db::warehouse::DIMENSIONS.iter().map(|d| d.table) {
                out.push((format!("{dims}/{dim}/dt={date}/run={run}"), true));
                out.push((format!("{}/{dim}", load_root.clone().unwrap()), true));
            }
        }
        "build_fact" => out.push((format!("{}/fact_movie_analytics", load_root.unwrap()), true)),
        _ => {}
    }
    out
}

/// Writes what [`job_output_folders`] names into `store`: a part file (`body`) where the folder
/// holds data, and `_SUCCESS` last, as Spark commits.
pub async fn write_job_outputs(store: &dyn emr_driver::store::ObjectStore, args: &[String], body: &str) {
    use emr_driver::store::ObjectUri;
    for (folder, data) in job_output_folders(args) {
        if data {
            let part = ObjectUri::parse(&format!("{folder}/part-00000-fake.bin")).unwrap();
            store.put_bytes(&part, bytes::Bytes::from(body.to_string())).await.unwrap();
        }
        let marker = ObjectUri::parse(&format!("{folder}/_SUCCESS")).unwrap();
        store.put_bytes(&marker, bytes::Bytes::new()).await.unwrap();
    }
}
