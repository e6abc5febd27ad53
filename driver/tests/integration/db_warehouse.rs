//! The warehouse load and the five questions against the real PostgreSQL on 127.0.0.1:5432,
//! from load files written here by hand in the jobs' format (CSV, header, gzip, Spark names);
//! the five questions over Spectrum against a schema that stands in for the external schema.

use crate::db_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use bytes::Bytes;
use chrono::NaiveDate;
use db_common::TestDb;
use emr_driver::db::report::{run_report, run_spectrum_report};
use emr_driver::db::warehouse::{load_run, DIMENSIONS, FACT_COLUMNS};
use emr_driver::db::DbError;
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};

const SCHEMA: &str = "warehouse";

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn load_root(run_date: &str) -> ObjectUri {
    ObjectUri::parse(&format!("s3://staging/warehouse_load/dt={run_date}")).unwrap()
}

/// One run's load files, as the jobs write them.
#[derive(Clone, Debug)]
struct LoadFiles {
    /// table → CSV lines without header, in the table's column order.
    tables: BTreeMap<&'static str, Vec<String>>,
}

fn base_dims() -> BTreeMap<&'static str, Vec<String>> {
    let lines = |rows: &[&str]| rows.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "dim_date",
            lines(&[
                "0,,,,,Unknown",
                "20210425,2021-04-25,25,4,2021,Spring",
                "20201103,2020-11-03,3,11,2020,Fall",
                "20211231,2021-12-31,31,12,2021,Winter",
            ]),
        ),
        ("dim_devices", lines(&["0,Unknown", "1,Mobile", "2,Computer", "3,Tablet"])),
        (
            "dim_location",
            lines(&[
                "0,Unknown,,Unknown",
                "1,California,CA,West",
                "2,New York,NY,Northeast",
                "3,Texas,TX,South",
                "4,Kansas,KS,Midwest",
                "5,Oregon,OR,West",
                "6,Florida,FL,South",
            ]),
        ),
        (
            "dim_os",
            lines(&["0,Unknown", "1,Apple iOS", "2,Apple MacOS", "3,Microsoft Windows", "4,Google Android", "5,Linux"]),
        ),
        ("dim_browser", lines(&["0,Unknown", "1,Safari", "2,Google Chrome", "3,Microsoft Edge", "4,Mozilla Firefox"])),
    ])
}

/// Deterministic pseudo-random fact rows over the dims' ids (xorshift: no real randomness).
fn fact_rows(run_date: &str, seed: u64, count: usize, dims: &BTreeMap<&'static str, Vec<String>>) -> Vec<String> {
    let ids =
        |table: &str| -> Vec<String> { dims[table].iter().map(|l| l.split(',').next().unwrap().to_string()).collect() };
    let (dates, devices, locations, oses, browsers) =
        (ids("dim_date"), ids("dim_devices"), ids("dim_location"), ids("dim_os"), ids("dim_browser"));
    let mut state = seed;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    while rows.len() < count {
        let key = (
            12000 + next(20),
            dates[next(dates.len())].clone(),
            devices[next(devices.len())].clone(),
            locations[next(locations.len())].clone(),
            oses[next(oses.len())].clone(),
            browsers[next(browsers.len())].clone(),
        );
        if !seen.insert(key.clone()) {
            continue;
        }
        let review_count = 1 + next(9);
        let review_score = next(review_count + 1);
        let amount = format!("{}.{:05}", next(5000), next(100000));
        rows.push(format!(
            "{},{},{},{},{},{},{amount},{review_score},{review_count},{run_date}",
            key.0, key.1, key.2, key.3, key.4, key.5
        ));
    }
    rows
}

fn run_files(run_date: &str, seed: u64, dims: BTreeMap<&'static str, Vec<String>>) -> LoadFiles {
    let mut tables = dims.clone();
    tables.insert("fact_movie_analytics", fact_rows(run_date, seed, 80, &dims));
    LoadFiles { tables }
}

fn columns_of(table: &str) -> Vec<&'static str> {
    match DIMENSIONS.iter().find(|d| d.table == table) {
        Some(dim) => dim.columns.to_vec(),
        None => FACT_COLUMNS.to_vec(),
    }
}

fn gzip(text: &str) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

/// Writes the files as Spark does: rows split over two part files (each with its header),
/// an empty part file, `_SUCCESS` and `.crc` files beside them.
async fn write_files(store: &LocalStore, root: &ObjectUri, files: &LoadFiles) {
    for (table, lines) in &files.tables {
        let folder = root.join(table);
        let header = columns_of(table).join(",");
        let (first, second) = lines.split_at(lines.len() / 2);
        for (i, part) in [first, second].iter().enumerate() {
            let body = format!("{header}\n{}\n", part.join("\n"));
            let name = format!("part-0000{i}-5f1c-c000.csv.gz");
            store.put_bytes(&folder.join(&name), gzip(&body)).await.unwrap();
            store.put_bytes(&folder.join(&format!(".{name}.crc")), Bytes::from_static(b"crc")).await.unwrap();
        }
        store.put_bytes(&folder.join("part-00002-5f1c-c000.csv.gz"), gzip("")).await.unwrap();
        store.put_bytes(&folder.join("_SUCCESS"), Bytes::new()).await.unwrap();
    }
}

/// Every row of a table as `a,b,c` text (NULL empty), sorted.
async fn table_lines(client: &tokio_postgres::Client, table: &str) -> Vec<String> {
    let select =
        columns_of(table).iter().map(|c| format!("coalesce({c}::text, '')")).collect::<Vec<_>>().join(" || ',' || ");
    let rows = client.query(&format!("SELECT {select} FROM {SCHEMA}.{table}"), &[]).await.unwrap();
    let mut lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    lines.sort();
    lines
}

async fn warehouse_state(client: &tokio_postgres::Client) -> BTreeMap<String, Vec<String>> {
    let mut state = BTreeMap::new();
    for table in DIMENSIONS.iter().map(|d| d.table).chain(["fact_movie_analytics"]) {
        state.insert(table.to_string(), table_lines(client, table).await);
    }
    state
}

fn sorted(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    lines.sort();
    lines
}

fn with_date(fact: &[String], run_date: &str) -> Vec<String> {
    sorted(&fact.iter().filter(|l| l.ends_with(run_date)).cloned().collect::<Vec<_>>())
}

struct Fixture {
    _lake: tempfile::TempDir,
    store: LocalStore,
    db: TestDb,
}

async fn fixture(purpose: &str) -> Fixture {
    let lake = tempfile::tempdir().unwrap();
    let store = LocalStore::new(lake.path());
    Fixture { _lake: lake, store, db: TestDb::create(purpose).await }
}

#[tokio::test]
async fn reruns_replace_one_date_and_leave_the_others_with_stable_ids() {
    let f = fixture("wh_rerun").await;
    let mut client = f.db.client().await;
    let d1 = run_files("2021-10-31", 7, base_dims());
    write_files(&f.store, &load_root("2021-10-31"), &d1).await;

    let report = load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    assert_eq!(report.fact_rows_replaced, 0);
    let fact = report.tables.iter().find(|t| t.table == "fact_movie_analytics").unwrap();
    assert_eq!((fact.files, fact.rows), (3, 80));
    let after_first = warehouse_state(&client).await;
    for (table, lines) in &d1.tables {
        assert_eq!(after_first[*table], sorted(lines), "{table}");
    }

    // Same date again: the same rows, nothing doubled.
    let report = load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    assert_eq!(report.fact_rows_replaced, 80);
    assert_eq!(warehouse_state(&client).await, after_first);

    // A second date: new members get new ids, old ones keep theirs, the first date stays.
    let mut dims2 = base_dims();
    dims2.get_mut("dim_os").unwrap().push("6,Chrome OS".into());
    dims2.get_mut("dim_location").unwrap().push("7,Maine,ME,Northeast".into());
    dims2.get_mut("dim_date").unwrap().push("20211101,2021-11-01,1,11,2021,Fall".into());
    let d2 = run_files("2021-11-01", 99, dims2.clone());
    write_files(&f.store, &load_root("2021-11-01"), &d2).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-11-01"), date("2021-11-01")).await.unwrap();
    let after_second = warehouse_state(&client).await;
    for (table, lines) in &dims2 {
        assert_eq!(after_second[*table], sorted(lines), "{table}");
    }
    let fact = &after_second["fact_movie_analytics"];
    assert_eq!(with_date(fact, "2021-10-31"), sorted(&d1.tables["fact_movie_analytics"]));
    assert_eq!(with_date(fact, "2021-11-01"), sorted(&d2.tables["fact_movie_analytics"]));

    // The first date rerun with different content: only its rows change.
    let d1b = run_files("2021-10-31", 12345, base_dims());
    write_files(&f.store, &load_root("2021-10-31b"), &d1b).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31b"), date("2021-10-31")).await.unwrap();
    let fact = table_lines(&client, "fact_movie_analytics").await;
    assert_eq!(with_date(&fact, "2021-10-31"), sorted(&d1b.tables["fact_movie_analytics"]));
    assert_eq!(with_date(&fact, "2021-11-01"), sorted(&d2.tables["fact_movie_analytics"]));
    assert_eq!(
        table_lines(&client, "dim_os").await,
        sorted(&dims2["dim_os"]),
        "a run that lacks a member does not delete it"
    );
}

#[tokio::test]
async fn an_id_that_would_change_refuses_the_whole_load() {
    let f = fixture("wh_conflict").await;
    let mut client = f.db.client().await;
    write_files(&f.store, &load_root("2021-10-31"), &run_files("2021-10-31", 7, base_dims())).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    let before = warehouse_state(&client).await;

    let cases: [(&str, &str, &str); 3] = [
        ("dim_os", "5,Linux", "9,Linux"),                          // a value under a new id
        ("dim_devices", "3,Tablet", "3,Phablet"),                  // an id under a new value
        ("dim_browser", "4,Mozilla Firefox", "3,Mozilla Firefox"), // an id twice in the files
    ];
    for (i, (table, old, new)) in cases.into_iter().enumerate() {
        let mut dims = base_dims();
        let line = dims.get_mut(table).unwrap().iter_mut().find(|l| *l == old).unwrap();
        *line = new.to_string();
        let run = format!("2021-11-0{}", i + 1);
        write_files(&f.store, &load_root(&run), &run_files(&run, 3, base_dims())).await;
        // Dims with the conflict, fact of the run (its ids all exist).
        let mut files = run_files(&run, 3, base_dims());
        files.tables.insert(table, dims[table].clone());
        let root = load_root(&format!("{run}-conflict"));
        write_files(&f.store, &root, &files).await;
        let err = load_run(&mut client, &f.store, SCHEMA, &root, date(&run)).await.unwrap_err();
        assert!(matches!(&err, DbError::DimIdConflict { table: t, .. } if t == table), "{table}: {err}");
        assert_eq!(warehouse_state(&client).await, before, "{table}: nothing changed");
    }
    let err = {
        let mut dims = base_dims();
        dims.get_mut("dim_os").unwrap()[5] = "5,Linux".into();
        dims.get_mut("dim_os").unwrap().push("6,Linux".into());
        let mut files = run_files("2021-11-05", 3, base_dims());
        files.tables.insert("dim_os", dims["dim_os"].clone());
        write_files(&f.store, &load_root("dup"), &files).await;
        load_run(&mut client, &f.store, SCHEMA, &load_root("dup"), date("2021-11-05")).await.unwrap_err()
    };
    assert!(err.to_string().contains("value Linux appears 2 times"), "{err}");
}

#[tokio::test]
async fn unusable_load_files_fail_loudly_and_change_nothing() {
    let f = fixture("wh_bad_files").await;
    let mut client = f.db.client().await;
    let good = run_files("2021-10-31", 7, base_dims());
    write_files(&f.store, &load_root("2021-10-31"), &good).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    let before = warehouse_state(&client).await;

    // A table folder missing.
    let mut files = run_files("2021-11-01", 5, base_dims());
    files.tables.remove("dim_browser");
    write_files(&f.store, &load_root("missing"), &files).await;
    let err = load_run(&mut client, &f.store, SCHEMA, &load_root("missing"), date("2021-11-01")).await.unwrap_err();
    assert!(matches!(err, DbError::NoPartFiles { ref table, .. } if table == "dim_browser"), "{err}");

    // Fact rows of another date.
    let files = run_files("2021-11-02", 5, base_dims());
    write_files(&f.store, &load_root("other_date"), &files).await;
    let err = load_run(&mut client, &f.store, SCHEMA, &load_root("other_date"), date("2021-11-03")).await.unwrap_err();
    assert!(err.to_string().contains("80 fact row(s) have an insert_date other than 2021-11-03"), "{err}");

    // A fact key with no dimension member.
    let mut files = run_files("2021-11-04", 5, base_dims());
    files.tables.get_mut("fact_movie_analytics").unwrap().push("1,20210425,1,1,1,77,0.00000,0,1,2021-11-04".into());
    write_files(&f.store, &load_root("dangling"), &files).await;
    let err = load_run(&mut client, &f.store, SCHEMA, &load_root("dangling"), date("2021-11-04")).await.unwrap_err();
    assert!(
        err.to_string().contains("1 fact row(s) have a id_dim_browser missing from warehouse.dim_browser, e.g. 77"),
        "{err}"
    );

    // A header the table does not know.
    let root = load_root("renamed");
    write_files(&f.store, &root, &run_files("2021-11-05", 5, base_dims())).await;
    let body = "id_dim_os,os_name\n1,Apple iOS\n";
    f.store.put_bytes(&root.join("dim_os").join("part-00000-5f1c-c000.csv.gz"), gzip(body)).await.unwrap();
    let err = load_run(&mut client, &f.store, SCHEMA, &root, date("2021-11-05")).await.unwrap_err();
    assert!(matches!(err, DbError::BadLoadFile { .. }) && err.to_string().contains("os_name"), "{err}");

    // Rows the database refuses (not a number): the COPY error names the file.
    let root = load_root("garbage");
    write_files(&f.store, &root, &run_files("2021-11-06", 5, base_dims())).await;
    let body = "id_dim_os,os\nseven,Apple iOS\n";
    f.store.put_bytes(&root.join("dim_os").join("part-00000-5f1c-c000.csv.gz"), gzip(body)).await.unwrap();
    let err = load_run(&mut client, &f.store, SCHEMA, &root, date("2021-11-06")).await.unwrap_err();
    assert!(err.to_string().contains("dim_os/part-00000-5f1c-c000.csv.gz"), "{err}");

    assert_eq!(warehouse_state(&client).await, before);
}

// ---- the five questions, answered independently here from the same rows ----

struct Model {
    dims: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
    fact: Vec<Vec<String>>,
}

impl Model {
    fn new(runs: &[&LoadFiles]) -> Model {
        let mut dims: BTreeMap<&'static str, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut fact = Vec::new();
        for run in runs {
            for (table, lines) in &run.tables {
                for line in lines {
                    let fields: Vec<String> = line.split(',').map(str::to_string).collect();
                    if *table == "fact_movie_analytics" {
                        fact.push(fields);
                    } else {
                        dims.entry(table).or_default().insert(fields[0].clone(), fields);
                    }
                }
            }
        }
        Model { dims, fact }
    }

    /// A dimension attribute of a fact row: `col` of the dim row whose id is in fact column `fk`.
    fn attr(&self, row: &[String], table: &str, fk: usize, col: usize) -> String {
        self.dims[table][&row[fk]][col].clone()
    }
    fn location(&self, r: &[String]) -> String {
        self.attr(r, "dim_location", 3, 1)
    }
    fn region(&self, r: &[String]) -> String {
        self.attr(r, "dim_location", 3, 3)
    }
    fn device(&self, r: &[String]) -> String {
        self.attr(r, "dim_devices", 2, 1)
    }
    fn os(&self, r: &[String]) -> String {
        self.attr(r, "dim_os", 4, 1)
    }
    fn browser(&self, r: &[String]) -> String {
        self.attr(r, "dim_browser", 5, 1)
    }
    fn year(&self, r: &[String]) -> String {
        self.attr(r, "dim_date", 1, 4)
    }
    fn count(r: &[String]) -> i64 {
        r[8].parse().unwrap()
    }
}

type Rows = Vec<Vec<Option<String>>>;

fn row(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

/// The keys holding the extreme value (all of them on a tie), sorted.
fn extremes(sums: &BTreeMap<String, i64>, pick_max: bool) -> Vec<(String, i64)> {
    let best = if pick_max { sums.values().max() } else { sums.values().min() };
    sums.iter().filter(|(_, v)| Some(*v) == best).map(|(k, v)| (k.clone(), *v)).collect()
}

fn expected_answers(m: &Model) -> Vec<Rows> {
    let three = ["California", "New York", "Texas"];
    // Q1
    let mut q1 = Rows::new();
    let mut total = 0;
    for state in three {
        let n: i64 = m.fact.iter().filter(|r| m.location(r) == state).map(|r| Model::count(r)).sum();
        total += n;
        q1.push(row(&[state, &n.to_string()]));
    }
    q1.push(row(&["Total", &total.to_string()]));
    // Q2
    let mut per_device: BTreeMap<String, i64> = BTreeMap::new();
    for r in m
        .fact
        .iter()
        .filter(|r| three.contains(&m.location(r).as_str()) && ["Apple MacOS", "Apple iOS"].contains(&m.os(r).as_str()))
    {
        *per_device.entry(m.device(r)).or_default() += Model::count(r);
    }
    let mut q2: Rows = per_device.iter().map(|(d, n)| row(&[d, &n.to_string()])).collect();
    q2.push(row(&["Total", &per_device.values().sum::<i64>().to_string()]));
    // Q3
    let mut per_location: BTreeMap<String, i64> = BTreeMap::new();
    for r in m.fact.iter().filter(|r| m.device(r) == "Computer" && m.browser(r) == "Google Chrome" && r[3] != "0") {
        *per_location.entry(m.location(r)).or_default() += Model::count(r);
    }
    let q3 = extremes(&per_location, true).iter().map(|(l, n)| row(&[l, &n.to_string()])).collect();
    // Q4: every known state, 0 when none in 2021.
    let mut per_state: BTreeMap<String, i64> =
        m.dims["dim_location"].values().filter(|d| d[0] != "0").map(|d| (d[1].clone(), 0)).collect();
    for r in m.fact.iter().filter(|r| m.year(r) == "2021" && r[3] != "0") {
        *per_state.get_mut(&m.location(r)).unwrap() += Model::count(r);
    }
    let mut q4 = Rows::new();
    for (label, pick_max) in [("most", true), ("fewest", false)] {
        for (state, n) in extremes(&per_state, pick_max) {
            q4.push(row(&[label, &state, &n.to_string()]));
        }
    }
    // Q5
    let mut q5 = Rows::new();
    for (side, regions) in [("East", &["Northeast", "South"][..]), ("West", &["West"][..])] {
        let mut per_device: BTreeMap<String, i64> = BTreeMap::new();
        for r in m.fact.iter().filter(|r| regions.contains(&m.region(r).as_str()) && r[2] != "0") {
            *per_device.entry(m.device(r)).or_default() += Model::count(r);
        }
        for (device, n) in extremes(&per_device, true) {
            q5.push(row(&[side, &device, &n.to_string()]));
        }
    }
    vec![q1, q2, q3, q4, q5]
}

#[tokio::test]
async fn the_five_questions_match_an_independent_computation() {
    let f = fixture("wh_report").await;
    let mut client = f.db.client().await;
    let d1 = run_files("2021-10-31", 7, base_dims());
    let d2 = run_files("2021-11-01", 4242, base_dims());
    write_files(&f.store, &load_root("2021-10-31"), &d1).await;
    write_files(&f.store, &load_root("2021-11-01"), &d2).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-11-01"), date("2021-11-01")).await.unwrap();

    let answers = run_report(&mut client, SCHEMA).await.unwrap();
    let expected = expected_answers(&Model::new(&[&d1, &d2]));
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[0].columns, vec!["location", "reviews"]);
    assert_eq!(answers[3].columns, vec!["rank", "location", "reviews"]);
    assert_eq!(answers[4].columns, vec!["side", "device", "reviews"]);
    for (i, (answer, expected)) in answers.iter().zip(&expected).enumerate() {
        assert!(!expected.is_empty(), "question {} has an answer in the test data", i + 1);
        assert_eq!(&answer.rows, expected, "question {}: {}", i + 1, answer.question);
    }
}

#[tokio::test]
async fn the_report_on_an_empty_warehouse_says_so_rather_than_failing() {
    let f = fixture("wh_empty").await;
    let mut client = f.db.client().await;
    emr_driver::db::warehouse::ensure_tables(&client, SCHEMA).await.unwrap();
    let answers = run_report(&mut client, SCHEMA).await.unwrap();
    assert_eq!(
        answers[0].rows,
        vec![row(&["California", "0"]), row(&["New York", "0"]), row(&["Texas", "0"]), row(&["Total", "0"])]
    );
    assert!(answers[2].rows.is_empty());
    assert_eq!(answers[2].columns, vec!["location", "reviews"]);
}

/// A night with odd values, as the jobs write them since they check values against the
/// warehouse's types: a location that is no US state (state_code NULL, region `Unknown`), a
/// device of exactly 64 bytes of UTF-8 (32 characters), quotes, commas and U+FFFD. It loads;
/// the next clean night, whose registry still holds those members, loads too. A load file as
/// the jobs wrote it before the checks (the non-US location without a region) is what failed
/// every night: it is refused by the warehouse and changes nothing.
#[tokio::test]
async fn a_night_with_odd_values_loads_and_the_next_clean_night_too() {
    let f = fixture("wh_odd").await;
    let mut client = f.db.client().await;
    let wide_device = "\u{e9}".repeat(32);
    let mut odd = base_dims();
    odd.get_mut("dim_location").unwrap().push("7,Atlantis,,Unknown".into());
    odd.get_mut("dim_location").unwrap().push("8,\"Puerto Rico, \"\"PR\"\"\",,Unknown".into());
    odd.get_mut("dim_devices").unwrap().push(format!("4,{wide_device}"));
    odd.get_mut("dim_os").unwrap().push("6,Beos \u{fffd}".into());
    let night1 = run_files("2021-10-31", 5, odd.clone());

    // Before the checks, build_dimensions left the region of a non-US location empty.
    let mut unchecked = night1.clone();
    let location = unchecked.tables.get_mut("dim_location").unwrap();
    *location.iter_mut().find(|l| l.starts_with("7,")).unwrap() = "7,Atlantis,,".into();
    write_files(&f.store, &load_root("2021-10-31-unchecked"), &unchecked).await;
    let err = load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31-unchecked"), date("2021-10-31"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("region"), "{err}");
    let created: Option<String> =
        client.query_one(&format!("SELECT to_regclass('{SCHEMA}.dim_location')::text"), &[]).await.unwrap().get(0);
    assert_eq!(created, None, "the failed load rolled everything back, the tables too");

    write_files(&f.store, &load_root("2021-10-31"), &night1).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    let devices = table_lines(&client, "dim_devices").await;
    assert!(devices.contains(&format!("4,{wide_device}")), "stored whole: {devices:?}");
    let locations = table_lines(&client, "dim_location").await;
    assert!(locations.contains(&"7,Atlantis,,Unknown".to_string()), "{locations:?}");
    assert!(locations.contains(&"8,Puerto Rico, \"PR\",,Unknown".to_string()), "{locations:?}");

    // The next night is clean; its dimension files are the registry, odd members included.
    let mut clean = odd.clone();
    clean.get_mut("dim_date").unwrap().push("20211101,2021-11-01,1,11,2021,Fall".into());
    let base_ids = base_dims();
    let night2 = run_files("2021-11-01", 11, base_ids.clone());
    let night2 = LoadFiles {
        tables: clean
            .iter()
            .map(|(t, l)| (*t, l.clone()))
            .chain([("fact_movie_analytics", night2.tables["fact_movie_analytics"].clone())])
            .collect(),
    };
    write_files(&f.store, &load_root("2021-11-01"), &night2).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-11-01"), date("2021-11-01")).await.unwrap();
    let state = warehouse_state(&client).await;
    let fact = &state["fact_movie_analytics"];
    assert_eq!(with_date(fact, "2021-10-31"), sorted(&night1.tables["fact_movie_analytics"]));
    assert_eq!(with_date(fact, "2021-11-01"), sorted(&night2.tables["fact_movie_analytics"]));
    assert_eq!(state["dim_location"], locations, "every member kept with its id");
    let outside: i64 = client
        .query_one(
            &format!("SELECT COUNT(*) FROM {SCHEMA}.dim_location WHERE region = 'Unknown' AND id_dim_location <> 0"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outside, 2);
}

/// A load folder whose Spark write did not finish (part files there, no `_SUCCESS`) is never
/// loaded, even in part: the load is refused, names the folder, and changes nothing.
#[tokio::test]
async fn a_half_written_output_is_never_loaded() {
    let f = fixture("wh_half").await;
    let mut client = f.db.client().await;
    write_files(&f.store, &load_root("2021-10-31"), &run_files("2021-10-31", 7, base_dims())).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    let before = warehouse_state(&client).await;

    let root = load_root("2021-11-01");
    write_files(&f.store, &root, &run_files("2021-11-01", 3, base_dims())).await;
    let marker = root.join("fact_movie_analytics").join("_SUCCESS");
    std::fs::remove_file(f._lake.path().join(&marker.bucket).join(&marker.key)).unwrap();
    emr_driver::db::warehouse::check_complete(&f.store, &root).await.unwrap_err();
    let err = load_run(&mut client, &f.store, SCHEMA, &root, date("2021-11-01")).await.unwrap_err();
    assert!(matches!(&err, DbError::IncompleteWrite { table, .. } if table == "fact_movie_analytics"), "{err}");
    assert!(err.to_string().contains("dt=2021-11-01/fact_movie_analytics"), "{err}");
    assert_eq!(warehouse_state(&client).await, before, "nothing changed");
    emr_driver::db::warehouse::check_complete(&f.store, &load_root("2021-10-31")).await.unwrap();
}

// ---- what BI tools see: views, keys, comments (PostgreSQL) and the embedded SQLite twin ----

/// The load files with `amount_spent` made customer-level, as build_fact writes it: the same
/// value on every row of a customer within a date (some negative: returns), another value on
/// another date.
fn with_customer_spend(files: &LoadFiles, run_date: &str) -> LoadFiles {
    let mut files = files.clone();
    let salt: u64 = run_date.bytes().map(u64::from).sum();
    let fact = files.tables.get_mut("fact_movie_analytics").unwrap();
    for line in fact.iter_mut() {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        let customer: u64 = fields[0].parse().unwrap();
        let units = (customer * 7919 + salt * 104_729) % 900_000_000;
        let sign = if customer.is_multiple_of(5) { "-" } else { "" };
        fields[6] = format!("{sign}{}.{:05}", units / 100_000, units % 100_000);
        *line = fields.join(",");
    }
    files
}

/// Per customer, the spend of its latest date, in units of 1e-5, summed: the right total.
fn expected_total_spend(runs: &[(&str, &LoadFiles)]) -> (i128, usize) {
    let mut latest: BTreeMap<String, (String, i128)> = BTreeMap::new();
    for (run_date, files) in runs {
        for line in &files.tables["fact_movie_analytics"] {
            let fields: Vec<&str> = line.split(',').collect();
            let (whole, frac) = fields[6].split_once('.').unwrap();
            let negative = whole.starts_with('-');
            let units =
                whole.trim_start_matches('-').parse::<i128>().unwrap() * 100_000 + frac.parse::<i128>().unwrap();
            let units = if negative { -units } else { units };
            let entry = latest.entry(fields[0].to_string()).or_insert((run_date.to_string(), units));
            if *run_date >= entry.0.as_str() {
                *entry = (run_date.to_string(), units);
            }
        }
    }
    (latest.values().map(|(_, units)| units).sum(), latest.len())
}

fn decimal_5(units: i128) -> String {
    let sign = if units < 0 { "-" } else { "" };
    format!("{sign}{}.{:05}", units.abs() / 100_000, units.abs() % 100_000)
}

#[tokio::test]
async fn every_load_leaves_the_views_keys_and_comments_bi_tools_read() {
    let f = fixture("wh_views").await;
    let mut client = f.db.client().await;
    let d1 = with_customer_spend(&run_files("2021-10-31", 7, base_dims()), "2021-10-31");
    let d2 = with_customer_spend(&run_files("2021-11-01", 4242, base_dims()), "2021-11-01");
    write_files(&f.store, &load_root("2021-10-31"), &d1).await;
    write_files(&f.store, &load_root("2021-11-01"), &d2).await;
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    // A warehouse made before the keys existed: the next load adds them back.
    for row in client
        .query(
            "SELECT constraint_name::text FROM information_schema.table_constraints \
             WHERE table_schema = $1 AND table_name = 'fact_movie_analytics' AND constraint_type = 'FOREIGN KEY'",
            &[&SCHEMA],
        )
        .await
        .unwrap()
    {
        let name: String = row.get(0);
        client
            .batch_execute(&format!("ALTER TABLE {SCHEMA}.fact_movie_analytics DROP CONSTRAINT {name}"))
            .await
            .unwrap();
    }
    load_run(&mut client, &f.store, SCHEMA, &load_root("2021-11-01"), date("2021-11-01")).await.unwrap();

    // Primary keys on every dimension, a foreign key from the fact to each.
    let keys = client
        .query(
            "SELECT tc.table_name::text, tc.constraint_type::text, kcu.column_name::text \
             FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_name = tc.constraint_name AND kcu.constraint_schema = tc.constraint_schema \
             WHERE tc.table_schema = $1 AND tc.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')",
            &[&SCHEMA],
        )
        .await
        .unwrap();
    let keys: BTreeSet<(String, String, String)> = keys.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    for dim in &DIMENSIONS {
        assert!(keys.contains(&(dim.table.into(), "PRIMARY KEY".into(), dim.id.into())), "{keys:?}");
        assert!(keys.contains(&("fact_movie_analytics".into(), "FOREIGN KEY".into(), dim.id.into())), "{keys:?}");
    }
    let fks = keys.iter().filter(|k| k.1 == "FOREIGN KEY").count();
    assert_eq!(fks, DIMENSIONS.len(), "one foreign key per dimension, none doubled: {keys:?}");

    // A comment on every table, view and column.
    let relations = client
        .query(
            "SELECT c.relname::text, c.relkind::text, obj_description(c.oid, 'pg_class') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'v')",
            &[&SCHEMA],
        )
        .await
        .unwrap();
    let described: BTreeMap<String, (String, Option<String>)> =
        relations.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
    assert_eq!(described["v_fact_movie_analytics"].0, "v");
    assert_eq!(described["v_customer_spend"].0, "v");
    assert_eq!(described.len(), 8, "{described:?}");
    for (name, (_, comment)) in &described {
        assert!(comment.as_deref().is_some_and(|c| c.len() > 10), "{name} has no comment");
    }
    let uncommented = client
        .query(
            "SELECT c.relname::text || '.' || a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') \
             AND a.attnum > 0 AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL",
            &[&SCHEMA],
        )
        .await
        .unwrap();
    let uncommented: Vec<String> = uncommented.iter().map(|r| r.get(0)).collect();
    assert!(uncommented.is_empty(), "columns without a comment: {uncommented:?}");
    let spend_comment: String = client
        .query_one(
            "SELECT col_description(c.oid, a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'fact_movie_analytics' \
             AND a.attname = 'amount_spent'",
            &[&SCHEMA],
        )
        .await
        .unwrap()
        .get(0);
    assert!(spend_comment.contains("sum it over distinct customers"), "{spend_comment}");

    // v_fact_movie_analytics: every fact row once, with the dimension values by name.
    let fact_rows = d1.tables["fact_movie_analytics"].len() + d2.tables["fact_movie_analytics"].len();
    let view_rows: i64 =
        client.query_one(&format!("SELECT COUNT(*) FROM {SCHEMA}.v_fact_movie_analytics"), &[]).await.unwrap().get(0);
    assert_eq!(view_rows as usize, fact_rows);
    let ca: i64 = client
        .query_one(
            &format!(
                "SELECT COALESCE(SUM(review_count), 0)::bigint FROM {SCHEMA}.v_fact_movie_analytics \
                 WHERE location = 'California' AND state_code = 'CA' AND region = 'West'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let expected_ca: i64 = [&d1, &d2]
        .iter()
        .flat_map(|d| d.tables["fact_movie_analytics"].iter())
        .filter(|l| l.split(',').nth(3) == Some("1"))
        .map(|l| l.split(',').nth(8).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(ca, expected_ca);

    // v_customer_spend: one row per customer, so SUM is the right total (the fact's own SUM
    // over-counts: each customer's spend is on each of its rows).
    let (expected_units, customers) = expected_total_spend(&[("2021-10-31", &d1), ("2021-11-01", &d2)]);
    let row = client
        .query_one(
            &format!(
                "SELECT SUM(net_spend)::text, COUNT(*), COUNT(DISTINCT customerid), SUM(reviews)::bigint, \
                 SUM(positive_reviews)::bigint FROM {SCHEMA}.v_customer_spend"
            ),
            &[],
        )
        .await
        .unwrap();
    let (total, rows, distinct): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(total, decimal_5(expected_units));
    assert_eq!((rows, distinct), (customers as i64, customers as i64));
    let all_lines = || [&d1, &d2].into_iter().flat_map(|d| d.tables["fact_movie_analytics"].iter());
    let field_sum = |i: usize| all_lines().map(|l| l.split(',').nth(i).unwrap().parse::<i64>().unwrap()).sum::<i64>();
    assert_eq!(row.get::<_, i64>(3), field_sum(8), "reviews");
    assert_eq!(row.get::<_, i64>(4), field_sum(7), "positive reviews");
    let naive: String = client
        .query_one(&format!("SELECT SUM(amount_spent)::text FROM {SCHEMA}.fact_movie_analytics"), &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(naive, total, "the test data must show the over-count the view avoids");
}

fn sqlite_lines(path: &std::path::Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let conn = emr_driver::db::embedded::open_read_only(path).unwrap();
    emr_driver::db::embedded::query_text(&conn, path, sql, "test query").unwrap().1
}

#[tokio::test]
async fn the_embedded_warehouse_loads_like_postgresql_and_answers_the_same() {
    let f = fixture("wh_sqlite").await;
    let mut client = f.db.client().await;
    let d1 = with_customer_spend(&run_files("2021-10-31", 7, base_dims()), "2021-10-31");
    let d2 = with_customer_spend(&run_files("2021-11-01", 4242, base_dims()), "2021-11-01");
    write_files(&f.store, &load_root("2021-10-31"), &d1).await;
    write_files(&f.store, &load_root("2021-11-01"), &d2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warehouse/movie_analytics.sqlite");
    let store: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(f.store.clone());
    use emr_driver::db::embedded;
    for (run_date, _) in [("2021-10-31", &d1), ("2021-11-01", &d2)] {
        load_run(&mut client, &f.store, SCHEMA, &load_root(run_date), date(run_date)).await.unwrap();
        let report = embedded::load_run(&path, store.clone(), &load_root(run_date), date(run_date)).await.unwrap();
        assert_eq!(report.fact_rows_replaced, 0);
    }
    // A rerun of a date replaces its rows: same warehouse after.
    let count = |p: &std::path::Path| {
        sqlite_lines(p, "SELECT insert_date, COUNT(*) FROM fact_movie_analytics GROUP BY 1 ORDER BY 1")
    };
    let before = count(&path);
    let report = embedded::load_run(&path, store.clone(), &load_root("2021-10-31"), date("2021-10-31")).await.unwrap();
    assert_eq!(report.fact_rows_replaced, 80);
    assert_eq!(count(&path), before);
    assert_eq!(
        before,
        vec![vec![Some("2021-10-31".into()), Some("80".into())], vec![Some("2021-11-01".into()), Some("80".into())]]
    );

    // Each question's SQL, unchanged, gives the same answer on both (and the independent one).
    let pg = run_report(&mut client, SCHEMA).await.unwrap();
    let lite = embedded::run_report(&path).unwrap();
    let expected = expected_answers(&Model::new(&[&d1, &d2]));
    for ((p, l), e) in pg.iter().zip(&lite).zip(&expected) {
        assert_eq!(p.columns, l.columns, "{}", p.name);
        assert_eq!(p.rows, l.rows, "{}: PostgreSQL and SQLite disagree", p.name);
        assert_eq!(&l.rows, e, "{}", l.name);
    }

    // Dimensions with their ids, identical to PostgreSQL's.
    for dim in &DIMENSIONS {
        let select = dim
            .columns
            .iter()
            .map(|c| format!("coalesce(CAST({c} AS text), '')"))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let mut lines: Vec<String> = sqlite_lines(&path, &format!("SELECT {select} FROM {}", dim.table))
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        lines.sort();
        assert_eq!(lines, table_lines(&client, dim.table).await, "{}", dim.table);
    }

    // The views and the comments table.
    let view_rows = sqlite_lines(&path, "SELECT COUNT(*), SUM(review_count) FROM v_fact_movie_analytics");
    assert_eq!(view_rows[0][0].as_deref(), Some("160"));
    let (units, customers) = expected_total_spend(&[("2021-10-31", &d1), ("2021-11-01", &d2)]);
    let spend =
        sqlite_lines(&path, "SELECT COUNT(*), COUNT(DISTINCT customerid), SUM(net_spend) FROM v_customer_spend");
    assert_eq!(spend[0][0], Some(customers.to_string()));
    assert_eq!(spend[0][1], Some(customers.to_string()));
    let total: f64 = spend[0][2].as_deref().unwrap().parse().unwrap();
    assert!((total - units as f64 / 100_000.0).abs() < 0.01, "{total} vs {units}");
    let missing = sqlite_lines(
        &path,
        "SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_column_comments' \
         AND NOT EXISTS (SELECT 1 FROM _column_comments c WHERE c.object_name = m.name AND c.column_name = p.name)",
    );
    assert!(missing.is_empty(), "columns without a comment: {missing:?}");
    let objects = sqlite_lines(&path, "SELECT COUNT(*) FROM _column_comments WHERE column_name = ''");
    assert_eq!(objects[0][0].as_deref(), Some("8"));

    // An id that would change refuses the whole load and changes nothing.
    let mut bad = d2.clone();
    bad.tables.get_mut("dim_devices").unwrap()[1] = "1,Smartwatch".into();
    write_files(&f.store, &load_root("2021-11-02"), &bad).await;
    let snapshot = std::fs::read(&path).unwrap();
    let err = embedded::load_run(&path, store.clone(), &load_root("2021-11-02"), date("2021-11-02")).await.unwrap_err();
    assert!(matches!(err, DbError::DimIdConflict { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), snapshot, "a refused load leaves the file as it was");
}

// ---- the five questions over Spectrum ----

/// The external tables of sql/redshift/spectrum.sql as plain tables of `schema`: the same
/// names, columns and types, the partition column `dt` as the last column (Spectrum shows it
/// as one). PostgreSQL has no external tables; this schema stands in for Redshift's.
fn spectrum_stand_in(schema: &str) -> (Vec<String>, String) {
    let sql: String = emr_driver::db::redshift::SPECTRUM_SQL
        .lines()
        .map(|line| line.split("--").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let table = regex::Regex::new(
        r"(?s)CREATE EXTERNAL TABLE \$\{external_schema\}\.(\w+) \((.*?)\)\s*PARTITIONED BY \((\w+ \w+(?:\(\d+\))?)\)",
    )
    .unwrap();
    let mut names = Vec::new();
    let mut ddl = format!("CREATE SCHEMA {schema};\n");
    for c in table.captures_iter(&sql) {
        names.push(c[1].to_string());
        ddl.push_str(&format!("CREATE TABLE {schema}.{} ({},\n    {});\n", &c[1], c[2].trim_end(), &c[3]));
    }
    (names, ddl)
}

/// The fact rows of the runs into the stand-in's `fact_movie_analytics`, each in the `dt=`
/// partition of its run date (the last field, insert_date).
async fn fill_stand_in_fact(client: &tokio_postgres::Client, schema: &str, runs: &[&LoadFiles]) {
    for run in runs {
        for line in &run.tables["fact_movie_analytics"] {
            let values: Vec<&str> = line.split(',').collect();
            let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            let sql = format!(
                "INSERT INTO {schema}.fact_movie_analytics ({}, dt) VALUES ({}, '{}')",
                FACT_COLUMNS.join(", "),
                quoted.join(", "),
                values.last().unwrap()
            );
            client.batch_execute(&sql).await.unwrap();
        }
    }
}

fn report_json(db: &TestDb, over: &[&str]) -> serde_json::Value {
    let out = assert_cmd::Command::cargo_bin("emr-driver")
        .unwrap()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("DATABASE_URL")
        .env("EMR_DRIVER_LOG", "warn")
        .args(["--output", "json", "report", "--database-url", &db.url, "--schema", SCHEMA])
        .args(over)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is only JSON")
}

#[tokio::test]
async fn the_five_questions_over_spectrum_give_the_warehouse_answers() {
    let f = fixture("wh_spectrum").await;
    let mut client = f.db.client().await;
    let d1 = run_files("2021-10-31", 7, base_dims());
    let d2 = run_files("2021-11-01", 4242, base_dims());
    for (run_date, files) in [("2021-10-31", &d1), ("2021-11-01", &d2)] {
        write_files(&f.store, &load_root(run_date), files).await;
        load_run(&mut client, &f.store, SCHEMA, &load_root(run_date), date(run_date)).await.unwrap();
    }
    let (tables, ddl) = spectrum_stand_in("staging");
    assert_eq!(tables, ["classified_movie_review", "review_logs", "fact_movie_analytics", "user_purchase"], "{ddl}");
    client.batch_execute(&ddl).await.unwrap_or_else(|e| panic!("{e:?}\n{ddl}"));
    fill_stand_in_fact(&client, "staging", &[&d1, &d2]).await;

    // The rendered SQL runs and gives the warehouse's answers, which are the independent ones.
    let warehouse = run_report(&mut client, SCHEMA).await.unwrap();
    let spectrum = run_spectrum_report(&mut client, SCHEMA, "staging").await.unwrap();
    assert_eq!(spectrum, warehouse);
    let expected = expected_answers(&Model::new(&[&d1, &d2]));
    for (answer, expected) in spectrum.iter().zip(&expected) {
        assert!(!expected.is_empty(), "{} has an answer in the test data", answer.name);
        assert_eq!(&answer.rows, expected, "{}", answer.name);
    }
    // The same through the command line.
    let cli = report_json(&f.db, &["--over", "spectrum", "--spectrum-schema", "staging"]);
    assert_eq!(cli, serde_json::to_value(&warehouse).unwrap());

    // They read the external fact, not the warehouse's: without the warehouse's fact rows the
    // answers stay; without a partition in Spectrum they are those of the other date alone.
    client.batch_execute("DELETE FROM warehouse.fact_movie_analytics").await.unwrap();
    assert_ne!(run_report(&mut client, SCHEMA).await.unwrap(), warehouse);
    assert_eq!(run_spectrum_report(&mut client, SCHEMA, "staging").await.unwrap(), warehouse);
    client.batch_execute("DELETE FROM staging.fact_movie_analytics WHERE dt = '2021-11-01'").await.unwrap();
    let one_date = run_spectrum_report(&mut client, SCHEMA, "staging").await.unwrap();
    let expected = expected_answers(&Model::new(&[&d1]));
    for (answer, expected) in one_date.iter().zip(&expected) {
        assert_eq!(&answer.rows, expected, "{} over dt=2021-10-31 only", answer.name);
    }
    assert_ne!(one_date, warehouse);

    // No external schema: the error names it and how it is made.
    let err = run_spectrum_report(&mut client, SCHEMA, "spectrum").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("spectrum.fact_movie_analytics") && text.contains("warehouse.glue_database"), "{text}");
}
